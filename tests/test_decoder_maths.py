"""The decoder pieces of the maths core against torch / transformers: RoPE, grouped-query attention,
RMSNorm, SiLU, GPT-2's tanh GELU; and the store's bounded dequantisation cache."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pyapp.core.attention import AttentionWeights, multi_head_attention, rope_angles, rotate
from pyapp.core.layers import gelu_tanh, rms_norm, silu

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def test_rope_matches_transformers_llama():
    from transformers.models.llama import modeling_llama as ml

    n, heads, d_k, theta = 40, 3, 16, 100000.0
    config = transformers.LlamaConfig(hidden_size=heads * d_k, num_attention_heads=heads, rope_theta=theta,
                                      max_position_embeddings=64)
    rot = ml.LlamaRotaryEmbedding(config)
    x = torch.randn(1, heads, n, d_k)
    cos, sin = rot(x, torch.arange(n)[None])
    ref_q, ref_k = ml.apply_rotary_pos_emb(x, x, cos, sin)
    c, s = rope_angles(n, d_k, theta)
    np.testing.assert_allclose(c, cos[0].numpy(), atol=2e-6)
    np.testing.assert_allclose(rotate(x[0].numpy(), c, s), ref_q[0].numpy(), atol=1e-5)


def test_grouped_query_attention_with_rope_against_loops():
    rng = np.random.RandomState(0)
    d, heads, kv, d_k, n = 24, 6, 2, 4, 7
    m = lambda *shape: rng.standard_normal(shape).astype(np.float32) * 0.5  # noqa: E731
    w = AttentionWeights(m(heads * d_k, d), None, m(kv * d_k, d), None, m(kv * d_k, d), None, m(d, heads * d_k),
                         None, n_heads=heads, n_kv_heads=kv, rope_theta=10000.0)
    x = m(n, d)
    t = multi_head_attention(x, w, causal=True)
    assert t.q.shape == t.k.shape == t.v.shape == t.q_unrotated.shape == (heads, n, d_k) and t.kv_heads == kv
    cos, sin = rope_angles(n, d_k, 10000.0)
    out = np.zeros((n, heads * d_k))
    for h in range(heads):
        g = h // (heads // kv)
        assert t.kv_head(h) == g
        q = x @ w.q_weight[h * d_k:(h + 1) * d_k].T
        k = x @ w.k_weight[g * d_k:(g + 1) * d_k].T
        v = x @ w.v_weight[g * d_k:(g + 1) * d_k].T
        np.testing.assert_allclose(t.q_unrotated[h], q, atol=1e-5)
        q, k = rotate(q[None], cos, sin)[0], rotate(k[None], cos, sin)[0]
        for i in range(n):
            logits = [float(q[i] @ k[j]) / math.sqrt(d_k) for j in range(i + 1)]
            e = np.exp(np.array(logits) - max(logits))
            p = e / e.sum()
            np.testing.assert_allclose(t.probs[h, i, :i + 1], p, atol=1e-6)
            assert np.all(t.probs[h, i, i + 1:] == 0)
            out[i, h * d_k:(h + 1) * d_k] = p @ v[:i + 1]
    np.testing.assert_allclose(t.output, out @ w.o_weight.T, atol=1e-4)
    np.testing.assert_allclose(t.with_temperature(2.0).probs, multi_head_attention(x, w, 2.0, True).probs, atol=1e-6)


def test_norms_and_activations_match_torch():
    x = np.random.RandomState(1).standard_normal((9, 300)).astype(np.float32) * 4
    xt = torch.tensor(x)
    w = np.random.RandomState(2).standard_normal(300).astype(np.float32)
    ref = transformers.models.llama.modeling_llama.LlamaRMSNorm(300, eps=1e-5)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(w))
        np.testing.assert_allclose(rms_norm(x, w, 1e-5), ref(xt).numpy(), atol=1e-5)
    np.testing.assert_allclose(silu(x), torch.nn.functional.silu(xt).numpy(), atol=2e-6)
    np.testing.assert_allclose(gelu_tanh(x), torch.nn.functional.gelu(xt, approximate="tanh").numpy(), atol=2e-6)
    big = np.array([-1e4, -90.0, 0.0, 90.0, 1e4], dtype=np.float32)
    assert np.all(np.isfinite(silu(big))) and silu(big)[0] == 0 and silu(big)[-1] == 1e4


def test_dequantised_tensors_are_cached_within_a_bound(models_dir):
    from pyapp.core.files import fetch_into, load_local_catalogue
    from pyapp.core.store import WeightStore
    from pyapp.core.weights import Blocks

    cat = load_local_catalogue(models_dir)
    entry = cat.get("smollm2-135m")
    store = WeightStore(cat, dequant_cache_bytes=3 * 576 * 576 * 4)
    files = [entry.layer_file(layer, "qk") for layer in range(4)]
    fetch_into(store, files, models_dir)
    name = "model.layers.{}.self_attn.q_proj.weight"
    assert isinstance(store.stored(files[0].path)[name.format(0)], Blocks)
    first = store.tensor(files[0].path, name.format(0))
    assert first.dtype == np.float32 and first.shape == (576, 576)
    assert store.tensor(files[0].path, name.format(0)) is first  # cached
    for layer in range(1, 4):
        store.tensor(files[layer].path, name.format(layer))
    assert store.tensor(files[0].path, name.format(0)) is not first  # evicted (bounded), made again
    np.testing.assert_array_equal(store.tensor(files[0].path, name.format(0)), first)
