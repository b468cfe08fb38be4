"""The attention maths against an independent per-head, per-row reference written with plain loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyapp.core.attention import (
    AttentionWeights,
    concat_heads,
    multi_head_attention,
    probs_at,
    split_heads,
    trace_softmax,
)
from pyapp.core.encoder import erf, gelu, layer_norm


def random_weights(d_model=16, n_heads=4, seed=0, values=True):
    rng = np.random.RandomState(seed)

    def m(*shape):
        return rng.standard_normal(shape).astype(np.float32) * 0.5

    return AttentionWeights(m(d_model, d_model), m(d_model), m(d_model, d_model), m(d_model),
                            m(d_model, d_model) if values else None, m(d_model) if values else None,
                            m(d_model, d_model) if values else None, m(d_model) if values else None,
                            n_heads=n_heads)


def reference(x, w, temperature=1.0, causal=False):
    """Textbook loops in float64: one head at a time, one query row at a time."""
    x = x.astype(np.float64)
    n, _ = x.shape
    d_k = w.q_weight.shape[0] // w.n_heads
    outs, all_probs = [], []
    for h in range(w.n_heads):
        rows = slice(h * d_k, (h + 1) * d_k)
        q = x @ w.q_weight[rows].T.astype(np.float64) + w.q_bias[rows]
        k = x @ w.k_weight[rows].T.astype(np.float64) + w.k_bias[rows]
        v = x @ w.v_weight[rows].T.astype(np.float64) + w.v_bias[rows]
        probs = np.zeros((n, n))
        for i in range(n):
            logits = [float(q[i] @ k[j]) / math.sqrt(d_k) / temperature for j in range(n)]
            keys = range(i + 1) if causal else range(n)
            m = max(logits[j] for j in keys)
            z = sum(math.exp(logits[j] - m) for j in keys)
            for j in keys:
                probs[i, j] = math.exp(logits[j] - m) / z
        all_probs.append(probs)
        outs.append(probs @ v)
    concat = np.concatenate(outs, axis=1)
    return np.array(all_probs), concat, concat @ w.o_weight.T.astype(np.float64) + w.o_bias


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_matches_loop_reference(causal, temperature):
    w = random_weights()
    x = np.random.RandomState(1).standard_normal((7, 16)).astype(np.float32)
    t = multi_head_attention(x, w, temperature=temperature, causal=causal)
    probs, concat, output = reference(x, w, temperature, causal)
    assert t.q.shape == t.k.shape == t.v.shape == (4, 7, 4)
    assert t.scores.shape == t.scaled.shape == t.logits.shape == t.probs.shape == (4, 7, 7)
    assert t.head_outputs.shape == (4, 7, 4) and t.concat.shape == (7, 16) and t.output.shape == (7, 16)
    assert all(a.dtype == np.float32 for a in (t.q, t.scores, t.probs, t.concat, t.output))
    np.testing.assert_allclose(t.probs, probs, atol=2e-6)
    np.testing.assert_allclose(t.concat, concat, atol=2e-5)
    np.testing.assert_allclose(t.output, output, atol=5e-5)
    np.testing.assert_allclose(t.scaled, t.scores / 2.0, rtol=1e-6)  # sqrt(d_k) = 2
    np.testing.assert_allclose(t.probs.sum(-1), 1.0, atol=1e-6)
    assert t.temperature == temperature and t.causal == causal


def test_causal_mask_and_masked_scores():
    x = np.random.RandomState(2).standard_normal((5, 16)).astype(np.float32)
    t = multi_head_attention(x, random_weights(), causal=True)
    upper = np.triu(np.ones((5, 5), dtype=bool), 1)
    assert np.all(np.isneginf(t.masked[:, upper])) and np.all(t.probs[:, upper] == 0)
    np.testing.assert_array_equal(t.masked[:, ~upper], t.scaled[:, ~upper])
    np.testing.assert_allclose(t.probs[:, 0, 0], 1.0)  # the first token can only see itself
    assert multi_head_attention(x, random_weights()).masked is None


def test_temperature_resoftmax_equals_full_recompute():
    x = np.random.RandomState(3).standard_normal((6, 16)).astype(np.float32)
    w = random_weights()
    for causal in (False, True):
        base = multi_head_attention(x, w, causal=causal)
        for temperature in (0.25, 2.0, 10.0):
            full = multi_head_attention(x, w, temperature=temperature, causal=causal)
            logits, probs = trace_softmax(base, temperature)
            np.testing.assert_allclose(probs, full.probs, atol=1e-6)
            np.testing.assert_allclose(logits, full.logits, atol=1e-6)
            np.testing.assert_allclose(probs_at(base.masked if causal else base.scaled, temperature),
                                       full.probs, atol=1e-6)
            re = base.with_temperature(temperature)
            np.testing.assert_allclose(re.output, full.output, atol=1e-5)
            assert re.temperature == temperature


def test_temperature_extremes():
    x = np.random.RandomState(4).standard_normal((6, 16)).astype(np.float32)
    hot = multi_head_attention(x, random_weights(), temperature=1e4)
    np.testing.assert_allclose(hot.probs, 1 / 6, atol=1e-3)  # high T -> uniform
    cold = multi_head_attention(x, random_weights(), temperature=1e-4)
    assert np.allclose(cold.probs.max(-1), 1.0, atol=1e-3)  # low T -> one-hot (argmax)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            multi_head_attention(x, random_weights(), temperature=bad)


def test_qk_only_trace():
    x = np.random.RandomState(5).standard_normal((4, 16)).astype(np.float32)
    full = multi_head_attention(x, random_weights())
    qk = multi_head_attention(x, random_weights(values=False))
    assert qk.v is None and qk.head_outputs is None and qk.concat is None and qk.output is None
    np.testing.assert_array_equal(qk.probs, full.probs)
    assert qk.with_temperature(2.0).output is None


def test_split_and_concat_heads_are_inverse():
    a = np.arange(5 * 12, dtype=np.float32).reshape(5, 12)
    h = split_heads(a, 3)
    assert h.shape == (3, 5, 4)
    np.testing.assert_array_equal(h[1, 2], a[2, 4:8])
    np.testing.assert_array_equal(concat_heads(h), a)


def test_erf_gelu_layer_norm():
    x = np.linspace(-7, 7, 20001)
    assert np.abs(erf(x) - np.array([math.erf(v) for v in x])).max() < 1.5e-7
    g = gelu(np.array([-3.0, -1.0, 0.0, 0.5, 2.0], dtype=np.float32))
    expect = [v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in (-3.0, -1.0, 0.0, 0.5, 2.0)]
    np.testing.assert_allclose(g, expect, atol=1e-7)
    rng = np.random.RandomState(6)
    x = rng.standard_normal((3, 10)).astype(np.float32) * 4 + 2
    w, b = rng.standard_normal(10).astype(np.float32), rng.standard_normal(10).astype(np.float32)
    y = layer_norm(x, w, b, 1e-12)
    x64 = x.astype(np.float64)
    ref = (x64 - x64.mean(1, keepdims=True)) / x64.std(1, keepdims=True) * w + b
    np.testing.assert_allclose(y, ref, atol=1e-5)
