"""CPython backend: draw a Scene with Pillow (PNG for the CLI, tests and screenshots).

Follows the op semantics documented in pyapp/views/scene.py, like the browser's canvas backend:
image ops are snapped to device pixels with ``scene.device_box`` and upscaled with
``scene.nearest_upscale``, so a heatmap cell covers the same pixels here and in the browser.

Degenerate ops draw what a canvas would and never raise: a fill narrower (or lower) than one device pixel
is one pixel with its alpha scaled by the coverage, zero-size boxes and empty paths or texts draw nothing,
non-finite coordinates are skipped, a stroke wider than its box fills the outer box, parts off the canvas
are clipped.
"""

from __future__ import annotations

import io
import math
import os
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .draw.scene import Scene, device_box, nearest_upscale

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

DIST_NAME = "mhsa-visualizer"      # pyproject.toml's [project] name; Pillow comes with its `render` extra
PILLOW_HINT = 'pip install "%s[render]"' % DIST_NAME


class PillowMissing(ImportError):
    """Drawing a PNG needs Pillow and it is not installed (the message says how to get it, on one line)."""


def require_pillow():
    """Pillow's ``(Image, ImageDraw)``; PillowMissing when Pillow cannot be imported."""
    try:
        from PIL import Image, ImageDraw
    except ImportError as e:
        raise PillowMissing("drawing a PNG needs Pillow, which is not installed (%s): %s, or pip install "
                            "\"pillow>=9\"" % (e, PILLOW_HINT)) from None
    return Image, ImageDraw


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
    """A CSS colour ("#rgb", "#rrggbb", "#rrggbbaa", a name, "rgb()/rgba()") times `alpha`; None = no paint."""
    if color is None:
        return None
    c = str(color).strip()
    if not c or c.lower() in ("none", "transparent"):
        return None
    if c.startswith("#"):
        h = c[1:]
        if len(h) in (3, 4):
            h = "".join(ch * 2 for ch in h)
        r, g, b = int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
        a = int(h[6:8], 16) / 255.0 if len(h) == 8 else 1.0
    else:
        from PIL import ImageColor

        rgb = ImageColor.getrgb(c)
        r, g, b = rgb[:3]
        a = rgb[3] / 255.0 if len(rgb) == 4 else 1.0
    a = min(max(float(alpha), 0.0), 1.0) * a if math.isfinite(float(alpha)) else 0.0
    return (r, g, b, int(round(255 * a)))


def _finite(*values: float) -> bool:
    return all(math.isfinite(float(v)) for v in values)


def _size(v: float, scale: float) -> int:
    """A scene extent in whole device pixels (at least 1; non-finite -> 1)."""
    px = float(v) * scale
    return max(int(math.ceil(px)), 1) if math.isfinite(px) else 1


def render(scene: Scene, scale: float = 1.0):
    """The scene as a PIL RGBA image of (width*scale, height*scale) device pixels (at least 1 x 1).

    Every op is composited source-over, like a canvas: on an opaque background the ops are drawn straight
    onto an RGB image (Pillow blends RGBA ink into RGB); on a transparent one each op is drawn onto its own
    transparent layer and alpha-composited (Pillow would otherwise overwrite RGBA pixels, alpha included).
    """
    Image, ImageDraw = require_pillow()

    scale = float(scale)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError("scale must be a positive number, got %r" % scale)
    W, H = _size(scene.width, scale), _size(scene.height, scale)
    bg = _rgba(scene.background) or (0, 0, 0, 0)
    if bg[3] == 255:
        img = Image.new("RGB", (W, H), bg[:3])
        draw = ImageDraw.Draw(img, "RGBA")
        for op in scene.ops:
            _draw_op(img, draw, op, scale)
        return img.convert("RGBA")
    img = Image.new("RGBA", (W, H), bg)
    for op in scene.ops:
        layer = Image.new("RGBA", (W, H), (0, 0, 0, 0))
        _draw_op(layer, ImageDraw.Draw(layer, "RGBA"), op, scale)
        img.alpha_composite(layer)
    return img


def _draw_op(img, draw, op, scale: float) -> None:
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


def png_bytes(scene: Scene, scale: float = 1.0) -> bytes:
    """The scene encoded as PNG."""
    buf = io.BytesIO()
    render(scene, scale).save(buf, "PNG")
    return buf.getvalue()


def save_png(scene: Scene, path: str, scale: float = 1.0) -> str:
    render(scene, scale).save(path, "PNG")
    return path


def _snap(a: float, b: float) -> Tuple[int, int, float]:
    """Device span [a, b) (a <= b) -> whole pixels [i0, i1) and the alpha factor of that span.

    A span of at least one pixel gets crisp edges, rounded like ``scene.device_box``; a thinner one is the
    pixel holding its middle, with alpha = its coverage (what an anti-aliasing canvas shows)."""
    if b - a < 1.0:
        mid = int(math.floor((a + b) / 2.0))
        return mid, mid + 1, b - a
    i0, i1 = int(math.floor(a + 0.5)), int(math.floor(b + 0.5))
    return i0, max(i1, i0 + 1), 1.0


def _box(op, s) -> Optional[Tuple[float, float, float, float]]:
    """The rect op's device box (x0, y0, x1, y1) with x0 <= x1, y0 <= y1 (canvas allows negative sizes)."""
    x, y, w, h = op["x"], op["y"], op["w"], op["h"]
    if not _finite(x, y, w, h):
        return None
    x0, x1 = sorted((x * s, (x + w) * s))
    y0, y1 = sorted((y * s, (y + h) * s))
    return x0, y0, x1, y1


def _with_alpha(color, factor: float):
    return color[:3] + (int(round(color[3] * min(max(factor, 0.0), 1.0))),)


def _rect(draw, op, s):
    box = _box(op, s)
    if box is None:
        return
    x0, y0, x1, y1 = box
    alpha = op.get("alpha", 1.0)
    fill = _rgba(op.get("fill"), alpha)
    outline = _rgba(op.get("stroke"), alpha)
    r = max(float(op.get("radius", 0.0) or 0.0) * s, 0.0)
    if fill is not None and x1 > x0 and y1 > y0:
        i0, i1, fx = _snap(x0, x1)
        j0, j1, fy = _snap(y0, y1)
        color = _with_alpha(fill, fx * fy)
        if color[3] > 0:
            rr = min(r, (i1 - i0) / 2.0, (j1 - j0) / 2.0)
            if rr >= 1.0:
                draw.rounded_rectangle([i0, j0, i1 - 1, j1 - 1], radius=rr, fill=color)
            else:
                draw.rectangle([i0, j0, i1 - 1, j1 - 1], fill=color)
    if outline is None or (x1 <= x0 and y1 <= y0):
        return
    lw = op.get("line_width", 1.0)
    lw = float(lw) * s if lw is not None and _finite(lw) else s
    if lw <= 0:
        return
    width = max(int(round(lw)), 1)
    # a canvas stroke is centred on the edge: it covers [x0 - lw/2, x1 + lw/2] minus the inside
    half = width / 2.0
    i0, i1, fx = _snap(x0 - half, x1 + half)
    j0, j1, fy = _snap(y0 - half, y1 + half)
    color = _with_alpha(outline, fx * fy * min(lw, 1.0))  # a hairline is a faint 1-px line
    if color[3] == 0:
        return
    if i1 - i0 <= 2 * width or j1 - j0 <= 2 * width:  # no inside left: the stroke fills its outer box
        draw.rectangle([i0, j0, i1 - 1, j1 - 1], fill=color)
    elif r > 0:
        draw.rounded_rectangle([i0, j0, i1 - 1, j1 - 1], radius=r + half, outline=color, width=width)
    else:
        draw.rectangle([i0, j0, i1 - 1, j1 - 1], outline=color, width=width)


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


def _line_width(op, key: str, s: float) -> int:
    w = op.get(key, 1.0)
    w = 1.0 if w is None or not _finite(w) else float(w)
    return max(int(round(w * s)), 1)


def _line(draw, op, s):
    color = _rgba(op.get("color"), op.get("alpha", 1.0))
    if color is None or color[3] == 0 or not _finite(op["x0"], op["y0"], op["x1"], op["y1"]):
        return
    lw = _line_width(op, "width", s)
    pts = [(op["x0"] * s, op["y0"] * s), (op["x1"] * s, op["y1"] * s)]
    dash = _dash(op.get("dash"), s)
    if dash == []:
        return
    if dash is None:
        draw.line(pts, fill=color, width=lw)
        return
    for seg in _dashed(pts, dash):
        draw.line(seg, fill=color, width=lw)


def _dash(dash: Optional[Sequence[float]], s: float) -> Optional[List[float]]:
    """The device-px dash pattern [on, off]; None for a solid line, [] for nothing drawn. Like canvas
    setLineDash, a pattern with a negative or non-finite value is ignored and an all-zero one is solid;
    zero-length dashes draw nothing; no gap is solid."""
    if not dash:
        return None
    vals = [float(d) for d in dash]
    if not all(math.isfinite(v) and v >= 0 for v in vals) or sum(vals) <= 0:
        return None
    on, off = vals[0] * s, (vals[1] if len(vals) > 1 else vals[0]) * s
    if on <= 0:
        return []  # only gaps
    if off <= 0 or on + off < 1.0:  # no visible gap (and never millions of sub-pixel dashes)
        return None
    return [on, off]


def _path(draw, op, s):
    pts = [(a * s, b * s) for a, b in op.get("points") or () if _finite(a, b)]
    if len(pts) < 2:
        return
    alpha = op.get("alpha", 1.0)
    fill, color = _rgba(op.get("fill"), alpha), _rgba(op.get("color"), alpha)
    lw = _line_width(op, "width", s)
    if fill is not None and len(pts) >= 3:
        draw.polygon(pts, fill=fill)
    if color is not None:
        line = pts + [pts[0]] if op.get("closed") else pts
        draw.line(line, fill=color, width=lw, joint="curve")


def _composite(img, tile, x: int, y: int) -> None:
    """Composite the RGBA `tile` source-over at (x, y), clipped to the image."""
    if x >= img.width or y >= img.height or x + tile.width <= 0 or y + tile.height <= 0:
        return
    if x < 0 or y < 0:
        tile = tile.crop((max(-x, 0), max(-y, 0), tile.width, tile.height))
        x, y = max(x, 0), max(y, 0)
    if img.mode == "RGB":
        img.paste(tile, (x, y), tile)  # over an opaque image: the tile's alpha is the mask
    else:
        img.alpha_composite(tile, (x, y))


# canvas fillText turns every whitespace character into a plain space (so a token holding "\n" stays
# on one line)
_SPACES = {ord(c): " " for c in "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\u2028\u2029"}


def _text(img, draw, op, s):
    from PIL import Image, ImageDraw

    text = str(op.get("s", "")).translate(_SPACES)
    max_w = op.get("max_width")
    if not text.strip() or not _finite(op["x"], op["y"]):
        return
    if max_w is not None and not (_finite(max_w) and max_w > 0):  # canvas draws nothing for maxWidth <= 0
        return
    size = op.get("size", 12.0)
    px = float(size) * s if size is not None and _finite(size) else 12.0 * s
    if px <= 0:
        return
    family, bold, italic = op.get("font", "sans"), bool(op.get("bold")), bool(op.get("italic"))
    font = _font(family, bold, italic, max(int(round(px)), 1))
    if max_w is not None:
        w = font.getlength(text)
        if w > max_w * s:
            px = max(px * max_w * s / w, 1.0)
            font = _font(family, bold, italic, max(int(px), 1))
    anchor = _HANCHOR.get(op.get("align", "left"), "l") + _VANCHOR.get(op.get("baseline", "alphabetic"), "s")
    color = _rgba(op.get("color", "#000000"), op.get("alpha", 1.0))
    if color is None or color[3] == 0:
        return
    x, y = op["x"] * s, op["y"] * s
    rot = op.get("rotate", 0.0) or 0.0
    if not _finite(rot) or abs(rot) < 1e-9:
        draw.text((x, y), text, font=font, fill=color, anchor=anchor)
        return
    # rotated: draw around the centre of a scratch layer, rotate about it, composite
    side = int(font.getlength(text) * 2 + px * 4) + 4
    layer = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(layer).text((side / 2, side / 2), text, font=font, fill=color, anchor=anchor)
    layer = layer.rotate(-math.degrees(rot), resample=Image.BICUBIC, center=(side / 2, side / 2))
    _composite(img, layer, int(round(x - side / 2)), int(round(y - side / 2)))


def _image(img, op, s):
    from PIL import Image

    rgba = np.asarray(op["rgba"])
    if rgba.ndim != 3 or rgba.shape[0] == 0 or rgba.shape[1] == 0 or not _finite(op["x"], op["y"], op["w"], op["h"]):
        return
    if op["w"] <= 0 or op["h"] <= 0:  # canvas drawImage of an empty box draws nothing
        return
    x, y, w, h = device_box(op["x"], op["y"], op["w"], op["h"], s)
    pixels = nearest_upscale(rgba, w, h)
    _composite(img, Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), "RGBA"), x, y)
