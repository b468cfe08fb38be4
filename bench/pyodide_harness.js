// Boots Pyodide 0.17.1 + numpy 1.17.5 from the local npm package; the driver (run_benchmark.py /
// pyodide_micro.py) then runs Python through window.py(code) and reads results back as JSON.
const status = document.getElementById("status");
// Python in a dedicated worker (bench/pyodide_worker.js), as the app computes: window.startWorker() boots it
// (resolves to {boot_ms, isolated}), window.pyw(code) runs code there and resolves to its value as a string.
let worker = null;
let nextId = 0;
const waiting = {};
window.pyw = (code) => new Promise((ok, bad) => {
  const id = ++nextId;
  waiting[id] = [ok, bad];
  worker.postMessage({id, code});
});
window.startWorker = () => {
  worker = new Worker("pyodide_worker.js");
  worker.onmessage = (e) => {
    const w = waiting[e.data.id];
    delete waiting[e.data.id];
    if (e.data.error) w[1](new Error(e.data.error)); else w[0](e.data.result);
  };
  return window.pyw(null).then((r) => JSON.parse(r));
};
const indexURL = new URL("../node_modules/@pyodide/pyodide/dist/", location.href).href;
try {
  const t0 = performance.now();
  window.pyodide = await loadPyodide({ indexURL });
  await window.pyodide.loadPackage("numpy");
  window.BOOT_MS = performance.now() - t0;
  window.py = async (code) => {
    const r = await window.pyodide.runPythonAsync(code);
    return typeof r === "string" ? r : JSON.stringify(r);
  };
  status.textContent = "Pyodide " + window.pyodide.version + " ready in " + window.BOOT_MS.toFixed(0) + " ms";
  window.PY_READY = true;
} catch (e) {
  window.PY_ERROR = String(e && e.stack || e);
  status.textContent = window.PY_ERROR;
}
