"""CPython backend: draw a Scene with Pillow (PNG for the CLI, tests and screenshots).

Follows the op semantics documented in pyapp/views/scene.py, like the browser's canvas backend:
image ops are snapped to device pixels with ``scene.device_box`` and upscaled with
``scene.nearest_upscale``, so a heatmap cell covers the same pixels here and in the browser.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import Optional, Tuple

import numpy as np

from .views.scene import Scene, device_box, nearest_upscale

_FONT_FILES = {
    ("sans", False, False): "DejaVuSans.ttf",
    ("sans", True, False): "DejaVuSans-Bold.ttf",
    ("sans", False, True): "DejaVuSans-Oblique.ttf",
    ("sans", True, True): "DejaVuSans-BoldOblique.ttf",
    ("serif", False, False): "DejaVuSerif.ttf",
    ("serif", True, False): "DejaVuSerif-Bold.ttf",
    ("serif", False, True): "DejaVuSerif-Italic.ttf",
    ("serif", True, True): "DejaVuSerif-BoldItalic.ttf",
    ("mono", False, False): "DejaVuSansMono.ttf",
    ("mono", True, False): "DejaVuSansMono-Bold.ttf",
    ("mono", False, True): "DejaVuSansMono-Oblique.ttf",
    ("mono", True, True): "DejaVuSansMono-BoldOblique.ttf",
}
_FONT_DIRS = ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF",
              "/Library/Fonts", "C:/Windows/Fonts"]

# canvas textBaseline -> Pillow vertical anchor; canvas textAlign -> Pillow horizontal anchor
_VANCHOR = {"alphabetic": "s", "middle": "m", "top": "t", "hanging": "t", "bottom": "d", "ideographic": "d"}
_HANCHOR = {"left": "l", "start": "l", "center": "m", "right": "r", "end": "r"}


@lru_cache(maxsize=256)
def _font(family: str, bold: bool, italic: bool, px: int):
    from PIL import ImageFont

    name = _FONT_FILES.get((family, bold, italic), "DejaVuSans.ttf")
    for d in _FONT_DIRS:
        path = os.path.join(d, name)
        if os.path.exists(path):
            return ImageFont.truetype(path, px)
    try:
        return ImageFont.load_default(px)  # Pillow >= 10.1: a scalable bundled font
    except TypeError:  # pragma: no cover - old Pillow
        return ImageFont.load_default()


def _rgba(color: Optional[str], alpha: float = 1.0) -> Optional[Tuple[int, int, int, int]]:
    if color is None:
        return None
    c = color.strip()
    if c.startswith("#"):
        h = c[1:]
        if len(h) == 3:
            h = "".join(ch * 2 for ch in h)
        r, g, b = int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
        a = int(h[6:8], 16) / 255.0 if len(h) == 8 else 1.0
    else:
        from PIL import ImageColor

        r, g, b = ImageColor.getrgb(c)[:3]
        a = 1.0
    return (r, g, b, int(round(255 * a * alpha)))


def render(scene: Scene, scale: float = 1.0):
    """The scene as a PIL RGBA image of (width*scale, height*scale) device pixels."""
    from PIL import Image, ImageDraw

    W, H = int(math.ceil(scene.width * scale)), int(math.ceil(scene.height * scale))
    bg = _rgba(scene.background) or (0, 0, 0, 0)
    img = Image.new("RGBA", (max(W, 1), max(H, 1)), bg)
    draw = ImageDraw.Draw(img, "RGBA")
    for op in scene.ops:
        kind = op["op"]
        if kind == "rect":
            _rect(draw, op, scale)
        elif kind == "line":
            _line(draw, op, scale)
        elif kind == "path":
            _path(draw, op, scale)
        elif kind == "text":
            _text(img, draw, op, scale)
        elif kind == "image":
            _image(img, op, scale)
    return img


def save_png(scene: Scene, path: str, scale: float = 1.0) -> str:
    render(scene, scale).save(path, "PNG")
    return path


def _rect(draw, op, s):
    x0, y0 = op["x"] * s, op["y"] * s
    x1, y1 = (op["x"] + op["w"]) * s, (op["y"] + op["h"]) * s
    fill = _rgba(op.get("fill"), op.get("alpha", 1.0))
    outline = _rgba(op.get("stroke"), op.get("alpha", 1.0))
    lw = max(int(round(op.get("line_width", 1.0) * s)), 1)
    r = op.get("radius", 0.0) * s
    if fill is not None:
        box = [x0, y0, x1 - 1, y1 - 1]
        if r > 0:
            draw.rounded_rectangle(box, radius=r, fill=fill)
        else:
            draw.rectangle(box, fill=fill)
    if outline is not None:
        # a canvas stroke is centred on the edge
        h = lw / 2.0
        box = [x0 - h + 0.5, y0 - h + 0.5, x1 + h - 0.5, y1 + h - 0.5]
        if box[2] <= box[0] or box[3] <= box[1]:
            return
        if r > 0:
            draw.rounded_rectangle(box, radius=r + h, outline=outline, width=lw)
        else:
            draw.rectangle(box, outline=outline, width=lw)


def _dashed(points, dash):
    """Split a polyline into dash segments (dash = [on, off] in device px)."""
    on, off = dash[0], dash[1] if len(dash) > 1 else dash[0]
    segs = []
    for (ax, ay), (bx, by) in zip(points[:-1], points[1:]):
        length = math.hypot(bx - ax, by - ay)
        t = 0.0
        while t < length:
            t1 = min(t + on, length)
            segs.append([(ax + (bx - ax) * t / length, ay + (by - ay) * t / length),
                         (ax + (bx - ax) * t1 / length, ay + (by - ay) * t1 / length)])
            t = t1 + off
    return segs


def _line(draw, op, s):
    color = _rgba(op["color"], op.get("alpha", 1.0))
    lw = max(int(round(op.get("width", 1.0) * s)), 1)
    pts = [(op["x0"] * s, op["y0"] * s), (op["x1"] * s, op["y1"] * s)]
    if op.get("dash"):
        for seg in _dashed(pts, [d * s for d in op["dash"]]):
            draw.line(seg, fill=color, width=lw)
    else:
        draw.line(pts, fill=color, width=lw)


def _path(draw, op, s):
    pts = [(a * s, b * s) for a, b in op["points"]]
    if len(pts) < 2:
        return
    alpha = op.get("alpha", 1.0)
    fill, color = _rgba(op.get("fill"), alpha), _rgba(op.get("color"), alpha)
    lw = max(int(round(op.get("width", 1.0) * s)), 1)
    if fill is not None and len(pts) >= 3:
        draw.polygon(pts, fill=fill)
    if color is not None:
        line = pts + [pts[0]] if op.get("closed") else pts
        draw.line(line, fill=color, width=lw, joint="curve")


def _text(img, draw, op, s):
    from PIL import Image, ImageDraw

    text = op["s"]
    if not text:
        return
    px = op["size"] * s
    font = _font(op.get("font", "sans"), bool(op.get("bold")), bool(op.get("italic")), max(int(round(px)), 1))
    max_w = op.get("max_width")
    if max_w is not None and max_w > 0:
        w = font.getlength(text)
        if w > max_w * s:
            px = max(px * max_w * s / w, 1.0)
            font = _font(op.get("font", "sans"), bool(op.get("bold")), bool(op.get("italic")),
                         max(int(px), 1))
    anchor = _HANCHOR.get(op.get("align", "left"), "l") + _VANCHOR.get(op.get("baseline", "alphabetic"), "s")
    color = _rgba(op.get("color", "#000000"), op.get("alpha", 1.0))
    x, y = op["x"] * s, op["y"] * s
    rot = op.get("rotate", 0.0) or 0.0
    if abs(rot) < 1e-9:
        draw.text((x, y), text, font=font, fill=color, anchor=anchor)
        return
    # rotated: draw around the centre of a scratch layer, rotate about it, composite
    side = int(font.getlength(text) * 2 + px * 4) + 4
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((side / 2, side / 2), text, font=font, fill=color, anchor=anchor)
    layer = layer.rotate(-math.degrees(rot), resample=Image.BICUBIC, center=(side / 2, side / 2))
    img.alpha_composite(layer, (int(round(x - side / 2)), int(round(y - side / 2))))


def _image(img, op, s):
    from PIL import Image

    x, y, w, h = device_box(op["x"], op["y"], op["w"], op["h"], s)
    pixels = nearest_upscale(op["rgba"], w, h)
    tile = Image.fromarray(np.ascontiguousarray(pixels), "RGBA")
    # clip to the canvas like a browser would
    if x < 0 or y < 0:
        tile = tile.crop((max(-x, 0), max(-y, 0), w, h))
        x, y = max(x, 0), max(y, 0)
    img.alpha_composite(tile, (x, y))
