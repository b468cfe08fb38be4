"""The five tabs: every view renders for small and large inputs, with and without V/O, and its pictures
carry the right numbers, hit regions and text alternatives."""

from __future__ import annotations

import numpy as np
import pytest
from test_views_fixtures import make_ctx

from pyapp.app import interact
from pyapp.draw.colormap import VIRIDIS
from pyapp.draw.heatmap import heatmap_image
from pyapp.views import architecture, heads, overview, steps
from pyapp.views import math as mathematics

VIEWS = [overview, heads, steps, mathematics, architecture]


def _attn_grids(scene):
    return [r for r in scene.regions if r["kind"] == "attn_cell" and r["data"]["queries"]]


def _texts(scene):
    return [op["s"] for op in scene.ops if op["op"] == "text"]


def _check_scene(scene, width):
    assert scene.width == width and scene.height > 50 and scene.label
    for op in scene.ops:
        if op["op"] == "text":
            assert op["s"] == op["s"].strip() or op["s"], op
        if op["op"] in ("rect", "image", "text"):
            assert -1 <= op["x"] <= width + 1, op.get("s", op["op"])
            assert op["y"] <= scene.height + 1
        if op["op"] == "image":
            assert op["rgba"].dtype == np.uint8


def test_overview_shows_the_head_average_and_thumbnails():
    ctx = make_ctx(12, n_heads=4, seed=7, head=2, pinned_row=3)
    scene = overview.render(ctx, 1000)
    _check_scene(scene, 1000)
    main = _attn_grids(scene)[0]
    avg = ctx.trace.probs.mean(0)
    np.testing.assert_allclose(main["data"]["matrix"], avg, atol=1e-7)
    assert main["data"]["head"] is None
    image = [op for op in scene.ops if op["op"] == "image" and op["rgba"].shape[:2] == (12, 12)][0]
    np.testing.assert_array_equal(image["rgba"], heatmap_image(avg))
    thumbs = [r for r in scene.regions if r["kind"] == "head_thumb"]
    assert len(thumbs) == 4
    hit = scene.hit_test(thumbs[1]["x"] + 20, thumbs[1]["y"] + 30)
    assert interact.action(hit) == {"head": 1, "tab": "heads"}
    assert "head 1" in interact.tooltip(hit)
    alt = scene.alt_text.splitlines()
    assert len(alt) == 1 + 12 and alt[1].startswith("[CLS] (0) → ")
    assert any(t.startswith("Pinned: '%s'" % ctx.tokens[3]) for t in _texts(scene))


def test_heads_view_enlarges_the_selected_head():
    ctx = make_ctx(9, d_model=36, n_heads=6, head=4)
    for width in (1300, 360):
        scene = heads.render(ctx, width)
        _check_scene(scene, width)
        grids = _attn_grids(scene)
        assert len(grids) == 1 and grids[0]["data"]["head"] == 4
        np.testing.assert_array_equal(grids[0]["data"]["matrix"], ctx.trace.probs[4])
        thumbs = [r for r in scene.regions if r["kind"] == "head_thumb"]
        assert [r["data"]["action"] for r in thumbs] == [{"head": k} for k in range(6)]
        i, j = np.unravel_index(np.argmax(ctx.trace.probs[4]), (9, 9))
        big = [op for op in scene.ops if op["op"] == "image" and op["w"] == grids[0]["w"]][0]
        assert tuple(big["rgba"][i, j]) == tuple(VIRIDIS[255])
        assert "Head 4 of layer 0" in scene.alt_text


@pytest.mark.parametrize("n", [2, 40])
@pytest.mark.parametrize("values", [True, False])
@pytest.mark.parametrize("causal", [False, True])
def test_every_step_renders(n, values, causal):
    ctx = make_ctx(n, d_model=48, n_heads=6, values=values, causal=causal, head=5, pinned_row=n - 1)
    assert steps.N_STEPS == 9 and len(steps.STEP_TITLES) == 9
    for k in range(1, 10):
        ctx.step = k
        for width in (1200, 360):
            scene = steps.render(ctx, width)
            _check_scene(scene, width)
            texts = _texts(scene)
            assert "Step %d · %s" % (k, steps.STEP_TITLES[k - 1]) in texts
            for cap in steps.captions(ctx, k):
                assert cap.startswith(cap.split(":")[0])
            joined = " ".join(texts)
            if not values and k in (7, 8, 9):
                assert "loading" in joined
            if k == 3 and not values:
                assert "loading" in joined


def test_step_captions_track_shapes():
    ctx = make_ctx(12, d_model=384, n_heads=12, head=3)
    assert "Q_h, K_h, V_h: n × d_k = 12 × 32" in steps.captions(ctx, 3)[1]
    assert steps.captions(ctx, 2) == ["X: n × d_model = 12 × 384"]
    assert "(12 × 32)(32 × 12) = 12 × 12" in steps.captions(ctx, 4)[0]
    assert "√32 = S_h / 5.657" in steps.captions(ctx, 5)[0]
    assert "12 × (12·32) = 12 × 384" in steps.captions(ctx, 8)[0]


def test_step_progress_dots_jump_to_steps():
    ctx = make_ctx(5, step=4)
    scene = steps.render(ctx, 900)
    dots = [r for r in scene.regions if r["kind"] == "step_dot"]
    assert [r["data"]["action"] for r in dots] == [{"step": k} for k in range(1, 10)]
    hit = scene.hit_test(dots[6]["x"] + 5, dots[6]["y"] + 5)
    assert interact.action(hit) == {"step": 7} and steps.STEP_TITLES[6] in interact.tooltip(hit)


def test_step6_softmax_rows_sum_to_one_and_step4_shows_scores():
    ctx = make_ctx(10, head=1, step=6)
    scene = steps.render(ctx, 1200)
    grids = _attn_grids(scene)
    np.testing.assert_array_equal(grids[0]["data"]["matrix"], ctx.trace.logits[1])
    np.testing.assert_array_equal(grids[1]["data"]["matrix"], ctx.trace.probs[1])
    assert _texts(scene).count("1.000") == 10
    ctx.step = 4
    scene = steps.render(ctx, 1200)
    grid = _attn_grids(scene)[0]
    np.testing.assert_array_equal(grid["data"]["matrix"], ctx.trace.scores[1])
    hit = scene.hit_test(grid["x"] + 1, grid["y"] + 1)
    assert "score %.6f" % ctx.trace.scores[1][0, 0] in interact.tooltip(hit)
    cells = [r for r in scene.regions if r["kind"] == "matrix_cell"]
    q = [r for r in cells if r["data"]["name"] == "Q_h"][0]
    hit = scene.hit_test(q["x"] + q["w"] - 0.5, q["y"] + 0.5)
    assert interact.tooltip(hit).startswith("Q_h[0, %d] = %.6f" % (ctx.d_k - 1, ctx.trace.q[1][0, -1]))


def test_step_tokens_and_concat_highlight():
    ctx = make_ctx(6, n_heads=4, head=2, step=1, ids=[101, 5, 6, 7, 8, 102], text="a bb c d",
                   offsets=[(0, 0), (0, 1), (2, 4), (5, 6), (7, 8), (0, 0)])
    scene = steps.render(ctx, 800)
    chips = [r for r in scene.regions if r["kind"] == "token"]
    assert interact.tooltip(scene.hit_test(chips[2]["x"] + 2, chips[2]["y"] + 2)) == (
        "token 2: '%s' (id 6), characters 2–4 of the text “bb”" % ctx.tokens[2])
    assert len(chips) == 6 and interact.action(scene.hit_test(chips[2]["x"] + 2, chips[2]["y"] + 2)) == {
        "pinned_row": 2}
    assert "5 · id 102" in _texts(scene)
    ctx.step = 8
    scene = steps.render(ctx, 800)
    band = [op for op in scene.ops if op["op"] == "rect" and op["stroke"] == "#ff8c00"]
    grid = [r for r in scene.regions if r["kind"] == "matrix_cell" and r["data"]["name"] == "Concat(heads)"][0]
    cw = grid["w"] / grid["cols"]
    assert len(band) == 1 and band[0]["x"] == pytest.approx(grid["x"] + 2 * ctx.d_k * cw - 1)


def test_mathematics_typesets_real_numbers_with_ellipses():
    ctx = make_ctx(12, d_model=48, n_heads=4, head=1)
    scene = mathematics.render(ctx, 1100)
    _check_scene(scene, 1100)
    texts = _texts(scene)
    for s in ("Attention", "softmax", "MultiHead", "Concat"):
        assert s in texts
    q = ctx.trace.q[1]
    shown = "%.2f" % q[0, 0]
    assert shown.replace("-", "−") in texts
    assert "%.2f" % ctx.trace.probs[1][0, 0] in texts
    assert "12×12" in texts and "12×12" in texts and "384×12" not in texts
    dots = [op for op in scene.ops if op["op"] == "rect" and op.get("radius", 0) > 0 and op["w"] < 4]
    assert len(dots) >= 9  # ⋯ ⋮ ⋱ drawn as dots
    lines = [op for op in scene.ops if op["op"] == "line"]
    assert lines  # fraction bars
    sqrt_paths = [op for op in scene.ops if op["op"] == "path" and len(op["points"]) == 5]
    assert sqrt_paths
    narrow = mathematics.render(ctx, 360)
    _check_scene(narrow, 360)
    ctx_qk = make_ctx(5, values=False)
    assert any("loading" in t for t in _texts(mathematics.render(ctx_qk, 700)))


def test_architecture_blocks_jump_to_steps():
    ctx = make_ctx(5)
    for arch in ("encoder", "decoder", "transformer"):
        ctx.arch = arch
        for width in (1300, 360):
            scene = architecture.render(ctx, width)
            _check_scene(scene, width)
            blocks = [r for r in scene.regions if r["kind"] == "block"]
            tips = {r["data"]["tooltip"]: r["data"].get("action") for r in blocks}
            mha = [a for t, a in tips.items() if t.startswith(("Multi-head self-attention", "Self-attention with"))]
            assert mha and all(a["tab"] == "steps" for a in mha)
            assert any(a == {"tab": "steps", "step": 8} for a in tips.values())
            buttons = [r["data"]["action"] for r in scene.regions if r["kind"] == "button"]
            assert buttons == [{"arch": "encoder"}, {"arch": "decoder"}, {"arch": "transformer"}]
            highlighted = [op for op in scene.ops if op["op"] == "rect" and op["line_width"] == 2.5]
            assert highlighted
            assert ("%d×" % ctx.n_layers) in _texts(scene)
    ctx.arch = "encoder"
    scene = architecture.render(ctx, 1300)
    mha = [r for r in scene.regions if r["data"].get("tooltip", "").startswith("Multi-head self-attention")][0]
    hit = scene.hit_test(mha["x"] + 3, mha["y"] + 3)
    assert interact.action(hit) == {"tab": "steps", "step": 3}


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v.__name__.split(".")[-1])
def test_views_handle_two_tokens_and_many(view):
    for n in (2, 130):
        ctx = make_ctx(n, n_heads=2, d_model=16, step=6)
        for width in (360, 1400):
            scene = view.render(ctx, width)
            _check_scene(scene, width)
            if view is not architecture:
                assert scene.alt_text
