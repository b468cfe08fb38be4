"""A Scene is what a view wants drawn: plain drawing ops plus hit regions.

Views build scenes; backends (browser canvas, Pillow raster) draw them. Coordinates are CSS pixels with the
origin at the top-left. Nothing here knows about the browser.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

# Average advance of one character, as a fraction of the font size. Views use it to lay out labels
# without a text-measuring backend; backends may shrink text to `max_width` when it is given.
_CHAR_WIDTH = {"sans": 0.56, "mono": 0.61, "serif": 0.52}


def text_width(s: str, size: float, font: str = "sans", bold: bool = False) -> float:
    """Estimated width in CSS pixels of `s` drawn at `size` px."""
    w = len(s) * size * _CHAR_WIDTH.get(font, 0.56)
    return w * 1.07 if bold else w


class Hit:
    """What lies under a point: a region's kind and data, plus (row, col) for grid regions."""

    def __init__(self, kind: str, data: Dict[str, Any], row: int = -1, col: int = -1):
        self.kind = kind
        self.data = data
        self.row = row
        self.col = col

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "Hit(%r, row=%d, col=%d)" % (self.kind, self.row, self.col)


class Scene:
    """An ordered list of drawing ops (dicts with an "op" key) and hit regions."""

    def __init__(self, width: float, height: float, background: Optional[str] = "#ffffff", label: str = ""):
        self.width = float(width)
        self.height = float(height)
        self.background = background
        self.label = label  # short aria-label for the canvas
        self.alt_text = ""  # longer text alternative (e.g. each query's top-3 keys)
        self.ops: List[Dict[str, Any]] = []
        self.regions: List[Dict[str, Any]] = []

    # ---- drawing ops -------------------------------------------------------------------------------
    def rect(self, x, y, w, h, fill=None, stroke=None, line_width=1.0, radius=0.0, alpha=1.0):
        self.ops.append(dict(op="rect", x=x, y=y, w=w, h=h, fill=fill, stroke=stroke,
                             line_width=line_width, radius=radius, alpha=alpha))

    def line(self, x0, y0, x1, y1, color="#000000", width=1.0, alpha=1.0, dash=None):
        self.ops.append(dict(op="line", x0=x0, y0=y0, x1=x1, y1=y1, color=color, width=width,
                             alpha=alpha, dash=dash))

    def path(self, points: Sequence[Tuple[float, float]], color=None, width=1.0, fill=None, closed=False,
             alpha=1.0):
        """A polyline / polygon (arrow heads, diagram shapes)."""
        self.ops.append(dict(op="path", points=[(float(a), float(b)) for a, b in points], color=color,
                             width=width, fill=fill, closed=closed, alpha=alpha))

    def text(self, x, y, s, size=12.0, color="#222222", align="left", baseline="alphabetic", bold=False,
             italic=False, font="sans", rotate=0.0, max_width=None, alpha=1.0):
        """`s` is drawn as plain text (never parsed as markup). `rotate` is in radians about (x, y)."""
        self.ops.append(dict(op="text", x=x, y=y, s=str(s), size=size, color=color, align=align,
                             baseline=baseline, bold=bold, italic=italic, font=font, rotate=rotate,
                             max_width=max_width, alpha=alpha))

    def image(self, x, y, w, h, rgba: np.ndarray):
        """An RGBA uint8 array (rows, cols, 4) stretched over (x, y, w, h) with nearest-neighbour sampling."""
        assert rgba.dtype == np.uint8 and rgba.ndim == 3 and rgba.shape[2] == 4, "rgba must be (r, c, 4) uint8"
        self.ops.append(dict(op="image", x=x, y=y, w=w, h=h, rgba=rgba))

    # ---- hit regions -------------------------------------------------------------------------------
    def region(self, x, y, w, h, kind: str, **data):
        """A clickable / hoverable box. `data` is free-form (e.g. tooltip=str, action=dict)."""
        self.regions.append(dict(x=x, y=y, w=w, h=h, kind=kind, rows=0, cols=0, data=data))

    def grid(self, x, y, w, h, rows: int, cols: int, kind: str, **data):
        """A box divided into rows x cols cells; a hit reports the cell."""
        self.regions.append(dict(x=x, y=y, w=w, h=h, kind=kind, rows=int(rows), cols=int(cols), data=data))

    def hit_test(self, px: float, py: float) -> Optional[Hit]:
        """The topmost region under (px, py), or None."""
        for r in reversed(self.regions):
            if r["x"] <= px < r["x"] + r["w"] and r["y"] <= py < r["y"] + r["h"]:
                if r["rows"] and r["cols"]:
                    row = min(int((py - r["y"]) / r["h"] * r["rows"]), r["rows"] - 1)
                    col = min(int((px - r["x"]) / r["w"] * r["cols"]), r["cols"] - 1)
                    return Hit(r["kind"], r["data"], row, col)
                return Hit(r["kind"], r["data"])
        return None

    # ---- composition -------------------------------------------------------------------------------
    def add(self, other: "Scene", dx: float = 0.0, dy: float = 0.0):
        """Append another scene's ops and regions, shifted by (dx, dy)."""
        for op in other.ops:
            self.ops.append(_shift(op, dx, dy))
        for r in other.regions:
            s = dict(r)
            s["x"] = r["x"] + dx
            s["y"] = r["y"] + dy
            self.regions.append(s)


def _shift(op: Dict[str, Any], dx: float, dy: float) -> Dict[str, Any]:
    s = dict(op)
    if op["op"] == "line":
        s.update(x0=op["x0"] + dx, y0=op["y0"] + dy, x1=op["x1"] + dx, y1=op["y1"] + dy)
    elif op["op"] == "path":
        s["points"] = [(a + dx, b + dy) for a, b in op["points"]]
    else:
        s.update(x=op["x"] + dx, y=op["y"] + dy)
    return s


def nearest_upscale(rgba: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """Nearest-neighbour resize of an (r, c, 4) image to (out_h, out_w, 4): one gather, no Python loops.

    Both backends use it so a heatmap cell maps to the same pixels in the browser and in a PNG.
    """
    rows, cols = rgba.shape[:2]
    out_w, out_h = max(int(out_w), 1), max(int(out_h), 1)
    ri = (np.arange(out_h) * rows // out_h).astype(np.intp)
    ci = (np.arange(out_w) * cols // out_w).astype(np.intp)
    return rgba[ri[:, None], ci[None, :]]


def device_box(x: float, y: float, w: float, h: float, dpr: float) -> Tuple[int, int, int, int]:
    """A CSS-pixel box snapped to whole device pixels: (x, y, w, h) in device pixels."""
    x0, y0 = int(math.floor(x * dpr + 0.5)), int(math.floor(y * dpr + 0.5))
    x1, y1 = int(math.floor((x + w) * dpr + 0.5)), int(math.floor((y + h) * dpr + 0.5))
    return x0, y0, max(x1 - x0, 1), max(y1 - y0, 1)
