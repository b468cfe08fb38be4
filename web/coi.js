// Page-open helper (one classic <script> in the head, before PyScript):
// 1. registers web/coi-sw.js, the service worker that makes the site cross-origin isolated (COOP/COEP) from
//    the next load on; with data-reload="once" it reloads the page ONCE when it is not isolated yet (a flag in
//    sessionStorage: never a loop; no storage, no reload). Without service workers (blocked, private mode,
//    file://) nothing happens: the app runs single-threaded. window.mhsaCoi says what happened.
// 2. with data-compute="auto" (web/compute-worker.js) or ="<worker script>", starts the compute worker at once (Pyodide + numpy + pyapp boot in
//    it while PyScript boots the page), as window.mhsaCompute = {worker, seen, shared}; pyapp's
//    browser/worker_client.py adopts it. The worker loads the Pyodide of window.mhsaWorkerRuntime.indexURL
//    (set by the test harness) or PyScript's pinned one from jsDelivr.
(function () {
  "use strict";
  var PYODIDE = "https://cdn.jsdelivr.net/pyodide/v314.0.2/full/";   // what @pyscript/core 0.7.31 loads
  var KEY = "mhsa-coi-reloaded";
  var me = document.currentScript;
  var opts = (me && me.dataset) || {};
  var base = (me && me.src) || location.href;
  var status = window.mhsaCoi = {state: "starting", isolated: !!window.crossOriginIsolated, error: "",
                                 reloaded: false};

  function storage() {
    try { return window.sessionStorage; } catch (e) { return null; }
  }

  var store = storage();
  if (store) {
    try { status.reloaded = store.getItem(KEY) === "1"; } catch (e) { store = null; }
  }

  function reloadOnce() {
    if (opts.reload !== "once" || window.crossOriginIsolated || !store || status.reloaded) return false;
    try { store.setItem(KEY, "1"); } catch (e) { return false; }
    status.state = "reloading";
    location.reload();
    return true;
  }

  if (window.crossOriginIsolated && store) {
    try { store.removeItem(KEY); } catch (e) { /* ignore */ }
  }
  if (!window.isSecureContext || !navigator.serviceWorker || !navigator.serviceWorker.register) {
    status.state = window.crossOriginIsolated ? "isolated" : "unavailable";
  } else {
    navigator.serviceWorker.register(new URL("./coi-sw.js", base).href, {scope: new URL("./", base).href})
      .then(function (reg) {
        if (window.crossOriginIsolated) { status.state = "isolated"; return; }
        status.state = "registered";      // isolated from the next load on
        if (navigator.serviceWorker.controller) { reloadOnce(); return; }
        navigator.serviceWorker.addEventListener("controllerchange", function () { reloadOnce(); });
      })
      .catch(function (err) {
        status.state = window.crossOriginIsolated ? "isolated" : "blocked";
        status.error = String(err && err.message || err);
      });
  }

  // The worker's model files are fetched HERE, on the page's behalf (web/compute-worker.js asks with
  // {type: "fetch", fid, url}): the page's own fetch (what a test's page.route or an extension sees, the page's
  // CSP), streamed back chunk by chunk (transferred) so the worker's progress and stall timeout still work;
  // {type: "fetch-abort", fid} cancels one. No Python runs for it on the main thread.
  var fetches = {};
  function proxy(worker, m) {
    if (m.type === "fetch-abort") { if (fetches[m.fid]) fetches[m.fid].abort(); return; }
    if (m.type !== "fetch") return;
    var ctl = new AbortController();
    fetches[m.fid] = ctl;
    if (window.mhsaCompute) window.mhsaCompute.fetched = (window.mhsaCompute.fetched || 0) + 1;
    var post = function (msg, transfer) { msg.fid = m.fid; worker.postMessage(msg, transfer || []); };
    fetch(m.url, {signal: ctl.signal}).then(function (resp) {
      var headers = {};
      resp.headers.forEach(function (v, k) { headers[k] = v; });
      post({type: "fetch-head", status: resp.status, statusText: resp.statusText, headers: headers});
      var reader = resp.body && resp.body.getReader ? resp.body.getReader() : null;
      if (!reader) {
        return resp.arrayBuffer().then(function (b) {
          post({type: "fetch-chunk", chunk: new Uint8Array(b)}, [b]);
          post({type: "fetch-end"});
          delete fetches[m.fid];
        });
      }
      var pump = function () {
        return reader.read().then(function (r) {
          if (r.done) { delete fetches[m.fid]; post({type: "fetch-end"}); return null; }
          post({type: "fetch-chunk", chunk: r.value}, [r.value.buffer]);
          return pump();
        });
      };
      return pump();
    }).catch(function (err) {
      delete fetches[m.fid];
      post({type: "fetch-error", message: String(err && err.message || err)});
    });
  }

  // the switch: the tag's data-compute, or window.mhsaComputeDefault set before this script (tests, benchmark)
  var compute = opts.compute || window.mhsaComputeDefault || "";
  if (compute) {
    var start = function () {
      if (window.mhsaCompute) return;
      var seen = [];
      var worker;
      try {
        var hint0 = window.mhsaWorkerRuntime;      // Pyodide 0.17.1 (test harness): classic; modern: module
        var kind = (hint0 && (hint0.type || (/^0\.(1\d|2[0-2])\./.test(hint0.version || "") ? "classic" : ""))) || "module";
        var script = compute === "auto" ? new URL("./compute-worker.js", base) : new URL(compute, base);
        worker = new Worker(script.href, {type: kind});
      } catch (err) {
        window.mhsaCompute = {worker: null, seen: seen, error: String(err && err.message || err)};
        return;
      }
      var shared = window.crossOriginIsolated && typeof SharedArrayBuffer === "function" ? new SharedArrayBuffer(8) : null;
      var state = window.mhsaCompute = {worker: worker, seen: seen, shared: shared, started: performance.now()};
      worker.addEventListener("message", function (e) {
        var t = e.data && e.data.type;
        if (typeof t === "string" && t.indexOf("fetch") === 0) { proxy(worker, e.data); return; }
        if (state.seen) state.seen.push(e.data);
      });
      worker.addEventListener("error", function (e) {   // its script failed before pyapp listens: remember it
        state.error = String((e && e.message) || "the compute worker's script failed to load");
      });
      var hint = window.mhsaWorkerRuntime;
      worker.postMessage({type: "boot", indexURL: (hint && hint.indexURL) || PYODIDE, proxyFetch: true,
                          config: new URL(opts.config || "./pyscript.toml", base).href, interrupt: shared});
    };
    // after the deferred / module scripts ran (the test harness's bootstrap sets window.mhsaWorkerRuntime)
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }

  // 3. the canvas' keyboard hotspots in one call from Python (pyapp/browser/stage.py): one transparent <button>
  //    per action region; labels go through setAttribute, never markup. Hundreds of buttons built through
  //    Pyodide's proxies took 50-150 ms of the main thread at 512 tokens; here ~1 ms.
  window.mhsaHotspots = function (box, spec) {
    var s = JSON.parse(spec);
    var focused = document.activeElement;
    var refocus = focused && focused.parentNode === box ? focused.dataset.index : null;
    while (box.firstChild) box.removeChild(box.firstChild);
    box.style.width = s.w + "px";
    box.style.height = s.h + "px";
    var frag = document.createDocumentFragment();
    for (var i = 0; i < s.buttons.length; i++) {
      var r = s.buttons[i];
      var b = document.createElement("button");
      b.type = "button";
      b.dataset.index = String(i);
      b.setAttribute("aria-label", r[4]);
      b.style.cssText = "left:" + r[0].toFixed(1) + "px;top:" + r[1].toFixed(1) + "px;width:" + r[2].toFixed(1) +
                        "px;height:" + r[3].toFixed(1) + "px";
      frag.appendChild(b);
    }
    box.appendChild(frag);
    if (refocus !== null && refocus !== undefined) {
      var again = box.querySelector("button[data-index='" + refocus + "']");
      if (again) again.focus();
    }
  };
})();
