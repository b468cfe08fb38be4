"""Decoder pictures and the next-token view, in CPython on the shipped SmolLM2: grouped-query attention,
RoPE dials, the sampler's candidates and the ``next`` view's bars and controls."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from pyapp.app.context import ViewContext
from pyapp.app.prediction import TOP_K_CHOICES, Prediction, Sampler, candidates
from pyapp.core.files import LocalModel
from pyapp.core.sampling import next_token_probs
from pyapp.draw.gqa import KV_COLOR, Q_COLOR, draw_gqa
from pyapp.draw.rope import draw_rope, rope_pairs, shown_positions
from pyapp.draw.scene import Scene
from pyapp.views import next as next_view

TEXT = "The quick brown fox jumps over the lazy dog near the river"


@pytest.fixture(scope="module")
def smollm2(models_dir):
    m = LocalModel("smollm2-135m", models_dir)
    ids = m.tokenizer.encode(TEXT).ids
    m.need(ids, 0, ("qk", "vo"))
    return m, ids, m.encoder.trace(ids, 0)


@pytest.fixture(scope="module")
def logits(smollm2):
    m, ids, _ = smollm2
    m.need(ids, next_token=True)
    return m.encoder.next_token_logits(ids)


def test_gqa_picture_links_each_query_head_to_its_kv_head(smollm2):
    _, _, t = smollm2
    s = Scene(900, 300)
    h = draw_gqa(s, 0, 0, 880, t.n_heads, t.kv_heads, 4, t.d_k)
    assert 80 < h < 300
    heads = [r for r in s.regions if r["kind"] == "gqa_head"]
    assert [r["data"]["action"] for r in heads] == [{"head": i} for i in range(9)]
    kv = [r["data"]["tooltip"] for r in s.regions if r["kind"] == "gqa_kv"]
    assert kv == ["K/V head 0: read by query heads 0, 1, 2", "K/V head 1: read by query heads 3, 4, 5",
                  "K/V head 2: read by query heads 6, 7, 8"]
    for r in heads:  # each query head's tooltip names the kv head the trace says it reads
        hq = r["data"]["action"]["head"]
        assert "reads K/V head %d" % t.kv_head(hq) in r["data"]["tooltip"]
    filled = [op for op in s.ops if op["op"] == "rect" and op["fill"] in (Q_COLOR, KV_COLOR)]
    assert len(filled) == 2  # the selected query head (4) and its kv head (1)
    texts = [op["s"] for op in s.ops if op["op"] == "text"]
    assert any("9 query heads share 3 K/V heads" in x and "192 × d_model" in x for x in texts)


def test_rope_dials_show_the_real_rotation(smollm2, models_dir):
    m, _, t = smollm2
    toks = m.tokenizer.encode(TEXT).tokens
    head = 4
    s = Scene(600, 900)
    height = draw_rope(s, 0, 0, 560, t.q_unrotated[head], t.q[head], toks, m.entry.rope_theta, "Q")
    dials = [r for r in s.regions if r["kind"] == "rope_dial"]
    pairs, rows = rope_pairs(t.d_k), shown_positions(len(toks))
    assert pairs == [0, 1, 8, 31] and rows == [0, 1, 2, 3, 4, 5, 6, 11] and height > 8 * 34
    assert len(dials) == len(pairs) * len(rows)
    half = t.d_k // 2
    for r in dials:
        tip = r["data"]["tooltip"]
        p, i = int(re.search(r"position (\d+)", tip).group(1)), int(re.search(r"coordinates (\d+)", tip).group(1))
        nums = [float(v) for v in re.findall(r"-?\d+\.\d+", tip.split("coordinates")[1])]
        before, angle, after = nums[0:2], nums[-3], nums[-2:]
        np.testing.assert_allclose(before, t.q_unrotated[head, p, [i, i + half]], atol=1e-4)
        np.testing.assert_allclose(after, t.q[head, p, [i, i + half]], atol=1e-4)
        assert angle == pytest.approx(p * m.entry.rope_theta ** (-2 * i / t.d_k), abs=1e-4)
        c, sn = math.cos(angle), math.sin(angle)  # the pair really is turned by that angle
        x, y = t.q_unrotated[head, p, [i, i + half]]
        np.testing.assert_allclose([x * c - y * sn, x * sn + y * c], t.q[head, p, [i, i + half]], atol=1e-4)


def test_candidates_follow_core_sampling(logits):
    decode = str
    for sampler in (Sampler(), Sampler(0.7, 0, 0.9), Sampler(1.5, 5, 1.0), Sampler(1e-30, 0, 1.0)):
        pred = candidates(logits, decode, decode, sampler)
        probs = next_token_probs(logits, sampler.temperature, sampler.top_k, sampler.top_p)
        assert pred.kept == int(np.count_nonzero(probs)) and pred.vocab_size == 49152
        want = [int(i) for i in np.argsort(-probs, kind="stable")[:min(10, pred.kept)]]
        assert [c.id for c in pred.candidates] == want
        assert all(c.probability == pytest.approx(float(probs[c.id]), abs=0) for c in pred.candidates)
        assert all(c.raw == pytest.approx(float(next_token_probs(logits)[c.id])) for c in pred.candidates)
    assert len(candidates(logits, decode, decode, Sampler(1e-30)).candidates) == 1  # greedy


def _ctx(smollm2, pred):
    m, ids, t = smollm2
    enc = m.tokenizer.encode(TEXT)
    ctx = ViewContext(tokens=enc.tokens, trace=t, text=TEXT, ids=ids, n_layers=30, model_name="SmolLM2")
    ctx.prediction = pred
    return ctx


def test_next_view_bars_append_the_token(smollm2, logits):
    m = smollm2[0]
    pred = candidates(logits, lambda i: m.tokenizer.decode([i]), m.tokenizer.id_to_token, Sampler(0.7, 0, 0.9))
    scene = next_view.render(_ctx(smollm2, pred), 900)
    bars = [r for r in scene.regions if r["kind"] == "next_token"]
    assert len(bars) == len(pred.candidates) >= 2
    assert [r["data"]["action"] for r in bars] == [{"text": TEXT + c.text} for c in pred.candidates]
    assert bars[0]["y"] < bars[1]["y"]  # best first
    acts = [r["data"]["action"] for r in scene.regions if r["kind"] == "button"]
    assert {"sample_t": 0.7} in acts and {"top_p": 0.9} in acts
    assert [a["top_k"] for a in acts if "top_k" in a] == list(TOP_K_CHOICES)
    assert pred.candidates[0].text.strip() and next_view.visible(pred.candidates[0].text) in scene.alt_text
    wide = [op for op in scene.ops if op["op"] == "rect" and op["fill"] == next_view.BAR and op["h"] > 10
            and op["y"] >= bars[0]["y"]]
    assert len(wide) == len(bars) and wide[0]["w"] >= wide[-1]["w"]  # bar length follows the probability


def test_next_view_while_loading_and_for_an_encoder(smollm2):
    loading = Prediction(loading="LM head: 12 of 1,537 files (0.2 of 30.2 MB)")
    scene = next_view.render(_ctx(smollm2, loading), 700)
    assert any(op["op"] == "text" and "12 of 1,537 files" in op["s"] for op in scene.ops)
    assert not [r for r in scene.regions if r["kind"] == "next_token"]
    enc = next_view.render(_ctx(smollm2, Prediction(decoder=False)), 700)
    text = " ".join(op["s"] for op in enc.ops if op["op"] == "text")
    assert "is an encoder" in text and "no next-token" in text and not enc.regions


def test_bpe_tokens_are_labelled_by_the_text_they_stand_for(smollm2):
    from pyapp.app.tokens import labels

    m = smollm2[0]
    enc = m.tokenizer.encode("Hi there\nnew line 🙂 <|im_start|> 東京 🙂🙃")
    got = labels(enc.tokens, "bpe")
    assert got[:4] == ["Hi", "␣there", "↵", "new"]
    assert "<|im_start|>" in got
    emoji = [g for g in got if g.startswith("‹")]
    assert emoji and all(re.fullmatch(r"‹[0-9a-f]{2}( [0-9a-f]{2})*›", g) for g in emoji)
    assert labels(["[CLS]", "##ing"], "wordpiece") == ["[CLS]", "##ing"]
