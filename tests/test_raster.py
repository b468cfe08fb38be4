"""The Pillow backend draws a Scene to a PNG whose pixels are the scene's colours."""

from __future__ import annotations

import io

import numpy as np
import pytest
from test_views_fixtures import make_ctx

from pyapp.draw.colormap import VIRIDIS
from pyapp.draw.heatmap import draw_heatmap
from pyapp.draw.scene import Scene
from pyapp.raster import render, save_png
from pyapp.views import overview

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


def test_degenerate_ops_draw_like_a_canvas_and_never_raise():
    scene = Scene(40, 30, background="#ffffff")
    scene.rect(5.2, 2, 0.4, 10, fill="#000000")        # narrower than a pixel: one pixel, 40 % ink
    scene.rect(10, 2, 0.0, 10, fill="#000000")         # zero width: nothing
    scene.rect(30, 2, -6, 4, fill="#ff0000")           # negative width: drawn to the left (24..30)
    scene.rect(12, 20, 0.3, 0.3, stroke="#0000ff", line_width=3)  # stroke wider than the box: filled
    scene.rect(float("nan"), 0, 5, 5, fill="#000000")  # non-finite: skipped
    scene.path([])                                     # empty path
    scene.path([(1, 1)], color="#000000")              # one point
    scene.path([(15, 12), (float("inf"), 3), (22, 19)], color="#00ff00")  # the finite points only
    scene.text(3, 3, "", size=10)
    scene.text(3, 3, "a\nb", size=10)                  # canvas draws newlines as spaces
    scene.text(3, 3, "hidden", size=10, max_width=0)   # canvas draws nothing for maxWidth <= 0
    scene.line(0, 28, 40, 28, color="#000000", dash=[0, 0])   # all-zero dash: solid
    scene.line(0, 29, 40, 29, color="#ff0000", dash=[0, 4])   # only gaps: nothing
    scene.line(0, 27, 40, 27, color="#00ff00", dash=[-1, 2])  # invalid dash: solid
    scene.image(0, 0, 10, 10, np.zeros((0, 3, 4), dtype=np.uint8))  # empty image
    scene.image(-5, -5, 10, 10, np.full((2, 2, 4), 255, dtype=np.uint8))  # off the top-left: clipped
    img = np.array(render(scene))
    assert img.shape == (30, 40, 4)
    assert tuple(img[5, 5, :3]) == (153, 153, 153)     # 255 * (1 - 0.4) over white
    assert tuple(img[5, 4, :3]) == (255, 255, 255) and tuple(img[5, 6, :3]) == (255, 255, 255)
    assert tuple(img[5, 10, :3]) == (255, 255, 255)
    assert tuple(img[3, 26, :3]) == (255, 0, 0) and tuple(img[3, 31, :3]) == (255, 255, 255)
    assert tuple(img[20, 12, :3]) == (0, 0, 255)
    assert tuple(img[15, 18, :3]) == (0, 255, 0)
    assert tuple(img[28, 20, :3]) == (0, 0, 0) and tuple(img[29, 20, :3]) == (255, 255, 255)
    assert tuple(img[27, 20, :3]) == (0, 255, 0)
    corner = Scene(40, 30, background=None)  # rotated text hanging off the top-left; transparent page
    corner.text(-30, -20, "rotated text", size=14, rotate=0.7, color="#000000")
    ink = np.array(render(corner))[:, :, 3]
    assert ink.max() == 255 and ink[:5, :5].max() > 0
    for size, pixels in (((0, 0), (1, 1)), ((float("nan"), 10), (1, 10)), ((-3, 5), (1, 5))):
        assert render(Scene(*size)).size == pixels
    with pytest.raises(ValueError):
        render(Scene(10, 10), scale=0)


def test_sub_pixel_rect_at_hidpi_and_rounded_corners():
    scene = Scene(20, 20, background="#ffffff")
    scene.rect(2, 2, 0.2, 8, fill="#000000")            # 0.4 device px at scale 2
    scene.rect(8, 2, 6, 0.1, fill="#000000", radius=3)  # radius larger than the box: clamped
    img = np.array(render(scene, scale=2.0))
    assert tuple(img[10, 4, :3]) == (153, 153, 153)
    assert 200 < img[4, 22, 0] < 255                     # 0.2 px tall: a faint row


@pytest.mark.parametrize("background", ["#ffffff", None])
def test_translucent_ops_composite_source_over(background):
    """alpha blends with what is below (canvas source-over), on an opaque and on a transparent page."""
    scene = Scene(30, 10, background=background)
    scene.rect(0, 0, 20, 10, fill="#ff0000")
    scene.rect(10, 0, 20, 10, fill="#0000ff", alpha=0.5)   # half over red, half over the page
    scene.line(0, 5, 30, 5, color="#00000080", width=1)   # a "#rrggbbaa" colour: 50 % black
    img = np.array(render(scene)).astype(int)
    assert np.abs(img[2, 15] - [128, 0, 128, 255]).max() <= 1          # blue 50 % over red
    if background is None:
        assert np.abs(img[2, 25] - [0, 0, 255, 128]).max() <= 1        # blue 50 % over nothing
        assert np.abs(img[5, 25] - [0, 0, 85, 191]).max() <= 1         # then 50 % black over that
    else:
        assert np.abs(img[2, 25] - [128, 128, 255, 255]).max() <= 1    # blue 50 % over white
        assert np.abs(img[5, 25] - [64, 64, 128, 255]).max() <= 1
    assert np.abs(img[5, 5] - [128, 0, 0, 255]).max() <= 1             # 50 % black over red
