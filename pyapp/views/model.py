"""Model view: every layer x every head of the current sentence as a grid of small heatmaps.

Rows are layers (0 at the top), columns are heads. Each thumbnail is the head's attention (rows =
queries, columns = keys) scaled to its own maximum, so its strongest cell has the top viridis colour.
Layers arrive progressively: the shell computes one missing layer at a time (``missing_layers``) and
re-renders; a layer not computed yet is drawn as a grey "computing…" row, so the page stays responsive.

Data: every layer's digest (``ViewContext.layer_digests``: core.analysis.LayerDigest, the layers computed so
far at T = 1; the shown layer from ``ctx.trace`` with its temperature): each head's block-max thumbnail (at
most THUMB_CELLS a side, pooled again here to the thumbnail's pixels), its maximum and its statistics, so a
long text's grid never holds every layer's (heads, n, n) attention. The tab registry (``all_layers``) tells
the session to fill ``ctx.attentions``.

Hit regions: one "model_thumb" region per thumbnail, data tooltip ("layer 2 · head 5 · previous token ·
click to open") and action {"layer": l, "head": h, "tab": OPEN_TAB} (opens that layer and head).
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from ..app.context import ViewContext
from ..core.analysis import LABEL_NAMES, LayerDigest, digest_stats
from ..core.analysis import pool_max as pool_max  # the block max of the thumbnails (re-exported)
from ..draw.colormap import VIRIDIS, legend_image
from ..draw.heatmap import draw_heatmap
from ..draw.scene import Scene, header, text_width

TITLE = "Model"
MARGIN = 12.0
GAP = 6.0
OPEN_TAB = "heads"  # where a click on a thumbnail takes the user (the Heads tab shows that layer/head)
SELECTED = "#1f6feb"
SHORT_LABELS = {"prev": "← prev", "next": "next →", "self": "self", "cls": "[CLS]", "sink": "sink", "sep": "[SEP]",
                "punct": "punct.", "broad": "broad", "mixed": "mixed"}
PENDING_FILL = "#eef0f3"


# ---- data shared by the research views (model, rollout, head statistics) -------------------------------
def layer_attentions(ctx: ViewContext) -> Dict[int, np.ndarray]:
    """Attention (heads, n, n) of every layer computed so far, keyed by layer index: ``ctx.attentions``
    the shown layer seen through its temperature (``ctx.trace``)."""
    return ctx.layer_attentions()


def missing_layers(ctx: ViewContext) -> List[int]:
    """Layers 0..n_layers-1 whose attention is not in the context yet (compute them in this order)."""
    have = set(ctx.known_layers())
    return [layer for layer in range(int(ctx.n_layers)) if layer not in have]


def thumb_size(width: float, n_heads: int, n: int) -> float:
    """Thumbnail side: the heads fill the width (16..110 px), whole pixels per cell when cells are >= 4 px."""
    label_w = text_width("layer 00", 11) + 10
    size = (width - label_w - GAP * (n_heads - 1)) / max(n_heads, 1)
    size = max(16.0, min(110.0, size))
    cell = size / max(n, 1)
    return float(np.floor(cell) * n) if cell >= 4 else float(size)


def render(ctx: ViewContext, width: float) -> Scene:
    width = max(float(width), 320.0)
    n_layers, n_heads, n = int(ctx.n_layers), ctx.n_heads, ctx.n
    att = ctx.layer_digests()
    scene = Scene(width, 100, label="Model view: attention of %d layers x %d heads" % (n_layers, n_heads))
    inner = width - 2 * MARGIN
    done = sum(1 for layer in range(n_layers) if layer in att)
    sub = ("%s%d tokens. Each thumbnail is one head (rows: queries, columns: keys), scaled to its own "
           "maximum. Click one to open that layer and head."
           % ((ctx.model_name + " · ") if ctx.model_name else "", n))
    if done < n_layers:
        sub += " Computing layers: %d of %d done." % (done, n_layers)
    y = header(scene, MARGIN, MARGIN, inner, "All %d layers × %d heads" % (n_layers, n_heads), sub)

    size = thumb_size(inner, n_heads, n)
    label_w = text_width("layer 00", 11) + 10
    x0 = MARGIN + label_w
    # column header: head numbers
    for h in range(n_heads):
        cx = x0 + h * (size + GAP) + size / 2
        s = ("head %d" % h) if size >= 44 else str(h)
        scene.text(cx, y + 10, s, size=10, align="center", color=SELECTED if h == ctx.head_index else "#555555",
                   bold=h == ctx.head_index)
    y += 18
    mask = ctx.causal_mask()
    tags = size >= 40  # room for a short pattern label under each thumbnail
    row_h = size + GAP + (14.0 if tags else 0.0)
    stats = digest_stats({k: v for k, v in att.items() if k < n_layers}, ctx.tokens, ctx.causal) if att else None
    for layer in range(n_layers):
        ty = y + layer * row_h
        current = layer == ctx.layer
        scene.text(MARGIN + label_w - 8, ty + size / 2, "layer %d" % layer, size=11, align="right",
                   baseline="middle", bold=current, color=SELECTED if current else "#444444")
        dig = att.get(layer)
        for h in range(n_heads):
            tx = x0 + h * (size + GAP)
            if dig is None:
                scene.rect(tx, ty, size, size, fill=PENDING_FILL, stroke="#d5d9df")
                continue
            shown, shown_mask = dig.thumbnail(h, size)  # (<= size, <= size)
            draw_heatmap(scene, tx, ty, size, shown, [], [], mask=shown_mask, layer=layer, head=h,
                         labels=False, legend=False)
            label = LABEL_NAMES[stats.get(layer, h).label] if stats is not None else ""
            tip = "layer %d · head %d%s · max weight %.2f · click to open" % (
                layer, h, (" · " + label) if label else "", float(dig.peak[h]))
            scene.region(tx, ty, size, size, "model_thumb", tooltip=tip,
                         action={"layer": layer, "head": h, "tab": OPEN_TAB})
            if tags and stats is not None:
                scene.text(tx + size / 2, ty + size + 13, SHORT_LABELS[stats.get(layer, h).label], size=9,
                           align="center", color="#666666", max_width=size)
        if dig is None:
            msg = "computing layer %d…" % layer
            scene.rect(x0 + 2, ty + size / 2 - 9, text_width(msg, 11) + 12, 18, fill="#ffffff", radius=4)
            scene.text(x0 + 8, ty + size / 2, msg, size=11, italic=True, baseline="middle", color="#555555")
    hl, hh = ctx.layer, ctx.head_index
    if 0 <= hl < n_layers and hl in att:
        scene.rect(x0 + hh * (size + GAP) - 3, y + hl * row_h - 3, size + 6, size + 6, stroke=SELECTED,
                   line_width=2.0, radius=3)
    bottom = y + n_layers * row_h - GAP
    # legend: one viridis bar, 0 .. each head's own maximum
    ly = bottom + 14
    scene.image(x0, ly, 160, 10, legend_image(VIRIDIS, vertical=False))
    scene.rect(x0 - 0.5, ly - 0.5, 161, 11, stroke="#888888")
    scene.text(x0, ly + 24, "0", size=10, color="#333333")
    scene.text(x0 + 160, ly + 24, "the head's max", size=10, align="right", color="#333333")
    note = "labels under the thumbnails: the head's dominant pattern (see Head statistics)" if tags else ""
    if mask is not None:
        note = "grey: masked (causal)" + ("; " + note if note else "")
    if note:
        scene.text(x0 + 176, ly + 9, note, size=10, color="#555555", max_width=inner - label_w - 176)
    scene.height = ly + 30 + MARGIN
    scene.alt_text = _alt(att, stats, n_layers)
    return scene


def _alt(att: Dict[int, LayerDigest], stats, n_layers: int) -> str:
    lines = ["Attention of every layer and head; each head's most common pattern:"]
    for layer in range(n_layers):
        if layer not in att or stats is None:
            lines.append("layer %d: not computed yet" % layer)
            continue
        labels = ["head %d %s" % (r.head, r.label_text) for r in stats.rows if r.layer == layer]
        lines.append("layer %d: %s" % (layer, ", ".join(labels)))
    return "\n".join(lines)
