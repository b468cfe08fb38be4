"""Every layer's attention for the research views (model grid, rollout, head statistics). Pure Python.

Those views read ``ctx.attentions`` (layer -> (heads, n, n) probabilities at T = 1) besides the shown
layer's trace; a view module that needs it says so with ``ALL_LAYERS = True`` (``needs_all_layers``).
``Session.context`` fills it for those tabs with every layer whose files are in the store
(``Session.layer_attentions``; ``new_layers=k`` computes at most k more, so the shell can add one layer per
frame). What the caller does around it (the browser shell, one layer per frame; ``pyapp.figures``, all at once)::

    for layer in research_data.pending_layers(session, state, ctx):
        files = research_data.layer_files(session, state, layer)      # fetch them, session.add_file
        ctx = session.context(state, new_layers=1)
    scene = module.render(ctx, width)

Costs: a layer's attention reuses the Encoder's cached hidden states and traces (keyed by ids and causal),
so after the first computation asking again is a dictionary look-up.
Like the Session, this module never does I/O: the caller fetches what ``layer_files`` lists.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional

import numpy as np

from ..core.catalogue import FileEntry
from .context import ViewContext
from .session import SYNTHETIC, Session
from .state import AppState


def needs_all_layers(view_module) -> bool:
    """Whether a view module reads every layer's attention (``ALL_LAYERS = True``)."""
    return bool(getattr(view_module, "ALL_LAYERS", False))


def n_layers(session: Session, state: AppState) -> int:
    return session.shape(state)[0]


def layer_files(session: Session, state: AppState, layer: int) -> List[FileEntry]:
    """Files still missing to compute ``layer``'s attention for the state's text: its Q/K and the full
    blocks of the layers below (none for a synthetic source). The tokenizer must be in already."""
    if state.model in SYNTHETIC:
        return []
    entry = session.store.entry(state.model)   # CatalogueError if unknown or not built
    if not 0 <= int(layer) < entry.n_layers:
        raise ValueError("layer %d out of range: model %r has layers 0..%d" % (layer, entry.id, entry.n_layers - 1))
    ids = session.encode(state).ids
    return session.store.missing(entry.id, ids, int(layer), ("qk",))


def ready(session: Session, state: AppState, layer: int) -> bool:
    """Whether every file ``layer``'s attention needs is in the store."""
    return not layer_files(session, state, layer)


def layer_attention(session: Session, state: AppState, layer: int) -> np.ndarray:
    """(heads, n, n) attention probabilities of ``layer`` at T = 1 (the layers run as trained; the shown
    layer's temperature lens is the context's trace). Raises core's WeightsMissing if files are missing."""
    src = session.source(state)
    ids = session.encode(state).ids
    return src.encoder.attentions(ids, [int(layer)], 1.0, bool(state.causal))[int(layer)]


def attentions(session: Session, state: AppState, layers: Iterable[int]) -> Dict[int, np.ndarray]:
    """``layer_attention`` of each of ``layers``."""
    return {int(layer): layer_attention(session, state, layer) for layer in layers}


def available_attentions(session: Session, state: AppState) -> Dict[int, np.ndarray]:
    """The attention of every layer whose files are in the store, bottom up, stopping at the first layer
    that still misses a file (its layers above need it too)."""
    return session.layer_attentions(state)


def pending_layers(session: Session, state: AppState, ctx: Optional[ViewContext] = None) -> List[int]:
    """Layers 0..n_layers-1 not in ``ctx.attentions`` yet (all of them without a context), bottom up: the
    order to fetch and compute them in. The shown layer counts as present (its trace is in the context)."""
    have = set(ctx.layer_attentions()) if ctx is not None else set()
    return [layer for layer in range(n_layers(session, state)) if layer not in have]
