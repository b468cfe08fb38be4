// Cross-origin isolation for a static host (GitHub Pages cannot send headers): this service worker adds
// COOP/COEP to the site's own responses, so the page gets crossOriginIsolated = true (SharedArrayBuffer,
// Atomics, more than one thread sharing memory) from its second load on. Registered by web/coi.js.
// Cross-origin requests (the PyScript / Pyodide CDN) are left to the browser: they load in CORS mode or carry
// Cross-Origin-Resource-Policy, as COEP require-corp asks.
"use strict";
self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (e) { e.waitUntil(self.clients.claim()); });

self.addEventListener("fetch", function (e) {
  var r = e.request;
  if (r.method !== "GET") return;
  if (new URL(r.url).origin !== self.location.origin) return;
  if (r.cache === "only-if-cached" && r.mode !== "same-origin") return;
  e.respondWith(fetch(r).then(function (resp) {
    if (!resp || resp.status === 0 || resp.type === "opaque" || resp.type === "opaqueredirect") return resp;
    var h = new Headers(resp.headers);
    h.set("Cross-Origin-Opener-Policy", "same-origin");
    h.set("Cross-Origin-Embedder-Policy", "require-corp");
    h.set("Cross-Origin-Resource-Policy", "same-origin");
    var nobody = resp.status === 204 || resp.status === 205 || resp.status === 304;
    return new Response(nobody ? null : resp.body, {status: resp.status, statusText: resp.statusText, headers: h});
  }));
});
