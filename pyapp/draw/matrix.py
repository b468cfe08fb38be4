"""Numeric matrices drawn as colour images (diverging: blue < 0 < red) with token row labels.

Colours run from -L (blue) through 0 (white) to +L (red), L = the 99th percentile of |value|.
Used by the Step-by-step view for X, Q_h, K_h, V_h, head outputs, the concatenation and the output.
Each matrix is one image op plus a "matrix_cell" grid region (hover: "Q_h[4, 17] = 0.123456 (fox)").
Very wide matrices are drawn at < 1 px per column (nearest sampling by the backend); the tooltip still
reports the exact entry under the pointer.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from .colormap import signed_colors
from .heatmap import short_label
from .scene import Scene, text_width

HIGHLIGHT = "#ff8c00"


def row_height(n: int, budget: float = 320.0) -> float:
    """Height of one token row so n rows fit in about `budget` px (between 2 and 18 px)."""
    return float(max(2.0, min(18.0, budget / max(n, 1))))


def label_width(labels: Sequence[str], size: float) -> float:
    return max((text_width(short_label(t, 10), size) for t in labels), default=0.0) + 6.0


def label_font(rh: float) -> Tuple[float, int]:
    """Row-label font size and thinning step for a row height."""
    font = min(11.0, rh * 0.8)
    if font >= 7.0:
        return font, 1
    return 7.0, int(np.ceil(9.0 / max(rh, 1e-6)))


def robust_limit(matrix: np.ndarray) -> float:
    """Colour limit: the 99th percentile of |value| (a few outliers saturate instead of washing out the rest)."""
    vals = np.abs(matrix[np.isfinite(matrix)])
    if not vals.size:
        return 1.0
    lim = float(np.percentile(vals, 99.0))
    return lim if lim > 0 else (float(vals.max()) or 1.0)


def draw_matrix(scene: Scene, x: float, y: float, matrix: np.ndarray, name: str, *, rh: float,
                max_w: float, row_labels: Optional[Sequence[str]] = None, shape: str = "",
                limit: Optional[float] = None, highlight_cols: Optional[Tuple[int, int]] = None,
                col_groups: int = 0, max_cell_w: float = 18.0, title_size: float = 12.0) -> Tuple[float, float]:
    """Draw `matrix` with its name (and shape) on top; returns (width, height) used.

    ``highlight_cols`` (start, stop) outlines a column band (e.g. the selected head's slice);
    ``col_groups`` > 1 draws separators between that many equal column groups (heads).
    """
    rows, cols = matrix.shape
    font, step = label_font(rh)
    lw = label_width(row_labels, font) if row_labels is not None else 0.0
    cw = max(min(max_cell_w, (max_w - lw) / max(cols, 1)), 0.05)
    if cw >= 3:
        cw = float(np.floor(cw))
    gw, gh = cw * cols, rh * rows
    title = name + ("   " + shape if shape else "")
    width = max(lw + gw, min(text_width(title, title_size, bold=True), max_w))
    scene.text(x, y + title_size, name, size=title_size, bold=True, color="#222222", max_width=max_w)
    if shape:
        scene.text(x + text_width(name, title_size, bold=True) + 8, y + title_size, shape, size=title_size - 1,
                   color="#666666", max_width=max(max_w - text_width(name, title_size, bold=True) - 8, 10))
    gy = y + title_size + 8
    gx = x + lw
    if row_labels is not None:
        for i, t in enumerate(row_labels):
            if i % step == 0:
                scene.text(gx - 4, gy + (i + 0.5) * rh, short_label(t, 10), size=font, align="right",
                           baseline="middle", color="#333333", max_width=lw - 4)
    scene.image(gx, gy, gw, gh, signed_colors(matrix, robust_limit(matrix) if limit is None else limit))
    scene.rect(gx - 0.5, gy - 0.5, gw + 1, gh + 1, stroke="#888888")
    if col_groups > 1:
        per = cols / float(col_groups)
        for g in range(1, col_groups):
            cx = gx + g * per * cw
            scene.line(cx, gy, cx, gy + gh, color="#ffffff", width=1.0)
    if highlight_cols is not None:
        a, b = highlight_cols
        scene.rect(gx + a * cw - 1, gy - 2, (b - a) * cw + 2, gh + 4, stroke=HIGHLIGHT, line_width=2.0)
    scene.grid(gx, gy, gw, gh, rows, cols, "matrix_cell", matrix=matrix, name=name,
               row_labels=list(row_labels) if row_labels is not None else None)
    return width, gy + gh - y


def matrix_size(matrix_shape: Tuple[int, int], rh: float, max_w: float, row_labels=None,
                max_cell_w: float = 18.0, name: str = "", shape: str = "") -> Tuple[float, float]:
    """The (width, height) draw_matrix would use, without drawing."""
    s = Scene(10, 10)
    return draw_matrix(s, 0, 0, np.zeros(matrix_shape, dtype=np.float32), name, rh=rh, max_w=max_w,
                       row_labels=row_labels, max_cell_w=max_cell_w, shape=shape)
