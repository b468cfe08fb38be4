"""A Scene is what a view wants drawn: plain drawing ops plus hit regions.

Views build scenes; backends (browser canvas, Pillow raster) draw them. Coordinates are CSS pixels with the
origin at the top-left. Nothing here knows about the browser.

Op semantics (both backends follow them; ops are drawn in list order, later on top):

* background  ``scene.background`` (colour or None = transparent) fills the whole scene first.
* rect    x, y, w, h; ``fill`` and/or ``stroke`` colour (None = not drawn); ``line_width`` of the stroke,
          which is centred on the box edge (Canvas ``strokeRect``); ``radius`` rounds the corners; ``alpha``
          multiplies both. A rect with radius = w/2 = h/2 is a circle.
* line    from (x0, y0) to (x1, y1), ``color``, ``width``, ``alpha``, ``dash`` = [on, off] CSS px or None.
* path    ``points`` [(x, y), ...] as a polyline; ``fill`` fills the polygon, ``color`` strokes it
          (round joins), ``closed`` closes the stroke.
* text    ``s`` drawn as plain text (never markup) at (x, y): ``align`` left | center | right,
          ``baseline`` alphabetic | middle | top | bottom (Canvas textAlign / textBaseline), ``size`` px,
          ``bold``, ``italic``, ``font`` sans | serif | mono (families in FONT_FAMILIES), ``rotate``
          radians clockwise about (x, y), ``max_width``: if the drawn text is wider, it is squeezed
          (Canvas fillText maxWidth) or shrunk to fit.
* image   an (r, c, 4) uint8 RGBA array stretched over (x, y, w, h) with NEAREST-neighbour sampling: the
          box is snapped with ``device_box(x, y, w, h, dpr)`` and resampled with ``nearest_upscale`` so
          every backend puts each source pixel (e.g. a heatmap cell) on the same device pixels.

Colours are "#rrggbb" (or "#rrggbbaa") strings. Hit regions are not drawn: ``hit_test`` finds the topmost
(last added) region under a point; ``pyapp.app.interact`` turns a Hit into a tooltip / a state change.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

# Fonts. Views lay text out without a text-measuring backend, from the advance widths of the DejaVu
# fonts (present on Linux and shipped by Pyodide's browsers' hosts as a common fallback). Backends draw
# "sans" / "serif" / "mono" with these families first, so estimated and drawn widths agree; where another
# font is substituted, `max_width` (when given) tells the backend to squeeze the text to fit.
FONT_FAMILIES = {
    "sans": '"DejaVu Sans", Verdana, "Bitstream Vera Sans", sans-serif',
    "serif": '"DejaVu Serif", "Bitstream Vera Serif", Georgia, serif',
    "mono": '"DejaVu Sans Mono", "Bitstream Vera Sans Mono", Menlo, Consolas, monospace',
}

# Average advance of one character, as a fraction of the font size (fallback for characters not below).
_CHAR_WIDTH = {"sans": 0.60, "mono": 0.602, "serif": 0.62}

# Advance widths (hundredths of the font size) of DejaVu Sans / Serif / Sans Bold for ASCII 32..126, and
# of a few symbols the views use. Measured once with Pillow from the DejaVu TrueType files.
_ASCII = {
    "sans": "3240468464957827393950843236323464646464646464646464343484848453996869707763587775303066568675"
            "796079696361736899686168393439845050616355636235636328285828976361636341523963598259595264346484",
    "serif": "3240468464958927393950843234323464646464646464646464343484848454997273778073698087404075669988"
             "826782756867847299716669393439845050606456645937646432316132956460646448514064568656565364346484",
    "sans_bold": "354652847099873146465284384238377070707070707070707040408484845899777673836868828437377764"
                 "9984857385777268817799777273463746845050677259726844727134346634997169727249604871659264655871377184",
}
_EXTRA_CHARS = "√⋯⋮⋱×·→←↓↑∑ᵀ⊤αβγδεθλμπσφψωΩ∞≈≤≥−±÷…▸●○✓⁄ℝ∈Σ“”’"
_EXTRA = {
    "sans": "64999999843284848484673887666459615461596460636666847683848484848484995087878417798763525232",
    "serif": "64606060843284848484714294685860605260636566687078828383848484848484995087876017837471515132",
    "sans_bold": "67999999843884848484724391697268695669637479787879878583848484848484995087878417809068666638",
}


def _width_table(key: str) -> Dict[str, float]:
    table = {}
    digits = _ASCII[key]
    for i in range(95):
        table[chr(32 + i)] = int(digits[2 * i:2 * i + 2]) / 100.0
    digits = _EXTRA[key]
    for i, ch in enumerate(_EXTRA_CHARS):
        table[ch] = int(digits[2 * i:2 * i + 2]) / 100.0
    return table


_WIDTHS = {key: _width_table(key) for key in _ASCII}


def text_width(s: str, size: float, font: str = "sans", bold: bool = False) -> float:
    """Estimated width in CSS pixels of `s` drawn at `size` px (DejaVu metrics)."""
    if font == "mono":
        return len(s) * size * _CHAR_WIDTH["mono"] * (1.0 if not bold else 1.0)
    key = "sans_bold" if (bold and font == "sans") else ("serif" if font == "serif" else "sans")
    table = _WIDTHS[key]
    default = _CHAR_WIDTH.get(font, 0.6)
    w = sum(table.get(ch, default) for ch in s) * size
    return w * 1.08 if (bold and font == "serif") else w


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
    if rgba.dtype == np.uint8 and rgba.ndim == 3 and rgba.shape[2] == 4:
        # one uint32 per pixel and two 1-D takes: the same pixels, ~5x faster in Pyodide 0.17 (bench/README.md)
        px = np.ascontiguousarray(rgba).view(np.uint32).reshape(rows, cols)  # (r, c) packed RGBA
        return px.take(ri, axis=0).take(ci, axis=1).view(np.uint8).reshape(out_h, out_w, 4)
    return rgba[ri[:, None], ci[None, :]]


def device_box(x: float, y: float, w: float, h: float, dpr: float) -> Tuple[int, int, int, int]:
    """A CSS-pixel box snapped to whole device pixels: (x, y, w, h) in device pixels."""
    x0, y0 = int(math.floor(x * dpr + 0.5)), int(math.floor(y * dpr + 0.5))
    x1, y1 = int(math.floor((x + w) * dpr + 0.5)), int(math.floor((y + h) * dpr + 0.5))
    return x0, y0, max(x1 - x0, 1), max(y1 - y0, 1)


# ---- small shared widgets (drawn from the ops above) -------------------------------------------------
def button(scene: Scene, x: float, y: float, label: str, action: Dict[str, Any], active: bool = False,
           size: float = 12.0, tooltip: Optional[str] = None, kind: str = "button") -> float:
    """A rounded pill with a click region carrying `action`; returns its width."""
    w = text_width(label, size, bold=active) + 2 * size
    h = size * 2.0
    scene.rect(x, y, w, h, fill="#1f6feb" if active else "#f2f4f7", stroke="#1f6feb" if active else "#c9ced6",
               radius=h / 2)
    scene.text(x + w / 2, y + h / 2 + 0.5, label, size=size, align="center", baseline="middle",
               color="#ffffff" if active else "#222222", bold=active)
    scene.region(x, y, w, h, kind, action=action, tooltip=tooltip or label)
    return w


def notice(scene: Scene, x: float, y: float, w: float, h: float, message: str, size: float = 13.0):
    """A dashed placeholder box with a centred message (e.g. "loading V/O weights…"), wrapped onto lines where
    the box has room for them (a phone-width box would shrink one long line past reading), else one line."""
    scene.rect(x, y, w, h, fill="#f7f7f9", stroke="#b0b6c0", radius=6)
    step = 1.5 * size
    lines = wrap_text(message, w - 24, size)
    if len(lines) * step > h - 8:
        lines = [message]
    top = y + h / 2 - step * (len(lines) - 1) / 2
    for i, line in enumerate(lines):
        scene.text(x + w / 2, top + step * i, line, size=size, align="center", baseline="middle",
                   color="#555555", italic=True, max_width=w - 12)


def wrap_text(s: str, width: float, size: float, font: str = "sans") -> List[str]:
    """Greedy word wrap of `s` to lines no wider than `width` (estimated)."""
    lines: List[str] = []
    for para in s.split("\n"):
        line = ""
        for word in para.split(" "):
            trial = word if not line else line + " " + word
            if line and text_width(trial, size, font) > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    return lines


def header(scene: Scene, x: float, y: float, w: float, title: str, subtitle: str = "") -> float:
    """A view title (bold) and a grey subtitle wrapped to `w`; returns the y below them."""
    scene.text(x, y + 17, title, size=17, bold=True, color="#111111", max_width=w)
    y += 26
    for line in wrap_text(subtitle, w, 12) if subtitle else []:
        scene.text(x, y + 12, line, size=12, color="#666666")
        y += 16
    return y + 8
