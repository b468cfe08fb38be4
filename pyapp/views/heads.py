"""Heads tab: every head's heatmap side by side; the selected head (ctx.head) enlarged with labels.

Clicking a small heatmap selects it: action {"head": h}. Cells / row labels of the enlarged head pin rows.
"""

from __future__ import annotations

from ..app.context import ViewContext
from ..draw.heatmap import alt_text, draw_heatmap, draw_thumbnails
from ..draw.scene import Scene, header

TITLE = "Heads"
MARGIN = 12.0


def render(ctx: ViewContext, width: float) -> Scene:
    width = max(float(width), 320.0)
    h = ctx.head_index
    scene = Scene(width, 100, label="Heads: %d attention heads of layer %d, head %d enlarged"
                  % (ctx.n_heads, ctx.layer, h))
    inner = width - 2 * MARGIN
    y = header(scene, MARGIN, MARGIN, inner, "All %d heads · layer %d" % (ctx.n_heads, ctx.layer),
               ctx.describe() + ". Each small map is scaled to its own maximum; click one to enlarge it.")
    mask = ctx.causal_mask()
    wide = width >= 1000
    grid_w = inner * 0.42 if wide else inner
    th = draw_thumbnails(scene, MARGIN, y, grid_w, ctx.trace.probs, h, lambda k: {"head": k}, mask=mask,
                         layer=ctx.layer, min_size=84.0 if wide else 72.0, max_size=150.0)
    if wide:
        ex, ey, ew = MARGIN + grid_w + 24, y, inner - grid_w - 24
    else:
        ex, ey, ew = MARGIN, y + th + 24, inner
    probs = ctx.trace.probs[h]  # (n, n)
    lay = draw_heatmap(scene, ex, ey, ew, probs, ctx.tokens, ctx.tokens, mask=mask, pinned_row=ctx.pinned_row,
                       layer=ctx.layer, head=h, title="Head %d (enlarged)" % h,
                       max_grid=min(600.0, max(200.0, 44.0 * ctx.n)))
    scene.height = max(y + th, ey + lay.height) + MARGIN
    scene.alt_text = alt_text(probs, ctx.tokens, ctx.tokens, 3,
                              "Head %d of layer %d. Each query token's top 3 keys:" % (h, ctx.layer))
    return scene
