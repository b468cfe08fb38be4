// Test bootstrap: served by the browser tests IN PLACE OF the PyScript CDN module (see conftest.py).
// It does what PyScript does for web/index.html, with Pyodide 0.17.1 + numpy 1.17.5 from the local npm
// package: read the page's <script type="py"> config (the small TOML subset pyscript.toml uses), load the
// packages, write every [files] entry into Pyodide's file system, then fetch and run the page's entry
// script unmodified. It reports the py:progress stages PyScript 0.7 reports, in the same order (interpreter,
// files, then packages).
const INDEX_URL = new URL("/node_modules/@pyodide/pyodide/dist/", location.href).href;
// The compute worker (web/compute-worker.js, started by web/coi.js or pyapp/browser/worker_client.py) boots
// the same Pyodide 0.17.1 as this page instead of PyScript's CDN one.
// pycache: the runtime's standard library and numpy compiled by that runtime (tests/browser/pycache.py makes it
// at the start of a test session; web/pycache.js writes it), as modern Pyodide ships them: the page and its
// worker then compile only pyapp's own modules, as on the published site.
const PYCACHE_URL = new URL("/tests/browser/.generated/pyodide-0.17.1.pyc.bin", location.href).href;
globalThis.mhsaWorkerRuntime = {indexURL: INDEX_URL, version: "0.17.1", type: "classic", pycache: PYCACHE_URL};
// Tests read the worker's own Python (web/coi.js's mhsaCompute.call("python")), which the worker runs only for a
// page that says mhsaDebug; a test that sets it false first sees the production refusal.
if (globalThis.mhsaDebug === undefined) globalThis.mhsaDebug = true;

function progress(detail) {
  dispatchEvent(new CustomEvent("py:progress", {detail}));
}

// The TOML subset of pyscript.toml: `key = "string"`, `key = ["a", "b"]`, `[table]` and
// `"quoted key" = "string"` inside a table. Anything else is an error (so the test notices).
export function parseToml(text) {
  const out = {};
  let table = out;
  const str = (s) => JSON.parse(s);
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+|\s+$/g, "");
    if (!line || line.startsWith("#")) continue;
    let m = line.match(/^\[([A-Za-z0-9_.-]+)\]$/);
    if (m) { table = out[m[1]] = out[m[1]] || {}; continue; }
    m = line.match(/^("(?:[^"\\]|\\.)*"|[A-Za-z0-9_-]+)\s*=\s*(.+)$/);
    if (!m) throw new SyntaxError("unsupported TOML line: " + line);
    const key = m[1].startsWith('"') ? str(m[1]) : m[1];
    const value = m[2].replace(/\s+#.*$/, "");
    if (value.startsWith("[")) table[key] = JSON.parse(value);
    else if (value.startsWith('"')) table[key] = str(value);
    else if (value === "true" || value === "false") table[key] = value === "true";
    else if (/^-?\d+(\.\d+)?$/.test(value)) table[key] = Number(value);
    else throw new SyntaxError("unsupported TOML value: " + line);
  }
  return out;
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error("could not load " + src));
    document.head.appendChild(s);
  });
}

async function boot() {
  const tag = document.querySelector('script[type="py"]');
  if (!tag) throw new Error("no <script type=py> in the page");
  const configUrl = new URL(tag.getAttribute("config"), location.href);
  const config = parseToml(await (await fetch(configUrl)).text());
  progress("Loading Pyodide");
  await loadScript(new URL("pycache.js", location.href).href);       // web/pycache.js, beside the page
  const pycache = globalThis.mhsaFetchPycache(PYCACHE_URL);     // in flight while the interpreter loads
  await loadScript(INDEX_URL + "pyodide.js");
  progress("Loading interpreter");
  const pyodide = await globalThis.loadPyodide({indexURL: INDEX_URL});
  globalThis.pyodide = pyodide;
  progress("Loaded interpreter");
  // Files: fetched relative to the config file, written relative to the working directory (as PyScript).
  const files = Object.entries(config.files || {}).map(
    ([src, dest]) => [new URL(src, configUrl).href, dest]);
  progress("Loading files");
  // all at once, as PyScript does (polyscript's fetchFiles: Promise.all), then written in order
  const texts = await Promise.all(files.map(async ([url]) => {
    const resp = await fetch(url);
    if (!resp.ok) throw new Error("could not fetch " + url + ": HTTP " + resp.status);
    return resp.text();
  }));
  const FS = pyodide.FS || pyodide._module.FS;       // 0.17.1 keeps it on _module
  files.forEach(([, dest], i) => {
    const parts = dest.split("/");
    for (let j = 1; j < parts.length; j++) {
      try { FS.mkdir(parts.slice(0, j).join("/")); } catch (e) { /* exists */ }
    }
    FS.writeFile(dest, texts[i]);
  });
  pyodide.runPython("import os, sys\nif os.getcwd() not in sys.path: sys.path.insert(0, os.getcwd())");
  progress("Loaded files");
  if (config.packages && config.packages.length) await pyodide.loadPackage(config.packages);
  const compiled = await pycache;
  if (compiled) globalThis.mhsaWritePycache(FS, compiled);      // before main.py's first import
  progress("Loaded Pyodide");
  const entry = new URL(tag.getAttribute("src"), location.href);
  const code = await (await fetch(entry)).text();
  await pyodide.runPythonAsync(code);
  dispatchEvent(new Event("py:all-done"));
}

boot().catch((err) => {
  console.error("bootstrap failed:", err);
  document.documentElement.dataset.bootstrapError = String(err && err.message || err);
  dispatchEvent(new CustomEvent("py:error", {detail: err}));
});
