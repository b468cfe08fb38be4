"""Architecture tab: encoder, decoder and full Transformer diagrams drawn on the canvas, with the
multi-head attention blocks highlighted, and the inside of multi-head / scaled dot-product attention.

Every block is a hit region: its tooltip says what it does and, where the Step-by-step tab shows it,
its action jumps there, e.g. {"tab": "steps", "step": 3}. Buttons above the diagram switch it:
{"arch": "encoder" | "decoder" | "transformer"} (ctx.arch).
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..app.context import ARCH_DIAGRAMS, ViewContext
from ..draw.scene import Scene, button, header, text_width, wrap_text

TITLE = "Architecture"
MARGIN = 12.0
INK = "#333333"
STYLES = {  # fill, stroke (colours of the paper's figure)
    "attn": ("#ffd8a8", "#e8590c"),
    "norm": ("#fff3bf", "#c9a227"),
    "ffn": ("#d0ebff", "#4a90c2"),
    "embed": ("#ffdeeb", "#c2255c"),
    "linear": ("#e5dbff", "#7048e8"),
    "softmax": ("#d3f9d8", "#2f9e44"),
    "op": ("#f1f3f5", "#868e96"),
}
ARCH_LABELS = {"encoder": "Encoder (BERT, MiniLM)", "decoder": "Decoder (GPT)", "transformer": "Full Transformer"}


def _steps(step: int) -> Dict[str, Any]:
    return {"tab": "steps", "step": step}


# what each block is, and where it leads: (label, style, action, tooltip)
BLOCKS = {
    "mha": ("Multi-Head Attention", "attn", _steps(3),
            "Multi-head self-attention: the block this app opens up (steps 3–9)"),
    "masked": ("Masked Multi-Head Attention", "attn", _steps(6),
               "Self-attention with a causal mask: token i only sees tokens ≤ i (step 6, causal mask on)"),
    "cross": ("Multi-Head Attention", "attn", _steps(3),
              "Cross-attention: queries from the decoder, keys and values from the encoder output (step 3)"),
    "norm": ("Add & Norm", "norm", _steps(9),
             "Residual connection + LayerNorm: the attention output (step 9) is added to its input"),
    "ffn": ("Feed Forward", "ffn", None, "Position-wise feed-forward network (two linear maps + GELU); "
            "not part of attention"),
    "embed": ("Input Embedding", "embed", _steps(2), "Token embeddings (step 2)"),
    "out_embed": ("Output Embedding", "embed", _steps(2), "Embeddings of the tokens generated so far (step 2)"),
    "linear": ("Linear", "linear", None, "Projects each vector to vocabulary scores"),
    "softmax": ("Softmax", "softmax", None, "Turns vocabulary scores into next-token probabilities"),
}


class Canvas:
    """Drawing helpers for one diagram (boxes, arrows, residual loops), all with hit regions."""

    def __init__(self, scene: Scene, size: float):
        self.s = scene
        self.size = size  # label font size
        self.compact = size < 12

    def block(self, x, y, w, h, label, style, action=None, tooltip="", highlight=False, stacked=0):
        fill, stroke = STYLES[style]
        for k in range(stacked, 0, -1):  # "h copies" shadows behind
            self.s.rect(x + 4 * k, y - 4 * k, w, h, fill=fill, stroke=stroke, radius=5, line_width=1)
        self.s.rect(x, y, w, h, fill=fill, stroke=stroke, radius=5, line_width=2.5 if highlight else 1.2)
        lines = wrap_text(label, w - 8, self.size)
        if len(lines) > 2:
            lines = [" ".join(lines[:-1]), lines[-1]]
        lh = self.size * 1.15
        y0 = y + h / 2 - lh * (len(lines) - 1) / 2
        for i, line in enumerate(lines):
            self.s.text(x + w / 2, y0 + i * lh + 0.5, line, size=self.size, align="center", baseline="middle",
                        color="#1b1b1b", bold=highlight, max_width=w - 6)
        if action is not None or tooltip:
            data: Dict[str, Any] = {"tooltip": tooltip or label}
            if action is not None:
                data["action"] = action
            self.s.region(x, y, w, h, "block", **data)

    def named(self, key, x, y, w, h, highlight=None, stacked=0):
        label, style, action, tip = BLOCKS[key]
        hl = style == "attn" if highlight is None else highlight
        self.block(x, y, w, h, label, style, action, tip, hl, stacked)

    def arrow(self, pts: List[Tuple[float, float]], color=INK, width=1.4):
        self.s.path(pts, color=color, width=width)
        (ax, ay), (bx, by) = pts[-2], pts[-1]
        dx, dy = bx - ax, by - ay
        norm = max((dx * dx + dy * dy) ** 0.5, 1e-6)
        ux, uy = dx / norm, dy / norm
        a = 7.0
        self.s.path([(bx, by), (bx - a * ux - a * 0.45 * uy, by - a * uy + a * 0.45 * ux),
                     (bx - a * ux + a * 0.45 * uy, by - a * uy - a * 0.45 * ux)], fill=color, closed=True)

    def plus_circle(self, cx, cy, r=8.0):
        self.s.rect(cx - r, cy - r, 2 * r, 2 * r, fill="#ffffff", stroke=INK, radius=r, line_width=1.2)
        self.s.line(cx - r + 3, cy, cx + r - 3, cy, color=INK, width=1.2)
        self.s.line(cx, cy - r + 3, cx, cy + r - 3, color=INK, width=1.2)

    def label(self, x, y, text, align="center", size=None, color="#555555", italic=False):
        self.s.text(x, y, text, size=size or self.size, align=align, baseline="middle", color=color,
                    italic=italic)


def _column(c: Canvas, x: float, y: float, w: float, keys: List[str], gap: float, bh: float) -> float:
    """Named boxes stacked downwards from y, each with an arrow from it up into the one above; new y."""
    cx = x + w / 2
    for key in keys:
        c.arrow([(cx, y + gap), (cx, y)])
        y += gap
        c.named(key, x, y, w, bh)
        y += bh
    return y


def _stack(c: Canvas, x: float, y: float, w: float, layer: List[str], n_layers: int, below: List[str],
           above: List[str], inputs: str, outputs: str, n_side: str, current: bool) -> Dict[str, Any]:
    """One tower (encoder or decoder), drawn top-down from y. Returns its geometry."""
    bh, gap = 38.0, 18.0
    cx = x + w / 2
    geo: Dict[str, Any] = {}
    y0 = y
    c.label(cx, y + 6, outputs, italic=True)
    y += 16
    prev_top = y
    y = _column(c, x, y, w, above, gap, bh)  # e.g. decoder: Softmax, Linear (top to bottom)
    # the N× frame
    c.arrow([(cx, y + gap), (cx, y)])
    y += gap
    frame_top = y
    y += 10
    tops: List[float] = []
    for i, key in enumerate(layer):
        tops.append(y)
        c.named(key, x + 10, y, w - 20, bh, highlight=(key in ("mha", "masked", "cross")) and True)
        y += bh
        if i < len(layer) - 1:
            y += gap
    y += 26
    frame_bottom = y
    # arrows between blocks inside and residual loops: each Add & Norm takes the input of the sub-layer below
    for i in range(len(layer) - 1):
        c.arrow([(cx, tops[i + 1]), (cx, tops[i] + bh)])
    entry = frame_bottom  # where the stream enters the layer
    sub_in = entry - 10
    for i in range(len(layer) - 1, -1, -1):
        if layer[i] == "norm" and i + 1 < len(layer):
            src = sub_in  # the point just below the sub-layer
            side = x + (5 if n_side == "right" else w - 5)
            bx = x + 10 if n_side == "right" else x + w - 10
            c.s.path([(cx, src), (side, src), (side, tops[i] + bh / 2)], color=INK, width=1.2)
            c.arrow([(side, tops[i] + bh / 2), (bx, tops[i] + bh / 2)])
            sub_in = tops[i] - gap / 2
        if layer[i] in ("mha", "masked", "cross") and layer[i] != "cross":
            # self-attention: Q, K and V all come from the stream below
            for dx in (-w * 0.22, 0.0, w * 0.22):
                c.arrow([(cx, tops[i] + bh + 12), (cx + dx, tops[i] + bh + 12), (cx + dx, tops[i] + bh)], width=1.0)
        if layer[i] == "cross":
            geo["cross"] = (x + 10, tops[i], w - 20, bh)
            for dx in (w * 0.22,):
                c.arrow([(cx + dx, tops[i] + bh + 12), (cx + dx, tops[i] + bh)], width=1.0)
                c.s.line(cx, tops[i] + bh + 12, cx + dx, tops[i] + bh + 12, color=INK, width=1.0)
            c.arrow([(cx, tops[i] + bh + gap), (cx, tops[i] + bh)], width=1.0)
    c.s.line(cx, frame_bottom, cx, tops[-1] + bh + 12, color=INK, width=1.4)
    c.s.rect(x, frame_top, w, frame_bottom - frame_top, stroke="#868e96", radius=10, line_width=1.5,
             fill=None)
    tag = "%d×" % n_layers if n_layers > 0 else "N×"
    tx = x - 8 if n_side == "left" else x + w + 8
    c.s.text(tx, (frame_top + frame_bottom) / 2, tag, size=16, bold=True, color="#222222",
             align="right" if n_side == "left" else "left", baseline="middle")
    c.s.region(tx - (30 if n_side == "left" else 0), (frame_top + frame_bottom) / 2 - 12, 30, 24, "block",
               tooltip="the layer is repeated N = %s times" % (n_layers if n_layers > 0 else "N"))
    geo["frame"] = (frame_top, frame_bottom)
    geo["top_out"] = (cx, prev_top)
    y = frame_bottom
    # positional encoding ⊕ and embedding
    y += 18
    c.plus_circle(cx, y)
    c.s.region(cx - 9, y - 9, 18, 18, "block", tooltip="+ position embedding (step 2)", action=_steps(2))
    pe_x = x - 2 if n_side == "left" else x + w + 2
    words = ["pos."] if c.compact else ["Positional", "Encoding"]
    for k, word in enumerate(words):
        c.label(pe_x, y + k * (c.size + 2), word, align="right" if n_side == "left" else "left", size=c.size - 1)
    c.arrow([(cx, y - 8), (cx, frame_bottom)])
    y += 8
    y = _column(c, x, y, w, below, gap, bh)
    c.arrow([(cx, y + gap), (cx, y)])
    y += gap
    c.label(cx, y + 8, inputs, italic=True)
    c.s.region(x, y, w, 16, "block", tooltip="the tokens (step 1)", action=_steps(1))
    geo["height"] = y + 18 - y0
    return geo


def _encoder(c: Canvas, x, y, w, n_layers, current=True):
    return _stack(c, x, y, w, ["norm", "ffn", "norm", "mha"], n_layers, ["embed"], [], "Inputs",
                  "contextual vectors", "left", current)


def _decoder(c: Canvas, x, y, w, n_layers, cross: bool, current=False):
    layer = ["norm", "ffn", "norm", "cross", "norm", "masked"] if cross else ["norm", "ffn", "norm", "masked"]
    return _stack(c, x, y, w, layer, n_layers, ["out_embed"], ["softmax", "linear"], "Outputs (shifted right)",
                  "Output Probabilities", "right", current)


def _inside_mha(c: Canvas, x: float, y: float, w: float) -> float:
    """Paper Figure 2 (right): V, K, Q -> Linear -> Scaled Dot-Product Attention (h) -> Concat -> Linear."""
    bh, gap = 34.0, 20.0
    cx = x + w / 2
    c.s.text(x, y + 12, "Inside multi-head attention", size=12, bold=True, color="#222222")
    y += 24
    c.arrow([(cx, y + 16), (cx, y)])
    c.block(x + 20, y + 16, w - 40, bh, "Linear  (W_O)", "linear", _steps(9), "Output projection W_O (step 9)")
    y += 16 + bh
    c.arrow([(cx, y + gap), (cx, y)])
    y += gap
    c.block(x + 20, y, w - 40, bh, "Concat", "op", _steps(8), "Concatenate the h head outputs (step 8)")
    y += bh
    c.arrow([(cx, y + gap + 8), (cx, y)])
    y += gap + 8
    c.block(x + 10, y, w - 30, bh + 8, "Scaled Dot-Product Attention", "attn", _steps(4),
            "softmax(Q Kᵀ / √d_k) V for every head in parallel (steps 4–7)", True, stacked=2)
    y += bh + 8
    lw = (w - 40) / 3.0
    for i, name in enumerate(("V", "K", "Q")):
        bx = x + 10 + i * (lw + 5)
        c.arrow([(bx + lw / 2, y + gap + 8), (bx + lw / 2, y)])
        c.block(bx, y + gap + 8, lw, bh, "Linear", "linear", _steps(3),
                "W_%s: the %s projection of every head (step 3)" % (name, {"V": "value", "K": "key", "Q": "query"}[name]),
                stacked=2)
        c.arrow([(bx + lw / 2, y + gap + 8 + bh + 18), (bx + lw / 2, y + gap + 8 + bh)])
        c.label(bx + lw / 2, y + gap + 8 + bh + 26, name, italic=True, color="#222222")
    return y + gap + 8 + bh + 34


def _inside_sdpa(c: Canvas, x: float, y: float, w: float, causal_only: bool = False) -> float:
    """Paper Figure 2 (left): MatMul -> Scale -> Mask (opt.) -> SoftMax -> MatMul."""
    bh, gap = 28.0, 14.0
    cx = x + w / 2
    c.s.text(x, y + 12, "Scaled dot-product attention", size=12, bold=True, color="#222222")
    y += 22
    items = [("MatMul  (weights × V)", "op", 7), ("SoftMax", "softmax", 6), ("Mask (causal)" if causal_only else "Mask (causal, opt.)", "op", 6),
             ("Scale  ÷ √d_k", "op", 5), ("MatMul  Q Kᵀ", "op", 4)]
    c.arrow([(cx, y + 12), (cx, y)])
    y += 12
    for i, (label, style, step) in enumerate(items):
        c.block(x + 20, y, w - 40, bh, label, style, _steps(step), "%s (step %d)" % (label, step))
        y += bh
        if i < len(items) - 1:
            c.arrow([(cx, y + gap), (cx, y)])
            y += gap
    for i, name in enumerate(("Q", "K")):
        bx = cx - 18 + 36 * i
        c.arrow([(bx, y + 16), (bx, y)])
        c.label(bx, y + 24, name, italic=True, color="#222222")
    vx = x + w - 12
    c.s.path([(vx, y + 16), (vx, y - bh * 5 - gap * 4 + bh / 2 - 0)], color=INK, width=1.2)
    c.arrow([(vx, y - bh * 5 - gap * 4 + bh / 2), (x + w - 20, y - bh * 5 - gap * 4 + bh / 2)])
    c.label(vx, y + 24, "V", italic=True, color="#222222")
    return y + 34


def render(ctx: ViewContext, width: float) -> Scene:
    width = max(float(width), 320.0)
    arch = ctx.arch if ctx.arch in ARCH_DIAGRAMS else "encoder"
    diagrams = ARCH_DIAGRAMS
    if ctx.is_decoder:      # a decoder's own diagram; the encoder one is not this model
        diagrams = tuple(d for d in ARCH_DIAGRAMS if d != "encoder")
        arch = "decoder" if arch == "encoder" else arch
    scene = Scene(width, 100, label="Architecture: %s diagram, multi-head attention highlighted" % ARCH_LABELS[arch])
    inner = width - 2 * MARGIN
    model = ctx.model_name or "this model"
    if ctx.is_decoder:
        what = ("a decoder-only causal Transformer (Llama: RMSNorm before each block, rotary positions, %d query "
                "heads sharing %d key/value heads, SwiGLU feed-forward): %d layers, d_model %d"
                % (ctx.n_heads, ctx.trace.kv_heads, ctx.n_layers, ctx.d_model) if ctx.model_arch == "llama" else
                "a decoder-only causal Transformer (GPT-2: LayerNorm before each block, learned positions): "
                "%d layers, each with %d heads (d_model %d)" % (ctx.n_layers, ctx.n_heads, ctx.d_model))
        sub = ("%s is %s. Highlighted: its masked multi-head attention (no cross-attention: there is no encoder). "
               "Click a block to see its step." % (model, what))
    else:
        sub = ("%s is an encoder: %d layers, each with %d attention heads (d_model %d). Highlighted: the "
               "multi-head attention blocks. Click a block to see its step."
               % (model, ctx.n_layers, ctx.n_heads, ctx.d_model))
    y = header(scene, MARGIN, MARGIN, inner, "Where attention sits in a Transformer", sub)
    bx = MARGIN
    for key in diagrams:
        label = ARCH_LABELS[key]
        bw = text_width(label, 12, bold=(key == arch)) + 24
        if bx + bw > MARGIN + inner:
            bx, y = MARGIN, y + 30
        bx += button(scene, bx, y, label, {"arch": key}, active=(key == arch)) + 8
    y += 38
    wide = width >= 760
    size = 12.0 if width >= 560 else 10.5
    c = Canvas(scene, size)
    narrow = width < 560
    if arch == "transformer":
        col_w = min(230.0, (inner - (110 if narrow else 280)) / 2)
    else:
        col_w = min(240.0, inner - (100 if narrow else 150))
    top = y
    if arch == "encoder":
        ex = MARGIN + (60.0 if narrow else 120.0)
        geo = _encoder(c, ex, y, col_w, ctx.n_layers)
        diag_right, diag_h = ex + col_w + 40, geo["height"]
    elif arch == "decoder":
        geo = _decoder(c, MARGIN + 20, y, col_w, ctx.n_layers, cross=False, current=ctx.is_decoder)
        diag_right, diag_h = MARGIN + 20 + col_w + 120, geo["height"]
    else:
        gap = 46.0 if narrow else 100.0
        ex = MARGIN + (34.0 if narrow else 90.0)
        dx = ex + col_w + gap
        dgeo = _decoder(c, dx, y, col_w, ctx.n_layers, cross=True)
        eoff = dgeo["frame"][1] - 0  # align the two N× frames at their bottoms
        egeo_probe = Scene(10, 10)
        probe = _encoder(Canvas(egeo_probe, size), 0, 0, col_w, ctx.n_layers)
        ey = y + eoff - probe["frame"][1]
        egeo = _encoder(c, ex, ey, col_w, ctx.n_layers)
        # encoder output -> decoder cross-attention (keys and values)
        ox, oy = egeo["top_out"]
        kx, ky, kw, kh = dgeo["cross"]
        mid = ex + col_w + gap / 2
        c.s.path([(ox, egeo["frame"][0]), (ox, egeo["frame"][0] - 10), (mid, egeo["frame"][0] - 10),
                  (mid, ky + kh + 10)], color=INK, width=1.4)
        c.s.line(mid, ky + kh + 10, kx + kw * 0.3, ky + kh + 10, color=INK, width=1.4)
        for fx in (0.12, 0.3):  # keys and values come from the encoder
            c.arrow([(kx + kw * fx, ky + kh + 10), (kx + kw * fx, ky + kh)], width=1.2)
        c.s.region(mid - 6, min(egeo["frame"][0] - 10, ky + kh + 10), 12,
                   abs(ky + kh + 10 - egeo["frame"][0] + 10) + 1, "block",
                   tooltip="encoder output: keys and values of the decoder's cross-attention")
        diag_right = dx + col_w + (30 if narrow else 90)
        diag_h = max(dgeo["height"], ey - y + egeo["height"])
    if wide and diag_right + 240 <= MARGIN + inner:
        ix, iy = diag_right + 20, top
    else:
        ix, iy = MARGIN + 10, top + diag_h + 24
    iw = min(260.0, MARGIN + inner - ix)
    h1 = _inside_mha(c, ix, iy, iw)
    if wide and ix + iw + 20 + 220 <= MARGIN + inner:
        h2 = _inside_sdpa(c, ix + iw + 30, iy, min(240.0, MARGIN + inner - ix - iw - 30), ctx.is_decoder) - iy
        bottom = max(top + diag_h, iy + max(h1 - iy, h2))
    else:
        h2 = _inside_sdpa(c, ix, h1 + 16, iw, ctx.is_decoder)
        bottom = max(top + diag_h, h2)
    scene.height = bottom + MARGIN
    scene.alt_text = ("%s diagram. A Transformer layer: multi-head attention, add & norm, feed-forward, add & norm, "
                      "repeated %d times. Inside multi-head attention: linear projections of Q, K and V, "
                      "scaled dot-product attention per head, concatenation, and an output linear layer."
                      % (ARCH_LABELS[arch], ctx.n_layers))
    return scene
