"""Overview tab: the head-averaged attention of the current layer, plus one thumbnail per head.

Clicking a thumbnail selects that head and opens the Heads tab: action {"head": h, "tab": "heads"}.
Clicking a cell or a row label pins / unpins that query row (see interact.py).
"""

from __future__ import annotations

from ..app.context import ViewContext
from ..draw.heatmap import alt_text, draw_heatmap, draw_thumbnails, top_k
from ..draw.scene import Scene, header

TITLE = "Overview"
MARGIN = 12.0


def render(ctx: ViewContext, width: float) -> Scene:
    width = max(float(width), 320.0)
    scene = Scene(width, 100, label="Overview: mean attention of %d heads, layer %d" % (ctx.n_heads, ctx.layer))
    inner = width - 2 * MARGIN
    y = header(scene, MARGIN, MARGIN, inner, "Mean attention of all %d heads · layer %d" % (ctx.n_heads, ctx.layer),
               ctx.describe() + ". Rows: the query token; columns: the key it attends to. Click a row to pin it.")
    avg = ctx.average_probs()  # (n, n)  mean over heads
    mask = ctx.causal_mask()
    wide = width >= 900
    main_w = inner * 0.58 if wide else inner
    lay = draw_heatmap(scene, MARGIN, y, main_w, avg, ctx.tokens, ctx.tokens, mask=mask,
                       pinned_row=ctx.pinned_row, layer=ctx.layer, head=None,
                       max_grid=min(600.0, max(200.0, 44.0 * ctx.n)))
    bottom = y + lay.height
    if ctx.pinned_row is not None and 0 <= ctx.pinned_row < ctx.n:
        i = ctx.pinned_row
        tops = ", ".join("%s %.2f" % (ctx.tokens[j], avg[i, j]) for j in top_k(avg, i, 3))
        scene.text(MARGIN, bottom + 18, "Pinned: '%s' attends most to %s" % (ctx.tokens[i], tops), size=12,
                   color="#b0002a", max_width=main_w)
        bottom += 26
    if wide:
        tx, ty, tw = MARGIN + main_w + 24, y, inner - main_w - 24
    else:
        tx, ty, tw = MARGIN, bottom + 20, inner
    scene.text(tx, ty + 12, "Each head (click to open it in Heads)", size=12, bold=True, color="#333333")
    th = draw_thumbnails(scene, tx, ty + 22, tw, ctx.trace.probs, ctx.head_index,
                         lambda h: {"head": h, "tab": "heads"}, mask=mask, layer=ctx.layer,
                         min_size=70.0 if wide else 84.0, max_size=140.0)
    bottom = max(bottom, ty + 22 + th)
    scene.height = bottom + MARGIN
    scene.alt_text = alt_text(avg, ctx.tokens, ctx.tokens, 3,
                              "Mean attention of %d heads, layer %d. Each query token's top 3 keys:"
                              % (ctx.n_heads, ctx.layer))
    return scene
