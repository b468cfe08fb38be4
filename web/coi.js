// Page-open helper (one classic <script> in the head, before PyScript):
// 1. registers web/coi-sw.js, the service worker that makes the site cross-origin isolated (COOP/COEP) from
//    the next load on; with data-reload="once" it reloads the page ONCE when it is not isolated yet (a flag in
//    sessionStorage: never a loop; no storage, no reload). Without service workers (blocked, private mode,
//    file://) nothing happens: the app runs single-threaded. window.mhsaCoi says what happened.
// 2. with data-compute="auto" (web/compute-worker.js) or ="<worker script>", starts the compute worker at once (Pyodide + numpy + pyapp boot in
//    it while PyScript boots the page), as window.mhsaCompute = {worker, seen, shared}; pyapp's
//    browser/worker_client.py adopts it. Not on JavaScriptCore (WebKit), unless forced: see javascriptCore(). The worker loads the Pyodide of window.mhsaWorkerRuntime.indexURL
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

  // the switch: the tag's data-compute ("auto": the default page), overridden by window.mhsaComputeDefault set
  // before this script (tests, benchmark): "main" (or "off") keeps every computation on the main thread.
  // On JavaScriptCore (Safari, every iOS browser, WebKitGTK) the default is the main thread: with a second Pyodide
  // runtime in a worker, WebKitGTK 2.50.6 killed the page (SIGSEGV in its WebAssembly interpreter, IPInt) or
  // trapped a runtime ("Unreachable code should not be executed") in 2 of 7 boots; starting the worker only once
  // the page's Python was up still crashed 2 of 5 sessions (boot, every tab in a frame, a shared link). Never
  // with one runtime (12 of 12 boots), nor with that interpreter off (JSC_useWasmIPInt=false, 12 of 12). window.mhsaComputeDefault = "auto" still asks for it.
  var forced = window.mhsaComputeDefault;
  var compute = (typeof forced === "string" && forced) ? forced : (javascriptCore() ? "" : (opts.compute || ""));
  if (compute === "main" || compute === "off") compute = "";
  status.compute = compute ? "worker" : "main";

  // The page's canvas handed to the worker (transferControlToOffscreen): the worker draws straight into it and
  // the main thread presents no pixels (it keeps the CSS size and the hit regions). Only where the browser
  // has it and an OffscreenCanvas gives a 2d context; data-offscreen="off" or window.mhsaOffscreen = false
  // keep the bitmap copy (the worker's ImageBitmap drawn here), and so does a page inside a frame: WebKitGTK
  // 2.50 crashed the page when a framed canvas was handed to a worker (tests/engines, the phone-size frame).
  function offscreen2d() {
    try {
      return typeof OffscreenCanvas === "function" && !!new OffscreenCanvas(1, 1).getContext("2d");
    } catch (e) { return false; }
  }
  function handCanvas(worker, state) {
    if (opts.offscreen === "off" || window.mhsaOffscreen === false || window.top !== window) return;
    var cv = document.getElementById(opts.canvas || "view");
    if (!cv || typeof cv.transferControlToOffscreen !== "function" || !offscreen2d()) return;
    try {
      var off = cv.transferControlToOffscreen();
      worker.postMessage({type: "canvas", canvas: off}, [off]);
      state.canvas = cv;
      state.transferred = true;
    } catch (err) {
      state.transferError = String(err && err.message || err);
    }
  }

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
      // state.call(name, args): a "call" to the worker from JavaScript (tests, debugging: e.g. "stats", or
      // "python" {source, expr} to instrument and read the worker's own Python, where the page's computations
      // run; only when the page set window.mhsaDebug = true); a Promise of its JSON answer. Negative ids: never
      // the page's Python's (worker_client.py).
      var calls = {};
      var lastCall = 0;
      state.call = function (name, args) {
        return new Promise(function (ok, bad) {
          var id = --lastCall;
          calls[id] = {ok: ok, bad: bad};
          var msg = {type: "call", id: id, name: name};
          if (args !== undefined) msg.state = JSON.stringify(args);
          worker.postMessage(msg);
        });
      };
      worker.addEventListener("message", function (e) {
        var t = e.data && e.data.type;
        if (typeof t === "string" && t.indexOf("fetch") === 0) { proxy(worker, e.data); return; }
        var waiting = e.data && e.data.id < 0 && calls[e.data.id];
        if (waiting) {
          delete calls[e.data.id];
          var answer = JSON.parse(e.data.json || "{}");
          if (t === "error") waiting.bad(new Error(answer.message || "error")); else waiting.ok(answer);
          return;
        }
        if (state.seen) {                // pyapp has not taken over yet: record (and size the first frames)
          state.seen.push(e.data);
          if (e.data && e.data.id === 0 && e.data.size && state.canvas) {
            state.canvas.style.width = Math.ceil(e.data.size[0]) + "px";
            state.canvas.style.height = Math.ceil(e.data.size[1]) + "px";
          }
        }
      });
      worker.addEventListener("error", function (e) {   // its script failed before pyapp listens: remember it
        state.error = String((e && e.message) || "the compute worker's script failed to load");
      });
      var hint = window.mhsaWorkerRuntime;
      // options.debug: the worker runs state.call("python", ...) only for a page that set window.mhsaDebug
      worker.postMessage({type: "boot", indexURL: (hint && hint.indexURL) || PYODIDE, proxyFetch: true,
                          pycache: (hint && hint.pycache) || "",
                          config: new URL(opts.config || "./pyscript.toml", base).href, interrupt: shared,
                          options: {debug: window.mhsaDebug === true}});
      handCanvas(worker, state);
      if (state.transferred) {
        // The first view at once, before the page's Python is up: the worker computes the URL's state at the
        // stage's width and draws it into the canvas (id 0; pyapp's own requests, from id 1, supersede it).
        var stage = document.getElementById("stage");
        worker.postMessage({type: "compute", id: 0, query: location.search || "", bitmap: true, view: "",
                            width: Math.max((stage ? stage.clientWidth : 0) - 2, 300),
                            dpr: window.devicePixelRatio || 1});
      }
    };
    // after the deferred / module scripts ran (the test harness's bootstrap sets window.mhsaWorkerRuntime)
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }

  // WebKit's engine, by its user agent (no feature tells an engine's crash): "AppleWebKit/" without Chromium's
  // "Chrome/" (Chrome on iOS says "CriOS/" and runs JavaScriptCore too).
  function javascriptCore() {
    var ua = navigator.userAgent || "";
    return /AppleWebKit\//.test(ua) && !/(Chrome|Chromium|HeadlessChrome)\//.test(ua);
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
