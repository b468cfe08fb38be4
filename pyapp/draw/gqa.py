"""Grouped-query attention drawn as it is: which query heads share which key/value head.

    query head h reads K and V of kv head  h // (n_heads / n_kv_heads)      (core.attention.kv_head_of)

One row of query-head boxes above one row of K/V-head boxes, a line from each query head to the K/V head
it reads; the selected head and its K/V head are highlighted.  Each box is a hit region (tooltip; a click
on a query head selects it: {"head": h}).  Without GQA (every head its own K/V) the picture says so.
"""

from __future__ import annotations

from ..core.attention import kv_head_of
from .scene import Scene, text_width, wrap_text

Q_COLOR = "#1f6feb"
KV_COLOR = "#d9822b"
DIM = "#c9ced6"


def draw_gqa(scene: Scene, x: float, y: float, width: float, n_heads: int, n_kv_heads: int, selected: int,
             d_k: int = 0) -> float:
    """Draw the grouping at (x, y) within ``width``; returns the height used."""
    kv = n_kv_heads or n_heads
    group = n_heads // kv
    gap = 6.0
    box = max(18.0, min(44.0, (width - 90.0 - gap * (n_heads - 1)) / max(n_heads, 1)))
    left = x + 84.0
    qy, ky = y + 4.0, y + 4.0 + box + 46.0
    scene.text(x, qy + box / 2, "queries Q", size=12, baseline="middle", color=Q_COLOR, bold=True)
    scene.text(x, ky + box / 2, "K and V", size=12, baseline="middle", color=KV_COLOR, bold=True,
               max_width=80.0)
    sel_kv = kv_head_of(selected, n_heads, kv)
    centres = [left + h * (box + gap) + box / 2 for h in range(n_heads)]
    for g in range(kv):  # each K/V head sits under the middle of its group of query heads
        members = centres[g * group:(g + 1) * group]
        cx = sum(members) / len(members)
        w = max(box, (members[-1] - members[0]) + box) if group > 1 else box
        on = g == sel_kv
        for mx in members:
            scene.line(mx, qy + box, cx, ky, color=KV_COLOR if on else DIM, width=2.0 if on else 1.2)
        scene.rect(cx - w / 2, ky, w, box, fill=KV_COLOR if on else "#fbe9d7", stroke=KV_COLOR, radius=4)
        scene.text(cx, ky + box / 2, "K%d V%d" % (g, g) if w >= text_width("K0 V0", 11) + 6 else str(g),
                   size=11, align="center", baseline="middle", color="#ffffff" if on else "#222222", bold=on)
        heads = list(range(g * group, (g + 1) * group))
        scene.region(cx - w / 2, ky, w, box, "gqa_kv",
                     tooltip="K/V head %d: read by query head%s %s" % (
                         g, "s" if len(heads) > 1 else "", ", ".join(map(str, heads))))
    for h, cx in enumerate(centres):
        on = h == selected
        scene.rect(cx - box / 2, qy, box, box, fill=Q_COLOR if on else "#e3ecfb", stroke=Q_COLOR, radius=4)
        scene.text(cx, qy + box / 2, "Q%d" % h if box >= text_width("Q8", 11) + 4 else str(h), size=11,
                   align="center", baseline="middle", color="#ffffff" if on else "#222222", bold=on)
        scene.region(cx - box / 2, qy, box, box, "gqa_head", action={"head": h},
                     tooltip="query head %d reads K/V head %d: click to show head %d"
                     % (h, kv_head_of(h, n_heads, kv), h))
    note = ("%d query heads share %d K/V heads (%d per group): K and V are computed once per group, so "
            "W_K and W_V are %d × d_model instead of %d × d_model" % (n_heads, kv, group, kv * d_k, n_heads * d_k)
            if group > 1 and d_k else
            "every head has its own K and V (no grouping)" if group == 1 else
            "%d query heads share %d K/V heads" % (n_heads, kv))
    ny = ky + box + 18
    for line in wrap_text(note, width, 11):
        scene.text(x, ny, line, size=11, color="#555555")
        ny += 15
    return ny + 6 - y
