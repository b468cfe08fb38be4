// The compute worker: Pyodide + numpy + pyapp in a dedicated Web Worker, so the page's main thread never
// runs the model. The same file runs as a classic worker (Pyodide 0.17.1: importScripts) or as a module
// worker (modern Pyodide: import of pyodide.mjs); it has no import / export statement for that reason.
//
// Protocol (all messages are plain objects; see pyapp/browser/worker_client.py for the page side):
//   page -> worker  {type: "boot", indexURL, config, interrupt?: SharedArrayBuffer, pycache?: URL}   once, first
//                   {type: "canvas", canvas: OffscreenCanvas}   the page's canvas, transferred (optional)
//                   {type: "compute", id, ...}   {type: "call", id, ...}   forwarded to Python (entry.receive)
//   worker -> page  {type: "boot-progress", stage}  {type: "ready", info}  {type: "boot-error", message}
//                   {type: "lost", message}   Python can no longer take messages (see deliver): the page stops
//                   using this worker and computes on its main thread
//                   {type: "progress" | "partial" | "result" | "superseded" | "error", id, json, buffers, bitmap}
// Python files: the [files] table of the page's pyscript.toml (the same files PyScript writes on the main
// thread), fetched relative to that file and written into the worker's own file system.
"use strict";

var pending = [];          // messages that arrived before Python was ready
var receive = null;        // Python's entry.receive (a proxy) once booted
var booted = false;
// the matrix products' helper thread (pyapp/browser/gemm_threads.py starts it when the page is isolated)
self.mhsaGemmThread = new URL("./gemm-thread.js", self.location.href).href;

function post(msg, transfer) {
  self.postMessage(msg, transfer || []);
}

// Called from Python (pyapp/worker/entry.py): one message, its typed arrays transferred, not copied.
self.mhsaPost = function (type, id, json, buffers, bitmap, size) {
  var list = [];
  var bufs = [];
  var n = buffers ? buffers.length : 0;
  for (var i = 0; i < n; i++) {
    bufs.push(buffers[i]);
    list.push(buffers[i].buffer);
  }
  var msg = {type: type, id: id, json: json, buffers: bufs};
  if (bitmap) { msg.bitmap = bitmap; list.push(bitmap); }
  if (size) msg.size = [size[0], size[1]];   // the CSS size of a frame drawn into the page's canvas
  post(msg, list);
};

// The TOML subset pyscript.toml uses (as tests/browser/bootstrap.js): strings, string arrays, tables.
function parseToml(text) {
  var out = {};
  var table = out;
  var lines = text.split(/\r?\n/);
  for (var i = 0; i < lines.length; i++) {
    var line = lines[i].replace(/^\s+|\s+$/g, "");
    if (!line || line.charAt(0) === "#") continue;
    var m = line.match(/^\[([A-Za-z0-9_.-]+)\]$/);
    if (m) { table = out[m[1]] = out[m[1]] || {}; continue; }
    m = line.match(/^("(?:[^"\\]|\\.)*"|[A-Za-z0-9_-]+)\s*=\s*(.+)$/);
    if (!m) throw new SyntaxError("unsupported TOML line: " + line);
    var key = m[1].charAt(0) === '"' ? JSON.parse(m[1]) : m[1];
    var value = m[2].replace(/\s+#.*$/, "");
    if (value.charAt(0) === "[" || value.charAt(0) === '"') table[key] = JSON.parse(value);
    else if (value === "true" || value === "false") table[key] = value === "true";
    else if (/^-?\d+(\.\d+)?$/.test(value)) table[key] = Number(value);
    else throw new SyntaxError("unsupported TOML value: " + line);
  }
  return out;
}

async function fetchText(url) {
  var resp = await fetch(url);
  if (!resp.ok) throw new Error("could not fetch " + url + ": HTTP " + resp.status);
  return resp.text();
}

// Pyodide's loader. A classic worker (the page's Pyodide 0.17.1 in the test harness) takes its pyodide.js with
// importScripts; modern Pyodide refuses classic workers ("Classic web workers are not supported"), so the page
// starts this same script as a module worker for it ({type: "module"}, see worker_client.worker_type), where
// importScripts throws a TypeError and pyodide.mjs is imported instead.
async function runtime(indexURL) {
  try {
    importScripts(indexURL + "pyodide.js");
    return self.loadPyodide;
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
  }
  var mod = await import(indexURL + "pyodide.mjs");
  return mod.loadPyodide;
}

// The runtime's compiled standard library and numpy (web/pycache.js), when the page names a bundle for it
// (mhsaWorkerRuntime.pycache: the test harness's Pyodide 0.17.1); a Promise of its bytes or of null.
async function compiledStdlib(url) {
  if (!url) return null;
  try {
    importScripts(new URL("./pycache.js", self.location.href).href);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    await import(new URL("./pycache.js", self.location.href).href);
  }
  return self.mhsaFetchPycache(url);
}

async function boot(msg) {
  var t0 = performance.now();
  var times = {};
  function stage(name) {
    times[name] = Math.round(performance.now() - t0);
    post({type: "boot-progress", stage: name, ms: times[name]});
  }
  var configUrl = new URL(msg.config || "./pyscript.toml", self.location.href);
  var configText = fetchText(configUrl.href);         // in flight while the interpreter loads
  var pycache = compiledStdlib(msg.pycache);          // likewise (only for a runtime that ships sources)
  stage("Loading Pyodide");
  var loadPyodide = await runtime(msg.indexURL);
  stage("Loading interpreter");
  var pyodide = await loadPyodide({indexURL: msg.indexURL});
  self.pyodide = pyodide;                             // pyapp.browser.compat.emscripten_module() falls back on it
  stage("Loaded interpreter");
  var config = parseToml(await configText);
  var files = Object.entries(config.files || {}).map(function (e) {
    return [new URL(e[0], configUrl).href, e[1]];
  });
  var packages = pyodide.loadPackage(config.packages || []);   // numpy downloads while the files come in
  stage("Loading files");
  var texts = await Promise.all(files.map(function (f) { return fetchText(f[0]); }));
  var FS = pyodide.FS || pyodide._module.FS;       // 0.17.1 keeps it on _module
  for (var i = 0; i < files.length; i++) {
    var dest = files[i][1];
    var parts = dest.split("/");
    var dir = "";
    for (var j = 0; j < parts.length - 1; j++) {
      dir = dir ? dir + "/" + parts[j] : parts[j];
      try { FS.mkdir(dir); } catch (e) { /* exists */ }
    }
    FS.writeFile(dest, texts[i]);
  }
  stage("Loaded files");
  await packages;
  var compiled = await pycache;
  if (compiled) self.mhsaWritePycache(FS, compiled);  // before the first import of numpy or pyapp
  stage("Loaded Pyodide");
  pyodide.runPython("import os, sys\nif os.getcwd() not in sys.path: sys.path.insert(0, os.getcwd())");
  var entry = pyodide.runPython("import pyapp.worker.entry as _entry\n_entry");
  var info = entry.start(msg.interrupt || null, msg.options || null);
  receive = entry.receive;
  var parsed = JSON.parse(info);
  stage("Started");
  parsed.boot_ms = times;
  booted = true;
  post({type: "ready", info: parsed});
  var queued = pending;
  pending = [];
  for (var k = 0; k < queued.length; k++) deliver(queued[k]);
}

// One message to Python. entry.receive only queues it (a failing request becomes an error frame in Python), so
// a throw here means the runtime itself is gone (a Pyodide fatal error makes every later call throw): say so,
// once, and the page falls back to its main-thread loop instead of waiting for answers that never come.
var lost = false;
function deliver(msg) {
  if (lost) return;
  try {
    receive(msg);
  } catch (err) {
    lost = true;
    post({type: "lost", message: String(err && err.message || err)});
  }
}

// Model files through the page (web/coi.js's proxy, when the boot message says proxyFetch): a Response whose
// body streams the chunks the page sends; its AbortSignal cancels the page's request.
var proxied = {};
var nextFid = 0;
var directFetch = self.fetch.bind(self);

function proxyFetch(input, options) {
  var url = new URL(String(input), self.location.href).href;
  if (url.indexOf("/models/") < 0) return directFetch(input, options);
  var signal = options && options.signal;
  return new Promise(function (resolve, reject) {
    var fid = ++nextFid;
    var entry = proxied[fid] = {resolve: resolve, reject: reject, ctl: null, headed: false};
    var body = new ReadableStream({start: function (c) { entry.ctl = c; }});
    entry.body = body;
    function abort() {
      if (!proxied[fid]) return;
      delete proxied[fid];
      post({type: "fetch-abort", fid: fid});
      var err = new DOMException("The operation was aborted.", "AbortError");
      if (entry.headed) entry.ctl.error(err); else reject(err);
    }
    if (signal) {
      if (signal.aborted) { abort(); return; }
      signal.addEventListener("abort", abort);
    }
    post({type: "fetch", fid: fid, url: url});
  });
}

function onFetchMessage(m) {
  var entry = proxied[m.fid];
  if (!entry) return;
  if (m.type === "fetch-head") {
    entry.headed = true;
    entry.resolve(new Response(entry.body, {status: m.status, statusText: m.statusText, headers: m.headers}));
  } else if (m.type === "fetch-chunk") {
    entry.ctl.enqueue(m.chunk);
  } else if (m.type === "fetch-end") {
    delete proxied[m.fid];
    entry.ctl.close();
  } else if (m.type === "fetch-error") {
    delete proxied[m.fid];
    var err = new TypeError(m.message || "Failed to fetch");
    if (entry.headed) entry.ctl.error(err); else entry.reject(err);
  }
}

self.onmessage = function (e) {
  var msg = e.data || {};
  if (typeof msg.type === "string" && msg.type.indexOf("fetch-") === 0) { onFetchMessage(msg); return; }
  if (msg.type === "canvas") {         // the page's canvas (transferControlToOffscreen): the worker draws in it
    self.mhsaCanvas = msg.canvas;
    return;
  }
  if (msg.type === "boot") {
    if (msg.proxyFetch) self.fetch = proxyFetch;
    if (booted || self.pyodide) return;
    boot(msg).catch(function (err) {
      post({type: "boot-error", message: String(err && err.message || err)});
    });
    return;
  }
  if (!receive) { pending.push(msg); return; }
  deliver(msg);
};
