"""ViewContext: everything a view needs to draw, and nothing browser-specific.

The shell builds it from the app state; tests build it from numpy arrays (e.g. with
``pyapp.core.attention.multi_head_attention``). Views only read it.

``attentions`` holds the attention of other layers for the tabs that read every layer (model grid, rollout,
head statistics: ``Tab.all_layers`` in ``pyapp.app.tabs``): layer -> (heads, n, n) probabilities at T = 1, the
layers computed so far. ``Session.context`` fills it for the page and the CLI alike, with a mapping that keeps
only each layer's ``core.analysis.LayerDigest`` (head average, statistics, thumbnails: what the views draw) and
recomputes a layer's full attention only if asked for it; the views read ``layer_digests()`` (and
``layer_attentions()`` gives the full arrays).

The view state a view reads is typed: the head view's ticked heads and pointed token, the statistics
table's sort. ``VIEW_FIELDS`` are the fields the page keeps outside the URL (set by hover and clicks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..core.analysis import LayerDigest, digest, rollout_of_means
from .prediction import Prediction
from .stepping import step_keys

ARCH_DIAGRAMS = ("encoder", "decoder", "transformer")
HOVER_SIDES = ("left", "right")
VIEW_FIELDS = ("hover_token", "hover_side")   # page-only view state (not in the URL): the head view's token


@dataclass
class ViewContext:
    tokens: List[str]                          # n tokens, [CLS] ... [SEP]
    trace: Any                                 # pyapp.core.attention.AttentionTrace of the shown layer
    weights: Any = None                        # pyapp.core.attention.AttentionWeights of that layer (v/o may be None)
    offsets: Optional[List[Tuple[int, int]]] = None
    ids: Optional[List[int]] = None            # token ids (step 1 shows them when given)
    text: str = ""                             # the input sentence
    layer: int = 0                             # 0-based layer index
    n_layers: int = 1
    head: int = 0                              # selected / enlarged head (0-based)
    model_name: str = ""
    step: int = 1                              # 1..9 in the Step-by-step tab
    pinned_row: Optional[int] = None           # pinned query row in heatmaps
    arch: str = "encoder"                      # Architecture tab diagram: one of ARCH_DIAGRAMS
    loading: str = ""                          # e.g. "V/O weights of layer 0" while they download
    attentions: Dict[int, np.ndarray] = field(default_factory=dict)  # layer -> (heads, n, n) at T = 1
    dropped: int = 0                           # tokens cut off by truncation to the model's length
    model_id: str = ""                         # the catalogue id or synthetic source id
    tab: str = ""                              # the page's tab that shows this context
    heads_shown: Optional[List[int]] = None    # head view: the ticked heads (None = every head)
    sort_by: str = "layer"                     # head statistics: the sorted column (core.analysis.SORT_KEYS)
    sort_desc: bool = False                    # head statistics: largest first
    hover_token: Optional[int] = None          # head view: the token under the pointer (or pinned by a click)
    hover_side: str = "left"                   # head view: its column, one of HOVER_SIDES
    model_arch: str = ""                       # the model's ModelConfig.arch ("bert", "llama", "gpt2", ...)
    causal_only: bool = False                  # a causal decoder: the mask is part of the model, not a lens
    prediction: Optional[Prediction] = None    # next-token tab: the sampler's candidates (or what is loading)
    _memo: Dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)  # digests, rollout

    # ---- derived from the trace ----------------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.trace.probs.shape[-1])

    @property
    def n_heads(self) -> int:
        return int(self.trace.q.shape[0])

    @property
    def d_k(self) -> int:
        return int(self.trace.q.shape[2])

    @property
    def d_model(self) -> int:
        return int(self.trace.x.shape[1])

    @property
    def temperature(self) -> float:
        return float(self.trace.temperature)

    @property
    def causal(self) -> bool:
        return bool(self.trace.causal)

    @property
    def has_values(self) -> bool:
        return self.trace.v is not None and self.trace.head_outputs is not None

    @property
    def has_output(self) -> bool:
        return self.trace.concat is not None and self.trace.output is not None

    @property
    def is_decoder(self) -> bool:
        return bool(self.causal_only)

    def bias(self, which: str, sub: str = "") -> str:
        """`` + b_Q,h``-style formula text for projection ``which`` ("Q", "K", "V", "O") of the shown layer, or
        "" when it has no bias (Llama's projections have none; BERT's and GPT-2's all do)."""
        w = self.weights
        has = (getattr(w, which.lower() + "_bias", None) is not None if w is not None
               else self.model_arch != "llama")
        return " + b_%s%s" % (which, "," + sub if sub else "") if has else ""

    @property
    def rope(self) -> bool:
        """Q and K are rotated by position (the trace keeps them before the rotation too)."""
        return getattr(self.trace, "q_unrotated", None) is not None

    @property
    def step_keys(self):
        """The Step-by-step tab's steps for this model (``app/stepping.py``)."""
        return step_keys(self.model_arch, self.rope)

    @property
    def head_index(self) -> int:
        """`head` clamped to the model's heads."""
        return max(0, min(int(self.head), self.n_heads - 1))

    def causal_mask(self) -> Optional[np.ndarray]:
        """(n, n) bool, True where a causal model hides key j from query i (j > i); None if not causal."""
        if not self.causal:
            return None
        return np.triu(np.ones((self.n, self.n), dtype=bool), k=1)

    def average_probs(self) -> np.ndarray:
        """(n, n) head-averaged attention weights of the layer."""
        return self.trace.probs.mean(axis=0)

    def layer_attentions(self) -> Dict[int, np.ndarray]:
        """Attention (heads, n, n) of every layer known so far, keyed by layer index.

        ``attentions``, except the shown layer, which is always its own trace: temperature is a lens on the
        inspected layer only (the layers below run as trained), so the trace is what that layer looks like now.
        """
        att = {int(k): np.asarray(v) for k, v in self.attentions.items()}
        if self.trace is not None:
            att[int(self.layer)] = np.asarray(self.trace.probs)
        return att

    def known_layers(self) -> List[int]:
        """The layers whose attention is known (computed so far, and the shown one), bottom up."""
        known = {int(k) for k in self.attentions}
        if self.trace is not None:
            known.add(int(self.layer))
        return sorted(known)

    def layer_digests(self) -> Dict[int, LayerDigest]:
        """The LayerDigest of every known layer (what the every-layer views draw), the shown layer from its
        trace (seen through its temperature), like ``layer_attentions``. Computed once per context."""
        memo = self._memo.get("digests")
        if memo is not None:
            return memo
        att = self.attentions
        of = getattr(att, "digest", None)       # the session's mapping keeps digests, not arrays
        out = {}
        for k in att:
            if self.trace is None or int(k) != int(self.layer):
                out[int(k)] = of(k) if of is not None else digest(np.asarray(att[k]), self.tokens, self.causal)
        if self.trace is not None:
            shown = getattr(att, "shown_digest", None)
            out[int(self.layer)] = (shown(self.trace, int(self.layer)) if shown is not None
                                    else digest(self.trace.probs, self.tokens, self.causal))
        self._memo["digests"] = out
        return out

    def rollout(self) -> np.ndarray:
        """(n, n) attention rollout through the layers 0..k-1 known without a gap (``contiguous_layers``)."""
        k = self.contiguous_layers()
        memo = self._memo.get("rollout")
        if memo is None or memo[0] != k:
            digests = self.layer_digests()
            cached = getattr(self.attentions, "rollout", None)     # the session keeps products of T = 1 layers
            t = float(self.trace.temperature) if self.trace is not None else 1.0
            r = (cached(digests, k, int(self.layer), t) if cached is not None
                 else rollout_of_means([digests[layer].mean for layer in range(k)]))
            memo = self._memo["rollout"] = (k, r)
        return memo[1]

    def contiguous_layers(self) -> int:
        """How many layers 0..k-1 are known without a gap (what a rollout can multiply through)."""
        known = set(self.known_layers())
        k = 0
        while k < self.n_layers and k in known:
            k += 1
        return k

    def query_index(self) -> int:
        """The query token a one-row view is about: the pinned row, else token 1 (the first after [CLS])."""
        i = self.pinned_row
        if i is None or not 0 <= int(i) < self.n:
            return 1 if self.n > 1 else 0
        return int(i)

    def describe(self) -> str:
        """One line of what is shown: model, layer, heads, temperature, mask."""
        parts = []
        if self.model_name:
            parts.append(self.model_name)
        parts.append("layer %d (of %d)" % (self.layer, self.n_layers))
        parts.append("%d heads × d_k %d, d_model %d" % (self.n_heads, self.d_k, self.d_model))
        parts.append("%d tokens" % self.n)
        if abs(self.temperature - 1.0) > 1e-9:
            parts.append("temperature %g" % self.temperature)
        if self.causal:
            parts.append("causal mask on")
        return " · ".join(parts)

    def loading_message(self, what: str = "V/O") -> str:
        """What a view shows where V / W_O are still missing ("loading V/O weights of layer 0…")."""
        return "loading %s…" % (self.loading or ("%s weights of layer %d" % (what, self.layer)))
