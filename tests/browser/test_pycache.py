"""The harness runtime's compiled standard library (tests/browser/pycache.py, web/pycache.js): what the bundle
holds, that the page and its compute worker import from it, that a pyc which does not match its source is
never what runs, and that the app boots the same without the bundle."""

from __future__ import annotations

import json
import struct

import pycache
import pytest
from helpers import report, wait_js

# Python for the page's or the worker's interpreter: which modules were imported from a pyc (sys.dont_write_bytecode
# is set in Pyodide 0.17, so a pyc on disk came from the bundle); then each bundled module's code object as an import
# gets it (SourceFileLoader.get_code, nothing executed) with the compiler watched: none may be compiled from source.
_USED = r"""
import importlib.util, os, sys
from importlib import _bootstrap_external as ext
def _cached(m):
    f = getattr(m, "__file__", None) or ""
    return f.endswith(".py") and os.path.exists(importlib.util.cache_from_source(f))
mods = [m for m in list(sys.modules.values()) if (getattr(m, "__file__", None) or "").endswith(".py")]
numpy_mods = [m for m in mods if "/site-packages/numpy/" in m.__file__]
compiled = []
real = ext.SourceLoader.source_to_code
def watch(self, data, path, *, _optimize=-1):
    compiled.append(path)
    return real(self, data, path, _optimize=_optimize)
ext.SourceLoader.source_to_code = watch
try:
    for pyc in BUNDLED:
        ext.SourceFileLoader("bundle_probe", importlib.util.source_from_cache(pyc)).get_code("bundle_probe")
finally:
    ext.SourceLoader.source_to_code = real
out = {"dont_write": sys.dont_write_bytecode, "numpy": len(numpy_mods),
       "numpy_cached": sum(_cached(m) for m in numpy_mods),
       "pyapp_cached": sum(_cached(m) for m in mods if "pyapp/" in m.__file__),
       "checked": len(BUNDLED), "compiled": compiled}
"""


def _module_names(paths):
    """The dotted module names of pyc paths in /lib/python3.8."""
    names = []
    for path in paths:
        folder, leaf = path.split("/__pycache__/")
        mod = leaf.split(".cpython-38.pyc")[0]
        rel = folder[len("/lib/python3.8"):].replace("/site-packages/", "/", 1)
        parts = [p for p in rel.split("/") if p] + ([] if mod == "__init__" else [mod])
        names.append(".".join(parts))
    return sorted(names)


def _source(bundled) -> str:
    return "BUNDLED = %s\n%s" % (json.dumps(bundled), _USED)


def _bundled():
    return sorted(pycache.parse(pycache.BUNDLE.read_bytes()))


def test_the_bundle_holds_checked_pycs_of_the_runtimes_own_files(pycache_bundle):
    blob = pycache.BUNDLE.read_bytes()
    files = pycache.parse(blob)
    assert len(files) == pycache_bundle["files"] >= 100 and pycache_bundle["bytes"] == len(blob)
    magic = bytes.fromhex(pycache_bundle["magic"])
    assert magic[2:] == b"\r\n"
    for path, data in files.items():
        assert path.startswith("/lib/python3.8/") and "/__pycache__/" in path and path.endswith(".cpython-38.pyc")
        assert "pyapp" not in path
        assert data[:4] == magic, path
        assert int.from_bytes(data[4:8], "little") == 0b11, path       # PEP 552: hash-based, checked
    names = set(_module_names(files))
    assert {"numpy", "numpy.core.numeric", "numpy.lib.function_base", "datetime"} <= names, sorted(names)[:20]
    for bad in (b"MHSAPYC2" + blob[8:], blob + b"\0", blob[:-1]):
        with pytest.raises((ValueError, struct.error)):
            pycache.parse(bad)


def test_the_page_and_its_worker_import_the_runtime_compiled(app_page):
    """numpy's modules come from their pycs in both interpreters, pyapp's from source (as on the published site),
    and every pyc of the bundle matches its source in the runtime (an import would not compile any of them)."""
    src = _source(_bundled())
    page = json.loads(app_page.evaluate("(src) => pyodide.runPython(src + '\\nimport json\\njson.dumps(out)')", src))
    worker = app_page.evaluate("(src) => window.mhsaCompute.call('python', {source: src, expr: 'out'})", src)["value"]
    for got in (page, worker):
        assert got["dont_write"] is True and got["numpy"] >= 80, got
        assert got["numpy_cached"] == got["numpy"], got
        assert got["pyapp_cached"] == 0, got
        assert got["checked"] >= 100 and got["compiled"] == [], got


def test_a_pyc_that_does_not_match_its_source_is_not_what_runs(pyodide, server):
    """A bundle whose pyc was compiled from another text of its file: web/pycache.js writes it, the import ignores
    it (checked hash) and the source runs."""
    pyodide.page.evaluate("""(src) => new Promise((ok, bad) => { const s = document.createElement("script");
        s.src = src; s.onload = ok; s.onerror = bad; document.head.appendChild(s); })""", server.url("/web/pycache.js"))
    got = pyodide.run(r"""
import importlib.util, os, py_compile, struct, sys, js
from pyapp.browser.compat import to_uint8array
import numpy as np
os.makedirs("/tmp/pyc_case", exist_ok=True)
src = "/tmp/pyc_case/answer.py"
with open(src, "w") as fh:
    fh.write("VALUE = 'old'\n")
py_compile.compile(src, cfile="/tmp/old.pyc", dfile=src, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
with open(src, "w") as fh:
    fh.write("VALUE = 'new'\n")                   # the source changed after its pyc was made
pyc = open("/tmp/old.pyc", "rb").read()
path = importlib.util.cache_from_source(src).encode()
blob = b"MHSAPYC1" + struct.pack("<II", 1, len(path)) + path + struct.pack("<I", len(pyc)) + pyc
arr = to_uint8array(np.frombuffer(blob, dtype=np.uint8))
written = js.mhsaWritePycache(js.pyodide._module.FS, arr.buffer)
sys.path.insert(0, "/tmp/pyc_case")
import answer
[written, open(importlib.util.cache_from_source(src), "rb").read() == pyc, answer.VALUE]
""")
    assert got == [1, True, "new"]


def test_the_app_boots_the_same_without_the_bundle(new_page, server):
    """No bundle (HTTP 404): the page and the worker compile the runtime's sources themselves; the app is the same."""
    page, guard = new_page("pyodide", service_workers="block")       # (a service worker's fetches skip routes)
    page.route("**/pyodide-0.17.1.pyc.bin", lambda r: r.fulfill(status=404, body="gone"))
    page.goto(server.url("/web/index.html"))
    wait_js(page, "() => document.body.dataset.state === 'ready'", timeout=180_000)
    wait_js(page, "() => JSON.parse(document.body.dataset.report || '{}').frame === 'view'")
    assert report(page)["tokens"][0] == "[CLS]"
    src = _source([])
    mine = json.loads(page.evaluate("(src) => pyodide.runPython(src + '\\nimport json\\njson.dumps(out)')", src))
    worker = page.evaluate("(src) => window.mhsaCompute.call('python', {source: src, expr: 'out'})", src)["value"]
    for got in (mine, worker):
        assert got["numpy"] >= 80 and got["numpy_cached"] == 0, got
    assert any("no compiled standard library" in m for m in guard.console), guard.console[-8:]
