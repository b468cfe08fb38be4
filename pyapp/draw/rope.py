"""Rotary position embeddings (RoPE) drawn on real vectors: each pair of coordinates turned by its position.

    (x_i, x_(i+d/2)) at position p  ->  turned by the angle p · θ_i,   θ_i = theta^(-2i/d_k)

so q_m · k_n depends on the positions only through m - n.  One dial per (token, coordinate pair): the
vector before the rotation (grey) and after it (coloured), on a circle scaled to the pair's largest
length.  A few pairs are shown, from the fastest (i = 0: 1 radian per position) to the slowest.  Each dial
is a hit region with the exact numbers (a click pins that token's row: {"pinned_row": p}).
"""

from __future__ import annotations

import math
from typing import List, Sequence

import numpy as np

from .heatmap import short_label
from .scene import Scene, text_width

GREY = "#9aa3ad"


def rope_pairs(d_k: int) -> List[int]:
    """Coordinate pairs to show: the fastest two, one in the middle, the slowest."""
    half = d_k // 2
    return sorted({0, min(1, half - 1), half // 4, half - 1})


def shown_positions(n: int, limit: int = 8) -> List[int]:
    """At most ``limit`` positions: the first ones and the last."""
    if n <= limit:
        return list(range(n))
    return list(range(limit - 1)) + [n - 1]


def _arrow(scene: Scene, cx: float, cy: float, dx: float, dy: float, color: str, width: float) -> None:
    x1, y1 = cx + dx, cy - dy  # y grows downwards on the canvas
    scene.line(cx, cy, x1, y1, color=color, width=width)
    length = math.hypot(dx, dy)
    if length < 4.0:
        return
    ux, uy = dx / length, -dy / length
    head = min(6.0, length * 0.4)
    scene.path([(x1, y1), (x1 - head * ux - head * 0.5 * uy, y1 - head * uy + head * 0.5 * ux),
                (x1 - head * ux + head * 0.5 * uy, y1 - head * uy - head * 0.5 * ux)], fill=color)


def draw_rope(scene: Scene, x: float, y: float, width: float, before: np.ndarray, after: np.ndarray,
              tokens: Sequence[str], theta: float, name: str = "Q", color: str = "#1f6feb") -> float:
    """Dials of ``before`` -> ``after`` (each (n, d_k), one head) for a few coordinate pairs; returns height."""
    n, d_k = before.shape
    half = d_k // 2
    pairs = rope_pairs(d_k)
    rows = shown_positions(n)
    label_w = min(90.0, max(text_width(short_label(tokens[p], 10), 11) for p in rows) + 30.0)
    dial = max(34.0, min(64.0, (width - label_w) / len(pairs) - 10.0))
    col_w = dial + 10.0
    scene.text(x, y + 26, "θ per pos.", size=10, color="#555555")
    top = y + 34.0
    for c, i in enumerate(pairs):
        freq = float(theta) ** (-2.0 * i / d_k)
        cx = x + label_w + c * col_w + dial / 2
        scene.text(cx, y + 12, "pair %d" % i, size=11, align="center", bold=True, color="#222222")
        scene.text(cx, y + 26, _angle(freq), size=10, align="center", color="#555555", max_width=col_w - 2)
    for r, p in enumerate(rows):
        cy = top + r * col_w + dial / 2
        scene.text(x, cy, "%d" % p, size=10, baseline="middle", color="#777777", font="mono")
        scene.text(x + 24, cy, short_label(tokens[p], 10), size=11, baseline="middle", color="#222222",
                   max_width=label_w - 28)
        for c, i in enumerate(pairs):
            a = before[:, [i, i + half]]  # (n, 2)
            b = after[:, [i, i + half]]  # (n, 2)
            scale = float(max(np.hypot(a[:, 0], a[:, 1]).max(), 1e-12))
            rad = dial / 2 - 2
            cx = x + label_w + c * col_w + dial / 2
            scene.rect(cx - rad, cy - rad, 2 * rad, 2 * rad, stroke="#e1e4e8", radius=rad)
            _arrow(scene, cx, cy, rad * a[p, 0] / scale, rad * a[p, 1] / scale, GREY, 1.2)
            _arrow(scene, cx, cy, rad * b[p, 0] / scale, rad * b[p, 1] / scale, color, 2.0)
            angle = p * float(theta) ** (-2.0 * i / d_k)
            scene.region(cx - dial / 2, cy - dial / 2, dial, dial, "rope_dial", action={"pinned_row": p},
                         tooltip="%s of '%s' (position %d), coordinates %d and %d: (%.4f, %.4f) turned by "
                                 "%d × %s = %.4f rad -> (%.4f, %.4f)"
                                 % (name, tokens[p], p, i, i + half, a[p, 0], a[p, 1], p,
                                    _angle(float(theta) ** (-2.0 * i / d_k)), angle, b[p, 0], b[p, 1]))
    bottom = top + len(rows) * col_w
    if len(rows) < n:
        scene.text(x, bottom + 4, "⋮ %d more positions" % (n - len(rows)), size=10, color="#777777")
        bottom += 12
    lx = x
    scene.line(lx, bottom + 10, lx + 18, bottom + 10, color=GREY, width=1.2)
    scene.text(lx + 22, bottom + 14, "%s before the rotation" % name, size=10, color="#333333")
    lx += 30 + text_width("%s before the rotation" % name, 10)
    scene.line(lx, bottom + 10, lx + 18, bottom + 10, color=color, width=2.0)
    scene.text(lx + 22, bottom + 14, "after: turned by position × θ", size=10, color="#333333")
    return bottom + 20 - y


def _angle(rad: float) -> str:
    """An angle per position, short: "1 rad", "0.056 rad", "1.4e-05 rad"."""
    return "%.2g rad" % rad
