"""Draw a Scene on a <canvas> 2D context, crisp on HiDPI screens.

The canvas backing store is ``scene size × devicePixelRatio``; vector ops run under a ``dpr`` transform so
they use CSS pixels. Each ``image`` op is upscaled in NumPy to its device-pixel box (nearest neighbour) and
drawn with ONE ``putImageData`` at device coordinates (putImageData ignores the transform).
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict

from ..draw.scene import Scene, device_box, nearest_upscale
from .compat import js, rgba_to_clamped, to_js

try:
    from ..draw.scene import FONT_FAMILIES
except ImportError:  # older scene module
    FONT_FAMILIES = {"sans": "sans-serif", "serif": "serif", "mono": "monospace"}

stats: Dict[str, float] = {"ops": 0, "images": 0, "ms": 0.0}


def font_css(op: Dict[str, Any]) -> str:
    family = FONT_FAMILIES.get(op.get("font", "sans"), FONT_FAMILIES["sans"])
    style = "italic " if op.get("italic") else ""
    weight = "bold " if op.get("bold") else ""
    return "%s%s%.2fpx %s" % (style, weight, float(op.get("size", 12.0)), family)


def size_canvas(canvas, width: float, height: float, dpr: float):
    """Give the canvas a CSS size of width × height and a device-pixel backing store."""
    w, h = int(math.ceil(width)), int(math.ceil(height))
    bw, bh = max(int(round(w * dpr)), 1), max(int(round(h * dpr)), 1)
    if int(canvas.width) != bw or int(canvas.height) != bh:
        canvas.width = bw
        canvas.height = bh
    canvas.style.width = "%dpx" % w
    canvas.style.height = "%dpx" % h


def draw(scene: Scene, canvas, dpr: float = 1.0):
    t0 = time.time()
    dpr = float(dpr) if dpr and dpr > 0 else 1.0
    size_canvas(canvas, scene.width, scene.height, dpr)
    ctx = canvas.getContext("2d")
    ctx.setTransform(1, 0, 0, 1, 0, 0)
    ctx.clearRect(0, 0, canvas.width, canvas.height)
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0)
    if scene.background:
        ctx.fillStyle = scene.background
        ctx.fillRect(0, 0, scene.width, scene.height)
    n_img = 0
    for op in scene.ops:
        kind = op["op"]
        if kind == "rect":
            _rect(ctx, op)
        elif kind == "line":
            _line(ctx, op)
        elif kind == "path":
            _path(ctx, op)
        elif kind == "text":
            _text(ctx, op)
        elif kind == "image":
            _image(ctx, op, dpr)
            n_img += 1
    ctx.globalAlpha = 1.0
    stats["ops"] = len(scene.ops)
    stats["images"] = n_img
    stats["ms"] = (time.time() - t0) * 1000.0


def _alpha(ctx, op):
    ctx.globalAlpha = float(op.get("alpha", 1.0))


def _rounded(ctx, x, y, w, h, r):
    r = max(0.0, min(float(r), w / 2.0, h / 2.0))
    ctx.beginPath()
    if r <= 0:
        ctx.rect(x, y, w, h)
        return
    ctx.moveTo(x + r, y)
    ctx.arcTo(x + w, y, x + w, y + h, r)
    ctx.arcTo(x + w, y + h, x, y + h, r)
    ctx.arcTo(x, y + h, x, y, r)
    ctx.arcTo(x, y, x + w, y, r)
    ctx.closePath()


def _rect(ctx, op):
    _alpha(ctx, op)
    x, y, w, h = float(op["x"]), float(op["y"]), float(op["w"]), float(op["h"])
    radius = float(op.get("radius") or 0.0)
    if op.get("fill"):
        ctx.fillStyle = op["fill"]
        if radius:
            _rounded(ctx, x, y, w, h, radius)
            ctx.fill()
        else:
            ctx.fillRect(x, y, w, h)
    if op.get("stroke"):
        ctx.strokeStyle = op["stroke"]
        ctx.lineWidth = float(op.get("line_width", 1.0))
        if radius:
            _rounded(ctx, x, y, w, h, radius)
            ctx.stroke()
        else:
            ctx.strokeRect(x, y, w, h)


def _line(ctx, op):
    _alpha(ctx, op)
    ctx.strokeStyle = op.get("color") or "#000000"
    ctx.lineWidth = float(op.get("width", 1.0))
    dash = op.get("dash")
    if dash:
        ctx.setLineDash(to_js([float(d) for d in dash]))
    ctx.beginPath()
    ctx.moveTo(float(op["x0"]), float(op["y0"]))
    ctx.lineTo(float(op["x1"]), float(op["y1"]))
    ctx.stroke()
    if dash:
        ctx.setLineDash(to_js([]))


def _path(ctx, op):
    pts = op.get("points") or []
    if len(pts) < 2:
        return
    _alpha(ctx, op)
    ctx.beginPath()
    ctx.moveTo(pts[0][0], pts[0][1])
    for x, y in pts[1:]:
        ctx.lineTo(x, y)
    if op.get("closed"):
        ctx.closePath()
    if op.get("fill"):
        ctx.fillStyle = op["fill"]
        ctx.fill()
    if op.get("color"):
        ctx.strokeStyle = op["color"]
        ctx.lineWidth = float(op.get("width", 1.0))
        ctx.stroke()


_BASELINES = {"alphabetic", "top", "hanging", "middle", "ideographic", "bottom"}
_ALIGNS = {"left", "right", "center", "start", "end"}


def _text(ctx, op):
    s = op.get("s", "")
    if not s:
        return
    _alpha(ctx, op)
    ctx.font = font_css(op)
    ctx.fillStyle = op.get("color") or "#222222"
    align = op.get("align", "left")
    ctx.textAlign = align if align in _ALIGNS else "left"
    baseline = op.get("baseline", "alphabetic")
    ctx.textBaseline = baseline if baseline in _BASELINES else "alphabetic"
    x, y = float(op["x"]), float(op["y"])
    rotate = float(op.get("rotate") or 0.0)
    max_width = op.get("max_width")
    if rotate:
        ctx.save()
        ctx.translate(x, y)
        ctx.rotate(rotate)
        x = y = 0.0
    if max_width:
        ctx.fillText(s, x, y, max(float(max_width), 1.0))
    else:
        ctx.fillText(s, x, y)
    if rotate:
        ctx.restore()


def _image(ctx, op, dpr: float):
    rgba = op["rgba"]
    x0, y0, w, h = device_box(float(op["x"]), float(op["y"]), float(op["w"]), float(op["h"]), dpr)
    up = nearest_upscale(rgba, w, h)                       # (h, w, 4) at device resolution
    data = js.ImageData.new(rgba_to_clamped(up), w, h)     # one bulk copy into JS
    ctx.putImageData(data, x0, y0)                         # device coordinates, no transform
