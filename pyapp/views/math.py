"""Mathematics tab: the formulas of multi-head attention typeset on the canvas (mathtext.py), then the
same formulas with the real numbers of the selected head: Q, K, V, scaled scores, weights, the head's
output and the layer's output, wide matrices truncated with ⋯ ⋮ ⋱, and the dimensions at every step.
"""

from __future__ import annotations

import math
from typing import List, Optional

from ..app.context import ViewContext
from ..draw.mathtext import (
    Box,
    Bracket,
    Frac,
    Matrix,
    Row,
    Scripts,
    Space,
    Sqrt,
    Text,
    cols_that_fit,
    draw,
    fmt_number,
    label_column,
    matrix_of,
    op,
    var,
)
from ..draw.scene import Scene, header, notice, text_width

TITLE = "Mathematics"
MARGIN = 12.0


def _real(size: float, a: int, b: int) -> Box:
    """ℝ^{a×b}"""
    return var("ℝ", size, sup="%d×%d" % (a, b))


def _symbol(name: str, size: float) -> Box:
    """"d_model" -> d with an upright subscript "model"; "hd_k" -> h d_k; "h" -> h (italic)."""
    head, _, sub = name.partition("_")
    base = Row([Text(c, size, italic=True) for c in head])
    return Scripts(base, sub=Text(sub, size * 0.72, italic=len(sub) == 1), size=size) if sub else base


def _symbolic_dims(size: float, a: str, b: str) -> Box:
    """ℝ^{a×b} with a, b written as symbols (d_model × d_k)."""
    small = size * 0.7
    return Scripts(Text("ℝ", size), sup=Row([_symbol(a, small), Text("×", small), _symbol(b, small)]), size=size)


def attention_formula(s: float) -> Box:
    """Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V"""
    qk = Row([var("Q", s), var("K", s, sup="T")])
    frac = Frac(qk, Sqrt(var("d", s, sub="k", sub_italic=True), s), s)
    return Row([Text("Attention", s), Text("(", s), var("Q", s), Text(", ", s), var("K", s), Text(", ", s),
                var("V", s), Text(")", s), op("=", s), Text("softmax", s), Bracket(Row([Space(0.12 * s), frac, Space(0.12 * s)]), s, "(", ")"),
                var("V", s)])


def head_formula(s: float) -> Box:
    return Row([var("head", s, sub="i", sub_italic=True), op("=", s), Text("Attention", s), Text("(", s),
                var("X", s), var("W", s, sub="i", sup="Q", sub_italic=True), Text(", ", s),
                var("X", s), var("W", s, sub="i", sup="K", sub_italic=True), Text(", ", s),
                var("X", s), var("W", s, sub="i", sup="V", sub_italic=True), Text(")", s)])


def multihead_formula(s: float) -> Box:
    return Row([Text("MultiHead", s), Text("(", s), var("X", s), Text(")", s), op("=", s), Text("Concat", s),
                Text("(", s), var("head", s, sub="1"), Text(", …, ", s), var("head", s, sub="h", sub_italic=True),
                Text(")", s), var("W", s, sup="O")])


def gqa_formula(s: float, H: int, G: int) -> Box:
    """head_h reads K, V of group g = ⌊h / (H/G)⌋"""
    return Row([var("head", s, sub="h", sub_italic=True), op("=", s), Text("Attention", s), Text("(", s),
                var("Q", s, sub="h", sub_italic=True), Text(", ", s), var("K", s, sub="g", sub_italic=True),
                Text(", ", s), var("V", s, sub="g", sub_italic=True), Text(")", s), Text(",", s), Space(0.6 * s),
                _symbol("g", s), op("=", s), Text("⌊", s), _symbol("h", s), Text(" / %d⌋" % (H // G), s),
                Space(0.4 * s), Text("(%d query heads, %d K/V heads)" % (H, G), s * 0.8)])


def rope_formula(s: float) -> Box:
    """[q'_i; q'_(i+d/2)] = [[cos mθ_i, −sin mθ_i], [sin mθ_i, cos mθ_i]] [q_i; q_(i+d/2)],  θ_i = base^(−2i/d_k)"""
    z = s * 0.8
    rot = Matrix([[Text("cos mθ", z, italic=True), Text("−sin mθ", z, italic=True)],
                  [Text("sin mθ", z, italic=True), Text("cos mθ", z, italic=True)]], s, col_gap=0.6 * s,
                 row_gap=0.25 * s)
    lhs = Matrix([[var("q′", z, sub="i", sub_italic=True)], [var("q′", z, sub="i+d/2")]], s, row_gap=0.25 * s)
    rhs = Matrix([[var("q", z, sub="i", sub_italic=True)], [var("q", z, sub="i+d/2")]], s, row_gap=0.25 * s)
    return Row([lhs, op("=", s), rot, rhs])


def rope_lines(ctx, s: float, ms: float) -> List[Box]:
    """The rotation of pair 0 and of the slowest pair for the query token, with its numbers."""
    tr, h = ctx.trace, ctx.head_index
    m = ctx.query_index()
    theta = float(getattr(ctx.weights, "rope_theta", 0.0) or 0.0)
    half = ctx.d_k // 2
    out = []
    for i in (0, half - 1):
        freq = theta ** (-2.0 * i / ctx.d_k)
        a = m * freq
        before = tr.q_unrotated[h, m, [i, i + half]]
        after = tr.q[h, m, [i, i + half]]
        rot = Matrix([[Text(fmt_number(math.cos(a), 3), ms), Text(fmt_number(-math.sin(a), 3), ms)],
                      [Text(fmt_number(math.sin(a), 3), ms), Text(fmt_number(math.cos(a), 3), ms)]], ms,
                     col_gap=0.6 * ms, row_gap=0.25 * ms)
        out.append(Row([Text("pair %d, '%s' (m = %d): θ = %s, mθ = %.4g" % (i, ctx.tokens[m], m, "%.3g" % freq, a),
                             ms, font="sans"), Space(ms), matrix_of(after[:, None], ms), op("=", s), rot,
                        matrix_of(before[:, None], ms)]))
    return out


def _fit(build, size: float, width: float, min_size: float = 9.0) -> Box:
    """Build at `size`, shrinking until the box fits `width`."""
    box = build(size)
    if box.w > width:
        box = build(max(min_size, size * width / box.w * 0.98))
    return box


def _numbers_line(lhs: Box, matrix, labels: Optional[List[str]], dims: Box, s: float, ms: float,
                  width: float, max_rows: int) -> List[Box]:
    """[labels] lhs = [matrix] ∈ ℝ^{a×b}, split over two lines when too wide."""
    used = lhs.w + text_width("=", s) + 0.5 * s + dims.w + 40
    lab = None
    if labels is not None:
        lab = label_column(labels, matrix.shape[0], ms * 0.9, max_rows, ms)
        used += lab.w + 6
    cols = cols_that_fit(width - used, ms)
    mat = matrix_of(matrix, ms, max_rows=max_rows, max_cols=cols)
    parts = [lhs, op("=", s)] + ([lab, Space(4)] if lab is not None else []) + [mat]
    row = Row(parts + [Space(0.6 * s), op("∈", s), dims])
    if row.w <= width:
        return [row]
    return [Row(parts), Row([Space(lhs.w), op("∈", s), dims])]


def render(ctx: ViewContext, width: float) -> Scene:
    width = max(float(width), 320.0)
    h, n, dk, dm, H = ctx.head_index, ctx.n, ctx.d_k, ctx.d_model, ctx.n_heads
    tr = ctx.trace
    scene = Scene(width, 100, label="Mathematics of multi-head attention with the numbers of head %d, layer %d"
                  % (h, ctx.layer))
    inner = width - 2 * MARGIN
    s = 20.0 if width >= 700 else 15.0
    ms = 13.0 if width >= 700 else 10.5
    y = header(scene, MARGIN, MARGIN, inner, "The mathematics",
               "The formulas of the paper, then the same formulas with the numbers of head %d, layer %d. "
               "Matrices show their first and last rows and columns." % (h, ctx.layer))

    def section(title: str):
        nonlocal y
        y += 6
        scene.text(MARGIN, y + 14, title, size=14, bold=True, color="#0b4f9c", max_width=inner)
        scene.line(MARGIN, y + 20, MARGIN + inner, y + 20, color="#dde3ea")
        y += 30

    def put(box: Box, indent: float = 10.0, tooltip: str = ""):
        nonlocal y
        hh = draw(scene, box, MARGIN + indent, y)
        if tooltip:
            scene.region(MARGIN + indent, y, box.w, hh, "formula", tooltip=tooltip)
        y += hh + 14

    def note(text: str):
        nonlocal y
        scene.text(MARGIN + 10, y + 12, text, size=12, color="#555555", max_width=inner - 10)
        y += 22

    section("Scaled dot-product attention")
    put(_fit(attention_formula, s, inner - 10))
    note("√d_k = √%d = %.3f ;  softmax normalises each row;  T = %g%s" % (
        dk, math.sqrt(dk), ctx.temperature, " (divides the scaled scores)" if abs(ctx.temperature - 1) > 1e-9
        else ""))
    section("Each head projects the same input")
    put(_fit(head_formula, s, inner - 10))
    put(_fit(lambda z: Row([var("W", z, sub="i", sup="Q", sub_italic=True), Text(", ", z),
                            var("W", z, sub="i", sup="K", sub_italic=True), Text(", ", z),
                            var("W", z, sub="i", sup="V", sub_italic=True), op("∈", z),
                            _symbolic_dims(z, "d_model", "d_k"), op("=", z), _real(z, dm, dk)]), s * 0.85,
             inner - 10))
    if ctx.trace.kv_heads != H:
        G = ctx.trace.kv_heads
        section("Grouped-query attention: %d query heads share %d key/value heads" % (H, G))
        put(_fit(lambda z: gqa_formula(z, H, G), s * 0.85, inner - 10))
        note("W_K, W_V ∈ ℝ^(d_model × G·d_k) = %d × %d (not %d × %d): head %d reads K_%d and V_%d"
             % (dm, G * dk, dm, H * dk, h, ctx.trace.kv_head(h), ctx.trace.kv_head(h)))
    if ctx.rope:
        theta = float(getattr(ctx.weights, "rope_theta", 0.0) or 0.0)
        section("Rotary positions (RoPE): Q and K of token m turned by m·θ_i")
        put(_fit(rope_formula, s, inner - 10))
        note("θ_i = %g^(−2i/%d) for the %d coordinate pairs (i, i + %d);  q′_m · k′_n depends on m − n only"
             % (theta, dk, dk // 2, dk // 2))
        for box in rope_lines(ctx, s, ms):
            put(_fit(lambda z, b=box: b, s, inner - 10), tooltip="Q of head %d before and after the rotation" % h)
    section("Heads are concatenated and projected")
    put(_fit(multihead_formula, s, inner - 10))
    put(_fit(lambda z: Row([var("W", z, sup="O"), op("∈", z), _symbolic_dims(z, "hd_k", "d_model"), op("=", z),
                            _real(z, H * dk, dm), Text(",", z), Space(z), _symbol("h", z), op("=", z),
                            Text(str(H), z), Text(",", z), Space(0.6 * z), _symbol("d_k", z), op("=", z),
                            Text(str(dk), z)]), s * 0.85,
             inner - 10))

    section("With the numbers: head %d, layer %d, %d tokens" % (h, ctx.layer, n))
    max_rows = 6 if n > 6 else n
    labels = ctx.tokens
    for box in _numbers_line(var("X", s), tr.x, labels, _real(s * 0.8, n, dm), s, ms, inner - 10, max_rows):
        put(box, tooltip="X: the layer input, %d × %d" % (n, dm))
    q_weight = getattr(ctx.weights, "q_weight", None)
    if q_weight is not None:
        w_qh = q_weight[h * dk:(h + 1) * dk].T  # (d_model, d_k): head h's columns of X W_Q
        for box in _numbers_line(var("W", s, sub="%d" % h, sup="Q"), w_qh, None, _real(s * 0.8, dm, dk), s, ms,
                                 inner - 10, max_rows):
            put(box, tooltip="W_Q of head %d: %d × %d (nn.Linear rows %d..%d, transposed)"
                % (h, dm, dk, h * dk, (h + 1) * dk - 1))
    lines = [
        ("Q", tr.q[h], "Q_%d = X W_Q,%d%s" % (h, h, ctx.bias("Q", str(h))), (n, dk)),
        ("K", tr.k[h], "K_%d = X W_K,%d%s" % (h, h, ctx.bias("K", str(h))), (n, dk)),
    ]
    for letter, m, tip, shp in lines:
        for box in _numbers_line(var(letter, s, sub=str(h)), m, labels, _real(s * 0.8, *shp), s, ms,
                                 inner - 10, max_rows):
            put(box, tooltip="%s: %d × %d" % (tip, shp[0], shp[1]))
    if tr.v is not None:
        for box in _numbers_line(var("V", s, sub=str(h)), tr.v[h], labels, _real(s * 0.8, n, dk),
                                 s, ms, inner - 10, max_rows):
            put(box, tooltip="V_%d = X W_V,%d%s: %d × %d" % (h, h, ctx.bias("V", str(h)), n, dk))
    else:
        notice(scene, MARGIN + 10, y, min(inner - 10, 360), 40, ctx.loading_message())
        y += 54
    scaled_lhs = Frac(Row([var("Q", s, sub=str(h)), var("K", s, sub=str(h), sup="T")]),
                      Sqrt(Text(str(dk), s), s), s)
    for box in _numbers_line(scaled_lhs, tr.scaled[h], labels, _real(s * 0.8, n, n), s, ms, inner - 10, max_rows):
        put(box, tooltip="scaled scores: %d × %d" % (n, n))
    a_lhs = Row([var("A", s, sub=str(h)), op("=", s), Text("softmax", s), Text("(", s), Text("…", s),
                 Text(")", s)])
    for box in _numbers_line(a_lhs, tr.probs[h], labels, _real(s * 0.8, n, n), s, ms, inner - 10, max_rows):
        put(box, tooltip="attention weights: %d × %d, rows sum to 1" % (n, n))
    note("Each row of A_%d sums to 1 (row 0: %.6f)." % (h, float(tr.probs[h][0].sum())))
    if tr.head_outputs is not None:
        lhs = Row([var("head", s, sub="%d" % h), op("=", s), var("A", s, sub=str(h)), var("V", s, sub=str(h))])
        for box in _numbers_line(lhs, tr.head_outputs[h], labels, _real(s * 0.8, n, dk), s, ms, inner - 10,
                                 max_rows):
            put(box, tooltip="head output: %d × %d" % (n, dk))
    if tr.output is not None:
        lhs = Row([Text("MultiHead", s), Text("(", s), var("X", s), Text(")", s)])
        for box in _numbers_line(lhs, tr.output, labels, _real(s * 0.8, n, dm), s, ms, inner - 10, max_rows):
            put(box, tooltip="layer output: %d × %d" % (n, dm))
    elif tr.v is not None or tr.head_outputs is None:
        notice(scene, MARGIN + 10, y, min(inner - 10, 360), 40, ctx.loading_message())
        y += 54
    scene.height = y + MARGIN
    scene.alt_text = ("Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V; head_i = Attention(X W_i^Q, X W_i^K, "
                      "X W_i^V); MultiHead(X) = Concat(head_1..head_h) W^O. Head %d of layer %d: Q, K, V are "
                      "%d × %d, the weights %d × %d." % (h, ctx.layer, n, dk, n, n))
    return scene
