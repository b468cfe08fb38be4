"""Attention rollout (Abnar & Zuidema 2020) of the whole stack, as a heatmap and as [CLS] bars.

Per layer: average the heads, add the identity for the residual connection and renormalise rows
(A' = ½ Â + ½ I); then multiply through the layers, top layer on the left: R = A'_(L-1) ⋯ A'_1 A'_0
(see pyapp.core.analysis.rollout). Row i of R says how much token i at the top of the model draws on
each input token. The bars show the [CLS] row (the token classifiers read) next to the raw
head-averaged attention of [CLS] in the last layer, to show what rollout adds.

Data: each layer's digest (``ViewContext.layer_digests``: its head average in float64), as for the model view;
the product is ``ViewContext.rollout`` (computed once per context, the entropy readout reuses it). While
layers are still being computed the view shows the rollout of the contiguous layers 0..k it has and says so.
Hit regions: the heatmap's "attn_cell" / "attn_row" grids (layer None, head None, what "rollout"), and
one "rollout_bar" per token with a tooltip.
"""

from __future__ import annotations

import numpy as np

from ..app.context import ViewContext
from ..app.tabs import rollout_matrix
from ..core.analysis import CLS_TOKENS
from ..draw.heatmap import alt_text, draw_heatmap, short_label
from ..draw.scene import Scene, header, notice, text_width

TITLE = "Rollout"
MARGIN = 12.0
BAR_COLOR = "#1f6feb"
RAW_COLOR = "#9aa3ad"


def cls_index(tokens) -> int:
    """Index of the [CLS] (or <s>) token, else 0 (the first token)."""
    for i, t in enumerate(tokens):
        if t in CLS_TOKENS:
            return i
    return 0


def render(ctx: ViewContext, width: float) -> Scene:
    width = max(float(width), 320.0)
    k = ctx.contiguous_layers()
    n_layers = int(ctx.n_layers)
    scene = Scene(width, 100, label="Attention rollout through %d layers" % k)
    inner = width - 2 * MARGIN
    product = "A'%d" % (k - 1) if k <= 1 else "A'%d ⋯ A'0" % (k - 1)
    sub = ("Abnar & Zuidema (2020): per layer, average the heads, add the identity for the residual and "
           "renormalise rows (A' = ½·mean_h A + ½·I); multiply through the layers, top layer on the left: "
           "R = %s. Row i: how much token i at the top draws on each input token." % product)
    if ctx.causal:
        sub += (" Causal model: row i mixes tokens 0..i only, and through many layers the mass piles up on the "
                "first token, where most heads park their attention (the attention sink): a resting place, not "
                "a sign that the first word matters most. The bars show the last token's row, the one that "
                "predicts the next token.")
    if k < n_layers:
        sub += " Computing layers: %d of %d ready; shown: the rollout of layers 0–%d." % (k, n_layers, k - 1)
    y = header(scene, MARGIN, MARGIN, inner, "Attention rollout · layers 0–%d" % (k - 1) if k else
               "Attention rollout", sub)
    if k == 0:
        notice(scene, MARGIN, y, inner, 80, "computing layer 0…")
        scene.height = y + 80 + MARGIN
        return scene
    att = ctx.layer_digests()
    r = rollout_matrix(ctx)  # (n, n)
    toks = ctx.tokens
    n = len(toks)
    wide = width >= 760
    main_w = inner * 0.58 if wide else inner
    lay = draw_heatmap(scene, MARGIN, y, main_w, r, toks, toks, pinned_row=ctx.pinned_row, layer=None,
                       head=None, title="Rollout R (rows: output token, columns: input token)",
                       max_grid=min(560.0, 44.0 * n), what="rollout")
    if wide:
        bx, by, bw = MARGIN + main_w + 24, y, inner - main_w - 24
    else:
        bx, by, bw = MARGIN, y + lay.height + 24, inner
    c = len(toks) - 1 if ctx.causal else cls_index(toks)   # a decoder: the token that predicts the next one
    raw = att[k - 1].mean[c]  # (n,)  last layer, heads averaged (float64)
    bottom = _bars(scene, bx, by, bw, toks, r[c], raw, c, k)
    scene.height = max(y + lay.height, bottom) + MARGIN
    scene.alt_text = alt_text(r, toks, toks, 3, "Attention rollout through layers 0-%d. Each output token's "
                              "top 3 input tokens:" % (k - 1))
    return scene


def _bars(scene: Scene, x: float, y: float, w: float, toks, roll: np.ndarray, raw: np.ndarray, c: int,
          k: int) -> float:
    """Horizontal bars of the [CLS] rollout row (blue) over the raw last-layer attention (grey)."""
    scene.text(x, y + 13, "What '%s' draws on" % short_label(toks[c], 10), size=12, bold=True, color="#222222")
    n = len(toks)
    rh = max(12.0, min(24.0, 520.0 / max(n, 1)))
    label_w = max(text_width(short_label(t, 12), 11) for t in toks) + 8
    bar_max = max(w - label_w - 52, 40.0)
    top = max(float(roll.max()), float(raw.max()), 1e-12)
    y0 = y + 24
    for j in range(n):
        cy = y0 + j * rh
        scene.text(x + label_w - 6, cy + rh / 2, short_label(toks[j], 12), size=min(11.0, rh * 0.8),
                   align="right", baseline="middle", color="#333333", max_width=label_w - 6)
        wr = bar_max * float(roll[j]) / top
        wa = bar_max * float(raw[j]) / top
        if wr >= 1.0:
            scene.rect(x + label_w, cy + 2, wr, rh * 0.55, fill=BAR_COLOR)
        if wa >= 1.0:
            scene.rect(x + label_w, cy + 2 + rh * 0.6, wa, max(rh * 0.22, 2.0), fill=RAW_COLOR)
        scene.text(x + label_w + max(wr, wa) + 4, cy + rh / 2, "%.3f" % float(roll[j]), size=10,
                   baseline="middle", color="#222222", font="mono")
        scene.region(x, cy, w, rh, "rollout_bar",
                     tooltip="'%s' → '%s': rollout %.4f · raw attention of layer %d (mean of heads) %.4f"
                     % (toks[c], toks[j], float(roll[j]), k - 1, float(raw[j])))
    ly = y0 + n * rh + 10
    scene.rect(x, ly, 12, 8, fill=BAR_COLOR)
    scene.text(x + 16, ly + 8, "rollout (layers 0–%d)" % (k - 1), size=10, color="#333333")
    scene.rect(x, ly + 14, 12, 4, fill=RAW_COLOR)
    scene.text(x + 16, ly + 20, "raw attention, layer %d, mean of heads" % (k - 1), size=10, color="#333333")
    return ly + 26
