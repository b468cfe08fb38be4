"""Neuron view: for one query token and one head, which dimensions of q and k make an attention weight.

For query token i of head h (d_k dimensions):

    q_i                      (d_k,)       the query vector
    k_j                      (n, d_k)     every key vector
    q_i ⊙ k_j                (n, d_k)     element-wise products: their row sum IS the score
    s_ij = sum_d q_id k_jd   (n,)         = QK^T[i, j]
    s_ij / sqrt(d_k) [/ T]   (n,)         what enters the softmax (-inf where causally masked)
    softmax_j                (n,)         the weights of row i

q and k share one diverging colour scale (blue < 0 < red); the products have their own. For the
strongest key the largest products are outlined and named: those dimensions drive that weight.

State: the query token is ``ctx.pinned_row`` (the row pinned in the heatmaps; default the first token
after [CLS]); the head is ``ctx.head``.
Hit regions: "neuron_query" buttons (action {"pinned_row": i}), "neuron_head" buttons (action
{"head": h}), and "matrix_cell" grids named "q", "K_h" and "q⊙k" (interact.tooltip gives the exact value).
"""

from __future__ import annotations

import math
from typing import List

import numpy as np

from ..app.context import ViewContext
from ..draw.colormap import DIVERGING, legend_image
from ..draw.heatmap import short_label
from ..draw.matrix import draw_matrix, robust_limit
from ..draw.scene import Scene, button, header, text_width, wrap_text

TITLE = "Neuron view"
MARGIN = 12.0
BAR_COLOR = "#1f6feb"
TOP_DIMS = 3
MARK = "#111111"


def neuron_numbers(ctx: ViewContext, head: int, i: int):
    """(q (d_k,), K (n, d_k), products (n, d_k), scores (n,), scaled (n,), logits (n,), weights (n,))."""
    tr = ctx.trace
    q = np.asarray(tr.q[head, i], dtype=np.float32)  # (d_k,)
    k = np.asarray(tr.k[head], dtype=np.float32)  # (n, d_k)
    prod = k * q[None, :]  # (n, d_k)
    return (q, k, prod, np.asarray(tr.scores[head, i]), np.asarray(tr.scaled[head, i]),
            np.asarray(tr.logits[head, i]), np.asarray(tr.probs[head, i]))


def top_dims(products: np.ndarray, k: int = TOP_DIMS) -> List[int]:
    """Dimensions with the largest products (the ones pushing the score up), largest first."""
    order = np.argsort(-products, kind="mergesort")
    return [int(d) for d in order[:k]]


def _chips(scene: Scene, x: float, y: float, w: float, title: str, labels: List[str], active: int,
           action_key: str, kind: str) -> float:
    scene.text(x, y + 14, title, size=12, color="#444444")
    x0 = x + max(text_width(title, 12) + 8, 52)
    cx, cy = x0, y
    for j, s in enumerate(labels):
        bw = text_width(s, 11, bold=j == active) + 22
        if cx + bw > x + w:
            cx, cy = x0, cy + 26
        button(scene, cx, cy, s, {action_key: j}, active=j == active, size=11, kind=kind,
               tooltip="show %s %s" % (action_key.replace("pinned_row", "query"), s))
        cx += bw + 4
    return cy + 30


def render(ctx: ViewContext, width: float) -> Scene:
    width = max(float(width), 320.0)
    n, h, d_k = ctx.n, ctx.head_index, ctx.d_k
    i = ctx.query_index()
    q, k, prod, scores, scaled, logits, weights = neuron_numbers(ctx, h, i)
    toks = ctx.tokens
    temp = ctx.temperature
    scene = Scene(width, 100, label="Neuron view: query '%s', head %d, layer %d" % (toks[i], h, ctx.layer))
    inner = width - 2 * MARGIN
    title = "Neuron view · layer %d · head %d · query '%s'" if inner >= 420 else "Neuron · layer %d · head %d · '%s'"
    y = header(scene, MARGIN, MARGIN, inner, title % (ctx.layer, h, short_label(toks[i], 16)),
               "How q·k builds each score: the query vector, every key vector, their element-wise product "
               "(a row of products sums to the score), the score ÷ √d_k%s and its softmax.%s"
               % (" ÷ T" if abs(temp - 1.0) > 1e-9 else "",
                  " q and k are taken after the rotary position rotation (RoPE), as the scores use them; "
                  "keys after the query are masked." if ctx.rope else ""))
    y = _chips(scene, MARGIN, y, inner, "query:", [short_label(t, 10) for t in toks], i, "pinned_row",
               "neuron_query")
    y = _chips(scene, MARGIN, y - 2, inner, "head:", [str(j) for j in range(ctx.n_heads)], h, "head",
               "neuron_head") + 4

    # column geometry; narrow (phone) layouts put the score columns below the matrices instead of beside them
    rh = float(max(10.0, min(18.0, 420.0 / max(n, 1))))
    show_logit = abs(temp - 1.0) > 1e-9
    num_cols = ["q·k", "÷√d_k"] + (["÷T"] if show_logit else []) + ["softmax"]
    label_w = max(text_width(short_label(t, 10), 11) for t in toks) + 10
    narrow = inner < 640
    num_w = 54.0 if narrow else 62.0
    bar_w = max(60.0, min(110.0, inner - label_w - num_w * (len(num_cols) - 1) - 50)) if narrow else 110.0
    if narrow:
        avail = inner - label_w - 26
    else:
        avail = inner - label_w - 2 * 26 - num_w * (len(num_cols) - 1) - 10 - bar_w - 40
    cw = max(1.0, min(14.0, math.floor(avail / (2.0 * d_k))))
    qk_lim = max(robust_limit(np.concatenate([q[None, :], k])), 1e-6)
    prod_lim = max(robust_limit(prod), 1e-6)

    # the key matrix, with the query vector (same colour scale) above it, column for column
    x = MARGIN
    ky = y + 11 + 8 + rh + 10  # below the q row: title + gap + one row (draw_matrix's layout) + gap
    draw_matrix(scene, x, ky, k, "K_h" if narrow else "K_h  (each key k_j)", rh=rh, max_w=label_w + cw * d_k,
                        row_labels=toks, limit=qk_lim, max_cell_w=cw, title_size=11)
    kbox = scene.regions[-1]
    kbox["data"]["name"] = "K_h"
    draw_matrix(scene, kbox["x"], y, q[None, :], "q" if narrow else "q  ('%s')" % short_label(toks[i], 12), rh=rh,
                max_w=kbox["w"], limit=qk_lim, max_cell_w=cw, title_size=11)
    qbox = scene.regions[-1]
    qbox["data"]["name"] = "q"
    gy, gx_k = kbox["y"], kbox["x"]
    px = gx_k + kbox["w"] + 26
    scene.text(px - 13, gy + n * rh / 2, "⊙", size=16, align="center", baseline="middle", color="#555555")
    draw_matrix(scene, px, ky, prod, "q⊙k" if narrow else "q ⊙ k_j", rh=rh, max_w=cw * d_k, limit=prod_lim, max_cell_w=cw,
                title_size=11)
    pbox = scene.regions[-1]
    pbox["data"]["name"] = "q⊙k"
    pbox["data"]["row_labels"] = list(toks)
    # number columns: beside the products (Σ of each row), or below the matrices with the key labels again
    if narrow:
        nx, ny = gx_k, gy + n * rh + 46
        scene.text(MARGIN, ny - 26, "Σ of each row of q⊙k, scaled, softmax:", size=11, italic=True, color="#555555",
                   max_width=inner)
        for j in range(n):
            scene.text(nx - 4, ny + (j + 0.5) * rh, short_label(toks[j], 10), size=min(11.0, rh * 0.75),
                       align="right", baseline="middle", color="#333333", max_width=label_w - 6)
    else:
        nx, ny = pbox["x"] + pbox["w"] + 26, gy
        scene.text(nx - 13, gy + n * rh / 2, "Σ", size=15, align="center", baseline="middle", color="#555555")
    col_x = [nx + num_w * (c + 1) - 6 for c in range(len(num_cols) - 1)]
    bar_x = nx + num_w * (len(num_cols) - 1) + 10
    for c, title in enumerate(num_cols[:-1]):
        scene.text(col_x[c], ny - 6, title, size=11, bold=True, align="right", color="#222222")
    scene.text(bar_x, ny - 6, "softmax", size=11, bold=True, color="#222222")
    strongest = int(np.argmax(weights))
    font = min(11.0, rh * 0.75)
    for j in range(n):
        cy = ny + (j + 0.5) * rh
        masked = not np.isfinite(logits[j])
        vals = [scores[j], scaled[j]] + ([logits[j]] if show_logit else [])
        for c, v in enumerate(vals):
            s = "masked" if (masked and c == len(vals) - 1) else "%.2f" % float(v)
            scene.text(col_x[c], cy, s, size=font, align="right", baseline="middle", font="mono",
                       color="#999999" if masked else "#222222", bold=j == strongest)
        w = float(weights[j])
        if bar_w * w >= 1.0:
            scene.rect(bar_x, cy - rh * 0.35, bar_w * w, rh * 0.7, fill=BAR_COLOR)
        scene.text(bar_x + bar_w * w + 4, cy, "%.3f" % w, size=font, baseline="middle", font="mono",
                   color="#222222", bold=j == strongest)
        scene.region(nx, cy - rh / 2, bar_x + bar_w + 40 - nx, rh, "neuron_row",
                     tooltip="'%s' → '%s': q·k = %.4f, ÷√%d = %.4f%s, weight %.4f" % (
                         toks[i], toks[j], float(scores[j]), d_k, float(scaled[j]),
                         (", ÷T = %.4f" % float(logits[j])) if show_logit and not masked else
                         (" (masked)" if masked else ""), w))
    # keys hidden by the causal mask: their products never reach the softmax, so dim them
    hidden = ~np.isfinite(logits)
    for j in np.nonzero(hidden)[0]:
        scene.rect(pbox["x"], gy + j * rh, pbox["w"], rh, fill="#ffffff", alpha=0.65)
    # the dimensions that drive the strongest weight
    dims = top_dims(prod[strongest])
    for d in dims:
        scene.rect(pbox["x"] + d * cw - 1, gy + strongest * rh - 1, cw + 2, rh + 2, stroke=MARK, line_width=1.5)
    scene.rect(gx_k - label_w + 2, gy + strongest * rh, 4, rh, fill=BAR_COLOR)
    y = ny + n * rh + 14
    drive = ", ".join("dim %d (%+.2f)" % (d, float(prod[strongest, d])) for d in dims)
    summary = ("Strongest key '%s' (weight %.3f): q·k = %.2f is the sum of %d products; the largest "
               "(outlined): %s." % (toks[strongest], float(weights[strongest]), float(scores[strongest]), d_k, drive))
    for line in wrap_text(summary, inner, 12):
        scene.text(MARGIN, y + 12, line, size=12, color="#222222", max_width=inner)
        y += 16
    y += 8
    if inner >= 480:
        y = _legend(scene, MARGIN, y, "q, k", qk_lim)
        _legend(scene, MARGIN + 260, y - 30, "q ⊙ k", prod_lim)
    else:
        y = _legend(scene, MARGIN, _legend(scene, MARGIN, y, "q, k", qk_lim), "q ⊙ k", prod_lim)
    scene.height = y + MARGIN
    scene.alt_text = "\n".join(
        ["Neuron view, layer %d head %d, query '%s' (%d). For each key: score, scaled, weight:"
         % (ctx.layer, h, toks[i], i)]
        + ["%s (%d): %.3f, %.3f, %.3f" % (toks[j], j, float(scores[j]), float(scaled[j]), float(weights[j]))
           for j in range(n)])
    return scene


def _legend(scene: Scene, x: float, y: float, what: str, limit: float) -> float:
    scene.text(x, y + 11, what, size=11, color="#444444")
    lx = x + 50
    scene.image(lx, y + 2, 140, 10, legend_image(DIVERGING, vertical=False))
    scene.rect(lx - 0.5, y + 1.5, 141, 11, stroke="#888888")
    scene.text(lx, y + 24, "%.2f" % -limit, size=10, color="#333333")
    scene.text(lx + 70, y + 24, "0", size=10, align="center", color="#333333")
    scene.text(lx + 140, y + 24, "%.2f" % limit, size=10, align="right", color="#333333")
    return y + 30
