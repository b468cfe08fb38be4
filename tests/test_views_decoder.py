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


# ---- the page's views on the decoder, through the same Session as the page (pyapp.figure) -------------
@pytest.fixture(scope="module")
def figs():
    from pyapp.figures import figure

    cache = {}

    def get(view, **kw):
        key = (view, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = figure(TEXT, view=view, model="smollm2-135m", **kw)
        return cache[key]
    return get


def _all_text(scene):
    return " ".join(op["s"] for op in scene.ops if op["op"] == "text")


def test_decoder_steps_are_the_models_own(figs):
    from pyapp.figures import FigureError, figure

    titles = []
    for k in range(1, 12):
        f = figs("step:%d" % k)
        assert f.context.step_keys[k - 1] == ["tokens", "embed", "qkv", "rope", "scores", "scale", "mask",
                                              "softmax", "values", "concat", "output"][k - 1]
        titles.append(next(op["s"] for op in f.scene.ops if op["op"] == "text" and op["s"].startswith("Step %d ·" % k)))
        assert "step %d of 11" % k in _all_text(f.scene)
    assert titles[3] == "Step 4 · Rotary positions (RoPE)" and titles[6] == "Step 7 · Causal mask"
    assert titles[1] == "Step 2 · Embeddings → RMSNorm" and titles[2] == "Step 3 · Q, K, V (grouped-query)"
    with pytest.raises(FigureError, match="steps 1..9"):
        figure(TEXT, view="step:10")                                  # MiniLM has nine
    qkv = figs("step:3").scene
    assert [r["data"]["action"] for r in qkv.regions if r["kind"] == "gqa_head"] == [{"head": h} for h in range(9)]
    assert "K_0" in _all_text(qkv) and "shared by heads 0–2" in _all_text(qkv)
    rope = figs("step:4").scene
    assert len([r for r in rope.regions if r["kind"] == "rope_dial"]) == 2 * 4 * 8
    mask = figs("step:7")
    grids = [r for r in mask.scene.regions if r["kind"] == "attn_cell"]
    assert len(grids) == 2 and grids[1]["data"]["mask"] is not None
    t = mask.context.trace
    assert np.isneginf(t.masked[0][np.triu_indices(t.masked.shape[-1], 1)]).all()


def test_math_architecture_rollout_stats_speak_decoder(figs):
    math_text = _all_text(figs("math").scene)
    assert "Grouped-query attention: 9 query heads share 3 key/value heads" in math_text
    assert "Rotary positions (RoPE)" in math_text and "θ_i = 100000^(−2i/64)" in math_text
    arch = figs("architecture")
    assert [r["data"]["action"] for r in arch.scene.regions if r["kind"] == "button"] == \
        [{"arch": "decoder"}, {"arch": "transformer"}]
    assert "decoder-only causal Transformer" in _all_text(arch.scene)
    roll = figs("rollout")
    assert "attention sink" in _all_text(roll.scene)
    bars = [r for r in roll.scene.regions if r["kind"] == "rollout_bar"]
    last = roll.context.tokens[-1]
    assert bars and all(r["data"]["tooltip"].startswith("'%s' →" % last) for r in bars)
    stats = figs("stats").scene
    labels = [op["s"] for op in stats.ops if op["op"] == "text"]
    assert "sink" in labels and "first" in labels and "[CLS]" not in labels
    grid = [op["s"] for op in figs("model").scene.ops if op["op"] == "text"]
    assert "sink" in grid and "[CLS]" not in grid      # the model grid's head labels too


def test_session_fetches_the_lm_head_only_for_the_next_tab(models_dir):
    from pyapp.app.session import Session
    from pyapp.app.state import AppState
    from pyapp.core.files import fetch_into, load_local_catalogue

    session = Session(load_local_catalogue(models_dir))
    st = AppState(text=TEXT, model="smollm2-135m")
    first = session.plan(st)                      # the tokenizer, and beside it what any text needs
    fetch_into(session.store, first.files(), models_dir)
    plan = session.plan(st)                       # then this text's rows
    assert not first.later and not plan.later
    assert {f.part for f in first.required + plan.required if f.part.startswith("layer")} == {"layer.0.qk"}
    nxt = session.plan(st.with_(tab="next"))
    assert any(f.part == "head" for f in nxt.later) and len(nxt.later) > 1500
    assert "language-model head" in session.later_label(st.with_(tab="next"), nxt)
    fetch_into(session.store, nxt.required, models_dir)
    pred = session.context(st.with_(tab="next")).prediction
    assert not pred.ready and "MB" in pred.loading
    fetch_into(session.store, nxt.later, models_dir)
    ctx = session.context(st.with_(tab="next", sample_t=0.7, top_k=5))
    assert ctx.prediction.ready and len(ctx.prediction.candidates) == 5
    assert ctx.tokens[1] == "␣quick" and ctx.causal and ctx.causal_only
    assert session.normalise(st.with_(tab="steps", step=11)).step == 11
    mini = AppState(text=TEXT, tab="steps", step=11)
    assert session.normalise(mini).step == 9                          # an encoder has nine


def test_state_round_trips_the_sampler():
    from pyapp.app.state import AppState, parse_query

    st = AppState(model="smollm2-135m", tab="next", sample_t=0.7, top_k=5, top_p=0.9)
    back, problems = parse_query(st.to_query())
    assert back == st and not problems
    bad, problems = parse_query("tab=next&top_p=0&top_k=-3&sample_t=100")
    assert (bad.top_p, bad.top_k, bad.sample_t) == (0.01, 0, 10.0) and len(problems) == 3


def test_formulas_show_only_the_biases_the_model_has(figs):
    """Llama's projections have no bias: no b_Q / b_O in the decoder's captions or tooltips; MiniLM's have one."""
    from pyapp.figures import figure

    def texts(f):
        return _all_text(f.scene) + " " + " ".join(str(r["data"].get("tooltip", "")) for r in f.scene.regions)

    for view in ("step:3", "step:11", "math"):
        shown = texts(figs(view))
        assert "b_Q" not in shown and "b_O" not in shown and "+ b" not in shown, view
    assert "Q_h = X W_Q,hᵀ :" in _all_text(figs("step:3").scene)
    assert "+ b_Q,h" in _all_text(figure(TEXT, view="step:3").scene)          # MiniLM (BERT) has q_bias
    assert "+ b_O" in _all_text(figure(TEXT, view="step:9").scene)
    assert "X W_K,0 + b_K,0" in texts(figure(TEXT, view="math"))
