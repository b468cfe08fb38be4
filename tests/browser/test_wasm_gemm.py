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


_HEAP_GROWS = """
import json
import numpy as np
from pyapp.browser import wasm_gemm

gemm = wasm_gemm.WasmGemm()
rng = np.random.RandomState(5)
w = rng.standard_normal((384, 384)).astype(np.float32)
x = rng.standard_normal((12, 384)).astype(np.float32)
first = gemm.matmul_t(x, w)
before = (gemm.refreshes, int(gemm.module.HEAPU8.length))
big = []                    # 64 MB blocks until Python's heap grows (its old views detach); this page is shared
while int(gemm.module.HEAPU8.length) == before[1] and len(big) < 24:     # (its free space: whatever is left)
    big.append(np.empty(2**24, dtype=np.float32))
x2 = rng.standard_normal((12, 384)).astype(np.float32)
second = gemm.matmul_t(x2, w)
after = (gemm.refreshes, int(gemm.module.HEAPU8.length))
grown_by = sum(b.nbytes for b in big)
del big
ref = np.einsum("ij,jk->ik", x2, np.ascontiguousarray(w.T))
json.dumps({"before": before, "after": after, "same_first": bool(np.array_equal(first, gemm.matmul_t(x, w))),
            "err": float(np.max(np.abs(second - ref)) / np.max(np.abs(ref))), "failures": gemm.failures,
            "big": grown_by})
"""


def test_copies_fetch_fresh_views_when_pythons_heap_grows(pyodide):
    """The copies' JS methods are fetched once; when Python's heap grows under them (its old HEAPF32 detached)
    the next copy fetches them again and the product is still right, on the kernel (no fallback to numpy)."""
    got = json.loads(pyodide.run(_HEAP_GROWS))
    assert got["after"][1] > got["before"][1], got                  # the heap did grow
    assert got["after"][0] == got["before"][0] + 1, got             # one refresh, by the first copy after it
    assert got["err"] < 2e-6 and got["same_first"] and got["failures"] == 0, got


_BUILDS = """
import json
import numpy as np
from pyapp.browser import wasm_gemm

rng = np.random.RandomState(11)
auto, plain, relaxed = wasm_gemm.WasmGemm(), wasm_gemm.WasmGemm(relaxed=False), wasm_gemm.WasmGemm(relaxed=True)
out = {"auto": auto.relaxed, "flags": [plain.relaxed, relaxed.relaxed], "shapes": []}
for n, k, m in json.loads(%r):
    x = rng.standard_normal((n, k)).astype(np.float32)
    w = (rng.standard_normal((m, k)) / np.sqrt(k)).astype(np.float32)
    exact = x.astype(np.float64) @ w.T.astype(np.float64)
    scale = np.abs(x).astype(np.float64) @ np.abs(w).T.astype(np.float64)
    p, r = plain.matmul_t(x, w), relaxed.matmul_t(x, w)
    out["shapes"].append({"shape": [n, k, m],
                          "err": [float(np.max(np.abs(g - exact) / scale)) for g in (p, r)],
                          "abs_err": [float(np.sum(np.abs(g - exact))) for g in (p, r)],
                          "auto_is_relaxed": bool(np.array_equal(auto.matmul_t(x, w), r)),
                          "differ": int(np.count_nonzero(p != r))})
json.dumps(out)
"""


def test_plain_and_relaxed_builds_both_give_the_sums(pyodide):
    """Chromium validates relaxed SIMD, so the kernel runs its relaxed build (fused multiply-adds in 6-row tiles);
    the plain build (mul then add) stays available for engines without it. Both give float32 sums of the exact
    products, and the fused one, rounding once per term, is no farther from them over all the outputs."""
    got = json.loads(pyodide.run(_BUILDS % (json.dumps(SHAPES),)))
    assert got["auto"] is True and got["flags"] == [False, True], got
    for row in got["shapes"]:
        assert max(row["err"]) < 2e-6 and row["auto_is_relaxed"], row
    total = np.sum([row["abs_err"] for row in got["shapes"]], axis=0)      # (plain, relaxed)
    assert total[1] <= total[0], total
    assert sum(row["differ"] for row in got["shapes"]) > 0      # the builds are different kernels (FMA: x64 here)


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
    """The real page installs the kernel (GEMM and elementwise) at start-up; its attentions on all layers are
    CPython's to 1e-5."""
    # a view of every layer: the app computes all six; on the main thread, whose Python this test reads
    page, guard = open_app(query="?tab=stats", compute="main")
    wait_js(page, "() => JSON.parse(document.body.dataset.report || '{}').layers_ready?.length === 6",
            timeout=120_000)
    got = json.loads(page.evaluate("""() => pyodide.runPython(`
import json
import numpy as np
from js import window
from pyapp.core import numerics
from pyapp.browser.wasm_gemm import WasmElementwise, WasmGemm
app = window.mhsaApp
backend = numerics.matmul_backend()
ew = numerics.elementwise_backend()
att = {int(l): np.asarray(a, dtype=np.float64).tolist() for l, a in app.ctx.layer_attentions().items()}
json.dumps({"wasm": isinstance(backend, WasmGemm), "calls": backend.calls if backend else 0,
            "elementwise": isinstance(ew, WasmElementwise), "ew_calls": ew.calls if ew else 0,
            "text": app.state.text, "att": att})
`)"""))
    guard.check()
    page.context.close()
    assert got["wasm"] and got["calls"] > 0
    assert got["elementwise"] and got["ew_calls"] > 0  # GELU of 13 tokens (19968 elements) ran on the kernel
    ids, want = _cpython_attentions(got["text"])
    assert sorted(int(k) for k in got["att"]) == list(range(6))
    for layer in range(6):
        a = np.asarray(got["att"][str(layer)])
        assert a.shape == want[layer].shape == (12, len(ids), len(ids))
        assert np.max(np.abs(a - want[layer])) < 1e-5, layer


# ---- the elementwise kernels (softmax, GELU, SiLU, exp): numpy's bits --------------------------------------

_ELEMENTWISE_VS_NUMPY = """
import json
import numpy as np
from pyapp.browser import wasm_gemm
from pyapp.core import attention, layers, numerics

gemm = wasm_gemm.install()
ew = wasm_gemm.elementwise
out = {"installed": ew is not None and numerics.elementwise_backend() is ew, "problem": wasm_gemm.elementwise_problem,
       "maps": [], "softmax": []}
rng = np.random.RandomState(11)
SMALL = numerics.SMALL
EDGE = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 88.0, 88.5, 1e4, -87.3, -103.0, -104.0, -1e4, 1e-38, -1e-38,
                 1e-45, 5.5, -5.5, 9.0, -9.0, 17.0, -17.0, 0.5, -0.5], dtype=np.float32)


def bits(got, want):
    # (mismatched elements, max ulp distance among non-NaN, NaN where numpy has NaN)
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    ok = ~(nan_g | nan_w)
    g = got.view(np.int32)[ok].astype(np.int64)
    w = want.view(np.int32)[ok].astype(np.int64)
    g = np.where(g < 0, -(g & 0x7FFFFFFF), g)  # sign-magnitude -> a line of ulps
    w = np.where(w < 0, -(w & 0x7FFFFFFF), w)
    ulp = int(np.max(np.abs(g - w))) if g.size else 0
    differ = got.view(np.uint32)[ok] != want.view(np.uint32)[ok]  # every bit, the sign of zero too
    return int(np.count_nonzero(differ)), ulp, bool(np.array_equal(nan_g, nan_w))


def numpy_path(fn, x):
    saved = numerics.set_elementwise_backend(None)
    try:
        return fn(x)
    finally:
        numerics.set_elementwise_backend(saved)


FNS = {"exp": numerics.exp, "gelu": layers.gelu, "silu": layers.silu}
for size, scale in json.loads(%r):
    x = (rng.standard_normal(size) * scale).astype(np.float32)
    x[rng.randint(0, size, 40)] = EDGE[rng.randint(0, EDGE.size, 40)]
    x[:EDGE.size] = EDGE
    if scale < 1:                                         # tiny and subnormal magnitudes too
        x[EDGE.size:EDGE.size + 100] *= np.float32(1e-40)
    for op, fn in sorted(FNS.items()):
        calls = ew.calls
        via_hook = fn(x)                                  # the core function, backend installed
        used = ew.calls > calls
        want = numpy_path(fn, x)
        row = {"op": op, "size": size, "scale": scale, "used": used, "dtype": str(via_hook.dtype),
               "shape_ok": via_hook.shape == x.shape}
        row["mismatch"], row["ulp"], row["nan_ok"] = bits(via_hook, want)
        out["maps"].append(row)
small = np.linspace(-5, 5, SMALL - 1).astype(np.float32)
out["small_declined"] = [numerics.elementwise(op, small) is None for op in ("exp", "gelu", "silu")]
out["small_softmax_problem"] = wasm_gemm.small_softmax_problem
out["small_softmax"] = []
for shape, scale, mask in json.loads(%r):                 # below SMALL: np.exp's bits (the C library's expf)
    s = (rng.standard_normal(shape) * scale).astype(np.float32)
    h, n, m = shape
    if mask == "causal":
        s = attention.causal_mask(s)
    elif mask == "edges":                                 # every range of expf: tiny, subnormal and 0 results, NaN
        flat = s.reshape(-1)
        flat[:EDGE.size] = EDGE
        flat[rng.randint(0, flat.size, 20)] = -rng.uniform(80.0, 110.0, 20).astype(np.float32)
        s[0, 0, :] = -np.inf
    for t in (1.0, 0.37):
        calls = ew.calls
        got = attention.probs_at(s, t)
        used = ew.calls > calls
        want = numpy_path(lambda a: attention.probs_at(a, t), s)
        row = {"shape": shape, "mask": mask, "t": t, "used": used, "dtype": str(got.dtype)}
        row["mismatch"], row["ulp"], row["nan_ok"] = bits(got, want)
        out["small_softmax"].append(row)
out["declined"] = [ew("softmax", np.zeros((1, wasm_gemm.SOFTMAX_MAX_ROW + 1), np.float32)) is None,
                   ew("tanh", np.zeros(SMALL, np.float32)) is None,
                   ew("gelu", np.zeros(SMALL, np.float64)) is None]

for shape, scale, mask in json.loads(%r):
    s = (rng.standard_normal(shape) * scale).astype(np.float32)
    h, n, m = shape
    if mask == "causal":                                  # the decoder's mask: -inf above the diagonal
        s = attention.causal_mask(s)
    elif mask == "edges":                                 # NaN, fully masked rows, huge and tiny logits
        s[0, 0, :] = -np.inf
        s[0, 1, rng.randint(0, m)] = np.nan
        s[-1, -1, :] = rng.choice([-1e30, 1e30, 0.0, -0.0, 1e-30], m).astype(np.float32)
        s[h // 2, :, ::3] = -np.inf
    for t in (1.0, 0.37):                                 # the temperature path divides first, then softmax
        calls = ew.calls
        got = attention.probs_at(s, t)
        used = ew.calls > calls
        want = numpy_path(lambda a: attention.probs_at(a, t), s)
        row = {"shape": shape, "mask": mask, "t": t, "used": used, "dtype": str(got.dtype),
               "shape_ok": got.shape == s.shape}
        row["mismatch"], row["ulp"], row["nan_ok"] = bits(got, want)
        out["softmax"].append(row)
chunk, wasm_gemm.CHUNK = wasm_gemm.CHUNK, 1000                    # in pieces: whole rows / vectors per kernel call
try:
    x = (rng.standard_normal(8195) * 5).astype(np.float32)
    s = (rng.standard_normal((3, 31, 129)) * 5).astype(np.float32)
    out["chunked"] = [bits(ew.run("gelu", x), numpy_path(layers.gelu, x))[:2],
                      bits(ew.run("softmax", s), numpy_path(attention.softmax, s))[:2]]
finally:
    wasm_gemm.CHUNK = chunk
out["failures"] = ew.failures


def layer_norm_with_mean(x, weight, bias, eps):                  # layers.layer_norm as it was, with ndarray.mean
    centred = x - x.mean(axis=-1, keepdims=True)
    var = np.einsum("...i,...i->...", centred, centred)[..., None] / np.float32(x.shape[-1])
    centred *= 1.0 / np.sqrt(var + np.float32(eps))
    centred *= weight
    centred += bias
    return centred


out["layer_norm"] = []
for shape in ((12, 384), (128, 384), (5, 7), (3, 4, 129)):
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    w, b = rng.standard_normal(shape[-1]).astype(np.float32), rng.standard_normal(shape[-1]).astype(np.float32)
    out["layer_norm"].append(bits(layers.layer_norm(x, w, b, 1e-12), layer_norm_with_mean(x, w, b, 1e-12))[:2])
json.dumps(out)
"""
# (elements, scale): SMALL itself, lengths that are no multiple of 4, MiniLM's GELU at 6/12/128 tokens
MAPS = [(8192, 3.0), (8193, 6.0), (8195, 40.0), (6 * 1536, 0.01), (12 * 1536, 2.0), (128 * 1536, 3.0)]
# (heads, n, n): MiniLM at 128 tokens, SmolLM2 (9 heads) at 64, rows of 1..7, of 129 and 640 (pairwise sum's split),
# no multiple of 4 anywhere; scale 30: many exps underflow to 0
SOFTMAX = [((12, 128, 128), 3.0, ""), ((9, 64, 64), 4.0, "causal"), ((3000, 3, 3), 5.0, ""),
           ((1200, 7, 7), 2.0, "edges"), ((1, 100, 129), 30.0, "edges"), ((2, 7, 640), 3.0, "edges"),
           ((1, 3, 8192), 3.0, ""), ((12, 61, 61), 3.0, "causal")]


# below numerics.SMALL elements: MiniLM's attention at 12 and 5 tokens, SmolLM2's (9 heads) at 13, one row of one,
# rows of 129 (the pairwise sum's split), edge values (every range of the C library's expf)
SMALL_SOFTMAX = [((12, 12, 12), 3.0, ""), ((12, 5, 5), 2.0, "causal"), ((9, 13, 13), 4.0, "causal"),
                 ((1, 1, 1), 1.0, ""), ((2, 3, 129), 10.0, "edges"), ((12, 26, 26), 3.0, "edges"),
                 ((1, 40, 7), 30.0, "edges")]


def test_elementwise_kernels_are_numpy_bit_for_bit(pyodide):
    """softmax (all temperatures, masks, NaN; below numerics.SMALL elements too, where the numpy code's exp is
    np.exp), GELU, SiLU and exp on the kernel give the numpy code's bits."""
    got = json.loads(pyodide.run(_ELEMENTWISE_VS_NUMPY % (json.dumps(MAPS), json.dumps(SMALL_SOFTMAX),
                                                          json.dumps(SOFTMAX))))
    assert got["installed"] and got["problem"] == "", got["problem"]
    assert len(got["maps"]) == 3 * len(MAPS) and len(got["softmax"]) == 2 * len(SOFTMAX)
    for row in got["maps"] + got["softmax"]:
        assert row["used"] and row["dtype"] == "float32" and row["shape_ok"], row
        assert row["mismatch"] == 0 and row["ulp"] == 0 and row["nan_ok"], row
    assert got["small_declined"] == [True] * 3  # below SMALL numerics.exp is np.exp: numpy keeps exp, GELU, SiLU
    assert got["small_softmax_problem"] == "" and len(got["small_softmax"]) == 2 * len(SMALL_SOFTMAX)
    for row in got["small_softmax"]:  # ... and the softmax goes to softmax_small, which replays np.exp's expf
        assert row["used"] and row["dtype"] == "float32", row
        assert row["mismatch"] == 0 and row["ulp"] == 0 and row["nan_ok"], row
    assert got["declined"] == [True] * 3
    assert got["failures"] == 0
    assert got["chunked"] == [[0, 0]] * 2
    assert got["layer_norm"] == [[0, 0]] * 4  # np.add.reduce / d is ndarray.mean's float32 result, bit for bit


_LAYER_NORM_KERNEL = """
import json
import numpy as np
from pyapp.browser import wasm_gemm
from pyapp.core import layers, numerics

wasm_gemm.install()
ew = wasm_gemm.elementwise
out = {"installed": numerics.layer_norm(np.ones((1, 4), np.float32), np.ones(4, np.float32),
                                        np.zeros(4, np.float32), 1e-5) is not None,
       "problem": wasm_gemm.layer_norm_problem, "rows": []}
rng = np.random.RandomState(3)


def numpy_ln(x, w, b, eps):
    saved = numerics.set_layer_norm_backend(None)
    try:
        return layers.layer_norm(x, w, b, eps)
    finally:
        numerics.set_layer_norm_backend(saved)


for shape, eps in json.loads(%r):
    x = (rng.standard_normal(shape) * 5 - 1).astype(np.float32)
    w, b = rng.standard_normal(shape[-1]).astype(np.float32), rng.standard_normal(shape[-1]).astype(np.float32)
    flat = x.reshape(-1, shape[-1])
    flat[0] = 0.5                                            # variance 0: 1 / sqrt(eps) times 0
    if flat.shape[0] > 2:
        flat[1, ::5] = np.float32(3e4)                       # large entries next to small ones
        flat[2, -1] = np.nan
    calls = ew.calls
    got = layers.layer_norm(x, w, b, eps)
    want = numpy_ln(x, w, b, eps)
    nan = np.isnan(want)
    out["rows"].append({"shape": shape, "used": ew.calls > calls, "dtype": str(got.dtype),
                        "same_shape": got.shape == want.shape, "nan_same": bool(np.array_equal(np.isnan(got), nan)),
                        "differ": int(np.count_nonzero(got.view(np.uint32)[~nan] != want.view(np.uint32)[~nan]))})
chunk, wasm_gemm.CHUNK = wasm_gemm.CHUNK, 1000               # in pieces of whole rows
try:
    x = rng.standard_normal((40, 384)).astype(np.float32)
    w, b = np.ones(384, np.float32), np.zeros(384, np.float32)
    out["chunked"] = int(np.count_nonzero(ew.run_layer_norm(x, w, b, 1e-12).view(np.uint32)
                                          != numpy_ln(x, w, b, 1e-12).view(np.uint32)))
finally:
    wasm_gemm.CHUNK = chunk
out["declined"] = [ew.layer_norm(np.ones((2, 4), np.float64), np.ones(4, np.float32), np.zeros(4, np.float32), 1e-5)
                   is None, ew.layer_norm(np.ones((2, 4), np.float32), np.ones(5, np.float32),
                                          np.zeros(4, np.float32), 1e-5) is None]
out["failures"] = ew.failures
json.dumps(out)
"""
# MiniLM's rows at 1, 12 and 128 tokens (d = 384), 768-wide rows (DistilBERT, GPT-2), lengths that are no multiple of
# 8 or 4, the pairwise sum's split past 128 (129, 300), a 3-d stack
LAYER_NORM = [((1, 384), 1e-12), ((12, 384), 1e-12), ((128, 384), 1e-12), ((9, 768), 1e-12), ((5, 7), 1e-5),
              ((4, 13), 1e-5), ((6, 129), 1e-6), ((3, 300), 1e-5), ((2, 3, 101), 1e-12)]


def test_layer_norm_kernel_is_numpy_bit_for_bit(pyodide):
    """LayerNorm on the kernel (installed at start-up, any size) gives the numpy code's bits, NaN where it has NaN,
    in one call or in pieces of rows; it declines float64 input and a weight of the wrong length."""
    got = json.loads(pyodide.run(_LAYER_NORM_KERNEL % json.dumps(LAYER_NORM)))
    assert got["installed"] and got["problem"] == "", got["problem"]
    assert len(got["rows"]) == len(LAYER_NORM)
    for row in got["rows"]:
        assert row["used"] and row["dtype"] == "float32" and row["same_shape"] and row["nan_same"], row
        assert row["differ"] == 0, row
    assert got["chunked"] == 0
    assert got["declined"] == [True, True]
    assert got["failures"] == 0


_SMOLLM2_WITH_AND_WITHOUT = """
import json
import js
import numpy as np
from js import fetch
from pyapp.browser import wasm_gemm
from pyapp.core import numerics
from pyapp.core.catalogue import load_catalogue
from pyapp.core.sources import make_source
from pyapp.core.store import WeightStore


async def _get(path):
    resp = await fetch("/models/" + path)
    return bytes(js.Uint8Array.new(await resp.arrayBuffer()).to_py())


wasm_gemm.install()
ew = wasm_gemm.elementwise
cat = load_catalogue(await _get("index.json"))
store = WeightStore(cat)
entry = cat.get("smollm2-135m")
ids = %r
for f in store.missing(entry.id, ids, layer=3, parts=("qk", "vo", "ffn")):
    store.add(f.path, await _get(f.path))
model = make_source(entry, None, store).encoder
calls = ew.calls
with_kernel = model.attentions(ids, [3])[3]
used = ew.calls - calls
model.clear()
saved = numerics.set_elementwise_backend(None)
try:
    numpy_only = model.attentions(ids, [3])[3]
finally:
    numerics.set_elementwise_backend(saved)
json.dumps({"used": used, "shape": list(with_kernel.shape), "dtype": str(with_kernel.dtype),
            "same": bool(np.array_equal(with_kernel.view(np.uint32), numpy_only.view(np.uint32))),
            "upper": float(np.abs(np.triu(with_kernel, 1)).max())})
"""


def test_smollm2_causal_attention_same_bits_with_the_elementwise_kernels(pyodide):
    """SmolLM2 (SiLU MLP, causal softmax over 9 heads) at 45 tokens: layer 3's attention with the elementwise
    kernels is the numpy code's, bit for bit, and the masked cells are exactly 0."""
    ids = [504, 2644, 2643, 335, 260, 1171, 975, 357, 436] * 5  # "The cat sat on the mat because it was" x 5
    got = json.loads(pyodide.run(_SMOLLM2_WITH_AND_WITHOUT % (ids,)))
    assert got["shape"] == [9, 45, 45] and got["dtype"] == "float32"
    assert got["used"] >= 3 + 4  # a SiLU per block below layer 3, a softmax per layer up to it (9*45*45 >= SMALL)
    assert got["same"] and got["upper"] == 0.0
