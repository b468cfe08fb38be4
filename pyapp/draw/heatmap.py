"""The attention heatmap component shared by the Overview, Heads and Step-by-step views.

Rows are queries, columns are keys. The whole cell matrix is ONE RGBA image op (one LUT gather, see
colormap.py); labels, legend and the pinned-row outline are a handful of further ops.

Colour scale: viridis from 0 to ``vmax``. By default ``vmax`` is the maximum of the shown matrix, so the
strongest cell is drawn with exactly the legend's top colour (``VIRIDIS[255]``) and the legend's top tick
says which weight that is ("max 0.83"). Views that compare several heads pass one shared ``vmax``.
Causally masked cells (key after query) are flat light grey (``colormap.MASKED_RGBA``), with their own
legend swatch: "masked" never looks like "weight 0", which is viridis' dark purple.

Hit regions: the cells are one ``scene.grid`` of kind "attn_cell" and the row labels one of kind
"attn_row"; their data (matrix, labels, layer, head, mask, pinned row) lets ``interact.tooltip`` and
``interact.action`` answer without the view.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import numpy as np

from .colormap import DIVERGING, MASKED_HEX, MASKED_RGBA, VIRIDIS, legend_image, signed_colors, weight_colors
from .scene import Scene, text_width

PIN_COLOR = "#ff2d55"
LABEL_COLOR = "#333333"
MAX_LABEL_CHARS = 12
MIN_FONT = 7.0
MAX_FONT = 12.0
ROTATION = -math.pi / 4  # column labels run up and to the right at 45 degrees


class HeatmapLayout:
    """Where a drawn heatmap went (CSS px)."""

    def __init__(self, x, y, width, height, grid_x, grid_y, cell, n_rows, n_cols, font, label_step):
        self.x, self.y, self.width, self.height = x, y, width, height
        self.grid_x, self.grid_y, self.cell = grid_x, grid_y, cell
        self.n_rows, self.n_cols = n_rows, n_cols
        self.font, self.label_step = font, label_step

    @property
    def grid_w(self) -> float:
        return self.cell * self.n_cols

    @property
    def grid_h(self) -> float:
        return self.cell * self.n_rows

    def cell_center(self, row: int, col: int):
        return self.grid_x + (col + 0.5) * self.cell, self.grid_y + (row + 0.5) * self.cell


def short_label(token: str, limit: int = MAX_LABEL_CHARS) -> str:
    token = token.replace("\n", " ")
    return token if len(token) <= limit else token[: limit - 1] + "…"


def shown_max(matrix: np.ndarray, mask: Optional[np.ndarray] = None) -> float:
    """The largest finite, unmasked value of `matrix` (the top of the colour scale)."""
    vals = matrix[~mask] if mask is not None else matrix
    vals = vals[np.isfinite(vals)]
    top = float(vals.max()) if vals.size else 0.0
    return top if top > 0 else 1.0


def heatmap_image(matrix: np.ndarray, vmax: Optional[float] = None, mask: Optional[np.ndarray] = None):
    """(rows, cols) weights -> (rows, cols, 4) uint8 RGBA; strongest cell = VIRIDIS[255] when vmax is None."""
    top = shown_max(matrix, mask) if vmax is None else float(vmax)
    return weight_colors(matrix, top, mask)


def _pad(a: np.ndarray, k: int, fill) -> np.ndarray:
    r, c = a.shape
    rr, cc = -(-r // k) * k, -(-c // k) * k
    out = np.full((rr, cc), fill, dtype=a.dtype)
    out[:r, :c] = a
    return out


def pool_max(matrix: np.ndarray, k: int) -> np.ndarray:
    """k x k max-pooling (edges padded): the strongest weight survives downsampling."""
    m = _pad(np.where(np.isfinite(matrix), matrix, -np.inf).astype(np.float32), k, -np.inf)
    r, c = m.shape
    return m.reshape(r // k, k, c // k, k).max(axis=(1, 3))


def pool_all(mask: np.ndarray, k: int) -> np.ndarray:
    """k x k pooling of a boolean mask: a block is masked only when all its cells are."""
    m = _pad(mask, k, True)
    r, c = m.shape
    return m.reshape(r // k, k, c // k, k).all(axis=(1, 3))


def _label_font(cell: float):
    """Font size and label thinning step for a cell size."""
    font = min(MAX_FONT, cell * 0.8)
    if font >= MIN_FONT:
        return font, 1
    return MIN_FONT, int(math.ceil((MIN_FONT + 2.0) / max(cell, 1e-6)))


def format_weight(w: float) -> str:
    return "%.2f" % w if w >= 0.01 or w == 0 else "%.1e" % w


def draw_heatmap(scene: Scene, x: float, y: float, width: float, matrix: np.ndarray,
                 row_labels: Sequence[str], col_labels: Sequence[str], *, vmax: Optional[float] = None,
                 mask: Optional[np.ndarray] = None, pinned_row: Optional[int] = None,
                 layer: Optional[int] = None, head: Optional[int] = None, title: str = "",
                 labels: bool = True, legend: bool = True, max_grid: Optional[float] = None,
                 kind: str = "attn_cell", what: str = "weight", signed: bool = False) -> HeatmapLayout:
    """Draw `matrix` (rows = queries, cols = keys) into `scene` inside [x, x + width]; returns the layout.

    ``signed=True`` draws raw scores instead of weights: diverging colours symmetric about 0 (legend
    ±max|value|); -inf (masked) cells are grey.
    """
    n_rows, n_cols = matrix.shape
    if signed:
        finite = np.abs(matrix[np.isfinite(matrix)])
        top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        if mask is None and not np.isfinite(matrix).all():
            mask = ~np.isfinite(matrix)
    else:
        top = shown_max(matrix, mask) if vmax is None else float(vmax)
    title_h = 18.0 if title else 0.0
    legend_w = 0.0
    if legend:
        legend_w = 14.0 + 6.0 + max(text_width("max " + format_weight(top), 10), text_width("masked", 10),
                                    text_width("−%.2f" % top, 10),
                                    text_width(("0 " + what) if signed else what, 10)) + 6.0

    # two passes: the label font depends on the cell size, which depends on the label margins
    font, step, row_w, col_w = MAX_FONT, 1, 0.0, 0.0
    grid = max(width - legend_w, 10.0)
    # label widths scale with the font size: measure once at 1 px
    unit_row = max((text_width(short_label(t), 1.0) for t in set(row_labels)), default=0.0) if labels else 0.0
    if labels and list(col_labels) == list(row_labels):
        unit_col = unit_row
    else:
        unit_col = max((text_width(short_label(t), 1.0) for t in set(col_labels)), default=0.0) if labels else 0.0
    for _ in range(2):
        if labels:
            longest_row, longest_col = unit_row * font, unit_col * font
            row_w = min(longest_row + 6.0, 0.3 * width)
            col_w = min(longest_col, 0.3 * width)
        right = max(legend_w, col_w * 0.71 - grid / max(n_cols, 1) * 0.5 + 4.0) if labels else legend_w
        grid = max(width - row_w - right, 10.0)
        if max_grid is not None:
            grid = min(grid, max_grid)
        cell = grid / max(n_rows, n_cols)
        font, step = _label_font(cell)
    if cell >= 4.0:
        cell = math.floor(cell)  # whole-pixel cells: every cell gets the same number of pixels
    label_h = (col_w * 0.71 + font * 0.71 + 4.0) if labels else 0.0
    gx, gy = x + row_w, y + title_h + label_h
    gw, gh = cell * n_cols, cell * n_rows

    if title:
        scene.text(x, y + 13, title, size=12, bold=True, color="#222222", max_width=width)
    # more cells than ~2 device pixels each: max-pool first, so no strong cell falls between samples
    k = int(math.ceil(max(n_rows, n_cols) / (2.0 * max(gw, gh, 1.0))))
    shown, shown_mask = (pool_max(matrix, k), pool_all(mask, k) if mask is not None else None) if k > 1 \
        else (matrix, mask)
    if signed:
        rgba = signed_colors(np.where(np.isfinite(shown), shown, 0.0), top)
        if shown_mask is not None:
            rgba[shown_mask] = MASKED_RGBA
    else:
        rgba = heatmap_image(shown, top, shown_mask)
    scene.image(gx, gy, gw, gh, rgba)
    scene.rect(gx - 0.5, gy - 0.5, gw + 1, gh + 1, stroke="#888888", line_width=1.0)

    if labels:
        for i in range(n_rows):
            pinned = pinned_row is not None and i == pinned_row
            if i % step and not pinned:
                continue
            scene.text(gx - 4, gy + (i + 0.5) * cell, short_label(row_labels[i]), size=font, align="right",
                       baseline="middle", color=PIN_COLOR if pinned else LABEL_COLOR, bold=pinned,
                       max_width=row_w - 4)
        for j in range(n_cols):
            if j % step:
                continue
            scene.text(gx + (j + 0.5) * cell, gy - 4, short_label(col_labels[j]), size=font, align="left",
                       baseline="middle", color=LABEL_COLOR, rotate=ROTATION)
        hint = "query ↓ key →"
        if row_w >= text_width(hint, 9) + 4 and label_h > 14:
            scene.text(gx - 4, gy - 4, hint, size=9, align="right", color="#777777")

    if pinned_row is not None and 0 <= pinned_row < n_rows:
        scene.rect(gx - 1, gy + pinned_row * cell - 1, gw + 2, cell + 2, stroke=PIN_COLOR,
                   line_width=2.0 if cell >= 6 else 1.5)

    if legend:
        lx, lh = gx + gw + max(right - legend_w, 0) + 8.0, max(gh, 60.0)
        lh = min(lh, 220.0)
        scene.image(lx, gy, 14, lh, legend_image(DIVERGING if signed else VIRIDIS))
        scene.rect(lx - 0.5, gy - 0.5, 15, lh + 1, stroke="#888888")
        scene.text(lx + 18, gy + 5, ("+%.2f" % top) if signed else "max " + format_weight(top), size=10,
                   baseline="middle", color="#333333")
        scene.text(lx + 18, gy + lh - 3, ("−%.2f" % top) if signed else "0", size=10, baseline="middle",
                   color="#333333")
        scene.text(lx + 18, gy + lh / 2, ("0 " + what) if signed else what, size=10, baseline="middle",
                   color="#777777")
        if mask is not None and mask.any():
            scene.rect(lx, gy + lh + 8, 14, 12, fill=MASKED_HEX, stroke="#888888")
            scene.text(lx + 18, gy + lh + 14, "masked", size=10, baseline="middle", color="#333333")
        legend_bottom = gy + lh + (22 if mask is not None and mask.any() else 0)
    else:
        legend_bottom = gy

    data = dict(matrix=matrix, queries=list(row_labels), keys=list(col_labels), layer=layer, head=head,
                mask=mask, pinned_row=pinned_row, what=what)
    scene.grid(gx, gy, gw, gh, n_rows, n_cols, kind, **data)
    if labels:
        scene.grid(x, gy, row_w, gh, n_rows, 1, "attn_row", **data)
    height = max(gy + gh, legend_bottom) - y
    lay = HeatmapLayout(x, y, width, height, gx, gy, cell, n_rows, n_cols, font, step)
    lay.right = (lx + 18 + legend_w - 20) if legend else max(gx + gw, gx + gw + right - legend_w)
    return lay


def top_k(matrix: np.ndarray, row: int, k: int = 3) -> List[int]:
    """Indices of the k largest weights of `row`, strongest first (ties: lower index first)."""
    vals = matrix[row]
    order = np.argsort(-vals, kind="mergesort")
    return [int(j) for j in order[:k]]


def alt_text(matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], k: int = 3,
             heading: str = "") -> str:
    """For each query token, its top-k attended key tokens with weights (one line per query)."""
    lines = [heading] if heading else []
    order = np.argsort(-matrix, axis=1, kind="mergesort")[:, :k]  # (rows, k) as top_k, all rows at once
    weights = np.take_along_axis(matrix, order, axis=1).tolist()
    for i, (cols, ws) in enumerate(zip(order.tolist(), weights)):
        tops = ", ".join("%s %.2f" % (col_labels[j], w) for j, w in zip(cols, ws))
        lines.append("%s (%d) → %s" % (row_labels[i], i, tops))
    return "\n".join(lines)


def draw_thumbnails(scene: Scene, x: float, y: float, width: float, probs: np.ndarray, selected: int,
                    action_for, mask: Optional[np.ndarray] = None, layer: Optional[int] = None,
                    min_size: float = 84.0, max_size: float = 180.0) -> float:
    """All heads' heatmaps as a grid of small unlabeled thumbnails; returns the height used.

    Each thumbnail is scaled to its own max and gets a click region (kind "head_thumb") whose action is
    ``action_for(h)``; the selected head is outlined.
    """
    n_heads = probs.shape[0]
    gap = 10.0
    cols = max(1, min(n_heads, int((width + gap) // (min_size + gap))))
    size = min(max_size, (width - gap * (cols - 1)) / cols)
    rows = int(math.ceil(n_heads / float(cols)))
    title_h = 16.0
    for h in range(n_heads):
        r, c = divmod(h, cols)
        tx, ty = x + c * (size + gap), y + r * (size + title_h + gap)
        sel = h == selected
        draw_heatmap(scene, tx, ty + title_h, size, probs[h], [], [], mask=mask, layer=layer, head=h,
                     labels=False, legend=False)
        scene.text(tx, ty + 12, "head %d" % h, size=11, bold=sel, color="#1f6feb" if sel else "#444444")
        if sel:
            scene.rect(tx - 3, ty - 1, size + 6, size + title_h + 4, stroke="#1f6feb", line_width=2, radius=4)
        scene.region(tx, ty, size, size + title_h, "head_thumb", action=action_for(h),
                     tooltip="head %d: click to enlarge" % h)
    return rows * (size + title_h + gap) - gap
