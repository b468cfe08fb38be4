"""Head statistics (after Clark et al. 2019): what every head of every layer attends to, as numbers.

Top: a layers x heads grid of each head's label (its dominant pattern), coloured by label, with the
thresholds that define the labels written next to it. Below: a table with a row per head, sortable by
any column. All numbers come from pyapp.core.analysis.head_stats (averages over query tokens):
entropy in bits and normalised (÷ log2 of the keys a row can see), mean attention distance in tokens,
and the attention mass on [CLS], [SEP], punctuation, the previous token, the next token and itself.

State read from the context: ``sort_by`` (a SORT_KEYS column, default "layer") and ``sort_desc`` (bool).
Data: each layer's digest (``ViewContext.layer_digests``: its heads' statistics), as for the model view.
Hit regions:
* "stats_sort"  (column headers): action {"sort_by": key, "sort_desc": bool} (a click on the sorted
  column flips the direction; a new statistic column sorts largest first, layer/head/label A→Z first)
* "stats_row"   (table rows) and "stats_cell" (label grid cells): action {"layer": l, "head": h}
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from ..app.context import ViewContext
from ..core.analysis import (
    LABEL_THRESHOLDS,
    SORT_KEYS,
    STAT_COLUMNS,
    HeadStatRow,
    digest_stats,
    sink_mode,
    sort_rows,
)
from ..draw.scene import Scene, header, text_width

TITLE = "Head statistics"
MARGIN = 12.0
ROW_H = 18.0
SELECTED = "#1f6feb"
BAR_FILL = "#dce8fb"
LABEL_COLORS = {
    "prev": "#4e79a7", "next": "#f28e2b", "self": "#59a14f", "cls": "#e15759", "sink": "#e15759", "sep": "#b07aa1",
    "punct": "#76b7b2", "broad": "#edc948", "mixed": "#e4e6ea",
}
LABEL_TEXT_COLORS = {"broad": "#222222", "mixed": "#555555"}
SHORT = {"prev": "prev", "next": "next", "self": "self", "cls": "[CLS]", "sink": "sink", "sep": "[SEP]",
         "punct": "punct",
         "broad": "broad", "mixed": "mixed"}


def sort_state(ctx: ViewContext) -> Tuple[str, bool]:
    key = ctx.sort_by if ctx.sort_by in SORT_KEYS else "layer"
    return key, bool(ctx.sort_desc)


def sort_action(column: str, current: str, descending: bool) -> dict:
    """The state change a click on `column`'s header asks for."""
    if column == current:
        return {"sort_by": column, "sort_desc": not descending}
    return {"sort_by": column, "sort_desc": column not in ("layer", "head", "label")}


def table_rows(ctx: ViewContext) -> List[HeadStatRow]:
    """The table's rows in display order (computed layers only)."""
    att = ctx.layer_digests()
    stats = digest_stats({k: v for k, v in att.items() if k < ctx.n_layers}, ctx.tokens, ctx.causal)
    key, desc = sort_state(ctx)
    return sort_rows(stats.rows, key, desc)


def _columns(width: float):
    """(key, title, unit, width) of each table column, fitted to `width`."""
    fixed = [("layer", "layer", "", 46.0), ("head", "head", "", 42.0)]
    stat_w = max(44.0, min(72.0, (width - 88.0 - 110.0) / len(STAT_COLUMNS)))
    label_w = max(80.0, min(130.0, width - 88.0 - stat_w * len(STAT_COLUMNS)))
    cols = fixed + [(k, t, u, stat_w) for k, t, u in STAT_COLUMNS] + [("label", "label", "", label_w)]
    return cols


def render(ctx: ViewContext, width: float) -> Scene:
    shown_w = max(float(width), 320.0)     # what the user sees: the text and the label grid fit it
    width = max(shown_w, 480.0)            # the table needs at least this (it scrolls sideways on a phone)
    known = set(ctx.known_layers())
    n_layers, n_heads = int(ctx.n_layers), ctx.n_heads
    done = [layer for layer in range(n_layers) if layer in known]
    scene = Scene(width, 100, label="Head statistics of %d layers x %d heads" % (len(done), n_heads))
    inner = width - 2 * MARGIN
    text_w = shown_w - 2 * MARGIN
    sub = ("After Clark et al. (2019). Per head, averaged over the query tokens: entropy of the attention "
           "(bits; and ÷ log2(keys), 1 = uniform), mean distance |i − j| in tokens, and the share of attention "
           "on [CLS], [SEP], punctuation, the previous token, the next token and the token itself. Click a "
           "column to sort, a row or a cell to open that head.")
    if sink_mode(ctx.tokens, ctx.causal):
        sub += (" Causal model without [CLS]: the [CLS] column is the share on the FIRST token, where many "
                "decoder heads park attention they do not need (the attention sink, Xiao et al. 2023); the next "
                "token is never visible, so 'next' is 0.")
    if len(done) < n_layers:
        sub += " Computing layers: %d of %d done." % (len(done), n_layers)
    y = header(scene, MARGIN, MARGIN, text_w, "Head statistics · %d layers × %d heads" % (n_layers, n_heads), sub)
    rows = table_rows(ctx)
    y = _label_grid(scene, MARGIN, y, text_w, ctx, rows, done)
    if shown_w < width:
        scene.text(MARGIN, y + 18, "The table is wider than the screen: scroll it sideways →", size=11, italic=True,
                   color="#555555", max_width=text_w)
        y += 12
    y = _table(scene, MARGIN, y + 14, inner, ctx, rows)
    scene.height = y + MARGIN
    scene.alt_text = "\n".join(
        ["Head statistics (layer, head, label, entropy bits, distance, prev, next, self, [CLS], [SEP]):"]
        + ["%d %d %s %.2f %.2f %.2f %.2f %.2f %.2f %.2f" % (
            r.layer, r.head, r.label_text, r.values["entropy"], r.values["distance"], r.values["prev"],
            r.values["next"], r.values["self"], r.values["cls"], r.values["sep"]) for r in rows])
    return scene


def _label_grid(scene: Scene, x: float, y: float, w: float, ctx: ViewContext, rows: List[HeadStatRow],
                done: List[int]) -> float:
    """The layers x heads label grid and, beside it (or below), the thresholds; returns the y below."""
    n_layers, n_heads = int(ctx.n_layers), ctx.n_heads
    by = {(r.layer, r.head): r for r in rows}
    lab_w = text_width("layer 00", 11) + 8
    cw = max(30.0, min(46.0, (w * 0.6 - lab_w) / max(n_heads, 1)))
    if lab_w + n_heads * cw > w:          # a phone: the grid still fits, its cells show colours only
        cw = max(12.0, (w - lab_w) / max(n_heads, 1))
    words = cw >= 28
    ch = 18.0
    scene.text(x, y + 12, "Each head's label", size=12, bold=True, color="#222222")
    gy = y + 20
    for h in range(n_heads):
        scene.text(x + lab_w + (h + 0.5) * cw, gy + 9, str(h), size=10, align="center", color="#555555")
    gy += 14
    for layer in range(n_layers):
        ry = gy + layer * (ch + 2)
        scene.text(x + lab_w - 6, ry + ch / 2, "layer %d" % layer, size=11, align="right", baseline="middle",
                   color=SELECTED if layer == ctx.layer else "#444444", bold=layer == ctx.layer)
        for h in range(n_heads):
            cx = x + lab_w + h * cw
            r = by.get((layer, h))
            if r is None:
                scene.rect(cx + 1, ry, cw - 2, ch, fill="#f3f4f6")
                continue
            scene.rect(cx + 1, ry, cw - 2, ch, fill=LABEL_COLORS[r.label], radius=2)
            if words:
                scene.text(cx + cw / 2, ry + ch / 2 + 0.5, SHORT[r.label], size=9, align="center",
                           baseline="middle", color=LABEL_TEXT_COLORS.get(r.label, "#ffffff"), max_width=cw - 4)
            scene.region(cx + 1, ry, cw - 2, ch, "stats_cell", action={"layer": layer, "head": h},
                         tooltip="layer %d · head %d: %s · click to open" % (layer, h, r.label_text))
    if (ctx.layer, ctx.head_index) in by:
        scene.rect(x + lab_w + ctx.head_index * cw - 1, gy + ctx.layer * (ch + 2) - 2, cw + 2, ch + 4,
                   stroke=SELECTED, line_width=2.0, radius=3)
    grid_bottom = gy + n_layers * (ch + 2)
    # thresholds, beside the grid when there is room
    tx = x + lab_w + n_heads * cw + 24
    ty = y
    if w - (tx - x) < 300:
        tx, ty = x, grid_bottom + 8
    scene.text(tx, ty + 12, "Labels and thresholds", size=12, bold=True,
               color="#222222")
    keys = ["prev", "next", "self", "cls", "punct", "broad", "mixed"]
    for m, ((name, rule), key) in enumerate(zip(LABEL_THRESHOLDS, keys)):
        ly = ty + 22 + m * 18
        scene.rect(tx, ly, 14, 13, fill=LABEL_COLORS[key], radius=2)
        if key == "cls":
            scene.rect(tx + 7, ly, 7, 13, fill=LABEL_COLORS["sep"], radius=2)
            if sink_mode(ctx.tokens, ctx.causal):
                name, rule = "first token (sink) / [SEP]", rule.replace("[CLS]", "the first token")
        scene.text(tx + 20, ly + 10, "%s: %s" % (name, rule), size=11, color="#333333",
                   max_width=x + w - tx - 20)
    scene.text(tx, ty + 22 + len(keys) * 18 + 8, "If several masses pass, the largest names the head.",
               size=11, italic=True, color="#555555", max_width=x + w - tx)
    return max(grid_bottom, ty + 22 + len(keys) * 18 + 14)


def _table(scene: Scene, x: float, y: float, w: float, ctx: ViewContext, rows: List[HeadStatRow]) -> float:
    cols = _columns(w)
    if sink_mode(ctx.tokens, ctx.causal):   # the "cls" column measures the first token
        cols = [(k, "first" if k == "cls" else t, u, cw) for k, t, u, cw in cols]
    key, desc = sort_state(ctx)
    # header
    cx = x
    for ckey, title, unit, cw in cols:
        active = ckey == key
        arrow = (" ↓" if desc else " ↑") if active else ""
        align_right = ckey not in ("label",)
        tx = cx + cw - 6 if align_right else cx + 6
        scene.rect(cx, y, cw, 34, fill="#e8eefc" if active else "#f2f4f7")
        scene.text(tx, y + 14, title + arrow, size=11, bold=True, align="right" if align_right else "left",
                   color=SELECTED if active else "#222222", max_width=cw - 8)
        if unit:
            scene.text(tx, y + 28, unit, size=9, align="right" if align_right else "left", color="#777777")
        scene.region(cx, y, cw, 34, "stats_sort", action=sort_action(ckey, key, desc),
                     tooltip="sort by %s" % title)
        cx += cw
    total_w = cx - x
    y += 36
    max_dist = max([r.values["distance"] for r in rows] + [1e-9])
    for m, r in enumerate(rows):
        ry = y + m * ROW_H
        current = r.layer == ctx.layer and r.head == ctx.head_index
        if current:
            scene.rect(x, ry, total_w, ROW_H, fill="#fff4c2")
        elif m % 2:
            scene.rect(x, ry, total_w, ROW_H, fill="#f8f9fb")
        cx = x
        for ckey, _title, _unit, cw in cols:
            cy = ry + ROW_H / 2 + 0.5
            if ckey in ("layer", "head"):
                scene.text(cx + cw - 6, cy, str(getattr(r, ckey)), size=11, align="right", baseline="middle",
                           color="#222222")
            elif ckey == "label":
                scene.rect(cx + 6, ry + 4, 10, ROW_H - 8, fill=LABEL_COLORS[r.label], radius=2)
                scene.text(cx + 20, cy, r.label_text, size=11, baseline="middle", color="#222222",
                           max_width=cw - 22)
            else:
                v = r.values[ckey]
                frac = v / max_dist if ckey == "distance" else (r.values["entropy_norm"] if ckey == "entropy" else v)
                frac = float(np.clip(frac, 0.0, 1.0))
                if frac * (cw - 8) >= 1.0:
                    scene.rect(cx + 4, ry + 3, frac * (cw - 8), ROW_H - 6, fill=BAR_FILL)
                scene.text(cx + cw - 6, cy, "%.2f" % v, size=11, align="right", baseline="middle",
                           font="mono", color="#222222")
            cx += cw
        scene.region(x, ry, total_w, ROW_H, "stats_row", action={"layer": r.layer, "head": r.head},
                     tooltip="layer %d · head %d: %s · click to open" % (r.layer, r.head, r.label_text))
    scene.rect(x - 0.5, y - 36.5, total_w + 1, 36 + len(rows) * ROW_H + 1, stroke="#c9ced6")
    if not rows:
        scene.text(x + 8, y + 14, "computing layer 0…", size=12, italic=True, color="#555555")
        return y + ROW_H
    return y + len(rows) * ROW_H + 4
