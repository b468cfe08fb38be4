"""Numbers behind the research views: model grid, head view lines, neuron view, rollout, head statistics.

Contexts are built with the real core (pyapp.core.attention) on a small seeded 3-layer stack; the views
are checked through their scenes (ops, hit regions) and, where it matters, through real pixels drawn by
the Pillow backend.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from pyapp.app.context import ViewContext
from pyapp.app.interact import action, hover, tooltip
from pyapp.core import analysis as an
from pyapp.core.attention import AttentionWeights, multi_head_attention
from pyapp.draw.colormap import VIRIDIS, weight_colors
from pyapp.views import lines as head_view
from pyapp.views import model as model_view
from pyapp.views import neuron as neuron_view
from pyapp.views import rollout as rollout_view
from pyapp.views import stats as head_stats_view

TOKENS = ["[CLS]", "the", "cat", ",", "sat", "on", "mats", ".", "[SEP]"]
N, D_MODEL, HEADS, LAYERS = len(TOKENS), 24, 3, 3


def _weights(seed: int) -> AttentionWeights:
    rng = np.random.RandomState(seed)

    def lin():
        return (rng.randn(D_MODEL, D_MODEL) * 0.5).astype(np.float32), (rng.randn(D_MODEL) * 0.1).astype(np.float32)

    (qw, qb), (kw, kb), (vw, vb), (ow, ob) = lin(), lin(), lin(), lin()
    return AttentionWeights(qw, qb, kw, kb, vw, vb, ow, ob, HEADS)


def _stack(causal: bool = False):
    """Traces of a 3-layer attention-only stack (x_(l+1) = x_l + MHA(x_l)), real computations."""
    x = np.random.RandomState(7).randn(N, D_MODEL).astype(np.float32)
    traces = []
    for layer in range(LAYERS):
        tr = multi_head_attention(x, _weights(10 + layer), causal=causal)
        traces.append(tr)
        x = x + tr.output
    return traces


TRACES = _stack()


def _ctx(layer: int = 1, head: int = 0, layers=None, traces=None, **fields) -> ViewContext:
    """A context of the test stack; ``fields``: ViewContext fields (attentions, pinned_row, view state)."""
    traces = traces or TRACES
    layers = range(LAYERS) if layers is None else layers
    fields.setdefault("attentions", {k: traces[k].probs for k in layers})
    return ViewContext(tokens=list(TOKENS), trace=traces[layer], layer=layer, n_layers=LAYERS, head=head,
                       model_name="test-stack", **fields)


def _regions(scene, kind):
    return [r for r in scene.regions if r["kind"] == kind]


def _center(r):
    return r["x"] + r["w"] / 2.0, r["y"] + r["h"] / 2.0


def _image_at(scene, x, y):
    """The topmost image op covering (x, y)."""
    for op in reversed(scene.ops):
        if op["op"] == "image" and op["x"] <= x < op["x"] + op["w"] and op["y"] <= y < op["y"] + op["h"]:
            return op
    raise AssertionError("no image at %r" % ((x, y),))


# ---- model view -------------------------------------------------------------------------------------
def test_model_view_thumbnails_click_open_and_strongest_cell_is_top_colour():
    ctx = _ctx(layer=1, head=2)
    scene = model_view.render(ctx, 700)
    thumbs = _regions(scene, "model_thumb")
    assert len(thumbs) == LAYERS * HEADS
    for r in thumbs:
        act = r["data"]["action"]
        hit = scene.hit_test(*_center(r))
        assert action(hit) == {"layer": act["layer"], "head": act["head"], "tab": model_view.OPEN_TAB}
        assert tooltip(hit).startswith("layer %d · head %d" % (act["layer"], act["head"]))
        probs = TRACES[act["layer"]].probs[act["head"]]  # (n, n)
        i, j = np.unravel_index(int(np.argmax(probs)), probs.shape)
        img = _image_at(scene, *_center(r))
        assert img["rgba"].shape[:2] == (N, N)
        np.testing.assert_array_equal(img["rgba"][i, j], VIRIDIS[255])  # scaled to the head's own max
        np.testing.assert_array_equal(img["rgba"], weight_colors(probs, float(probs.max())))


def test_model_view_pixels_with_pillow():
    pytest.importorskip("PIL")
    from pyapp.raster import render

    ctx = _ctx(layer=0, head=0)
    scene = model_view.render(ctx, 700)
    r = [t for t in _regions(scene, "model_thumb") if t["data"]["action"] == {"layer": 2, "head": 1, "tab": "heads"}][0]
    probs = TRACES[2].probs[1]
    i, j = np.unravel_index(int(np.argmax(probs)), probs.shape)
    img = _image_at(scene, *_center(r))
    cell_w, cell_h = img["w"] / N, img["h"] / N
    px = render(scene).getpixel((int(img["x"] + (j + 0.5) * cell_w), int(img["y"] + (i + 0.5) * cell_h)))
    assert tuple(px[:3]) == tuple(int(v) for v in VIRIDIS[255, :3])


def test_model_view_progressive_layers():
    ctx = _ctx(layer=0, layers=[0, 1])
    ctx.attentions = {0: TRACES[0].probs}
    assert model_view.missing_layers(ctx) == [1, 2]
    scene = model_view.render(ctx, 700)
    assert {r["data"]["action"]["layer"] for r in _regions(scene, "model_thumb")} == {0}
    texts = [op["s"] for op in scene.ops if op["op"] == "text"]
    assert "computing layer 1…" in texts and "computing layer 2…" in texts
    assert any("Computing layers: 1 of 3 done." in s for s in texts)
    # the shown layer's own trace counts as computed
    ctx2 = _ctx(layer=2, attentions={})
    assert model_view.missing_layers(ctx2) == [0, 1]


# ---- head view --------------------------------------------------------------------------------------
def _lines(scene):
    return [op for op in scene.ops if op["op"] == "line"]


def test_head_view_line_alpha_is_the_weight_and_colour_the_head():
    ctx = _ctx(layer=1, heads_shown=[0, 2])
    scene = head_view.render(ctx, 800)
    probs = TRACES[1].probs
    lines = _lines(scene)
    expected = int((probs[[0, 2]] >= head_view.MIN_WEIGHT).sum())
    assert len(lines) == expected
    ys = sorted({round(op["y0"], 3) for op in lines})
    row_of = {y: i for i, y in enumerate(sorted({round(r["y"] + r["h"] / 2, 3)
                                                 for r in _regions(scene, "head_token")}))}
    assert len(row_of) == N and set(ys) <= set(row_of)
    for op in lines:
        h = head_view.HEAD_COLORS.index(op["color"])
        i, j = row_of[round(op["y0"], 3)], row_of[round(op["y1"], 3)]
        assert op["alpha"] == pytest.approx(float(probs[h, i, j]), abs=1e-7)
    # weakest first: the strongest lines are drawn on top
    alphas = [op["alpha"] for op in lines]
    assert alphas == sorted(alphas)


def test_head_view_hover_shows_only_that_tokens_lines():
    probs = TRACES[0].probs
    left = head_view.render(_ctx(layer=0, heads_shown=[1], hover_token=4, hover_side="left"), 800)
    lines = _lines(left)
    assert len(lines) == int((probs[1, 4] >= head_view.MIN_WEIGHT).sum())
    assert len({round(op["y0"], 3) for op in lines}) == 1  # all from query 4
    right = head_view.render(_ctx(layer=0, heads_shown=[1], hover_token=4, hover_side="right"), 800)
    assert len(_lines(right)) == int((probs[1, :, 4] >= head_view.MIN_WEIGHT).sum())
    assert len({round(op["y1"], 3) for op in _lines(right)}) == 1  # all into key 4
    # one head shown: the weights are printed beside the keys
    texts = [op["s"] for op in left.ops if op["op"] == "text"]
    for j in range(N):
        assert "%.2f" % float(probs[1, 4, j]) in texts


def test_head_view_token_hover_and_head_toggle_actions():
    ctx = _ctx(layer=0, heads_shown=[0, 1])
    scene = head_view.render(ctx, 800)
    toks = _regions(scene, "head_token")
    assert len(toks) == 2 * N
    left3 = [r for r in toks if r["data"]["hover"] == {"hover_token": 3, "hover_side": "left"}][0]
    hit = scene.hit_test(*_center(left3))
    assert hit.data["hover"] == {"hover_token": 3, "hover_side": "left"}
    assert action(hit) == {"hover_token": 3, "hover_side": "left"}
    assert "','" in tooltip(hit) or "(3)" in tooltip(hit)
    pinned = head_view.render(_ctx(layer=0, hover_token=3, hover_side="left"), 800)
    r = [t for t in _regions(pinned, "head_token") if t["data"]["hover"]["hover_token"] == 3
         and t["data"]["hover"]["hover_side"] == "left"][0]
    assert action(pinned.hit_test(*_center(r))) == {"hover_token": None}
    assert hover(pinned.hit_test(*_center(r))) == {"hover_token": 3, "hover_side": "left"}  # transient state
    assert hover(None) is None and hover(scene.hit_test(-5, -5)) is None
    toggle = _regions(scene, "head_toggle")[0]
    assert hover(scene.hit_test(*_center(toggle))) is None  # only token regions carry hover state
    toggles = {r["data"]["tooltip"]: r["data"]["action"] for r in _regions(scene, "head_toggle")}
    assert toggles["hide head 1"] == {"heads_shown": [0]}
    assert toggles["show head 2"] == {"heads_shown": [0, 1, 2]}
    assert toggles["show every head"] == {"heads_shown": [0, 1, 2]}
    assert toggles["hide every head"] == {"heads_shown": []}
    assert head_view.heads_shown(_ctx(heads_shown=["1", 9, "x", 1])) == [1]
    assert head_view.heads_shown(_ctx()) == [0, 1, 2]
    assert _lines(head_view.render(_ctx(heads_shown=[]), 800)) == []


# ---- neuron view ------------------------------------------------------------------------------------
def test_neuron_view_products_sum_to_the_scores():
    ctx = _ctx(layer=2, head=1, pinned_row=5)
    tr = TRACES[2]
    scene = neuron_view.render(ctx, 900)
    grids = {r["data"]["name"]: r for r in _regions(scene, "matrix_cell")}
    assert set(grids) == {"q", "K_h", "q⊙k"}
    prod = grids["q⊙k"]["data"]["matrix"]  # (n, d_k)
    np.testing.assert_allclose(prod, tr.k[1] * tr.q[1, 5][None, :], rtol=1e-6)
    np.testing.assert_allclose(prod.sum(axis=1), tr.scores[1, 5], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(grids["K_h"]["data"]["matrix"], tr.k[1])
    np.testing.assert_array_equal(grids["q"]["data"]["matrix"][0], tr.q[1, 5])
    texts = [op["s"] for op in scene.ops if op["op"] == "text"]
    for j in range(N):
        assert "%.2f" % float(tr.scores[1, 5, j]) in texts
        assert "%.2f" % float(tr.scaled[1, 5, j]) in texts
        assert "%.3f" % float(tr.probs[1, 5, j]) in texts
    # tooltip of a product cell: the exact product
    g = grids["q⊙k"]
    hit = scene.hit_test(g["x"] + 2.5 * g["w"] / tr.d_k, g["y"] + 3.5 * g["h"] / N)
    assert hit.row == 3 and hit.col == 2
    assert "%.6f" % float(prod[3, 2]) in tooltip(hit)


def test_neuron_view_softmax_bars_and_driving_dimensions():
    ctx = _ctx(layer=0, head=2, pinned_row=1)
    tr = TRACES[0]
    w = tr.probs[2, 1]
    scene = neuron_view.render(ctx, 900)
    bars = [op for op in scene.ops if op["op"] == "rect" and op.get("fill") == neuron_view.BAR_COLOR
            and op["w"] > 4.5]
    big = [op for op in bars if op["h"] < 18]  # the softmax bars (not the key-row marker)
    widths = np.array([op["w"] for op in big])
    shown = w[w * 110.0 >= 1.0]
    np.testing.assert_allclose(widths / widths.max(), shown / shown.max(), rtol=1e-6)
    strongest = int(np.argmax(w))
    dims = neuron_view.top_dims(tr.k[2, strongest] * tr.q[2, 1])
    assert dims == [int(d) for d in np.argsort(-(tr.k[2, strongest] * tr.q[2, 1]))[:3]]
    sentence = [op["s"] for op in scene.ops if op["op"] == "text" and op["s"].startswith("Strongest key")][0]
    for d in dims:
        assert "dim %d" % d in sentence
    chips = {r["data"]["action"]["pinned_row"] for r in _regions(scene, "neuron_query")}
    assert chips == set(range(N))
    assert {r["data"]["action"]["head"] for r in _regions(scene, "neuron_head")} == set(range(HEADS))


def test_neuron_view_causal_and_temperature():
    traces = _stack(causal=True)
    tr = traces[1].with_temperature(2.0)
    ctx = ViewContext(tokens=list(TOKENS), trace=tr, layer=1, n_layers=LAYERS, head=0, pinned_row=2)
    scene = neuron_view.render(ctx, 900)
    texts = [op["s"] for op in scene.ops if op["op"] == "text"]
    assert texts.count("masked") == N - 3  # keys 3..n-1 are after query 2
    assert "÷T" in texts
    assert "%.2f" % float(tr.logits[0, 2, 1]) in texts


# ---- rollout view -----------------------------------------------------------------------------------
def test_rollout_view_heatmap_is_the_rollout():
    ctx = _ctx(layer=0)
    scene = rollout_view.render(ctx, 900)
    expected = an.rollout([t.probs for t in TRACES])[-1]
    cells = _regions(scene, "attn_cell")
    assert len(cells) == 1
    np.testing.assert_allclose(cells[0]["data"]["matrix"], expected, atol=1e-12)
    img = _image_at(scene, *_center(cells[0]))
    np.testing.assert_array_equal(img["rgba"], weight_colors(expected, float(expected.max())))
    # bars of the [CLS] row: widths proportional to the rollout
    bars = [op for op in scene.ops if op["op"] == "rect" and op.get("fill") == rollout_view.BAR_COLOR
            and op["h"] > 8]
    widths = np.array([op["w"] for op in bars])
    row = expected[0]
    np.testing.assert_allclose(widths / widths.max(), row / row.max(), rtol=1e-9)
    tips = [r["data"]["tooltip"] for r in _regions(scene, "rollout_bar")]
    assert len(tips) == N and ("rollout %.4f" % row[4]) in tips[4]


def test_rollout_view_partial_layers():
    ctx = _ctx(layer=0, layers=[0, 2])  # layer 1 missing: only layer 0 is contiguous
    assert ctx.contiguous_layers() == 1
    np.testing.assert_allclose(rollout_view.rollout_matrix(ctx), an.residual_attention(TRACES[0].probs))
    scene = rollout_view.render(ctx, 900)
    assert "ready" in " ".join(op["s"] for op in scene.ops if op["op"] == "text")


# ---- head statistics view ---------------------------------------------------------------------------
def _prev_head():
    a = np.zeros((N, N))
    a[0, 0] = 1.0
    a[np.arange(1, N), np.arange(N - 1)] = 1.0
    return a


def _stats_ctx(**fields):
    atts = {k: TRACES[k].probs.astype(np.float64).copy() for k in range(LAYERS)}
    atts[1][2] = _prev_head()  # layer 1, head 2 is a pure previous-token head
    return _ctx(layer=0, head=0, attentions=atts, **fields)  # layer 0 is shown: its trace = atts[0]


def _row_order(scene):
    return [(r["data"]["action"]["layer"], r["data"]["action"]["head"]) for r in _regions(scene, "stats_row")]


def test_head_stats_table_sorting_by_header_clicks():
    scene = head_stats_view.render(_stats_ctx(), 900)
    assert _row_order(scene) == [(la, h) for la in range(LAYERS) for h in range(HEADS)]
    headers = {r["data"]["tooltip"]: r for r in _regions(scene, "stats_sort")}
    assert set(headers) >= {"sort by previous", "sort by entropy", "sort by [SEP]", "sort by label"}
    act = action(scene.hit_test(*_center(headers["sort by previous"])))
    assert act == {"sort_by": "prev", "sort_desc": True}
    sorted_scene = head_stats_view.render(_stats_ctx(**act), 900)
    order = _row_order(sorted_scene)
    assert order[0] == (1, 2)  # the pure previous-token head first
    stats = an.head_stats({k: v for k, v in _stats_ctx().attentions.items()}, TOKENS)
    prevs = [stats.get(la, h).values["prev"] for la, h in order]
    assert prevs == sorted(prevs, reverse=True)
    again = {r["data"]["tooltip"]: r for r in _regions(sorted_scene, "stats_sort")}
    assert action(sorted_scene.hit_test(*_center(again["sort by previous"]))) == {"sort_by": "prev",
                                                                                   "sort_desc": False}
    assert action(sorted_scene.hit_test(*_center(again["sort by layer"]))) == {"sort_by": "layer",
                                                                                "sort_desc": False}
    asc = _row_order(head_stats_view.render(_stats_ctx(sort_by="entropy", sort_desc=False), 900))
    ents = [stats.get(la, h).values["entropy"] for la, h in asc]
    assert ents == sorted(ents) and asc[0] == (1, 2)  # entropy 0


def test_head_stats_values_labels_and_thresholds_shown():
    scene = head_stats_view.render(_stats_ctx(), 900)
    texts = [op["s"] for op in scene.ops if op["op"] == "text"]
    for name, rule in an.LABEL_THRESHOLDS:
        assert "%s: %s" % (name, rule) in texts
    assert "> 0.50" in " ".join(texts) and ">= %.2f" % an.BROAD_THRESHOLD in " ".join(texts)
    cell = [r for r in _regions(scene, "stats_cell") if r["data"]["action"] == {"layer": 1, "head": 2}][0]
    assert "previous token" in tooltip(scene.hit_test(*_center(cell)))
    # the table row of the previous-token head prints its statistics
    row = [r for r in _regions(scene, "stats_row") if r["data"]["action"] == {"layer": 1, "head": 2}][0]
    in_row = [op["s"] for op in scene.ops if op["op"] == "text" and row["y"] <= op["y"] <= row["y"] + row["h"]]
    assert in_row[:2] == ["1", "2"]
    n = float(N)
    assert in_row[2:11] == ["%.2f" % v for v in (0.0, 0.0, (n - 1) / n, 2 / n, 0.0, 2 / n, 1.0, 0.0, 1 / n)]
    assert in_row[-1] == "previous token"


def test_all_views_render_on_a_causal_stack_and_a_single_token():
    traces = _stack(causal=True)
    for mod in (model_view, head_view, neuron_view, rollout_view, head_stats_view):
        scene = mod.render(_ctx(layer=2, traces=traces), 640)
        assert scene.height > 100 and scene.alt_text
        for op in scene.ops:
            if op["op"] == "rect":
                assert op["w"] >= 0 and op["h"] >= 0 and all(math.isfinite(op[k]) for k in ("x", "y", "w", "h"))
    one = multi_head_attention(np.ones((1, D_MODEL), np.float32), _weights(1))
    ctx = ViewContext(tokens=["[CLS]"], trace=one, layer=0, n_layers=1, attentions={0: one.probs})
    for mod in (model_view, head_view, neuron_view, rollout_view, head_stats_view):
        assert mod.render(ctx, 500).height > 50
    assert re.match(r"Attention rollout", rollout_view.render(ctx, 500).label)


def test_model_view_pools_long_texts_keeping_the_strongest_weight():
    a = np.random.RandomState(2).rand(10, 10)
    pooled, mask = model_view.pool_max(a, 4)  # blocks of 3 -> 4 x 4 (last block 1 wide, padded)
    assert pooled.shape == (4, 4) and mask is None
    assert pooled[1, 2] == a[3:6, 6:9].max() and pooled[3, 3] == a[9, 9]
    causal = np.triu(np.ones((10, 10), bool), k=1)
    _, pmask = model_view.pool_max(a, 4, causal)
    # a pooled cell is masked only when every cell of its block is: block (3:6, 6:9) lies above the diagonal
    assert pmask[0, 3] and pmask[1, 2] and not pmask[0, 0] and not pmask[2, 1]
    n = 90
    x = np.random.RandomState(3).randn(n, D_MODEL).astype(np.float32)
    tr = multi_head_attention(x, _weights(4))
    toks = ["[CLS]"] + ["w%d" % i for i in range(n - 2)] + ["[SEP]"]
    ctx = ViewContext(tokens=toks, trace=tr, layer=0, n_layers=1, head=0, attentions={0: tr.probs})
    scene = model_view.render(ctx, 320)  # thumbnails of about 80 px for 90 tokens
    r = _regions(scene, "model_thumb")[1]
    img = _image_at(scene, *_center(r))
    assert img["rgba"].shape[0] <= r["w"] + 1e-9 < n
    assert (img["rgba"].reshape(-1, 4) == VIRIDIS[255]).all(axis=1).sum() >= 1


def test_shown_layer_is_seen_through_the_temperature_lens():
    hot = TRACES[1].with_temperature(3.0)
    ctx = _ctx(layer=1, traces=[TRACES[0], hot, TRACES[2]])  # attentions holds layer 1 at T = 1
    att = model_view.layer_attentions(ctx)
    np.testing.assert_array_equal(att[1], hot.probs)
    np.testing.assert_array_equal(att[0], TRACES[0].probs)
    expected = an.rollout([TRACES[0].probs, hot.probs, TRACES[2].probs])[-1]
    np.testing.assert_allclose(rollout_view.rollout_matrix(ctx), expected, atol=1e-12)



def test_ctx_attentions_and_the_shown_layers_trace():
    """The research views read ``ctx.attentions``; the shown layer is always its own trace."""
    field = ViewContext(tokens=list(TOKENS), trace=TRACES[1], layer=1, n_layers=LAYERS, model_name="test-stack",
                        attentions={k: TRACES[k].probs for k in range(LAYERS)})
    same = _ctx(layer=1)
    assert sorted(field.layer_attentions()) == [0, 1, 2]
    for view in (model_view, rollout_view, head_stats_view):
        a, b = view.render(field, 900), view.render(same, 900)
        assert a.alt_text == b.alt_text and [o["op"] for o in a.ops] == [o["op"] for o in b.ops]
        assert [o.get("s") for o in a.ops] == [o.get("s") for o in b.ops]
    # the shown layer is its own trace, whatever attentions holds for it
    other = np.full_like(TRACES[0].probs, 1.0 / N)
    mixed = ViewContext(tokens=list(TOKENS), trace=TRACES[1], layer=1, n_layers=LAYERS,
                        attentions={0: TRACES[0].probs, 1: other, 2: TRACES[2].probs})
    att = mixed.layer_attentions()
    np.testing.assert_array_equal(att[0], TRACES[0].probs)
    np.testing.assert_array_equal(att[1], TRACES[1].probs)
    np.testing.assert_array_equal(att[2], TRACES[2].probs)
    assert model_view.missing_layers(ViewContext(tokens=list(TOKENS), trace=TRACES[0], layer=0,
                                                 n_layers=LAYERS, attentions={2: TRACES[2].probs})) == [1]
    assert ViewContext(tokens=["a"], trace=TRACES[0]).attentions == {}  # default: empty, not shared
    assert ViewContext(tokens=["a"], trace=TRACES[0]).attentions is not ViewContext(tokens=["a"],
                                                                                   trace=TRACES[0]).attentions


def test_rollout_and_neuron_pixels_with_pillow():
    pytest.importorskip("PIL")
    from pyapp.draw.colormap import signed_colors
    from pyapp.raster import render

    scene = rollout_view.render(_ctx(layer=0), 900)
    r = an.rollout([t.probs for t in TRACES])[-1]
    cell = _regions(scene, "attn_cell")[0]
    i, j = np.unravel_index(int(np.argmax(r)), r.shape)
    cw, ch = cell["w"] / N, cell["h"] / N
    img = render(scene)
    assert img.size == (900, int(math.ceil(scene.height)))
    px = img.getpixel((int(cell["x"] + (j + 0.5) * cw), int(cell["y"] + (i + 0.5) * ch)))
    assert tuple(px[:3]) == tuple(int(v) for v in VIRIDIS[255, :3])

    scene = neuron_view.render(_ctx(layer=1, head=0, pinned_row=2), 900)
    g = [x for x in _regions(scene, "matrix_cell") if x["data"]["name"] == "q⊙k"][0]
    prod = g["data"]["matrix"]
    d = int(np.argmin(prod[6]))  # the most negative product of key 6: a saturated blue cell
    want = signed_colors(prod, neuron_view.robust_limit(prod))[6, d]
    cw, ch = g["w"] / prod.shape[1], g["h"] / N
    px = render(scene).getpixel((int(g["x"] + (d + 0.5) * cw), int(g["y"] + 6.5 * ch)))
    assert tuple(px[:3]) == tuple(int(v) for v in want[:3])
