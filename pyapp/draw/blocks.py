"""Blocks: small drawings laid out in a flow -- left to right when they fit, else stacked (narrow screens).

A ``Block`` draws itself at (0, 0) of a fresh scene within ``max_w`` and returns its (w, h); ``alone`` is True
when it gets a line of its own, so it may use the whole width. The Step-by-step view builds its steps from
them (matrices, notices, bold text, rows and columns of blocks with operators such as "→" between).
"""

from __future__ import annotations

from typing import Callable, Sequence, Tuple, Union

from .matrix import draw_matrix
from .scene import Scene, notice, text_width, wrap_text

# A block draws itself at (0, 0) of a fresh scene within max_w and returns its (w, h); `alone` is True
# when it gets a line of its own (narrow screens), so it may use the whole width.
Block = Callable[[Scene, float, bool], Tuple[float, float]]


def flow(scene: Scene, x: float, y: float, width: float, items: Sequence[Union[Block, str]],
         gap: float = 14.0, op_y: float = 0.0) -> float:
    """Lay out blocks and operator strings left to right when they fit, else top to bottom.

    Operators sit at `op_y` below the blocks' tops (horizontal) or on their own line (vertical).
    Returns the height used.
    """
    drawn = []
    for it in items:
        if isinstance(it, str):
            drawn.append((it, it, text_width(it, 18, "serif") + 8, 0.0))
        else:
            sub = Scene(width, 10)
            w, h = it(sub, width, False)
            drawn.append((it, sub, w, h))
    total = sum(d[2] for d in drawn) + gap * (len(drawn) - 1)
    if total <= width:
        cx, height = x, max(d[3] for d in drawn)
        for _, obj, w, _h in drawn:
            if isinstance(obj, str):
                scene.text(cx + w / 2, y + (op_y or height / 2), obj, size=18, font="serif", align="center",
                           baseline="middle", color="#444444")
            else:
                scene.add(obj, cx, y)
            cx += w + gap
        return height
    cy = y
    for it, obj, w, h in drawn:
        if not isinstance(obj, str):
            obj = Scene(width, 10)
            w, h = it(obj, width, True)
        if isinstance(obj, str):
            scene.text(x + 4, cy + 12, obj.replace("→", "↓"), size=18, font="serif", align="left",
                       baseline="middle", color="#444444")     # stacked: the flow runs downwards
            cy += 26
        else:
            scene.add(obj, x, cy)
            cy += h + 10
    return cy - y - 10


def wide_cell(cols: int) -> float:
    """Cell width for a d_model-wide matrix: about 256 px in all, at least 1 px, at most 4 px per column."""
    return max(1.0, min(4.0, 256.0 / max(cols, 1)))


def matrix_block(matrix, name, shape, rh, labels=None, max_cell_w=18.0, frac=1.0, **kw) -> Block:
    def block(sub: Scene, max_w: float, alone: bool = False):
        return draw_matrix(sub, 0, 0, matrix, name, rh=rh, max_w=max_w * (1.0 if alone else frac),
                           row_labels=labels, shape=shape,
                           max_cell_w=max_cell_w, **kw)
    return block


def notice_block(message: str, w: float = 260.0, h: float = 90.0) -> Block:
    def block(sub: Scene, max_w: float, alone: bool = False):
        ww = min(w, max_w)
        notice(sub, 0, 0, ww, h, message)
        return ww, h
    return block


def text_block(message: str, size: float = 12.0) -> Block:
    def block(sub: Scene, max_w: float, alone: bool = False):
        lines = wrap_text(message, max_w / 1.1, size)  # bold runs ~8 % wider
        for i, line in enumerate(lines):
            sub.text(0, (i + 1) * (size + 4), line, size=size, bold=True, color="#333333")
        return min(max(text_width(t, size, bold=True) for t in lines), max_w), len(lines) * (size + 4) + 2
    return block


def row_block(items, op_y: float = 28.0) -> Block:
    def block(sub: Scene, max_w: float, alone: bool = False):
        hgt = flow(sub, 0, 0, max_w, items, op_y=op_y)
        return extent(sub, max_w), hgt
    return block


def column_block(blocks, gap: float = 16.0) -> Block:
    def block(sub: Scene, max_w: float, alone: bool = False):
        y = 0.0
        for b in blocks:
            s = Scene(max_w, 10)
            _, hh = b(s, max_w, alone)
            sub.add(s, 0, y)
            y += hh + gap
        return extent(sub, max_w), y - gap
    return block


def extent(scene: Scene, cap: float) -> float:
    """Right edge of what a scene has drawn (regions and boxes), capped."""
    right = 0.0
    for r in scene.regions:
        right = max(right, r["x"] + r["w"])
    for op in scene.ops:
        if op["op"] in ("rect", "image"):
            right = max(right, op["x"] + op["w"])
    return min(right, cap)
