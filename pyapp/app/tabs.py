"""The tab registry: every tab of the page in one table. Pure Python.

One row per tab: its id (its view module is ``pyapp.views.<id>``), its title in the tab bar, whether its
view reads every layer's attention (``all_layers``: the session then fills ``ctx.attentions``, the page one
layer per frame), whether it shows V, head outputs and W_O (``values``: the session asks for the V/O file
after the first draw), how its shown matrix is made (``shown``: what the entropy readout averages over) and
its number of steps (``steps``: at most; a model's own steps come from ``app/stepping.py``: the step bar,
arrow keys and ``step:K`` figures) and whether it shows next-token prediction (``next_token``: the session
then fetches a decoder's LM head after the first draw).

Everything else derives from ``TAB_LIST``: ``TABS``, ``TAB_VIEWS``, ``VALUE_TABS``, ``N_STEPS``,
``shown_matrix``, the figure names of ``pyapp.figures`` and the page's tab bar (``tab_bar_html``; a test
checks that web/index.html holds exactly it, and ``scripts/sync_pyscript_files.py`` rewrites it). A new tab
is one view module plus one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple

import numpy as np

from ..core.analysis import row_entropy
from .context import ViewContext
from .stepping import MAX_STEPS

Shown = Callable[[ViewContext], Tuple[np.ndarray, str]]


# ---- how a tab's shown matrix is made: (matrix whose rows the entropy readout averages, its description) ----
def one_head(ctx: ViewContext) -> Tuple[np.ndarray, str]:
    """The selected head's (n, n) attention."""
    return ctx.trace.probs[ctx.head_index], "head %d" % ctx.head_index


def mean_of_heads(ctx: ViewContext) -> Tuple[np.ndarray, str]:
    """The head-averaged (n, n) attention of the shown layer."""
    return ctx.average_probs(), "mean of %d heads" % ctx.n_heads


def ticked_heads(ctx: ViewContext) -> Tuple[np.ndarray, str]:
    """The mean of the head view's ticked heads (every head when none or all are ticked)."""
    shown = ctx.heads_shown
    if shown and len(shown) < ctx.n_heads:
        heads = sorted(int(h) for h in shown)
        return ctx.trace.probs[heads].mean(axis=0), "mean of head%s %s" % (
            "s" if len(heads) > 1 else "", ", ".join(map(str, heads)))
    return mean_of_heads(ctx)


def query_row(ctx: ViewContext) -> Tuple[np.ndarray, str]:
    """The (1, n) attention row of the chosen query token in the selected head."""
    i = ctx.query_index()
    h = ctx.head_index
    return ctx.trace.probs[h, i:i + 1], "head %d, query '%s'" % (h, ctx.tokens[i])


def rollout_matrix(ctx: ViewContext) -> np.ndarray:
    """(n, n) attention rollout through the layers 0..k-1 known without a gap (k >= 1: the shown layer), from
    their digests' head averages (``ViewContext.rollout``: computed once per context)."""
    return ctx.rollout()


def rollout_of_layers(ctx: ViewContext) -> Tuple[np.ndarray, str]:
    k = ctx.contiguous_layers()
    if k:
        return rollout_matrix(ctx), "rollout of layers 0–%d" % (k - 1)
    return mean_of_heads(ctx)


# ---- the registry -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tab:
    id: str                     # URL value, element id "tab-<id>", view module pyapp.views.<id>
    title: str                  # the tab bar's label
    shown: Shown = one_head     # the matrix the readout describes
    all_layers: bool = False    # the view reads every layer's attention (ctx.attentions)
    values: bool = False        # the view shows V, head outputs, W_O (fetched after the first draw)
    steps: int = 0              # steps of a stepped view (1..steps), 0 if none
    figure: str = ""            # its name for pyapp.figure (default: the id)
    next_token: bool = False    # the view shows next-token prediction (decoders: the LM head, fetched on opening)

    @property
    def module(self) -> str:
        return "pyapp.views." + self.id

    @property
    def figure_name(self) -> str:
        return self.figure or self.id

    def view(self):
        """The view module (``render(ctx, width) -> Scene``), imported on first use."""
        return importlib.import_module(self.module)


TAB_LIST: Tuple[Tab, ...] = (
    Tab("overview", "Overview", mean_of_heads),
    Tab("steps", "Steps", one_head, values=True, steps=MAX_STEPS, figure="step"),
    Tab("heads", "Heads", one_head),
    Tab("math", "Math", one_head, values=True),
    Tab("architecture", "Architecture", one_head, values=True),
    Tab("model", "Model", mean_of_heads, all_layers=True),
    Tab("lines", "Head lines", ticked_heads),
    Tab("neuron", "Neuron", query_row),
    Tab("rollout", "Rollout", rollout_of_layers, all_layers=True),
    Tab("stats", "Head stats", mean_of_heads, all_layers=True),
    Tab("next", "Next token", mean_of_heads, next_token=True),
)

TAB: Dict[str, Tab] = {t.id: t for t in TAB_LIST}
TABS: Tuple[str, ...] = tuple(TAB)
DEFAULT_TAB = TABS[0]
TAB_VIEWS: Dict[str, str] = {t.id: t.module.rsplit(".", 1)[1] for t in TAB_LIST}   # tab -> pyapp.views module
VALUE_TABS: Tuple[str, ...] = tuple(t.id for t in TAB_LIST if t.values)
N_STEPS = TAB["steps"].steps
FIGURES: Dict[str, Tab] = {t.figure_name: t for t in TAB_LIST}


def tab(tab_id: str) -> Tab:
    """The registry row of ``tab_id`` (the first tab for an unknown id)."""
    return TAB.get(tab_id, TAB_LIST[0])


def shown_matrix(ctx: ViewContext, tab_id: str) -> Tuple[np.ndarray, str]:
    """The attention matrix the view of ``tab_id`` is about, and its description."""
    return tab(tab_id).shown(ctx)


def row_entropy_bits(probs: np.ndarray) -> float:
    """Mean over query rows of the Shannon entropy (bits) of an (n, n) attention matrix (0 log 0 = 0)."""
    h = row_entropy(probs)  # (n,)
    return float(h.mean()) if h.size else 0.0


def tab_bar_html(indent: str = "      ") -> str:
    """The page's tab buttons (web/index.html holds exactly these lines): usable before Python starts."""
    lines: List[str] = []
    for i, t in enumerate(TAB_LIST):
        first = i == 0
        lines.append('%s<button role="tab" id="tab-%s" data-tab="%s" aria-selected="%s" aria-controls="stage"%s>%s'
                     '</button>\n' % (indent, t.id, t.id, "true" if first else "false",
                                      "" if first else ' tabindex="-1"', t.title))
    return "".join(lines)
