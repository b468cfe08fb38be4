"""The WebAssembly SIMD GEMM behind ``numerics.matmul_t`` in the browser (pyapp/browser/wasm_gemm.py).

The CPython tests never reach that kernel, so here: in Pyodide 0.17.1 it gives numpy's product to float32
rounding on random and on MiniLM's shapes, keeps weights uploaded once (and forgets them with the array), and
the real app installs it at start-up and still shows CPython's attentions on all six layers.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import wait_js

pytestmark = pytest.mark.browser

# (n, in, out): random shapes (rows that are no multiple of the 4-row tile, odd inner sizes) and MiniLM's.
SHAPES = [(1, 384, 384), (5, 7, 8), (3, 64, 24), (13, 384, 384), (13, 384, 1536), (13, 1536, 384),
          (127, 384, 1536), (128, 1536, 384), (61, 100, 200)]

_KERNEL_VS_NUMPY = """
import gc, json
import numpy as np
from pyapp.browser import wasm_gemm
from pyapp.core import numerics

gemm = wasm_gemm.install()
out = {"installed": gemm is not None, "backend": numerics.matmul_backend() is gemm, "shapes": []}
rng = np.random.RandomState(7)
for n, k, m in json.loads(%r):
    x = rng.standard_normal((n, k)).astype(np.float32)
    w = (rng.standard_normal((m, k)) / np.sqrt(k)).astype(np.float32)
    got = gemm.matmul_t(x, w)
    again = gemm.matmul_t(x[::-1].copy(), w)                         # the same weight: no second upload
    exact = x.astype(np.float64) @ w.T.astype(np.float64)
    scale = np.abs(x).astype(np.float64) @ np.abs(w).T.astype(np.float64)  # sum |x||w|: the rounding's scale
    ref = np.einsum("ij,jk->ik", x, numerics.transposed(w))
    out["shapes"].append({
        "shape": [n, k, m], "dtype": str(got.dtype), "out": list(got.shape),
        "err_exact": float(np.max(np.abs(got - exact) / scale)),
        "err_numpy_rel": float(np.max(np.abs(got - ref)) / np.max(np.abs(ref))),
        "numpy_err_exact": float(np.max(np.abs(ref - exact) / scale)),
        "again": bool(np.array_equal(again, got[::-1])),
        "via_matmul_t": bool(np.array_equal(numerics.matmul_t(x, w), got)) if m %% 8 == 0 and n * k * m >= wasm_gemm.MIN_WORK else None,
    })
out["batched"] = []
for h, n, k, p in json.loads(%r):                                     # stacks: Q K^T, probs @ V, odd sizes
    a = rng.standard_normal((h, n, k)).astype(np.float32)
    b = rng.standard_normal((h, p, k)).astype(np.float32).transpose(0, 2, 1)   # a transposed view, like K^T
    got = gemm.batched_matmul(a, b)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    scale = np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
    out["batched"].append({"shape": [h, n, k, p], "out": list(got.shape), "dtype": str(got.dtype),
                           "err_exact": float(np.max(np.abs(got - exact) / scale)),
                           "via_numerics": bool(np.array_equal(numerics.batched_matmul(a, b), got))
                           if h * n * k * p >= wasm_gemm.MIN_BATCHED_WORK else None})
held = len(gemm._weights)
del w
gc.collect()
out["weights_held_before_after"] = [held, len(gemm._weights)]
out["failures"] = gemm.failures
json.dumps(out)
"""
BATCHED = [(12, 13, 32, 13), (12, 128, 32, 128), (12, 128, 128, 32), (3, 5, 7, 9), (12, 200, 32, 200)]


def test_kernel_matches_numpy(pyodide):
    got = json.loads(pyodide.run(_KERNEL_VS_NUMPY % (json.dumps(SHAPES), json.dumps(BATCHED))))
    assert got["installed"] and got["backend"], "Chromium runs WebAssembly SIMD: the kernel must be installed"
    for row in got["shapes"]:
        assert row["dtype"] == "float32" and row["out"] == [row["shape"][0], row["shape"][2]], row
        # float32 sums of k terms: error <= ~k * 2^-24 relative to sum |x||w|, in practice far less
        assert row["err_exact"] < 2e-6, row
        assert row["err_numpy_rel"] < 2e-6, row
        assert row["again"], row
        assert row["via_matmul_t"] in (True, None), row
    for row in got["batched"]:
        h, n, _, p = row["shape"]
        assert row["dtype"] == "float32" and row["out"] == [h, n, p], row
        assert row["err_exact"] < 2e-6 and row["via_numerics"] in (True, None), row
    assert got["weights_held_before_after"][1] == got["weights_held_before_after"][0] - 1  # w forgotten
    assert got["failures"] == 0


def test_kernel_declines_what_it_cannot_do(pyodide):
    """Widths that are no multiple of 8 and tiny products go to numpy (None from the backends)."""
    got = pyodide.run("""
import numpy as np
from pyapp.browser import wasm_gemm
gemm = wasm_gemm.install()
x = np.ones((20, 64), np.float32)
s = np.ones((2, 4, 4), np.float32)
[gemm(x, np.ones((30, 64), np.float32)) is None, gemm(x[:1, :8], np.ones((8, 8), np.float32)) is None,
 gemm(x, np.ones((32, 64), np.float32)) is not None, gemm.batched(s, s) is None, gemm.batched(s, s[:, :3]) is None]
""")
    assert got == [True, True, True, True, True]


def _cpython_attentions(text: str):
    """All six layers' attentions (T = 1) of the shipped MiniLM files, computed by the core in CPython."""
    from pyapp.core.files import default_models_dir, load_local_catalogue
    from pyapp.core.sources import make_source
    from pyapp.core.store import WeightStore
    from pyapp.core.tokenizer import WordPieceTokenizer

    root = default_models_dir()
    cat = load_local_catalogue(root)
    entry = cat.get("minilm-l6")
    store = WeightStore(cat)
    with open(root + "/" + entry.tokenizer_file().path, "rb") as fh:
        tok = WordPieceTokenizer.from_json(fh.read())
    ids = tok.encode(text).ids
    for f in store.missing(entry.id, ids, layer=5, parts=("qk", "vo", "ffn"), tokenizer=True):
        with open(root + "/" + f.path, "rb") as fh:
            store.add(f.path, fh.read())
    src = make_source(entry, tok, store)
    return ids, dict(src.encoder.attentions(ids, range(6)))


def test_app_uses_kernel_and_matches_cpython(open_app):
    """The real page installs the kernel at start-up; its attentions on all layers are CPython's to 1e-5."""
    page, guard = open_app(query="?tab=stats")  # a view of every layer: the app computes all six
    wait_js(page, "() => JSON.parse(document.body.dataset.report || '{}').layers_ready?.length === 6",
            timeout=120_000)
    got = json.loads(page.evaluate("""() => pyodide.runPython(`
import json
import numpy as np
from js import window
from pyapp.core import numerics
from pyapp.browser.wasm_gemm import WasmGemm
app = window.mhsaApp
backend = numerics.matmul_backend()
att = {int(l): np.asarray(a, dtype=np.float64).tolist() for l, a in app.ctx.layer_attentions().items()}
json.dumps({"wasm": isinstance(backend, WasmGemm), "calls": backend.calls if backend else 0,
            "text": app.state.text, "att": att})
`)"""))
    guard.check()
    page.context.close()
    assert got["wasm"] and got["calls"] > 0
    ids, want = _cpython_attentions(got["text"])
    assert sorted(int(k) for k in got["att"]) == list(range(6))
    for layer in range(6):
        a = np.asarray(got["att"][str(layer)])
        assert a.shape == want[layer].shape == (12, len(ids), len(ids))
        assert np.max(np.abs(a - want[layer])) < 1e-5, layer
