"""Pure hover / click logic: the shell calls ``scene.hit_test(x, y)`` and then these.

Hit kinds produced by the views:

* "attn_cell"  (heatmap cells, grid)  data: matrix, queries, keys, layer, head, mask, pinned_row, what
               tooltip "query 'fox' (4) → key 'quick' (2): 0.412345 · layer 0 · head 3";
               click pins the row: {"pinned_row": row} (or {"pinned_row": None} when it was pinned).
* "attn_row"   (heatmap row labels, grid with one column)  same data; click pins/unpins that row.
* "matrix_cell" (numeric matrices, grid)  data: matrix, name, row_labels (optional), col_offset,
               row_offset; tooltip "Q_h[4, 17] = -0.123456 (fox)"; no action.
* "head_token" (head view tokens)  data hover: state changes to apply while the pointer is over the region
               (``hover(hit)``), undone when it leaves (see head_view.py).
* any region whose data has "tooltip" (str) and/or "action" (dict): buttons, thumbnails, diagram
  blocks, step dots. Actions are dicts of state changes, e.g. {"head": 3}, {"tab": "steps", "step": 4},
  {"step": 2}, {"arch": "decoder"}.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from ..draw.scene import Hit


def format_exact(w: float) -> str:
    """A weight or value as shown in tooltips (6 decimals)."""
    if not np.isfinite(w):
        return "−∞" if w < 0 else "∞"
    return "%.6f" % float(w)


def _cell_tooltip(hit: Hit) -> str:
    d = hit.data
    i, j = hit.row, hit.col
    q, k = d["queries"][i], d["keys"][j]
    where = []
    if d.get("layer") is not None:
        where.append("layer %d" % d["layer"])
    where.append("head %d" % d["head"] if d.get("head") is not None else "mean of heads")
    mask = d.get("mask")
    if mask is not None and bool(mask[i, j]):
        value = "masked (a causal model cannot look ahead)"
    else:
        value = format_exact(float(d["matrix"][i, j]))
    what = d.get("what") or "weight"
    return "query '%s' (%d) → key '%s' (%d): %s %s · %s" % (q, i, k, j, what, value, " · ".join(where))


def _matrix_tooltip(hit: Hit) -> str:
    d = hit.data
    i = hit.row + int(d.get("row_offset", 0))
    j = hit.col + int(d.get("col_offset", 0))
    m = d["matrix"]
    ri = d.get("row_index")
    ci = d.get("col_index")
    ii = int(ri[hit.row]) if ri is not None else i
    jj = int(ci[hit.col]) if ci is not None else j
    text = "%s[%d, %d] = %s" % (d.get("name", "M"), ii, jj, format_exact(float(m[hit.row, hit.col])))
    labels = d.get("row_labels")
    if labels is not None and 0 <= hit.row < len(labels):
        text += " (%s)" % labels[hit.row]
    return text


def tooltip(hit: Optional[Hit]) -> Optional[str]:
    """The hover text for a hit, or None."""
    if hit is None:
        return None
    if hit.kind == "attn_cell" and hit.row >= 0:
        return _cell_tooltip(hit)
    if hit.kind == "attn_row" and hit.row >= 0:
        tip = "query '%s' (%d): click to %s this row" % (
            hit.data["queries"][hit.row], hit.row, "unpin" if hit.data.get("pinned_row") == hit.row else "pin")
        return tip
    if hit.kind == "matrix_cell" and hit.row >= 0:
        return _matrix_tooltip(hit)
    tip = hit.data.get("tooltip")
    return str(tip) if tip is not None else None


def action(hit: Optional[Hit]) -> Optional[Dict[str, Any]]:
    """The state change a click on `hit` asks for, or None."""
    if hit is None:
        return None
    if hit.kind in ("attn_cell", "attn_row") and hit.row >= 0:
        if hit.data.get("pinned_row") == hit.row:
            return {"pinned_row": None}
        return {"pinned_row": hit.row}
    act = hit.data.get("action")
    return dict(act) if act is not None else None


def hover(hit: Optional[Hit]) -> Optional[Dict[str, Any]]:
    """The transient state change to apply while the pointer is over `hit` (e.g. the head view's
    {"hover_token": 3, "hover_side": "left"}), or None. The shell undoes it when the pointer leaves."""
    if hit is None:
        return None
    h = hit.data.get("hover")
    return dict(h) if h is not None else None


MAX_HOTSPOTS = 240   # keyboard buttons laid over the canvas (and actions in the page's report) at most


def action_regions(scene) -> List[Dict[str, Any]]:
    """The scene's clickable regions (those whose data has an action), at most MAX_HOTSPOTS."""
    return [r for r in scene.regions if isinstance(r["data"].get("action"), dict)][:MAX_HOTSPOTS]
