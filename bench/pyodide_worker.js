// Pyodide 0.17.1 + numpy 1.17.5 in a dedicated worker, for the benchmark's "ours" figures measured where the
// app computes (web/compute-worker.js: a worker, the SIMD kernel and, when cross-origin isolated, its second
// thread web/gemm-thread.js). bench/pyodide_harness.js starts it (window.startWorker()) and runs Python in it
// through window.pyw(code): {id, code} -> {id, result} (the value as a string, JSON when not one) or {id, error}.
"use strict";
var indexURL = new URL("../node_modules/@pyodide/pyodide/dist/", self.location.href).href;
importScripts(indexURL + "pyodide.js");
var booted = (async function () {
  var t0 = performance.now();
  self.pyodide = await loadPyodide({indexURL: indexURL});
  await self.pyodide.loadPackage("numpy");
  return performance.now() - t0;
})();

self.onmessage = async function (e) {
  var m = e.data || {};
  try {
    var bootMs = await booted;
    if (m.code === null) {
      self.postMessage({id: m.id, result: JSON.stringify({boot_ms: bootMs, isolated: self.crossOriginIsolated === true})});
      return;
    }
    var r = await self.pyodide.runPythonAsync(m.code);
    self.postMessage({id: m.id, result: typeof r === "string" ? r : JSON.stringify(r)});
  } catch (err) {
    self.postMessage({id: m.id, error: String(err && err.stack || err)});
  }
};
