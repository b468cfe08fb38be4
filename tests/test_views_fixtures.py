"""Contexts for the view tests, built with the real core (pyapp.core.attention) on seeded random weights."""

from __future__ import annotations

import numpy as np

from pyapp.app.context import ViewContext
from pyapp.core.attention import AttentionWeights, multi_head_attention

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "runs", "far", "away"]


def make_tokens(n: int):
    body = [WORDS[i % len(WORDS)] for i in range(max(n - 2, 0))]
    return ["[CLS]"] + body + ["[SEP]"]


def make_weights(d_model: int = 32, n_heads: int = 4, values: bool = True, seed: int = 0) -> AttentionWeights:
    rng = np.random.RandomState(seed)
    scale = 1.0 / np.sqrt(d_model)

    def lin(out_dim, in_dim):
        return (rng.randn(out_dim, in_dim) * scale * 2).astype(np.float32), (rng.randn(out_dim) * 0.1).astype(np.float32)

    qw, qb = lin(d_model, d_model)
    kw, kb = lin(d_model, d_model)
    vw, vb = lin(d_model, d_model)
    ow, ob = lin(d_model, d_model)
    if not values:
        vw = vb = ow = ob = None
    return AttentionWeights(qw, qb, kw, kb, vw, vb, ow, ob, n_heads)


def make_ctx(n: int = 12, d_model: int = 32, n_heads: int = 4, values: bool = True, causal: bool = False,
             seed: int = 0, temperature: float = 1.0, **kw) -> ViewContext:
    rng = np.random.RandomState(seed + 1)
    x = rng.randn(n, d_model).astype(np.float32)
    w = make_weights(d_model, n_heads, values, seed)
    trace = multi_head_attention(x, w, temperature=temperature, causal=causal)
    return ViewContext(tokens=make_tokens(n), trace=trace, weights=w, layer=kw.pop("layer", 0),
                       n_layers=kw.pop("n_layers", 6), model_name=kw.pop("model_name", "test-model"), **kw)


def test_fixture_context_is_consistent():
    ctx = make_ctx(7, values=False, causal=True)
    assert ctx.n == 7 and ctx.n_heads == 4 and ctx.d_k == 8 and ctx.d_model == 32
    assert not ctx.has_values and ctx.causal
    np.testing.assert_allclose(ctx.trace.probs.sum(-1), 1.0, atol=1e-5)
    assert ctx.causal_mask()[0, 1] and not ctx.causal_mask()[1, 0]
