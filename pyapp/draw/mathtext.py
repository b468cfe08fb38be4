"""A small math typesetter that draws on a Scene: no KaTeX, no fonts beyond the backends' serif.

Boxes know their width, ascent and descent (from scene.text_width's DejaVu metrics) and draw themselves
at (x, baseline). Text atoms are drawn centred in their box with ``max_width``, so a backend whose font
is a little wider or narrower than estimated still keeps every atom inside its slot.

    Text("Q", 18, italic=True)                  an atom
    Row([a, b, c])                              side by side, on a common baseline
    Frac(num, den, size)                        a fraction bar on the math axis
    Scripts(base, sup=..., sub=...)             super- / subscripts
    Sqrt(body, size)                            a radical with its overbar
    Matrix([[box, ...], ...], size)             cells in columns, bracketed ([ ] or ( ))
    matrix_of(array, ...)                       numbers -> Matrix, truncated with ⋯ ⋮ ⋱
    formula("softmax", ...)                     shorthand helpers below
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from .scene import Scene, text_width

INK = "#1b1b1b"


class Box:
    w = 0.0
    asc = 0.0
    desc = 0.0

    @property
    def height(self) -> float:
        return self.asc + self.desc

    def draw(self, scene: Scene, x: float, base: float):  # pragma: no cover - abstract
        raise NotImplementedError


class Space(Box):
    def __init__(self, w: float):
        self.w, self.asc, self.desc = float(w), 0.0, 0.0

    def draw(self, scene, x, base):
        pass


class Text(Box):
    """One run of text. Math letters are italic serif; operators and numbers upright."""

    def __init__(self, s: str, size: float, italic: bool = False, bold: bool = False, color: str = INK,
                 font: str = "serif", pad: float = 0.0):
        self.s, self.size, self.italic, self.bold, self.color, self.font = s, size, italic, bold, color, font
        self.w = text_width(s, size, font, bold) * (1.04 if italic else 1.0) + 2 * pad
        self.asc, self.desc = 0.74 * size, 0.24 * size

    def draw(self, scene, x, base):
        scene.text(x + self.w / 2, base, self.s, size=self.size, color=self.color, align="center",
                   italic=self.italic, bold=self.bold, font=self.font, max_width=self.w + 0.5)


class Dots(Box):
    """⋯ ⋮ ⋱ drawn as three dots (no font has to carry these glyphs): kind "h", "v" or "d"."""

    def __init__(self, kind: str, size: float, color: str = INK):
        self.kind, self.size, self.color = kind, size, color
        self.w = (0.45 if kind == "v" else 1.0) * size
        self.asc, self.desc = (0.74 * size, 0.24 * size)

    def draw(self, scene, x, base):
        s = self.size
        r = max(0.06 * s, 0.9)
        mid_y = base - axis(s)
        for k in (-1, 0, 1):
            if self.kind == "h":
                cx, cy = x + self.w / 2 + k * 0.28 * s, mid_y
            elif self.kind == "v":
                cx, cy = x + self.w / 2, mid_y + k * 0.3 * s
            else:
                cx, cy = x + self.w / 2 + k * 0.26 * s, mid_y + k * 0.26 * s
            scene.rect(cx - r, cy - r, 2 * r, 2 * r, fill=self.color, radius=r)


class Row(Box):
    def __init__(self, items: Sequence[Box], gap: float = 0.0):
        self.items = list(items)
        self.gap = gap
        self.w = sum(b.w for b in self.items) + gap * max(len(self.items) - 1, 0)
        self.asc = max((b.asc for b in self.items), default=0.0)
        self.desc = max((b.desc for b in self.items), default=0.0)

    def draw(self, scene, x, base):
        for b in self.items:
            b.draw(scene, x, base)
            x += b.w + self.gap


def axis(size: float) -> float:
    """Height of the math axis (fraction bars, matrix centres) above the baseline."""
    return 0.28 * size


class Frac(Box):
    def __init__(self, num: Box, den: Box, size: float):
        self.num, self.den, self.size = num, den, size
        self.pad = 0.18 * size
        self.w = max(num.w, den.w) + 2 * self.pad
        gap = 0.16 * size
        self.asc = axis(size) + gap + num.desc + num.asc
        self.desc = -axis(size) + gap + den.asc + den.desc
        self.gap = gap

    def draw(self, scene, x, base):
        bar = base - axis(self.size)
        scene.line(x + 1, bar, x + self.w - 1, bar, color=INK, width=max(0.06 * self.size, 1.0))
        self.num.draw(scene, x + (self.w - self.num.w) / 2, bar - self.gap - self.num.desc)
        self.den.draw(scene, x + (self.w - self.den.w) / 2, bar + self.gap + self.den.asc)


class Scripts(Box):
    def __init__(self, base: Box, sup: Optional[Box] = None, sub: Optional[Box] = None, size: float = 16.0):
        self.base, self.sup, self.sub, self.size = base, sup, sub, size
        self.up = max(0.42 * size, base.asc - 0.5 * (sup.asc if sup else 0))
        self.down = 0.22 * size + (0.1 * size if sup is not None else 0.0)
        sw = max(sup.w if sup else 0.0, sub.w if sub else 0.0)
        self.w = base.w + sw + 0.06 * size
        self.asc = max(base.asc, self.up + (sup.asc if sup else 0.0))
        self.desc = max(base.desc, self.down + (sub.desc if sub else 0.0))

    def draw(self, scene, x, base):
        self.base.draw(scene, x, base)
        sx = x + self.base.w + 0.04 * self.size
        if self.sup is not None:
            self.sup.draw(scene, sx, base - self.up)
        if self.sub is not None:
            self.sub.draw(scene, sx, base + self.down)


class Sqrt(Box):
    def __init__(self, body: Box, size: float):
        self.body, self.size = body, size
        self.sign = 0.62 * size
        self.w = self.sign + body.w + 0.12 * size
        self.asc = body.asc + 0.18 * size
        self.desc = body.desc + 0.04 * size

    def draw(self, scene, x, base):
        s = self.size
        top, bottom = base - self.asc + 1, base + self.desc - 1
        lw = max(0.06 * s, 1.0)
        pts = [(x + 0.04 * s, base - 0.32 * s), (x + 0.16 * s, base - 0.40 * s), (x + 0.32 * s, bottom),
               (x + self.sign - 0.06 * s, top), (x + self.w, top)]
        scene.path(pts, color=INK, width=lw)
        self.body.draw(scene, x + self.sign, base)


class Bracket(Box):
    """A tall bracket / parenthesis around `body` ("[", "(", "|")."""

    def __init__(self, body: Box, size: float, left: str = "[", right: str = "]"):
        self.body, self.size, self.left, self.right = body, size, left, right
        self.bw = 0.36 * size
        self.w = body.w + 2 * self.bw
        self.asc = body.asc + 0.08 * size
        self.desc = body.desc + 0.08 * size

    def _draw_one(self, scene, x, top, bottom, kind, flip):
        s, lw = self.size, max(0.065 * self.size, 1.0)
        arm = 0.22 * s
        d = -1 if flip else 1
        if kind == "[":
            xe = x + (self.bw - 0.08 * s if flip else 0.08 * s)
            scene.path([(xe + d * arm, top), (xe, top), (xe, bottom), (xe + d * arm, bottom)], color=INK, width=lw)
        elif kind == "(":
            xe = x + (self.bw - 0.08 * s if flip else 0.08 * s)
            mid = (top + bottom) / 2
            pts = []
            for t in np.linspace(-1.0, 1.0, 13):
                pts.append((xe + d * arm * (abs(t) ** 2), mid + t * (bottom - top) / 2))
            scene.path(pts, color=INK, width=lw)

    def draw(self, scene, x, base):
        top, bottom = base - self.asc, base + self.desc
        self._draw_one(scene, x, top, bottom, self.left, False)
        self.body.draw(scene, x + self.bw, base)
        self._draw_one(scene, x + self.bw + self.body.w, top, bottom, "[" if self.right == "]" else "(", True)


class Grid(Box):
    """Cells in rows and columns (column-aligned centres), vertically centred on the math axis."""

    def __init__(self, cells: Sequence[Sequence[Box]], size: float, col_gap: Optional[float] = None,
                 row_gap: Optional[float] = None, align: str = "center"):
        self.cells = [list(r) for r in cells]
        self.size = size
        self.col_gap = 0.7 * size if col_gap is None else col_gap
        self.row_gap = 0.3 * size if row_gap is None else row_gap
        self.align = align
        n_cols = max(len(r) for r in self.cells) if self.cells else 0
        self.col_w = [max((r[j].w for r in self.cells if j < len(r)), default=0.0) for j in range(n_cols)]
        self.row_asc = [max((b.asc for b in r), default=0.0) for r in self.cells]
        self.row_desc = [max((b.desc for b in r), default=0.0) for r in self.cells]
        self.w = sum(self.col_w) + self.col_gap * max(n_cols - 1, 0)
        total = sum(a + d for a, d in zip(self.row_asc, self.row_desc)) + self.row_gap * max(len(self.cells) - 1, 0)
        self.asc = total / 2 + axis(size)
        self.desc = total / 2 - axis(size)

    def draw(self, scene, x, base):
        y = base - self.asc
        for r, row in enumerate(self.cells):
            b = y + self.row_asc[r]
            cx = x
            for j, cell in enumerate(row):
                if self.align == "right":
                    off = self.col_w[j] - cell.w
                elif self.align == "left":
                    off = 0.0
                else:
                    off = (self.col_w[j] - cell.w) / 2
                cell.draw(scene, cx + off, b)
                cx += self.col_w[j] + self.col_gap
            y += self.row_asc[r] + self.row_desc[r] + self.row_gap


def Matrix(cells, size: float, brackets: str = "[]", **kw) -> Box:
    return Bracket(Grid(cells, size, **kw), size, brackets[0], brackets[1])


# ---- helpers ----------------------------------------------------------------------------------------
def var(name: str, size: float, sub: str = "", sup: str = "", sub_italic: bool = False) -> Box:
    """An italic variable with optional upright sub/superscripts, e.g. var("W", 18, "h", "Q")."""
    base = Text(name, size, italic=len(name) == 1 and name.isascii())  # ℝ stays upright
    small = size * 0.7
    return Scripts(base, Text(sup, small) if sup else None,
                   Text(sub, small, italic=sub_italic) if sub else None, size) if (sub or sup) else base


def op(s: str, size: float, space: float = 0.25) -> Box:
    """A binary operator or relation with thin spaces around it."""
    return Text(s, size, pad=space * size)


def fmt_number(v: float, digits: int = 2) -> str:
    if not np.isfinite(v):
        return "−∞" if v < 0 else "∞"
    s = ("%." + str(digits) + "f") % v
    if s.startswith("-"):
        s = "−" + s[1:]
        if float(s[1:]) == 0:
            s = s[1:]
    return s


def _pick(n: int, limit: int) -> List[int]:
    """Indices shown of n when at most `limit` fit: the first limit-2, then -1 for the ellipsis, then the last."""
    if n <= limit:
        return list(range(n))
    head = max(limit - 2, 1)
    return list(range(head)) + [-1, n - 1]


def matrix_of(a: np.ndarray, size: float, max_rows: int = 6, max_cols: int = 6, digits: int = 2,
              highlight_row: Optional[int] = None) -> Box:
    """A bracketed numeric matrix, truncated with ⋮ ⋯ ⋱ when it has more rows / columns than fit."""
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[None, :]
    rows, cols = _pick(a.shape[0], max_rows), _pick(a.shape[1], max_cols)
    cells = []
    for i in rows:
        line = []
        for j in cols:
            if i < 0 and j < 0:
                line.append(Dots("d", size))
            elif i < 0:
                line.append(Dots("v", size))
            elif j < 0:
                line.append(Dots("h", size))
            else:
                hl = highlight_row is not None and i == highlight_row
                line.append(Text(fmt_number(float(a[i, j]), digits), size, color="#c2185b" if hl else INK))
        cells.append(line)
    return Matrix(cells, size, col_gap=0.55 * size, row_gap=0.22 * size)


def label_column(labels: Sequence[str], n: int, size: float, max_rows: int, matrix_size: float) -> Box:
    """Row labels (tokens) matching matrix_of's row truncation, as a left-aligned grid (sans, grey)."""
    rows = _pick(n, max_rows)
    cells = [[Dots("v", size, "#777777") if i < 0 else Text(labels[i], size, color="#777777", font="sans")]
             for i in rows]
    # match the matrix rows' pitch: matrix rows use the number font (matrix_size) and its row gap
    pitch = 0.98 * matrix_size + 0.22 * matrix_size
    return Grid(cells, matrix_size, row_gap=pitch - 0.98 * size, align="right")


def cols_that_fit(width: float, size: float, digits: int = 2, sample: str = "−0.00") -> int:
    """How many number columns (plus an ellipsis column) fit in `width` px."""
    cw = text_width(sample, size, "serif") + 0.55 * size
    return int(max(3, min(12, (width - 0.8 * size) // cw)))


def draw(scene: Scene, box: Box, x: float, y: float) -> float:
    """Draw `box` with its top-left at (x, y); returns its height."""
    box.draw(scene, x, y + box.asc)
    return box.height
