"""The harness runtime's bytecode: Pyodide 0.17.1 ships its standard library and numpy as ``.py`` sources only,
so every interpreter compiles them again at each boot (~270 ms of CPU for what the app imports, in the page and
again in its compute worker). Modern Pyodide, which the published site loads, ships them compiled. This module
compiles them once, in Pyodide 0.17.1 itself (its own magic number and flags), into one bundle that
``web/pycache.js`` writes into an interpreter's ``__pycache__`` folders before the app's first import
(``tests/browser/bootstrap.js`` for the page, ``web/compute-worker.js`` for the worker, given
``mhsaWorkerRuntime.pycache``).

* Only the runtime's own files (``/lib/python3.8``: the standard library and numpy), never ``pyapp``: the app's
  modules are compiled at boot as on the published site.
* Checked-hash pycs (PEP 552, flags 0b11): the importer hashes the source and compiles it again when the hash
  differs, so a bundle that does not match its runtime can cost time but never change what runs.
* Which modules: every module imported by ``import numpy`` and by each module ``pyapp`` imports anywhere
  (top level or inside a function), found by reading pyapp's sources; those an interpreter had already
  imported when it finished booting are left out.

Bundle layout (little-endian): ``b"MHSAPYC1"``, uint32 count, then per file uint32 path length, the UTF-8 path,
uint32 data length, the pyc bytes.
"""

from __future__ import annotations

import ast
import base64
import json
import struct
from pathlib import Path
from typing import Dict, List

from helpers import boot_blank_pyodide

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "tests" / "browser" / ".generated" / "pyodide-0.17.1.pyc.bin"
MAGIC = b"MHSAPYC1"


def pyapp_imports(root: Path = ROOT) -> List[str]:
    """Every absolute module name pyapp's sources import, at any depth (relative imports are pyapp's own)."""
    names = set()
    for path in sorted((root / "pyapp").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return sorted(n for n in names if n.split(".")[0] not in ("pyapp", "js", "pyodide", "__future__"))


# Runs in Pyodide 0.17.1 (top-level await): the pycs of what `import numpy` and pyapp's imports load.
_COMPILE = r"""
import sys, importlib, importlib.util, py_compile, base64, struct, json
before = set(sys.modules)
missing = []
for name in ["numpy"] + json.loads(%r):
    try:
        importlib.import_module(name)
    except ImportError:
        missing.append(name)        # not in this runtime (e.g. only under CPython): nothing to compile
out = [b"MHSAPYC1", b""]
count = 0
for name in sorted(set(sys.modules) - before):
    src = getattr(sys.modules[name], "__file__", None) or ""
    if not (src.startswith("/lib/python3.8/") and src.endswith(".py")):
        continue
    cfile = importlib.util.cache_from_source(src)
    py_compile.compile(src, cfile="/tmp/one.pyc", dfile=src, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    with open("/tmp/one.pyc", "rb") as fh:
        data = fh.read()
    path = cfile.encode("utf-8")
    out += [struct.pack("<I", len(path)), path, struct.pack("<I", len(data)), data]
    count += 1
out[1] = struct.pack("<I", count)
json.dumps({"bundle": base64.b64encode(b"".join(out)).decode("ascii"), "missing": missing,
            "magic": importlib.util.MAGIC_NUMBER.hex()})
"""


def parse(blob: bytes) -> Dict[str, bytes]:
    """The bundle's files, path -> pyc bytes (ValueError when it is not a bundle)."""
    if blob[:8] != MAGIC:
        raise ValueError("not a pyc bundle")
    (count,), off, files = struct.unpack_from("<I", blob, 8), 12, {}
    for _ in range(count):
        (n,) = struct.unpack_from("<I", blob, off)
        path = blob[off + 4:off + 4 + n].decode("utf-8")
        off += 4 + n
        (n,) = struct.unpack_from("<I", blob, off)
        files[path] = blob[off + 4:off + 4 + n]
        off += 4 + n
    if off != len(blob):
        raise ValueError("trailing bytes in the pyc bundle")
    return files


def build(browser, origin: str, dest: Path = BUNDLE) -> Dict[str, object]:
    """Compile the bundle in a fresh page of `browser` served from `origin` (the repo root) and write `dest`."""
    context = browser.new_context()
    try:
        page = context.new_page()
        boot_blank_pyodide(page, origin, "pycache.html")
        out = page.evaluate("(code) => pyodide.runPythonAsync(code)", _COMPILE % json.dumps(pyapp_imports()))
    finally:
        context.close()
    result = json.loads(out)
    blob = base64.b64decode(result.pop("bundle"))
    files = parse(blob)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_bytes(blob)
    tmp.replace(dest)
    result.update(files=len(files), bytes=len(blob))
    return result
