"""Step-by-step tab: the nine steps of multi-head self-attention, each drawn from the real numbers.

``STEP_TITLES`` / ``step_title`` name the steps for the page's step bar (the number of steps, ``N_STEPS``, is
the tab registry's: ``pyapp.app.tabs``). The scene itself
draws a progress bar of nine numbered dots; clicking dot k asks for {"step": k}. Every step has a
caption that tracks shapes ("Q_h: n × d_k = 12 × 32"), returned by ``captions(ctx, step)`` too.
When V / W_O are not loaded yet (trace.v / trace.output is None) steps 3, 7, 8 and 9 draw what they can
and show "loading …" for the rest.
"""

from __future__ import annotations

import math
from typing import List, Union

import numpy as np

from ..app.context import ViewContext
from ..app.stepping import ENCODER_STEPS, step_titles
from ..app.stepping import step_title as keyed_title
from ..draw.blocks import (
    Block,
    column_block,
    extent,
    flow,
    matrix_block,
    notice_block,
    row_block,
    text_block,
    wide_cell,
)
from ..draw.gqa import draw_gqa
from ..draw.heatmap import alt_text, draw_heatmap
from ..draw.matrix import draw_matrix, row_height
from ..draw.rope import draw_rope
from ..draw.scene import Scene, header, text_width, wrap_text

TITLE = "Step by step"
STEP_TITLES = list(step_titles())      # an encoder's nine steps (a decoder's: ctx.step_keys, app/stepping.py)
N_STEPS = len(STEP_TITLES)             # an encoder's; a decoder has 10 (GPT-2) or 11 (Llama: + RoPE)
BASE = {k: i + 1 for i, k in enumerate(ENCODER_STEPS)}   # a shared step's number among the encoder's nine
MARGIN = 12.0
ACCENT = "#1f6feb"


def step_title(step: int) -> str:
    return STEP_TITLES[clamp_step(step) - 1]


def clamp_step(step: int, n_steps: int = len(ENCODER_STEPS)) -> int:
    return max(1, min(n_steps, int(step)))


def step_key(ctx: ViewContext, step: int) -> str:
    """The key of step ``step`` (1-based) of this model's steps ("qkv", "rope", "mask", ...)."""
    keys = ctx.step_keys
    return keys[clamp_step(step, len(keys)) - 1]


def _heatmap_block(ctx: ViewContext, matrix, title, frac=0.55, signed=False, what="weight", row_sums=False,
                   mask=None, max_grid=None) -> Block:
    def block(sub: Scene, max_w: float, alone: bool = False):
        w = max_w if alone else max(min(max_w * frac, max(260.0, max_w * 0.45)), min(max_w, 240.0))
        if row_sums:
            w = min(w, max_w - 56.0)  # room for the Σ column
        grid = max_grid if max_grid is not None else min(420.0, max(160.0, 30.0 * ctx.n))
        lay = draw_heatmap(sub, 0, 0, w, matrix, ctx.tokens, ctx.tokens, signed=signed, what=what,
                           pinned_row=ctx.pinned_row, layer=ctx.layer, head=ctx.head_index, title=title,
                           mask=mask, max_grid=grid)
        right = lay.right
        if row_sums:
            right = _draw_row_sums(sub, lay, matrix, right + 10)
        return right, lay.height
    return block


def _draw_row_sums(sub: Scene, lay, matrix: np.ndarray, x: float) -> float:
    sums = matrix.sum(axis=1)  # (n,)
    sub.text(x, lay.grid_y - 6, "Σ row", size=10, bold=True, color="#333333")
    if lay.cell >= 9:
        size = min(11.0, lay.cell * 0.75)
        for i, s in enumerate(sums):
            sub.text(x, lay.grid_y + (i + 0.5) * lay.cell, "%.3f" % s, size=size, baseline="middle",
                     font="mono", color="#1a7f37")
        return x + text_width("1.000", size, "mono")
    dev = float(np.abs(sums - 1.0).max())
    sub.text(x, lay.grid_y + 10, "all = 1", size=10, color="#1a7f37")
    sub.text(x, lay.grid_y + 24, "(±%.0e)" % dev, size=9, color="#666666")
    return x + 46


def _aligned_block(ctx: ViewContext, probs: np.ndarray, title: str, mats) -> Block:
    """A weights heatmap followed by (operator, matrix, name) whose rows line up with its rows; where they
    do not fit beside it (narrow screens), each operator and matrix goes below, full width, with token labels."""
    def block(sub: Scene, max_w: float, alone: bool = False):
        n, dk = ctx.n, ctx.d_k
        mat_w = min(6.0 * dk, max_w * 0.22)
        side = max_w - len(mats) * (mat_w + 50) - 10     # room for the heatmap with the matrices beside it
        beside = side >= 280.0
        lay = draw_heatmap(sub, 0, 0, min(side, 0.5 * max_w, 520.0) if beside else max_w, probs, ctx.tokens,
                           ctx.tokens, pinned_row=ctx.pinned_row, layer=ctx.layer, head=ctx.head_index,
                           title=title, mask=ctx.causal_mask(), max_grid=min(420.0, max(160.0, 30.0 * n)))
        bottom = lay.height
        if beside:
            x, top, rh = lay.right + 14, lay.grid_y - 20.0, lay.cell
            for op, m, name in mats:
                ow = text_width(op, 18, "serif") + 10
                sub.text(x + ow / 2, top + 20 + rh * n / 2, op, size=18, font="serif", align="center",
                         baseline="middle", color="#444444")
                w, hh = draw_matrix(sub, x + ow, top, m, name, rh=rh, max_w=mat_w, shape="%d × %d" % m.shape,
                                    max_cell_w=8.0)
                x += ow + w + 10
                bottom = max(bottom, top + hh)
            return extent(sub, max_w), bottom
        rh = row_height(n, min(340.0, 18.0 * n))
        y = bottom + 8
        for op, m, name in mats:
            sub.text(4, y + 12, op, size=18, font="serif", baseline="middle", color="#444444")
            _, hh = draw_matrix(sub, 0, y + 26, m, name, rh=rh, max_w=max_w, row_labels=ctx.tokens,
                                shape="%d × %d" % m.shape, max_cell_w=8.0)
            y += 26 + hh + 10
        return extent(sub, max_w), y - 10
    return block


def _progress(scene: Scene, x: float, y: float, width: float, step: int, titles) -> float:
    """One numbered dot per step joined by a line; the current one filled. Returns the height used."""
    r = 11.0
    count = len(titles)
    span = min(width - 2 * r, count * 56.0)
    dx = span / (count - 1)
    cy = y + r + 1
    scene.line(x + r, cy, x + r + span, cy, color="#c9ced6", width=2)
    scene.line(x + r, cy, x + r + dx * (step - 1), cy, color=ACCENT, width=2)
    for k in range(1, count + 1):
        cx = x + r + dx * (k - 1)
        done, cur = k < step, k == step
        scene.rect(cx - r, cy - r, 2 * r, 2 * r, radius=r, fill=ACCENT if (cur or done) else "#ffffff",
                   stroke=ACCENT if (cur or done) else "#9aa3ad", line_width=2 if cur else 1)
        scene.text(cx, cy + 0.5, str(k), size=11, align="center", baseline="middle", bold=cur,
                   color="#ffffff" if (cur or done) else "#444444")
        scene.region(cx - r - 3, cy - r - 3, 2 * r + 6, 2 * r + 6, "step_dot", action={"step": k},
                     tooltip="Step %d: %s" % (k, titles[k - 1]))
    scene.text(x + r + span + r + 10, cy + 0.5, "step %d of %d" % (step, count), size=12, baseline="middle",
               color="#444444") if width - span > 110 else None
    return 2 * r + 2


# ---- the nine steps ---------------------------------------------------------------------------------
def captions(ctx: ViewContext, step: int) -> List[str]:
    """Shape-tracking caption lines of a step (1-based among this model's steps)."""
    key = step_key(ctx, step)
    if key in DECODER_STEPS:
        return DECODER_STEPS[key][1](ctx)
    lines = _captions(ctx, BASE[key])
    if key == "qkv" and ctx.trace.kv_heads != ctx.n_heads:
        g = ctx.trace.kv_head(ctx.head_index)
        lines.append("grouped-query: %d query heads, %d K/V heads; query head %d reads K_%d, V_%d "
                     "(%d = ⌊%d / %d⌋)" % (ctx.n_heads, ctx.trace.kv_heads, ctx.head_index, g, g, g,
                                           ctx.head_index, ctx.n_heads // ctx.trace.kv_heads))
    return lines


def _captions(ctx: ViewContext, step: int) -> List[str]:
    n, dm, dk, h, H = ctx.n, ctx.d_model, ctx.d_k, ctx.head_index, ctx.n_heads
    da = H * dk
    if step == 1:
        special = sum(1 for t in ctx.tokens if t in ("[CLS]", "[SEP]", "<s>", "</s>"))
        return ["n = %d tokens (%d from the text + %d special)" % (n, n - special, special)]
    if step == 2:
        return ["X: n × d_model = %d × %d" % (n, dm)]
    if step == 3:
        return ["Q_h = X W_Q,hᵀ%s : (%d × %d)(%d × %d) = %d × %d" % (ctx.bias("Q", "h"), n, dm, dm, dk, n, dk),
                "Q_h, K_h, V_h: n × d_k = %d × %d each (head %d of %d; d_k = d_model / h = %d / %d)"
                % (n, dk, h, H, da, H)]
    if step == 4:
        return ["S_h = Q_h K_hᵀ : (%d × %d)(%d × %d) = %d × %d" % (n, dk, dk, n, n, n)]
    if step == 5:
        top = float(np.abs(ctx.trace.scores[h]).max())
        return ["S_h / √d_k = S_h / √%d = S_h / %.3f : %d × %d" % (dk, math.sqrt(dk), n, n),
                "largest |score| of head %d: %.2f before, %.2f after scaling" % (h, top, top / math.sqrt(dk))]
    if step == 6:
        t = "" if abs(ctx.temperature - 1) < 1e-9 else " / T (T = %g)" % ctx.temperature
        return ["A_h = softmax(S_h / √d_k%s) row by row : %d × %d, every row sums to 1" % (t, n, n)]
    if step == 7:
        return ["head_h = A_h V_h : (%d × %d)(%d × %d) = %d × %d" % (n, n, n, dk, n, dk)]
    if step == 8:
        return ["Concat(head_0 … head_%d) : n × (h·d_k) = %d × (%d·%d) = %d × %d" % (H - 1, n, H, dk, n, da)]
    return ["MultiHead(X) = Concat(…) W_Oᵀ%s : (%d × %d)(%d × %d) = %d × %d — same shape as X"
            % (ctx.bias("O"), n, da, da, dm, n, dm)]


def _explain(ctx: ViewContext, step: int) -> str:
    key = step_key(ctx, step)
    if key in DECODER_STEPS:
        return DECODER_STEPS[key][0](ctx)
    if ctx.is_decoder and key in DECODER_EXPLAIN:
        return DECODER_EXPLAIN[key](ctx)
    return _explain_base(ctx, BASE[key])


def _explain_base(ctx: ViewContext, step: int) -> str:
    h = ctx.head_index
    return [
        "The text is split into WordPiece tokens; [CLS] and [SEP] mark the start and the end.",
        ("Each token becomes a vector: its word embedding plus a position embedding (plus the segment "
         "embedding), layer-normalised. One row per token; blue < 0 < red."
         if ctx.layer == 0 else "The input to layer %d is the output of layer %d: one vector per token."
         % (ctx.layer, ctx.layer - 1)),
        ("Three learned linear maps turn every token vector into a query, a key and a value. Head %d uses "
         "its own slice of d_k columns (outlined)." % h),
        "Every query is compared with every key by a dot product: row i, column j says how well token i's "
        "query matches token j's key.",
        "The scores are divided by √d_k so that their spread does not grow with the dimension, which would "
        "push the softmax into near one-hot outputs.",
        "Softmax turns each row of scores into weights between 0 and 1 that sum to 1."
        + (" Temperature T divides the scores first: T > 1 flattens, T < 1 sharpens." if True else "")
        + (" A causal mask sets the scores of future tokens to −∞ (grey): their weight is 0."
           if ctx.causal else ""),
        "Each token's new vector is the weighted average of all value vectors, with its row of weights.",
        "All heads run in parallel; their outputs are placed side by side (head %d outlined)." % h,
        "A last linear map W_O mixes the heads back into d_model numbers per token: same shape as the "
        "input, so the result can be added to it (residual) and the blocks can be stacked.",
    ][step - 1]


def _step_blocks(ctx: ViewContext, step: int, width: float):
    tr, h, n = ctx.trace, ctx.head_index, ctx.n
    dk, dm = ctx.d_k, ctx.d_model
    rh = row_height(n, min(340.0, 18.0 * n))
    toks = ctx.tokens
    if step == 1:
        return [_token_chips(ctx)]
    if step == 2:
        name = ("RMSNorm(x)" if ctx.model_arch == "llama" else "LayerNorm(x)") if ctx.is_decoder else "X"
        return [matrix_block(tr.x, name, "%d × %d" % (n, dm), rh, toks, max_cell_w=4.0)]
    if step == 3:
        return _projection_blocks(ctx, row_height(n, min(150.0, 12.0 * n)))
    if step == 4:
        kt = tr.k[h].T  # (d_k, n)
        return [matrix_block(tr.q[h], "Q_h (rotated)" if ctx.rope else "Q_h", "%d × %d" % (n, dk), rh, toks,
                             max_cell_w=6.0), "×",
                matrix_block(kt, "K_hᵀ", "%d × %d" % (dk, n), min(rh, 6.0), None, max_cell_w=min(rh, 10.0)),
                "=", _heatmap_block(ctx, tr.scores[h], "scores S_h (head %d)" % h, frac=0.42, signed=True,
                                    what="score")]
    if step == 5:
        return [_heatmap_block(ctx, tr.scores[h], "S_h", frac=0.42, signed=True, what="score"),
                "÷ %.2f" % math.sqrt(dk),
                _heatmap_block(ctx, tr.scaled[h], "S_h / √d_k", frac=0.42, signed=True, what="scaled score")]
    if step == 6:
        mask = ctx.causal_mask()
        return [_heatmap_block(ctx, tr.logits[h], "before: logits" + (" (masked)" if ctx.causal else ""),
                               frac=0.38, signed=True, what="logit", mask=mask),
                "softmax →",
                _heatmap_block(ctx, tr.probs[h], "after: weights A_h", frac=0.38, row_sums=True, mask=mask)]
    if step == 7:
        if tr.v is None or tr.head_outputs is None:
            return [_heatmap_block(ctx, tr.probs[h], "weights A_h", frac=0.5, mask=ctx.causal_mask()), "×",
                    notice_block(ctx.loading_message())]
        return [_aligned_block(ctx, tr.probs[h], "weights A_h",
                               [("×", tr.v[h], "V_h"), ("=", tr.head_outputs[h], "head_%d" % h)])]
    if step == 8:
        if tr.concat is None:
            return [notice_block(ctx.loading_message(), 320)]
        return [matrix_block(tr.concat, "Concat(heads)", "%d × %d" % (n, tr.concat.shape[1]), rh, toks,
                              max_cell_w=3.0, col_groups=ctx.n_heads, highlight_cols=(h * dk, (h + 1) * dk))]
    x_block = matrix_block(tr.x, "input X", "%d × %d" % (n, dm), rh, toks, max_cell_w=wide_cell(dm), frac=0.45)
    if tr.output is None:
        return [x_block, notice_block(ctx.loading_message())]
    wo = getattr(ctx.weights, "o_weight", None)
    proj: List[Union[Block, str]] = [
        matrix_block(tr.concat, "Concat(heads)", "%d × %d" % tr.concat.shape, rh, toks, max_cell_w=wide_cell(dm),
                      frac=0.3, col_groups=ctx.n_heads)]
    if wo is not None:
        side = 84.0
        proj += ["×", matrix_block(wo.T, "W_Oᵀ", "%d × %d" % wo.T.shape, side / wo.shape[1], None,
                                    max_cell_w=side / wo.shape[0]), "+ b_O =" if ctx.bias("O") else "="]
    else:
        proj.append("→")
    proj.append(matrix_block(tr.output, "output MultiHead(X)", "%d × %d" % (n, dm), rh, toks, max_cell_w=wide_cell(dm),
                              frac=0.32))
    out = matrix_block(tr.output, "output MultiHead(X)", "%d × %d" % (n, dm), rh, toks, max_cell_w=wide_cell(dm),
                        frac=0.45)
    compare = column_block([text_block("Input and output side by side: one row per token, same shape."),
                             row_block([x_block, "vs", out])])
    return [column_block([row_block(proj), compare], gap=22.0)]


def _gqa_block(ctx: ViewContext) -> Block:
    def block(sub: Scene, max_w: float, alone: bool = False):
        w = min(max_w, 640.0)
        return w, draw_gqa(sub, 0, 0, w, ctx.n_heads, ctx.trace.kv_heads, ctx.head_index, ctx.d_k)
    return block


def _projection_blocks(ctx: ViewContext, rh: float):
    tr, w, h, n, dk = ctx.trace, ctx.weights, ctx.head_index, ctx.n, ctx.d_k
    g = tr.kv_head(h)
    grouped = tr.kv_heads != tr.n_heads
    rows = []
    for letter, mat, weight in (("Q", tr.q, getattr(w, "q_weight", None)), ("K", tr.k, getattr(w, "k_weight", None)),
                                ("V", tr.v, getattr(w, "v_weight", None))):
        shared = grouped and letter != "Q"            # K and V: the kv head's band of the smaller matrix
        band = (g * dk, (g + 1) * dk) if shared else (h * dk, (h + 1) * dk)
        if mat is None:
            rows.append(notice_block(ctx.loading_message() + "  (V_h = X W_V,hᵀ + b)", 420, 56))
            continue
        items: List[Union[Block, str]] = []
        if weight is not None:
            wt = weight.T  # (d_model, heads*d_k): X W^T, head h = a column band
            side = 84.0
            items += [matrix_block(wt, "W_%sᵀ" % letter, "%d × %d" % wt.shape, side / wt.shape[0], None,
                                    max_cell_w=side / wt.shape[1], highlight_cols=band), "→"]
        shown = tr.q_unrotated if (ctx.rope and letter == "Q") else tr.k_unrotated if (ctx.rope and letter == "K") \
            else mat                                    # RoPE models: before the rotation (the next step)
        what = "kv head %d, shared by heads %d–%d" % (g, g * (tr.n_heads // tr.kv_heads),
                                                      (g + 1) * (tr.n_heads // tr.kv_heads) - 1) if shared \
            else "head %d" % h
        items.append(matrix_block(shown[h], "%s_%d" % (letter, g) if shared else "%s_h" % letter,
                                  "%d × %d (%s)" % (n, dk, what), rh, ctx.tokens, max_cell_w=8.0))
        rows.append(row_block(items))
    # X is drawn narrower beside the three projections (sub-pixel columns; the tooltip stays exact)
    x_block = matrix_block(tr.x, "X", "%d × %d" % (n, ctx.d_model), rh, ctx.tokens,
                            max_cell_w=wide_cell(ctx.d_model), frac=0.36)
    main = row_block([x_block, "→", column_block(rows, gap=12.0)], op_y=20.0 + rh * n / 2)
    return [column_block([_gqa_block(ctx), main], gap=18.0)] if grouped else [main]


def _token_chips(ctx: ViewContext) -> Block:
    def block(sub: Scene, max_w: float, alone: bool = False):
        x = y = 0.0
        size, chip_h, used = 14.0, 26.0, 0.0
        if ctx.text:
            for line in wrap_text("“%s”" % ctx.text, max_w, 13):
                sub.text(0, y + 13, line, size=13, color="#444444", italic=True)
                y += 18
            y += 8
        for i, t in enumerate(ctx.tokens):
            sub_label = str(i) if ctx.ids is None else "%d · id %d" % (i, ctx.ids[i])
            # wide enough for the token and for its index / id line below, so neighbours never collide
            w = min(max(text_width(t, size, "mono") + 14, text_width(sub_label, 9) + 6, 30), max_w)
            if x > 0 and x + w > max_w:
                x, y = 0.0, y + chip_h + 22
            special = t.startswith("[") and t.endswith("]")
            pinned = ctx.pinned_row == i
            sub.rect(x, y, w, chip_h, fill="#eef2ff" if not special else "#f1f1f1",
                     stroke="#ff2d55" if pinned else ("#9db4ff" if not special else "#bbbbbb"),
                     line_width=2 if pinned else 1, radius=5)
            sub.text(x + w / 2, y + chip_h / 2 + 1, t, size=size, font="mono", align="center", baseline="middle",
                     color="#222222", max_width=w - 4)
            sub.text(x + w / 2, y + chip_h + 12, sub_label, size=9, align="center", color="#777777",
                     max_width=w)
            tip = "token %d: '%s'%s" % (i, t, "" if ctx.ids is None else " (id %d)" % ctx.ids[i])
            if ctx.offsets is not None and i < len(ctx.offsets) and ctx.offsets[i][1] > ctx.offsets[i][0]:
                a, b = ctx.offsets[i]
                tip += ", characters %d–%d of the text" % (a, b) + (" “%s”" % ctx.text[a:b] if ctx.text else "")
            sub.region(x, y, w, chip_h, "token", action={"pinned_row": None if pinned else i}, tooltip=tip)
            x += w + 8
            used = max(used, x)
        return min(used, max_w), y + chip_h + 16
    return block


def render(ctx: ViewContext, width: float) -> Scene:
    width = max(float(width), 320.0)
    keys = ctx.step_keys
    titles = [keyed_title(k, ctx.model_arch) for k in keys]
    step = clamp_step(ctx.step, len(keys))
    key = keys[step - 1]
    h = ctx.head_index
    scene = Scene(width, 100, label="Step %d of %d: %s (head %d, layer %d)"
                  % (step, len(keys), titles[step - 1], h, ctx.layer))
    inner = width - 2 * MARGIN
    y = MARGIN
    y += _progress(scene, MARGIN, y, inner, step, titles) + 12
    y = header(scene, MARGIN, y, inner, "Step %d · %s" % (step, titles[step - 1]), _explain(ctx, step))
    blocks = DECODER_STEPS[key][2](ctx, inner) if key in DECODER_STEPS else _step_blocks(ctx, BASE[key], inner)
    y += flow(scene, MARGIN, y, inner, blocks) + 16
    for line in captions(ctx, step):
        for part in wrap_text(line, inner, 12, "mono"):
            scene.text(MARGIN, y + 12, part, size=12, font="mono", color="#0b4f9c")
            y += 17
    scene.height = y + MARGIN
    if keys.index(key) >= keys.index("scores"):
        scene.alt_text = alt_text(ctx.trace.probs[h], ctx.tokens, ctx.tokens, 3,
                                  "Head %d, layer %d attention. Each query token's top 3 keys:" % (h, ctx.layer))
    else:
        scene.alt_text = "Step %d: %s. %s" % (step, titles[step - 1], " ".join(captions(ctx, step)))
    return scene


# ---- a decoder's own steps: RoPE and the causal mask; its explanations where they differ ---------------
def _rope_explain(ctx: ViewContext) -> str:
    return ("Llama has no position embeddings: position enters here. Q and K of token m are rotated, pair of "
            "coordinates by pair, by the angle m·θ_i (θ_i = base^(−2i/d_k): fast pairs turn a lot per "
            "position, slow ones hardly). A dot product of two rotated vectors depends on the angle between "
            "them, so q_m·k_n sees the positions only through the offset m − n. Grey: before, colour: after.")


def _rope_captions(ctx: ViewContext) -> List[str]:
    theta = float(getattr(ctx.weights, "rope_theta", 0.0) or 0.0)
    dk = ctx.d_k
    return ["(q_i, q_(i+d/2)) of token m turned by m·θ_i, θ_i = %g^(−2i/%d): θ_0 = 1 rad, θ_%d = %.2g rad"
            % (theta, dk, dk // 2 - 1, theta ** (-2.0 * (dk // 2 - 1) / dk)),
            "Q_h, K_h: n × d_k = %d × %d before and after; the same rotation for K (kv head %d)"
            % (ctx.n, dk, ctx.trace.kv_head(ctx.head_index))]


def _rope_blocks(ctx: ViewContext, width: float) -> List[Union[Block, str]]:
    tr, h = ctx.trace, ctx.head_index
    theta = float(getattr(ctx.weights, "rope_theta", 0.0) or 0.0)

    def dials(name, before, after, color) -> Block:
        def block(sub: Scene, max_w: float, alone: bool = False):
            w = max_w if alone else min(max_w * 0.48, 470.0)
            return w, draw_rope(sub, 0, 0, w, before, after, ctx.tokens, theta, name, color)
        return block
    return [dials("Q", tr.q_unrotated[h], tr.q[h], ACCENT),
            dials("K", tr.k_unrotated[h], tr.k[h], "#d9822b")]


def _mask_explain(ctx: ViewContext) -> str:
    return ("A causal decoder is trained to predict each next token from the ones before it, so token i may "
            "only look at tokens j ≤ i: the scores above the diagonal are set to −∞ (grey), and after the "
            "softmax their weight is exactly 0. For this model the mask is part of the model, always on.")


def _mask_captions(ctx: ViewContext) -> List[str]:
    n = ctx.n
    return ["M_ij = 0 for j ≤ i, −∞ for j > i : %d × %d (%d of %d entries hidden)"
            % (n, n, n * (n - 1) // 2, n * n)]


def _mask_blocks(ctx: ViewContext, width: float) -> List[Union[Block, str]]:
    tr, h = ctx.trace, ctx.head_index
    masked = tr.masked[h] if tr.masked is not None else tr.scaled[h]
    return [_heatmap_block(ctx, tr.scaled[h], "S_h / √d_k", frac=0.42, signed=True, what="scaled score"),
            "+ M =", _heatmap_block(ctx, masked, "masked scores", frac=0.42, signed=True, what="masked score",
                                    mask=ctx.causal_mask())]


DECODER_STEPS = {   # key: (explanation, captions, blocks)
    "rope": (_rope_explain, _rope_captions, _rope_blocks),
    "mask": (_mask_explain, _mask_captions, _mask_blocks),
}


def _tokens_explain(ctx: ViewContext) -> str:
    return ("The text is split into byte-level BPE tokens: frequent words are one token, a leading space is "
            "part of the token (shown as ␣), rare words and emoji are split into pieces. No special token is "
            "added: a decoder reads the text as it is.")


def _embed_explain(ctx: ViewContext) -> str:
    norm = "RMSNorm: x / √(mean(x²) + ε) · g" if ctx.model_arch == "llama" else "LayerNorm"
    if ctx.layer == 0:
        what = ("each token's row of the embedding table (no position embeddings: positions enter later, by "
                "rotating Q and K)" if ctx.rope else "its word embedding plus its position embedding")
        return "Each token becomes a vector: %s. A decoder block starts with %s; X below is that normalised " \
               "vector, what the projections read." % (what, norm)
    return ("The input to layer %d is the output of layer %d; the block starts with %s, and X below is that "
            "normalised vector." % (ctx.layer, ctx.layer - 1, norm))


def _qkv_explain(ctx: ViewContext) -> str:
    tr = ctx.trace
    if tr.kv_heads == tr.n_heads:
        return _explain_base(ctx, BASE["qkv"])
    g = tr.kv_head(ctx.head_index)
    group = tr.n_heads // tr.kv_heads
    return ("Grouped-query attention: %d query heads but only %d key/value heads. Each group of %d query "
            "heads shares one K and one V, which saves memory when generating. Head %d reads K/V head %d "
            "(click a query head to select it)." % (tr.n_heads, tr.kv_heads, group, ctx.head_index, g))


def _softmax_explain(ctx: ViewContext) -> str:
    return ("Softmax turns each row of masked scores into weights between 0 and 1 that sum to 1; the future "
            "tokens (grey) get exactly 0, so the first token attends only to itself. Temperature T divides "
            "the scores first: T > 1 flattens, T < 1 sharpens.")


DECODER_EXPLAIN = {"tokens": _tokens_explain, "embed": _embed_explain, "qkv": _qkv_explain,
                   "softmax": _softmax_explain}
