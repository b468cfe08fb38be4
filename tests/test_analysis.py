"""Numbers behind the research views: attention rollout, head statistics, CSV / JSON exports."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from pyapp.core import analysis as an


def _softmax_rows(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _hand_made_3_layers():
    """3 layers x 2 heads x 4 tokens: each head a distinct, readable pattern (rows sum to 1)."""
    n = 4
    eye = np.eye(n)
    prev = np.eye(n, k=-1)
    prev[0, 0] = 1.0  # row 0 has no previous token: keeps itself
    nxt = np.eye(n, k=1)
    nxt[-1, -1] = 1.0
    uniform = np.full((n, n), 1.0 / n)
    first = np.zeros((n, n))
    first[:, 0] = 1.0
    mixed = np.array([[0.7, 0.1, 0.1, 0.1],
                      [0.2, 0.5, 0.2, 0.1],
                      [0.1, 0.1, 0.6, 0.2],
                      [0.25, 0.25, 0.25, 0.25]])
    return [np.stack([prev, uniform]), np.stack([nxt, mixed]), np.stack([first, eye])]


# ---- rollout ----------------------------------------------------------------------------------------
def _rollout_direct(layers):
    """Abnar & Zuidema written out for a 3-layer stack, no loops over layers: A'3 @ A'2 @ A'1."""
    a = []
    for attn in layers:
        m = attn.mean(axis=0) + np.eye(attn.shape[-1])  # (A + I)
        a.append(m / m.sum(axis=1, keepdims=True))  # rows renormalised
    return a[2] @ a[1] @ a[0]


def test_rollout_matches_direct_numpy_on_hand_made_3_layers():
    layers = _hand_made_3_layers()
    r = an.rollout(layers)
    assert r.shape == (3, 4, 4)
    np.testing.assert_allclose(r[-1], _rollout_direct(layers), rtol=0, atol=1e-12)
    # the cumulative entries are the partial products, higher layer on the left
    ap = [an.residual_attention(a) for a in layers]
    np.testing.assert_allclose(r[0], ap[0], atol=1e-12)
    np.testing.assert_allclose(r[1], ap[1] @ ap[0], atol=1e-12)
    # the order matters on this example: the reversed product is a different matrix
    assert np.abs(r[-1] - ap[0] @ ap[1] @ ap[2]).max() > 0.05
    np.testing.assert_allclose(r.sum(axis=-1), 1.0, atol=1e-12)


def test_rollout_hand_computed_entries():
    # Layer 0 (mean of prev and uniform, + I, /2), row 1: 0.5*(0.5*[1,0,0,0] + 0.5*[.25]*4) + 0.5*e1
    layers = _hand_made_3_layers()
    a0 = an.residual_attention(layers[0])
    np.testing.assert_allclose(a0[1], [0.3125, 0.5625, 0.0625, 0.0625], atol=1e-12)
    # a one-layer "attend to [CLS]" model: rollout row i = 0.5 e_0 + 0.5 e_i
    first = np.zeros((1, 3, 3))
    first[0, :, 0] = 1.0
    r = an.rollout([first])[-1]
    np.testing.assert_allclose(r, [[1.0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5]], atol=1e-12)


def test_rollout_identity_attention_is_identity_and_dict_input_is_ordered():
    eye = np.broadcast_to(np.eye(5), (3, 5, 5))
    np.testing.assert_allclose(an.rollout([eye] * 4)[-1], np.eye(5), atol=1e-12)
    layers = _hand_made_3_layers()
    as_dict = {2: layers[2], 0: layers[0], 1: layers[1]}
    np.testing.assert_allclose(an.rollout(as_dict), an.rollout(layers), atol=0)
    with pytest.raises(ValueError):
        an.rollout({0: layers[0], 2: layers[2]})


def test_rollout_real_softmax_rows_stay_stochastic():
    rng = np.random.RandomState(3)
    layers = [_softmax_rows(rng.randn(4, 7, 7) * 2) for _ in range(6)]
    r = an.rollout(layers)
    np.testing.assert_allclose(r.sum(axis=-1), 1.0, atol=1e-9)
    assert (r >= 0).all()
    np.testing.assert_allclose(r[-1], _rollout_chain(layers), atol=1e-12)


def _rollout_chain(layers):
    out = np.eye(layers[0].shape[-1])
    for a in layers:
        m = 0.5 * a.mean(axis=0) + 0.5 * np.eye(a.shape[-1])
        out = m @ out
    return out


# ---- head statistics --------------------------------------------------------------------------------
TOKENS = ["[CLS]", "the", "cat", ",", "sat", "!", "[SEP]"]


def _head(kind):
    n = len(TOKENS)
    a = np.zeros((n, n))
    if kind == "prev":
        a[0, 0] = 1.0
        a[np.arange(1, n), np.arange(n - 1)] = 1.0
    elif kind == "next":
        a[np.arange(n - 1), np.arange(1, n)] = 1.0
        a[-1, -1] = 1.0
    elif kind == "self":
        a = np.eye(n)
    elif kind == "sep":
        a[:, -1] = 1.0
    elif kind == "cls":
        a[:, 0] = 1.0
    elif kind == "uniform":
        a[:] = 1.0 / n
    elif kind == "punct":
        a[:, 3] = 0.5
        a[:, 5] = 0.5
    elif kind == "half":  # 0.5 on the first two tokens: low entropy, no category above 0.5
        a[:, 1] = 0.5
        a[:, 2] = 0.5
    return a


def test_pure_previous_token_head_has_known_statistics():
    st = an.layer_stats(_head("prev")[None], TOKENS)
    n = len(TOKENS)
    assert st["prev"][0] == pytest.approx(1.0)  # every row that has a previous token gives it all
    assert st["next"][0] == pytest.approx(0.0)
    assert st["self"][0] == pytest.approx(1.0 / n)  # only row 0 keeps itself
    assert st["entropy"][0] == pytest.approx(0.0)
    assert st["distance"][0] == pytest.approx((n - 1) / n)  # distance 1 on n-1 rows, 0 on row 0
    # [CLS] receives rows 0 and 1; [SEP] receives nothing; "," and "!" each receive one row
    assert st["cls"][0] == pytest.approx(2.0 / n)
    assert st["sep"][0] == pytest.approx(0.0)
    assert st["punct"][0] == pytest.approx(2.0 / n)
    assert an.head_label({k: float(v[0]) for k, v in st.items()}) == "prev"


def test_uniform_head_is_broad_with_max_entropy():
    n = len(TOKENS)
    st = an.layer_stats(_head("uniform")[None], TOKENS)
    assert st["entropy"][0] == pytest.approx(math.log2(n))  # bits
    assert st["entropy_norm"][0] == pytest.approx(1.0)
    # mean |i - j| over all pairs of n positions = (n^2 - 1) / (3n)
    assert st["distance"][0] == pytest.approx((n * n - 1) / (3.0 * n))
    assert st["cls"][0] == pytest.approx(1.0 / n)
    assert st["punct"][0] == pytest.approx(2.0 / n)
    assert an.head_label({k: float(v[0]) for k, v in st.items()}) == "broad"


def test_labels_of_heads_built_for_each_category():
    kinds = ["prev", "next", "self", "sep", "cls", "punct", "uniform", "half"]
    layer = np.stack([_head(k) for k in kinds])
    stats = an.head_stats([layer], TOKENS)
    labels = [r.label for r in stats.rows]
    assert labels == ["prev", "next", "self", "sep", "cls", "punct", "broad", "mixed"]
    half = stats.get(0, 7).values
    assert half["entropy"] == pytest.approx(1.0)  # bits
    assert half["entropy_norm"] == pytest.approx(1.0 / math.log2(len(TOKENS)))
    assert stats.get(0, 3).values["sep"] == pytest.approx(1.0)
    assert stats.get(0, 3).label_text == "[SEP]"


def test_threshold_is_strictly_above_half():
    n = len(TOKENS)
    a = 0.5 * _head("prev") + 0.5 * _head("uniform")  # prev mass = 0.5 + 0.5/n > 0.5
    b = 0.5 * _head("prev") + 0.5 * _head("next")  # prev = next < 0.5 (row 0 / row n-1 differ)
    st = an.head_stats([np.stack([a, b])], TOKENS)
    assert st.get(0, 0).values["prev"] == pytest.approx(0.5 + 0.5 / n)
    assert st.get(0, 0).label == "prev"
    assert st.get(0, 1).values["prev"] == pytest.approx(0.5)
    assert st.get(0, 1).label != "prev"


def test_causal_entropy_normalised_by_visible_keys():
    n = 5
    causal_uniform = np.tril(np.ones((n, n)))
    causal_uniform /= causal_uniform.sum(axis=1, keepdims=True)
    st = an.layer_stats(causal_uniform[None], ["a"] * n, causal=True)
    assert st["entropy_norm"][0] == pytest.approx(1.0)
    assert st["entropy"][0] == pytest.approx(np.mean(np.log2(np.arange(1, n + 1))))


def test_punctuation_detection():
    assert an.is_punctuation(",") and an.is_punctuation("...") and an.is_punctuation("##.")
    assert an.is_punctuation("\u00bf") and an.is_punctuation("\u3002")  # ¿ and the ideographic full stop
    assert not an.is_punctuation("[SEP]") and not an.is_punctuation("a,") and not an.is_punctuation("")
    assert not an.is_punctuation("+")  # a math symbol (Sm), not punctuation


def test_head_stats_partial_layers_and_sorting():
    layers = _hand_made_3_layers()
    toks = ["[CLS]", "a", ".", "[SEP]"]
    st = an.head_stats({0: layers[0], 2: layers[2]}, toks)
    assert [(r.layer, r.head) for r in st.rows] == [(0, 0), (0, 1), (2, 0), (2, 1)]
    by_prev = an.sort_rows(st.rows, "prev", descending=True)
    prevs = [r.values["prev"] for r in by_prev]
    assert prevs == sorted(prevs, reverse=True)
    assert (by_prev[0].layer, by_prev[0].head) == (0, 0)  # the previous-token head
    by_entropy = an.sort_rows(st.rows, "entropy")
    assert [r.values["entropy"] for r in by_entropy] == sorted(r.values["entropy"] for r in st.rows)
    assert (by_entropy[-1].layer, by_entropy[-1].head) == (0, 1)  # the uniform head
    assert [(r.layer, r.head) for r in an.sort_rows(st.rows, "head")] == [(0, 0), (2, 0), (0, 1), (2, 1)]
    with pytest.raises(ValueError):
        an.sort_rows(st.rows, "bogus")
    np.testing.assert_allclose(st.table(2)[:, an.STAT_KEYS.index("self")], [0.25, 1.0])


# ---- exports ----------------------------------------------------------------------------------------
NASTY = ["[CLS]", 'say "hi"', "a,b", "line\nbreak", "=1+1", "caf\u00e9", "[SEP]"]


def test_attention_csv_round_trips_through_csv_module():
    rng = np.random.RandomState(0)
    attn = _softmax_rows(rng.randn(3, len(NASTY), len(NASTY))).astype(np.float32)
    text = an.attention_csv(attn, NASTY, layer=4)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["layer", "head", "query_index", "query_token"] + NASTY
    assert len(rows) == 1 + 3 * len(NASTY)
    for r in rows[1:]:
        layer, h, i, tok = int(r[0]), int(r[1]), int(r[2]), r[3]
        assert layer == 4 and tok == NASTY[i]
        got = np.array([float(v) for v in r[4:]], dtype=np.float32)
        np.testing.assert_array_equal(got, attn[h, i])  # exact float32 round trip


def test_attention_csv_selected_heads_and_masked_cells():
    a = np.array([[[1.0, -np.inf], [0.25, 0.75]]], dtype=np.float32)
    rows = list(csv.reader(io.StringIO(an.attention_csv(a, ["x", "y"], heads=[0]), newline="")))
    assert rows[1][4:] == ["1", ""] and rows[2][4:] == ["0.25", "0.75"]
    with pytest.raises(ValueError):
        an.attention_csv(a, ["x"])


class _Trace:
    """A real multi-head attention computation, holding the same fields as core AttentionTrace."""

    def __init__(self, n=4, heads=2, d_k=3, causal=True):
        rng = np.random.RandomState(1)
        self.x = rng.randn(n, heads * d_k).astype(np.float32)
        self.q = rng.randn(heads, n, d_k).astype(np.float32)
        self.k = rng.randn(heads, n, d_k).astype(np.float32)
        self.v = None  # Q/K-only load
        self.scores = np.matmul(self.q, self.k.transpose(0, 2, 1))
        self.scaled = self.scores / np.float32(math.sqrt(d_k))
        self.masked = np.where(np.tril(np.ones((n, n), bool)), self.scaled, -np.inf).astype(np.float32)
        self.logits = self.masked
        self.probs = _softmax_rows(self.logits).astype(np.float32)
        self.head_outputs = self.concat = self.output = None
        self.temperature = 1.0
        self.causal = causal


def test_trace_json_shapes_values_and_nulls():
    tr = _Trace()
    toks = ["[CLS]", 'q"uote', "new\nline", "[SEP]"]
    text = an.trace_json(tr, toks, meta={"model": "minilm-l6", "layer": np.int64(2), "text": "\u0000array0"},
                         attentions={0: tr.probs, 1: tr.probs})
    doc = json.loads(text)
    assert doc["format"] == an.TRACE_FORMAT
    assert doc["model"] == "minilm-l6" and doc["layer"] == 2 and doc["text"] == "\u0000array0"
    assert doc["tokens"] == toks and doc["causal"] is True and doc["n_heads"] == 2 and doc["d_k"] == 3
    arrays = doc["arrays"]
    assert set(arrays) == set(an.TRACE_FIELDS)
    assert arrays["v"] is None and arrays["output"] is None
    for name in ("x", "q", "k", "scores", "scaled", "probs"):
        arr = getattr(tr, name)
        assert arrays[name]["shape"] == list(arr.shape)
        np.testing.assert_array_equal(np.array(arrays[name]["data"], dtype=np.float32), arr)
    masked = arrays["masked"]["data"]
    assert masked[0][0][1] is None and arrays["logits"]["data"][1][2][3] is None  # -inf is null
    assert masked[0][1][0] == pytest.approx(float(tr.masked[0, 1, 0]))
    assert doc["attentions"]["1"]["shape"] == [2, 4, 4]
