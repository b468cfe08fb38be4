"""The heatmap component, colour maps and hover / click logic: the numbers behind the pictures."""

from __future__ import annotations

import numpy as np
import pytest
from test_views_fixtures import make_ctx, make_tokens

from pyapp.app import interact
from pyapp.draw.colormap import DIVERGING, MASKED_RGBA, VIRIDIS, colorize, to_index, weight_colors
from pyapp.draw.heatmap import alt_text, draw_heatmap, heatmap_image, top_k
from pyapp.draw.scene import Scene, nearest_upscale


def _images(scene):
    return [op for op in scene.ops if op["op"] == "image"]


def _cell_region(scene, kind="attn_cell"):
    return [r for r in scene.regions if r["kind"] == kind][-1]


def test_luts_are_256_rgba_and_viridis_is_dark_to_bright():
    for lut in (VIRIDIS, DIVERGING):
        assert lut.shape == (256, 4) and lut.dtype == np.uint8 and (lut[:, 3] == 255).all()
    lum = VIRIDIS[:, :3].astype(float) @ np.array([0.2126, 0.7152, 0.0722])
    assert (np.diff(lum[::8]) > 0).all()  # perceptually ordered: luminance rises along the map
    assert np.diff(lum).min() > -0.5  # (up to 8-bit rounding between neighbours)
    assert tuple(int(c) for c in VIRIDIS[0, :3]) == pytest.approx((68, 1, 84), abs=4)
    assert tuple(int(c) for c in VIRIDIS[255, :3]) == pytest.approx((253, 231, 37), abs=5)
    assert abs(int(DIVERGING[128, 0]) - 247) < 4  # white-ish at zero


def test_to_index_maps_the_range_ends_exactly():
    idx = to_index(np.array([0.0, 0.5, 1.0, 2.0, -1.0, np.nan]), 0.0, 1.0)
    assert idx.dtype == np.uint8
    assert list(idx) == [0, 128, 255, 255, 0, 0]


def test_strongest_cell_has_the_legend_top_colour():
    ctx = make_ctx(9, seed=3)
    probs = ctx.trace.probs[1]
    scene = Scene(500, 500)
    draw_heatmap(scene, 0, 0, 480, probs, ctx.tokens, ctx.tokens)
    cells, legend = _images(scene)
    i, j = np.unravel_index(np.argmax(probs), probs.shape)
    assert tuple(cells["rgba"][i, j]) == tuple(VIRIDIS[255])
    assert tuple(legend["rgba"][0, 0]) == tuple(VIRIDIS[255])  # the legend's top row
    assert tuple(legend["rgba"][-1, 0]) == tuple(VIRIDIS[0])
    # every other cell is its weight / max on the same LUT
    expect = VIRIDIS[np.round(probs / probs.max() * 255).astype(int)]
    np.testing.assert_array_equal(cells["rgba"], expect)


def test_cell_matrix_is_one_image_op_with_one_pixel_per_cell():
    ctx = make_ctx(40)
    scene = Scene(600, 600)
    draw_heatmap(scene, 0, 0, 580, ctx.trace.probs[0], ctx.tokens, ctx.tokens, legend=False)
    imgs = _images(scene)
    assert len(imgs) == 1 and imgs[0]["rgba"].shape == (40, 40, 4)
    assert sum(1 for op in scene.ops if op["op"] == "rect") <= 3  # frame (+ pin), never one per cell


def test_hit_test_cell_and_tooltip_with_exact_weight():
    ctx = make_ctx(10, seed=5)
    probs = ctx.trace.probs[2]
    scene = Scene(500, 500)
    lay = draw_heatmap(scene, 10, 20, 460, probs, ctx.tokens, ctx.tokens, layer=3, head=2)
    x, y = lay.cell_center(4, 7)
    hit = scene.hit_test(x, y)
    assert hit.kind == "attn_cell" and (hit.row, hit.col) == (4, 7)
    text = interact.tooltip(hit)
    assert "'%s' (4)" % ctx.tokens[4] in text and "'%s' (7)" % ctx.tokens[7] in text
    assert "%.6f" % probs[4, 7] in text and "layer 3" in text and "head 2" in text
    assert interact.action(hit) == {"pinned_row": 4}
    # the grid maps back onto the cell image exactly
    r = _cell_region(scene)
    assert r["w"] == pytest.approx(lay.cell * 10) and r["rows"] == 10


def test_pinned_row_is_outlined_and_click_unpins():
    ctx = make_ctx(8)
    scene = Scene(500, 500)
    lay = draw_heatmap(scene, 0, 0, 480, ctx.trace.probs[0], ctx.tokens, ctx.tokens, pinned_row=3)
    outline = [op for op in scene.ops if op["op"] == "rect" and op["stroke"] == "#ff2d55"]
    assert len(outline) == 1
    assert outline[0]["y"] == pytest.approx(lay.grid_y + 3 * lay.cell - 1)
    assert outline[0]["h"] == pytest.approx(lay.cell + 2)
    pinned_label = [op for op in scene.ops if op["op"] == "text" and op["bold"] and op["s"] == ctx.tokens[3]]
    assert pinned_label
    hit = scene.hit_test(*lay.cell_center(3, 1))
    assert interact.action(hit) == {"pinned_row": None}
    label_hit = scene.hit_test(lay.grid_x - 5, lay.cell_center(5, 0)[1])
    assert label_hit.kind == "attn_row" and interact.action(label_hit) == {"pinned_row": 5}


def test_causal_mask_cells_are_grey_not_weight_zero():
    ctx = make_ctx(6, causal=True)
    probs = ctx.trace.probs[0]
    mask = ctx.causal_mask()
    rgba = heatmap_image(probs, None, mask)
    assert (rgba[mask] == MASKED_RGBA).all()
    assert not (rgba[~mask] == MASKED_RGBA).all(axis=-1).any()
    assert tuple(MASKED_RGBA) not in {tuple(c) for c in VIRIDIS}  # distinct from every weight colour
    scene = Scene(400, 400)
    lay = draw_heatmap(scene, 0, 0, 380, probs, ctx.tokens, ctx.tokens, mask=mask)
    hit = scene.hit_test(*lay.cell_center(1, 4))
    assert "masked" in interact.tooltip(hit)
    assert any(op["op"] == "text" and op["s"] == "masked" for op in scene.ops)  # legend swatch


def test_alt_text_lists_each_querys_top_three():
    ctx = make_ctx(7, seed=2)
    m = ctx.trace.probs.mean(0)
    text = alt_text(m, ctx.tokens, ctx.tokens, 3)
    lines = text.splitlines()
    assert len(lines) == 7
    for i, line in enumerate(lines):
        order = np.argsort(-m[i])[:3]
        expected = ", ".join("%s %.2f" % (ctx.tokens[j], m[i, j]) for j in order)
        assert line.endswith(expected)
    assert top_k(np.array([[0.1, 0.5, 0.4]]), 0, 2) == [1, 2]


@pytest.mark.parametrize("n", [2, 64, 512])
def test_heatmap_sizes_from_two_to_512_tokens(n):
    probs = np.full((n, n), 1.0 / n, dtype=np.float32)
    probs[:, 0] += 0.5
    probs /= probs.sum(1, keepdims=True)
    toks = make_tokens(n)
    scene = Scene(400, 400)
    lay = draw_heatmap(scene, 0, 0, 380, probs, toks, toks)
    assert lay.grid_x + lay.grid_w <= 400 and lay.grid_w > 100
    labels = [op for op in scene.ops if op["op"] == "text" and op["s"] in toks]
    assert all(op["size"] >= 7 for op in labels)
    assert len(labels) <= 2 * n and (n < 100 or len(labels) < n)  # thinned when cells are small
    hit = scene.hit_test(lay.grid_x + lay.grid_w - 0.1, lay.grid_y + lay.grid_h - 0.1)
    assert (hit.row, hit.col) == (n - 1, n - 1)


def test_colorize_is_one_gather_and_upscale_keeps_cells():
    vals = np.linspace(0, 1, 128 * 128, dtype=np.float32).reshape(128, 128)
    rgba = weight_colors(vals, 1.0)
    assert rgba.shape == (128, 128, 4) and tuple(rgba[-1, -1]) == tuple(VIRIDIS[255])
    up = nearest_upscale(rgba[:2, :2], 10, 10)
    assert (up[:5, :5] == rgba[0, 0]).all() and (up[5:, 5:] == rgba[1, 1]).all()
    signed = colorize(np.array([[-2.0, 0.0, 2.0]]), DIVERGING, -2, 2)
    assert tuple(signed[0, 0]) == tuple(DIVERGING[0]) and tuple(signed[0, 2]) == tuple(DIVERGING[255])


def test_interact_generic_regions():
    scene = Scene(100, 100)
    scene.region(0, 0, 50, 50, "button", action={"tab": "steps", "step": 4}, tooltip="go")
    hit = scene.hit_test(10, 10)
    assert interact.action(hit) == {"tab": "steps", "step": 4} and interact.tooltip(hit) == "go"
    assert interact.action(scene.hit_test(80, 80)) is None and interact.tooltip(None) is None


def test_more_cells_than_pixels_are_max_pooled_so_the_peak_survives():
    n = 512
    probs = np.full((n, n), 1e-4, dtype=np.float32)
    probs[301, 77] = 0.9
    mask = np.triu(np.ones((n, n), dtype=bool), 1)
    scene = Scene(200, 200)
    lay = draw_heatmap(scene, 0, 0, 190, probs, make_tokens(n), make_tokens(n), mask=mask, legend=False)
    img = _images(scene)[0]["rgba"]
    assert img.shape[0] < n and img.shape[0] * 2 >= lay.grid_h  # pooled to ~2 samples per CSS pixel
    k = -(-n // img.shape[0])
    assert tuple(img[301 // k, 77 // k]) == tuple(VIRIDIS[255])
    assert tuple(img[0, -1]) == tuple(MASKED_RGBA) and tuple(img[-1, 0]) != tuple(MASKED_RGBA)
    hit = scene.hit_test(lay.grid_x + 77.5 * lay.cell, lay.grid_y + 301.5 * lay.cell)
    assert (hit.row, hit.col) == (301, 77)  # hit-testing stays per token


@pytest.mark.parametrize("shape, out", [((7, 5), (23, 11)), ((128, 128), (512, 512)), ((3, 9), (2, 4)),
                                        ((1, 1), (1, 1))])
def test_nearest_upscale_packed_path_equals_the_plain_gather(shape, out):
    """The uint32 fast path gives exactly the pixels of the plain index gather (also for views with strides)."""
    rng = np.random.RandomState(1)
    big = rng.randint(0, 256, size=(shape[0] * 2, shape[1] * 2, 4)).astype(np.uint8)
    rgba = big[::2, ::2]                                   # a non-contiguous view
    rows, cols = shape
    ri = np.arange(out[1]) * rows // out[1]
    ci = np.arange(out[0]) * cols // out[0]
    expected = rgba[ri[:, None], ci[None, :]]
    got = nearest_upscale(rgba, out[0], out[1])
    assert got.shape == (out[1], out[0], 4) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
