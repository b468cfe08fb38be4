// Boots Pyodide 0.17.1 + numpy 1.17.5 from the local npm package; the driver (run_benchmark.py /
// pyodide_micro.py) then runs Python through window.py(code) and reads results back as JSON.
const status = document.getElementById("status");
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
