"""The Pillow backend draws a Scene to a PNG whose pixels are the scene's colours."""

from __future__ import annotations

import io

import numpy as np
import pytest
from test_views_fixtures import make_ctx

from pyapp.raster import render, save_png
from pyapp.views import overview
from pyapp.views.colormap import VIRIDIS
from pyapp.views.heatmap import draw_heatmap
from pyapp.views.scene import Scene

PIL = pytest.importorskip("PIL")


def test_png_pixel_at_the_strongest_cell_has_the_legend_top_colour(tmp_path):
    ctx = make_ctx(10, seed=4)
    probs = ctx.trace.probs[0]
    scene = Scene(420, 420)
    lay = draw_heatmap(scene, 5, 5, 400, probs, ctx.tokens, ctx.tokens)
    scene.height = lay.height + 10
    path = save_png(scene, str(tmp_path / "h.png"))
    from PIL import Image

    img = np.array(Image.open(path).convert("RGBA"))
    i, j = np.unravel_index(np.argmax(probs), probs.shape)
    x, y = lay.cell_center(i, j)
    assert tuple(img[int(y), int(x)]) == tuple(VIRIDIS[255])
    legend = [op for op in scene.ops if op["op"] == "image"][1]
    assert tuple(img[int(legend["y"]) + 1, int(legend["x"]) + 5]) == tuple(VIRIDIS[255])
    # and a weak cell has its own LUT colour
    k, m = np.unravel_index(np.argmin(probs), probs.shape)
    expect = VIRIDIS[int(np.round(probs[k, m] / probs.max() * 255))]
    x, y = lay.cell_center(k, m)
    assert tuple(img[int(y), int(x)]) == tuple(expect)


def test_hidpi_scale_and_shapes():
    scene = Scene(50, 40, background="#ffffff")
    scene.rect(10, 10, 20, 10, fill="#ff0000")
    scene.line(0, 35, 50, 35, color="#0000ff", width=2)
    scene.text(25, 5, "Hi", size=10, align="center", baseline="top", rotate=0.5)
    img = np.array(render(scene, scale=2.0))
    assert img.shape == (80, 100, 4)
    assert tuple(img[30, 40, :3]) == (255, 0, 0) and tuple(img[5, 5, :3]) == (255, 255, 255)
    assert img[70, 50, 2] == 255 and img[70, 50, 0] < 60


def test_a_whole_view_renders_to_png():
    ctx = make_ctx(8, pinned_row=2)
    scene = overview.render(ctx, 700)
    buf = io.BytesIO()
    render(scene).save(buf, "PNG")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    img = Image.open(io.BytesIO(buf.getvalue()))
    assert img.size == (700, int(np.ceil(scene.height)))
