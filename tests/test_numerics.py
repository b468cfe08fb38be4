"""The fast float32 kernels (pyapp/core/numerics.py) against numpy's exact ones."""

from __future__ import annotations

import gc
import math

import numpy as np

from pyapp.core import numerics
from pyapp.core.attention import linear, softmax
from pyapp.core.encoder import gelu


def test_exp_relative_error_and_edge_values():
    x = np.linspace(-87.0, 88.0, 400_001).astype(np.float32)  # far above SMALL: the polynomial path
    got = numerics.exp(x)
    ref = np.exp(x.astype(np.float64))
    assert got.dtype == np.float32 and got.shape == x.shape
    assert float(np.max(np.abs(got - ref) / ref)) < 2e-7
    edge = np.full(numerics.SMALL * 2, -np.inf, dtype=np.float32)
    edge[:4] = [0.0, -200.0, np.nan, 1.0]
    out = numerics.exp(edge)
    assert out[0] == 1.0 and out[1] == 0.0 and np.isnan(out[2]) and abs(out[3] - math.e) < 1e-6
    assert np.all(out[4:] == 0.0)  # -inf -> exactly 0 (masked attention cells)
    small = np.array([-np.inf, 0.0, 1.0], dtype=np.float32)  # the np.exp path agrees
    np.testing.assert_allclose(numerics.exp(small), [0.0, 1.0, math.e], rtol=1e-7)


def test_softmax_masked_cells_are_exactly_zero_and_rows_sum_to_one():
    rng = np.random.RandomState(0)
    logits = (rng.standard_normal((12, 64, 64)) * 4).astype(np.float32)
    logits[:, np.triu(np.ones((64, 64), dtype=bool), 1)] = -np.inf
    p = softmax(logits)
    assert p.dtype == np.float32 and np.all(p[:, np.triu(np.ones((64, 64), dtype=bool), 1)] == 0.0)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-6)
    ref = np.exp(logits.astype(np.float64) - logits.max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    assert float(np.abs(p - ref).max()) < 5e-7


def test_linear_uses_one_cached_transpose_per_weight():
    rng = np.random.RandomState(1)
    w = rng.standard_normal((48, 32)).astype(np.float32)
    b = rng.standard_normal(48).astype(np.float32)
    x = rng.standard_normal((5, 32)).astype(np.float32)
    np.testing.assert_allclose(linear(x, w, b), x.astype(np.float64) @ w.T.astype(np.float64) + b, atol=1e-5)
    wt = numerics.transposed(w)
    assert wt.flags.c_contiguous and wt.shape == (32, 48) and numerics.transposed(w) is wt
    key = id(w)
    del w, wt
    gc.collect()
    assert key not in numerics._TRANSPOSED  # forgotten with its weight


def test_gelu_float32_matches_exact_erf_gelu():
    x = np.linspace(-12, 12, 100_001).astype(np.float32)
    exact = np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    g = gelu(x)
    assert g.dtype == np.float32
    assert float(np.abs(g - exact).max()) < 1e-6  # a few float32 ulps at |x| = 12
    small = np.abs(x) <= 4
    assert float(np.abs(g[small] - exact[small]).max()) < 2.5e-7


def test_kernels_leave_their_inputs_alone():
    from pyapp.core.encoder import layer_norm

    rng = np.random.RandomState(2)
    big = (rng.standard_normal((4, 64, 64)) * 3).astype(np.float32)  # above SMALL: the in-place passes
    for fn in (numerics.exp, softmax, gelu, lambda a: layer_norm(a, np.ones(64, np.float32),
                                                                 np.zeros(64, np.float32), 1e-12)):
        before = big.copy()
        fn(big)
        np.testing.assert_array_equal(big, before)


def test_batched_matmul_short_and_long_forms_agree_with_float64():
    rng = np.random.RandomState(3)
    for n in (7, numerics.LONG - 1, numerics.LONG + 8):
        q = rng.standard_normal((3, n, 32)).astype(np.float32)
        k = rng.standard_normal((3, n, 32)).astype(np.float32)
        p = rng.random_sample((3, n, n)).astype(np.float32)
        scores = numerics.batched_matmul(q, k.transpose(0, 2, 1))  # (h, n, n): long p -> einsum
        heads = numerics.batched_matmul(p, k)  # (h, n, 32): long n -> transposed einsum
        assert scores.shape == (3, n, n) and heads.shape == (3, n, 32)
        assert scores.dtype == heads.dtype == np.float32
        np.testing.assert_allclose(scores, q.astype(np.float64) @ k.astype(np.float64).transpose(0, 2, 1),
                                   atol=2e-5)
        np.testing.assert_allclose(heads, p.astype(np.float64) @ k.astype(np.float64), atol=5e-5 * n / 64)


def test_long_sentence_attention_matches_float64():
    from pyapp.core.attention import AttentionWeights, multi_head_attention

    rng = np.random.RandomState(4)
    d, n = 32, numerics.LONG + 20
    m = [rng.standard_normal((d, d)).astype(np.float32) * 0.3 for _ in range(4)]
    bias = [rng.standard_normal(d).astype(np.float32) * 0.1 for _ in range(4)]
    w = AttentionWeights(m[0], bias[0], m[1], bias[1], m[2], bias[2], m[3], bias[3], n_heads=4)
    x = rng.standard_normal((n, d)).astype(np.float32)
    for causal in (False, True):
        t = multi_head_attention(x, w, causal=causal)
        x64 = x.astype(np.float64)
        q, k, v = ((x64 @ m[i].T.astype(np.float64) + bias[i]).reshape(n, 4, 8).transpose(1, 0, 2)
                   for i in range(3))
        s = q @ k.transpose(0, 2, 1) / np.sqrt(8.0)
        if causal:
            s[:, np.triu(np.ones((n, n), dtype=bool), 1)] = -np.inf
        e = np.exp(s - s.max(-1, keepdims=True))
        probs = e / e.sum(-1, keepdims=True)
        out = (probs @ v).transpose(1, 0, 2).reshape(n, d) @ m[3].T.astype(np.float64) + bias[3]
        np.testing.assert_allclose(t.probs, probs, atol=2e-6)
        np.testing.assert_allclose(t.output, out, atol=2e-5)


def test_matmul_backend_is_used_and_may_decline():
    """``set_matmul_backend``: the backend's product is returned; ``None`` from it (or no backend) -> numpy."""
    rng = np.random.RandomState(5)
    x = rng.standard_normal((6, 16)).astype(np.float32)
    w = rng.standard_normal((24, 16)).astype(np.float32)
    want = numerics.matmul_t(x, w)
    seen = []

    def backend(a, weight):
        seen.append((a.dtype, a.shape, weight.shape))
        return None if weight.shape[0] % 8 else np.full((a.shape[0], weight.shape[0]), 7.0, np.float32)

    previous = numerics.set_matmul_backend(backend)
    try:
        assert previous is None and numerics.matmul_backend() is backend
        assert np.all(linear(x.astype(np.float64), w, None) == 7.0)  # x reaches the backend as float32
        assert seen[-1] == (np.float32, (6, 16), (24, 16))
        w20 = w[:20]
        np.testing.assert_array_equal(numerics.matmul_t(x, w20), np.einsum("ij,jk->ik", x, numerics.transposed(w20)))
        assert len(seen) == 2  # declined (20 % 8), computed by numpy
    finally:
        assert numerics.set_matmul_backend(previous) is backend
    np.testing.assert_array_equal(numerics.matmul_t(x, w), want)


def test_elementwise_backend_gets_the_large_arrays_and_may_decline():
    """``set_elementwise_backend``: softmax, GELU, SiLU and exp go to ``fn(op, x)`` from SMALL elements on (where
    ``exp`` is the polynomial a kernel can reproduce bit for bit); below that numpy, except the softmax, which is
    offered at any size (np.exp's bits, or declined); when it declines: numpy."""
    from pyapp.core.attention import probs_at
    from pyapp.core.layers import silu

    rng = np.random.RandomState(6)
    big = rng.standard_normal((3, 64, 64)).astype(np.float32)  # 12288 elements
    small = big[:1, :8]  # 512
    want = {"softmax": softmax(big), "gelu": gelu(big), "silu": silu(big), "exp": numerics.exp(big)}
    want_small = softmax(small)
    seen = []
    decline = set()

    def backend(op, x):
        seen.append((op, x.dtype, x.shape))
        return None if op in decline else np.full(x.shape, 7.0, np.float32)

    previous = numerics.set_elementwise_backend(backend)
    try:
        assert previous is None and numerics.elementwise_backend() is backend
        for op, fn in (("softmax", softmax), ("gelu", gelu), ("silu", silu), ("exp", numerics.exp)):
            assert np.all(fn(big.astype(np.float64)) == 7.0), op  # x reaches the backend as float32
            assert seen[-1] == (op, np.float32, big.shape)
            n = len(seen)
            fn(small)
            if op == "softmax":  # below SMALL too: a backend may replay np.exp (the numpy code's exp there)
                assert len(seen) == n + 1 and seen[-1] == ("softmax", np.float32, small.shape)
            else:
                assert len(seen) == n, op  # below SMALL: never asked
        assert np.all(probs_at(big, 0.5) == 7.0) and seen[-1][0] == "softmax"  # the temperature path too
        decline.update(("softmax", "gelu", "silu"))  # declined: numpy, whose exp still asks for "exp"
        np.testing.assert_array_equal(softmax(big), np.full(big.shape, 7.0 / (64 * 7.0), np.float32))
        assert [s[0] for s in seen[-2:]] == ["softmax", "exp"]
        decline.add("exp")
        for op, fn in (("softmax", softmax), ("gelu", gelu), ("silu", silu), ("exp", numerics.exp)):
            np.testing.assert_array_equal(fn(big), want[op])
        n = len(seen)
        np.testing.assert_array_equal(softmax(small), want_small)  # a small softmax declined: numpy's (np.exp)
        assert [s[0] for s in seen[n:]] == ["softmax"]  # asked once; its np.exp is never offered
    finally:
        assert numerics.set_elementwise_backend(previous) is backend
    assert numerics.elementwise("gelu", big) is None  # no backend


def test_silu_matches_float64():
    from pyapp.core.layers import silu

    x = np.linspace(-90, 90, 50_001).astype(np.float32)  # above SMALL: the polynomial exp
    ref = x.astype(np.float64) / (1.0 + np.exp(-x.astype(np.float64)))
    got = silu(x)
    assert got.dtype == np.float32
    assert float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1e-30))) < 1e-6
