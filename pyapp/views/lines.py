"""Head view (after BertViz): the sentence twice, queries on the left and keys on the right, joined by one
line per (query, key, head) whose opacity is the attention weight and whose colour is the head's.

State read from the context (the shell keeps these fields and applies the actions below):

* ``heads_shown``: list of head indices drawn (None, the default: every head)
* ``hover_token``: index of the token under the pointer, or None (default) for every line
* ``hover_side``:  "left" (the token as a query: only its outgoing lines) or "right" (as a key: only the
                 lines that reach it)

Hit regions:

* "head_toggle" (one per head checkbox, plus the "all" / "none" buttons): action {"heads_shown": [...]}
  with the new list; tooltip says what a click does.
* "head_token" (one per token, each side): data hover={"hover_token": i, "hover_side": side} to apply
  while the pointer is over it (and {"hover_token": None} when it leaves every token), action = the same
  change (click pins it; a click on the pinned token clears it: {"hover_token": None}).

Line opacity is exactly the weight (alpha = p[h, i, j]); lines below MIN_WEIGHT are not drawn (they would be
invisible), and at most MAX_LINES, the strongest, are (a note says so). Causally masked pairs have weight 0
and so no line.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from ..app.context import HOVER_SIDES, ViewContext
from ..draw.heatmap import short_label
from ..draw.scene import Scene, button, header, text_width

TITLE = "Head view"
MARGIN = 12.0
MIN_WEIGHT = 0.01
MAX_LINES = 4000  # beyond this (long texts, many heads) only the strongest lines are drawn
LINE_WIDTH = 2.0
HOVER_FILL = "#fff2b3"
# one colour per head (categorical, distinguishable; cycles beyond 12 heads)
HEAD_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf", "#393b79", "#ad494a")


def head_color(h: int) -> str:
    return HEAD_COLORS[h % len(HEAD_COLORS)]


def heads_shown(ctx: ViewContext) -> List[int]:
    """The heads to draw: ctx.heads_shown filtered to valid heads, or all heads when absent."""
    raw = ctx.heads_shown
    if raw is None:
        return list(range(ctx.n_heads))
    out = []
    for h in raw:
        try:
            h = int(h)
        except (TypeError, ValueError):
            continue
        if 0 <= h < ctx.n_heads and h not in out:
            out.append(h)
    return sorted(out)


def hover(ctx: ViewContext):
    """(token index or None, side) of the hovered / pinned token."""
    i = ctx.hover_token
    side = ctx.hover_side if ctx.hover_side in HOVER_SIDES else "left"
    try:
        i = None if i is None else int(i)
    except (TypeError, ValueError):
        i = None
    if i is not None and not 0 <= i < ctx.n:
        i = None
    return i, side


def visible_lines(probs: np.ndarray, heads: Sequence[int], token: Optional[int], side: str):
    """(head, query i, key j, weight) of every line to draw, in drawing order: weakest first, so the
    strongest lines of any head end up on top (ties: head, then query, then key order)."""
    heads = [int(h) for h in heads]
    if not heads:
        return []
    sel = np.array(probs[heads], dtype=np.float64)  # (shown heads, n, n)
    if token is not None:
        keep = np.zeros(sel.shape[1:], dtype=bool)  # (n, n)
        if side == "left":
            keep[token, :] = True
        else:
            keep[:, token] = True
        sel = np.where(keep[None], sel, 0.0)
    hh, ii, jj = np.nonzero(sel >= MIN_WEIGHT)
    w = sel[hh, ii, jj]
    order = np.argsort(w, kind="mergesort")
    return [(heads[int(hh[o])], int(ii[o]), int(jj[o]), float(w[o])) for o in order]


def render(ctx: ViewContext, width: float) -> Scene:
    width = max(float(width), 320.0)
    n, n_heads = ctx.n, ctx.n_heads
    probs = np.asarray(ctx.trace.probs)  # (heads, n, n)
    heads = heads_shown(ctx)
    token, side = hover(ctx)
    scene = Scene(width, 100, label="Head view: attention lines of layer %d, %d of %d heads shown"
                  % (ctx.layer, len(heads), n_heads))
    inner = width - 2 * MARGIN
    y = header(scene, MARGIN, MARGIN, inner, "Head view · layer %d" % ctx.layer,
               ctx.describe() + ". Left: each token as a query; right: the keys it attends to. A line's "
               "opacity is the weight, its colour the head. Hover a token to see only its lines; tick heads "
               "to compare them.")
    y = _head_checkboxes(scene, MARGIN, y, inner, n_heads, heads)

    font = 13.0 if n <= 40 else 11.0
    rh = max(14.0, min(22.0, 480.0 / max(n, 1)))
    labels = [short_label(t, 16) for t in ctx.tokens]
    tw = max(text_width(s, font) for s in labels) + 8
    gap = max(120.0, min(360.0, inner - 2 * tw - 40 - 12 * len(heads)))
    total = 2 * tw + gap
    xl = MARGIN + max((inner - total) / 2.0, 0.0) + tw  # right edge of the query column
    xr = xl + gap  # left edge of the key column
    top = y + 22
    scene.text(xl - tw / 2, y + 12, "query", size=11, align="center", color="#777777", italic=True)
    scene.text(xr + tw / 2, y + 12, "key", size=11, align="center", color="#777777", italic=True)

    def ymid(i: int) -> float:
        return top + (i + 0.5) * rh

    # highlight of the hovered token, under the text
    if token is not None:
        hx = xl - tw if side == "left" else xr
        scene.rect(hx, ymid(token) - rh / 2 + 1, tw, rh - 2, fill=HOVER_FILL, radius=3)
    lines = visible_lines(probs, heads, token, side)
    dropped = max(len(lines) - MAX_LINES, 0)
    lines = lines[dropped:]  # weakest first: keep the strongest
    if dropped:
        scene.text(xl + gap / 2, y + 12, "showing the %d strongest of %d lines (hover a token for all of its own)"
                   % (MAX_LINES, MAX_LINES + dropped), size=10, align="center", color="#777777", italic=True,
                   max_width=gap - 8)
    for h, i, j, w in lines:
        scene.line(xl + 2, ymid(i), xr - 2, ymid(j), color=head_color(h), width=LINE_WIDTH, alpha=w)
    for i, s in enumerate(labels):
        dim = token is not None and ((side == "left" and i != token) or (side == "right" and i != token))
        scene.text(xl - 4, ymid(i), s, size=font, align="right", baseline="middle",
                   color="#999999" if (dim and side == "left") else "#222222",
                   bold=token == i and side == "left", max_width=tw - 6)
        scene.text(xr + 4, ymid(i), s, size=font, align="left", baseline="middle",
                   color="#999999" if (dim and side == "right") else "#222222",
                   bold=token == i and side == "right", max_width=tw - 6)
    # per-head weight swatches beside the other column while a token is hovered
    if token is not None and heads:
        _swatches(scene, probs, heads, token, side, xl, xr, tw, ymid, rh)
    for i in range(n):
        for sd, x0 in (("left", xl - tw), ("right", xr)):
            pinned = token == i and side == sd
            scene.region(x0, ymid(i) - rh / 2, tw, rh, "head_token",
                         hover={"hover_token": i, "hover_side": sd},
                         action={"hover_token": None} if pinned else {"hover_token": i, "hover_side": sd},
                         tooltip="'%s' (%d) as a %s: %s" % (ctx.tokens[i], i, "query" if sd == "left" else "key",
                                                             "click to unpin" if pinned else
                                                             "hover to see only its lines, click to pin"))
    scene.height = top + n * rh + 16 + MARGIN
    scene.alt_text = _alt(ctx, probs, heads)
    return scene


def _head_checkboxes(scene: Scene, x: float, y: float, w: float, n_heads: int, heads: Sequence[int]) -> float:
    """A checkbox per head in its colour, then "all" / "none"; returns the y below."""
    scene.text(x, y + 14, "heads:", size=12, color="#444444")
    cx = x + text_width("heads:", 12) + 10
    row_y = y
    for h in range(n_heads):
        label = str(h)
        bw = 18 + text_width(label, 12) + 10
        if cx + bw > x + w:
            cx, row_y = x + text_width("heads:", 12) + 10, row_y + 24
        on = h in heads
        color = head_color(h)
        scene.rect(cx, row_y + 4, 14, 14, fill=color if on else "#ffffff", stroke=color, line_width=1.5, radius=2)
        if on:
            scene.path([(cx + 3, row_y + 11), (cx + 6, row_y + 14.5), (cx + 11.5, row_y + 7)], color="#ffffff",
                       width=2.0)
        scene.text(cx + 18, row_y + 15, label, size=12, color="#222222")
        new = sorted(set(heads) - {h}) if on else sorted(set(heads) | {h})
        scene.region(cx, row_y + 2, bw - 4, 18, "head_toggle", action={"heads_shown": new},
                     tooltip="%s head %d" % ("hide" if on else "show", h))
        cx += bw
    bx = cx + 6
    if bx + 110 > x + w:
        bx, row_y = x + text_width("heads:", 12) + 10, row_y + 24
    bw = button(scene, bx, row_y + 1, "all", {"heads_shown": list(range(n_heads))},
                active=len(heads) == n_heads, size=11, tooltip="show every head", kind="head_toggle")
    button(scene, bx + bw + 6, row_y + 1, "none", {"heads_shown": []}, active=not heads, size=11,
           tooltip="hide every head", kind="head_toggle")
    return row_y + 30


def _swatches(scene, probs, heads, token, side, xl, xr, tw, ymid, rh):
    """Small squares (one per shown head, alpha = weight) next to each token of the other column."""
    n = probs.shape[-1]
    size = min(10.0, rh - 6)
    single = len(heads) == 1
    for k in range(n):
        for m, h in enumerate(heads):
            w = float(probs[h, token, k] if side == "left" else probs[h, k, token])
            sx = (xr + tw + 4 + m * (size + 2)) if side == "left" else (xl - tw - 4 - (len(heads) - m) * (size + 2))
            scene.rect(sx, ymid(k) - size / 2, size, size, fill=head_color(h), alpha=max(min(w, 1.0), 0.0))
            scene.rect(sx, ymid(k) - size / 2, size, size, stroke="#d0d0d0", line_width=0.5)
        if single:
            w = float(probs[heads[0], token, k] if side == "left" else probs[heads[0], k, token])
            tx = (xr + tw + 4 + size + 6) if side == "left" else (xl - tw - 4 - size - 6)
            scene.text(tx, ymid(k), "%.2f" % w, size=10, baseline="middle", color="#444444",
                       align="left" if side == "left" else "right")


def _alt(ctx: ViewContext, probs: np.ndarray, heads: Sequence[int]) -> str:
    lines = ["Head view of layer %d. For each shown head, each query token's strongest key:" % ctx.layer]
    for h in heads:
        p = probs[h]
        best = ", ".join("%s→%s %.2f" % (ctx.tokens[i], ctx.tokens[int(np.argmax(p[i]))], float(p[i].max()))
                         for i in range(p.shape[0]))
        lines.append("head %d: %s" % (h, best))
    return "\n".join(lines)
