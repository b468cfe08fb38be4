"""What the attention of a whole model says: rollout, per-head statistics, and exports.

Pure NumPy on attention arrays, no browser and no file system. "Attentions" are per layer, bottom layer
first: a sequence (or a dict keyed by layer index, as ``Encoder.attentions`` returns) of (heads, n, n)
arrays whose rows sum to 1 (row i = query token i, column j = key token j).

Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers")
    Per layer l, average the heads and model the residual connection as an identity:

        Â_l = mean_h A_l,h                         # (n, n)
        A'_l = rownorm(½ Â_l + ½ I)                # the paper's A = 0.5 W_att + 0.5 I

    Weighting: ½ / ½ is what the paper writes, and it is exactly "(Â + I), rows renormalised", because
    every row of Â sums to 1, so (Â + I) has row sums 2. It says the residual stream and the attention
    sublayer contribute equally to a token's next representation; we keep the paper's choice so the
    numbers match the published method. The explicit renormalisation only removes float drift (and keeps
    rows stochastic for inputs that are not, e.g. a head subset that was renormalised elsewhere).

    Ordering: the representation at layer l is A'_l applied to the one below, so

        R_1 = A'_1,   R_l = A'_l @ R_(l-1),   i.e.   R_L = A'_L @ A'_(L-1) @ ... @ A'_1

    (top layer on the LEFT). Row i of R_L is how much output token i at layer L draws from each input
    token; rows sum to 1.

Layer digests (``LayerDigest``): what the every-layer views read of one layer, without keeping its
(heads, n, n) attention: the head average in float64 (rollout), every head's statistics, its maximum and a
block-max thumbnail of at most THUMB_CELLS x THUMB_CELLS per head.  Computed head by head (float64 temporaries
of one (n, n) head at a time); the numbers are those of ``rollout`` / ``head_stats`` on the whole array, bit
for bit (tests/test_memory_budget.py).

Head statistics (after Clark et al. 2019, "What Does BERT Look At?")
    For every head, averaged over query rows:

    * entropy        -sum_j p_ij log2 p_ij, in BITS, the page's one unit (Clark et al. report nats:
                     multiply by ln 2); also given
                     normalised, divided by log2(number of keys the row may see), so 1.0 = uniform and the
                     "broad" threshold does not depend on sentence length
    * distance       sum_j p_ij |i - j|, in tokens
    * cls, sep       attention mass on [CLS] / [SEP] tokens (BERT) or <s> / </s> (RoBERTa-style); a causal
                     decoder without them: "cls" is the mass on the first token, the attention sink ("sink")
    * punct          mass on punctuation tokens (every character is Unicode punctuation; special tokens
                     are not punctuation)
    * prev, next     p_(i,i-1) averaged over rows that have a previous token; p_(i,i+1) likewise
    * self           p_ii

Labels (the thresholds are the ``LABEL_THRESHOLDS`` constants and the view prints them): a head gets the
name of its largest mass among previous / next / self / [CLS] / [SEP] / punctuation when that mass is
above ``MASS_THRESHOLD`` (0.5: "more than half of its attention", Clark et al.'s criterion for the
previous-token and [SEP] heads); otherwise "broad" when its normalised entropy is at least
``BROAD_THRESHOLD``; otherwise "mixed".
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

Attentions = Union[Sequence[np.ndarray], Mapping[int, np.ndarray], np.ndarray]

RESIDUAL_WEIGHT = 0.5  # weight of the identity in A' = (1 - w) Â + w I  (Abnar & Zuidema: 0.5)
MASS_THRESHOLD = 0.5  # a head "attends to X" when more than this share of its attention goes to X
BROAD_THRESHOLD = 0.8  # a head is "broad" when its normalised entropy is at least this (1.0 = uniform)

CLS_TOKENS = ("[CLS]", "<s>")
SEP_TOKENS = ("[SEP]", "</s>")
SPECIAL_TOKENS = ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "<s>", "</s>", "<pad>", "<mask>", "<unk>")

# Statistic keys, in table order, with the column title and unit the views print.
STAT_COLUMNS = (
    ("entropy", "entropy", "bits"),
    ("entropy_norm", "H / log2 n", ""),
    ("distance", "distance", "tokens"),
    ("cls", "[CLS]", "mass"),
    ("sep", "[SEP]", "mass"),
    ("punct", "punct.", "mass"),
    ("prev", "previous", "mass"),
    ("next", "next", "mass"),
    ("self", "self", "mass"),
)
STAT_KEYS = tuple(c[0] for c in STAT_COLUMNS)
MASS_KEYS = ("prev", "next", "self", "cls", "sep", "punct")  # candidates for a label, in tie order

LABEL_NAMES = {
    "prev": "previous token",
    "next": "next token",
    "self": "self",
    "cls": "[CLS]",
    "sink": "first token (attention sink)",
    "sep": "[SEP]",
    "punct": "punctuation",
    "broad": "broad",
    "mixed": "mixed",
}
LABEL_THRESHOLDS = (
    ("previous token", f"mass on token i-1 > {MASS_THRESHOLD:.2f}"),
    ("next token", f"mass on token i+1 > {MASS_THRESHOLD:.2f}"),
    ("self", f"mass on token i itself > {MASS_THRESHOLD:.2f}"),
    ("[CLS] / [SEP]", f"mass on [CLS] / [SEP] > {MASS_THRESHOLD:.2f}"),
    ("punctuation", f"mass on punctuation > {MASS_THRESHOLD:.2f}"),
    ("broad", f"none of the above, and entropy / log2(keys) >= {BROAD_THRESHOLD:.2f}"),
    ("mixed", "none of the above"),
)


# ---- inputs -----------------------------------------------------------------------------------------
def layer_list(attentions: Attentions) -> List[Tuple[int, np.ndarray]]:
    """(layer index, (heads, n, n) float64) pairs, bottom layer first."""
    if isinstance(attentions, Mapping):
        items = sorted((int(k), v) for k, v in attentions.items())
    else:
        items = list(enumerate(attentions))
    out = []
    for layer, a in items:
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3 or a.shape[1] != a.shape[2]:
            raise ValueError(f"layer {layer}: attention must be (heads, n, n), got {a.shape}")
        out.append((layer, a))
    return out


def stack_layers(attentions: Attentions) -> np.ndarray:
    """All layers 0..L-1 as one (layers, heads, n, n) array; the layers must be consecutive from 0."""
    items = layer_list(attentions)
    if [k for k, _ in items] != list(range(len(items))):
        raise ValueError("layers must be 0..L-1 without gaps, got %s" % [k for k, _ in items])
    return np.stack([a for _, a in items])


# ---- attention rollout ------------------------------------------------------------------------------
def row_normalise(a: np.ndarray) -> np.ndarray:
    """Rows divided by their sums (rows summing to 0 are left at 0)."""
    s = a.sum(axis=-1, keepdims=True)
    return np.divide(a, s, out=np.zeros_like(a), where=s > 0)


_EINSUM_PRODUCT = sys.platform == "emscripten"  # Pyodide: numpy without BLAS


def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for the rollout's (n, n) float64 matrices.  Without BLAS (Pyodide 0.17.1, numpy 1.17.5) numpy's
    matmul loop is 3-5x slower than einsum's, which makes the same sums in the same order (equal bits,
    checked there at 512 tokens); with BLAS (CPython) the matmul."""
    return np.einsum("ij,jk->ik", a, b) if _EINSUM_PRODUCT else a @ b


def residual_attention(attn: np.ndarray, residual: float = RESIDUAL_WEIGHT) -> np.ndarray:
    """One layer's A' = rownorm((1 - w) mean_h A + w I): (heads, n, n) -> (n, n)."""
    a = np.asarray(attn, dtype=np.float64)
    mean = a.mean(axis=0) if a.ndim == 3 else a  # (n, n)
    n = mean.shape[-1]
    return row_normalise((1.0 - residual) * mean + residual * np.eye(n))


def rollout(attentions: Attentions, residual: float = RESIDUAL_WEIGHT) -> np.ndarray:
    """Cumulative rollouts (layers, n, n): entry l is R_(l+1) = A'_(l+1) @ ... @ A'_1 (layers 0..l).

    The last entry is the rollout of the whole stack; the first is layer 0's A' alone.
    """
    items = layer_list(attentions)
    if [k for k, _ in items] != list(range(len(items))):
        raise ValueError("rollout needs layers 0..L-1 without gaps, got %s" % [k for k, _ in items])
    out = []
    r = None
    for _, a in items:
        step = residual_attention(a, residual)  # (n, n)
        r = step if r is None else product(step, r)  # the higher layer on the left
        out.append(r)
    return np.stack(out)


# ---- head statistics --------------------------------------------------------------------------------
def is_punctuation(token: str) -> bool:
    """True for tokens made only of punctuation characters (a WordPiece "##" prefix is ignored)."""
    if token in SPECIAL_TOKENS:
        return False
    t = token[2:] if token.startswith("##") and len(token) > 2 else token
    t = t.lstrip("\u0120\u2581")  # byte-level BPE / SentencePiece word-start marks
    return bool(t) and all(unicodedata.category(ch).startswith("P") for ch in t)


def sink_mode(tokens: Sequence[str], causal: bool) -> bool:
    """A causal model without a [CLS] / <s> token: the "cls" column measures the first token instead, where
    decoders' heads park their attention (the attention sink; Xiao et al. 2023)."""
    return bool(causal) and not any(str(t) in CLS_TOKENS for t in tokens)


def token_masks(tokens: Sequence[str], causal: bool = False) -> Dict[str, np.ndarray]:
    """Boolean (n,) masks of the [CLS] (``sink_mode``: the first token), [SEP] and punctuation tokens."""
    toks = [str(t) for t in tokens]
    first = np.arange(len(toks)) == 0
    return {
        "cls": first if sink_mode(toks, causal) else np.array([t in CLS_TOKENS for t in toks], dtype=bool),
        "sep": np.array([t in SEP_TOKENS for t in toks], dtype=bool),
        "punct": np.array([is_punctuation(t) for t in toks], dtype=bool),
    }


def row_entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of each row of attention weights: (..., n) -> (...); 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    lg = np.zeros_like(p)
    pos = p > 0
    lg[pos] = np.log2(p[pos])  # log2 p only where p > 0 (a causal layer's masked half is 0: half the calls)
    return -(p * lg).sum(axis=-1)


def _keys_per_row(n: int, causal: bool) -> np.ndarray:
    """How many keys each query row may attend to: n, or i + 1 under a causal mask."""
    return np.arange(1, n + 1, dtype=np.float64) if causal else np.full(n, float(n))


def layer_stats(attn: np.ndarray, tokens: Sequence[str], causal: bool = False) -> Dict[str, np.ndarray]:
    """Every statistic of STAT_KEYS for one layer: dict of (heads,) float64 arrays."""
    p = np.asarray(attn, dtype=np.float64)  # (heads, n, n)
    if p.ndim == 2:
        p = p[None]
    if len(tokens) != p.shape[-1]:
        raise ValueError(f"{len(tokens)} tokens for an attention of {p.shape[-1]} tokens")
    return _layer_stats(p, _StatInputs(tokens, causal))


class _StatInputs:
    """What layer_stats needs besides the weights, made once per text (the digest reuses it for every head)."""

    def __init__(self, tokens: Sequence[str], causal: bool):
        n = len(tokens)
        self.max_h = np.log2(_keys_per_row(n, causal))  # (n,)
        self.idx = np.arange(n)
        self.dist = np.abs(self.idx[:, None] - self.idx[None, :]).astype(np.float64)  # (n, n)
        self.masks = token_masks(tokens, causal)


def _layer_stats(p: np.ndarray, inputs: _StatInputs) -> Dict[str, np.ndarray]:
    heads, n, _ = p.shape  # (heads, n, n) float64
    row_h = row_entropy(p)  # (heads, n) bits
    max_h, idx, dist, masks = inputs.max_h, inputs.idx, inputs.dist, inputs.masks
    stats = {
        "entropy": row_h.mean(axis=-1),
        "entropy_norm": row_h.sum(axis=-1) / max_h.sum() if max_h.sum() > 0 else np.zeros(heads),
        "distance": (p * dist).sum(axis=-1).mean(axis=-1),
        "cls": p[:, :, masks["cls"]].sum(axis=-1).mean(axis=-1),
        "sep": p[:, :, masks["sep"]].sum(axis=-1).mean(axis=-1),
        "punct": p[:, :, masks["punct"]].sum(axis=-1).mean(axis=-1),
        "prev": p[:, idx[1:], idx[:-1]].mean(axis=-1) if n > 1 else np.zeros(heads),
        "next": p[:, idx[:-1], idx[1:]].mean(axis=-1) if n > 1 else np.zeros(heads),
        "self": p[:, idx, idx].mean(axis=-1),
    }
    return stats


def head_label(stat: Mapping[str, float]) -> str:
    """The label key of one head ("prev", "sep", …, "broad", "mixed"); see LABEL_THRESHOLDS."""
    best = max(MASS_KEYS, key=lambda k: (float(stat[k]), -MASS_KEYS.index(k)))
    if float(stat[best]) > MASS_THRESHOLD:
        return best
    if float(stat["entropy_norm"]) >= BROAD_THRESHOLD:
        return "broad"
    return "mixed"


@dataclass
class HeadStatRow:
    layer: int
    head: int
    values: Dict[str, float]
    label: str  # a key of LABEL_NAMES

    @property
    def label_text(self) -> str:
        return LABEL_NAMES[self.label]


@dataclass
class HeadStats:
    """One row per (layer, head) of the layers given, in layer-then-head order."""

    rows: List[HeadStatRow] = field(default_factory=list)

    def table(self, layer: int) -> np.ndarray:
        """(heads, len(STAT_KEYS)) values of one layer."""
        return np.array([[r.values[k] for k in STAT_KEYS] for r in self.rows if r.layer == layer])

    def get(self, layer: int, head: int) -> HeadStatRow:
        for r in self.rows:
            if r.layer == layer and r.head == head:
                return r
        raise KeyError((layer, head))


def head_stats(attentions: Attentions, tokens: Sequence[str], causal: bool = False) -> HeadStats:
    """Statistics and a label for every head of every layer given (layers may be a partial dict)."""
    return stats_rows(((layer, layer_stats(a, tokens, causal)) for layer, a in layer_list(attentions)),
                      tokens, causal)


def stats_rows(per_layer: Iterable[Tuple[int, Mapping[str, np.ndarray]]], tokens: Sequence[str],
               causal: bool = False) -> HeadStats:
    """HeadStats from each layer's ``layer_stats`` (dict of (heads,) arrays), bottom layer first."""
    rows = []
    sink = sink_mode(tokens, causal)
    for layer, st in per_layer:
        for h in range(len(st["entropy"])):
            values = {k: float(st[k][h]) for k in STAT_KEYS}
            label = head_label(values)
            rows.append(HeadStatRow(layer, h, values, "sink" if sink and label == "cls" else label))
    return HeadStats(rows)


# ---- layer digests: what the every-layer views need of one layer --------------------------------------
THUMB_CELLS = 128  # a digest's thumbnails: block max down to at most this many cells a side


def pool_max(matrix: np.ndarray, cells: int, mask: Optional[np.ndarray] = None):
    """Block-max the (n, n) matrix down to at most `cells` x `cells` (a long text's thumbnail keeps its
    strongest weights, and its image stays small); a pooled cell is masked only when all of it is."""
    n = matrix.shape[0]
    cells = max(int(cells), 1)
    if n <= cells:
        return matrix, mask
    k = -(-n // cells)  # block side
    m = -(-n // k)  # pooled side
    pad = m * k - n
    vals = np.pad(np.asarray(matrix, dtype=np.float64), ((0, pad), (0, pad)), constant_values=-np.inf)
    vals = vals.reshape(m, k, m, k).max(axis=(1, 3))
    if mask is not None:
        mask = np.pad(mask, ((0, pad), (0, pad)), constant_values=True).reshape(m, k, m, k).all(axis=(1, 3))
        vals = np.where(mask, 0.0, vals)
    return vals, mask


def causal_mask_of(n: int) -> np.ndarray:
    """(n, n) bool, True above the diagonal (key j > query i: hidden by a causal mask)."""
    return np.triu(np.ones((n, n), dtype=bool), k=1)


@dataclass
class LayerDigest:
    """One layer's attention as the every-layer views read it (model grid, rollout, head statistics).

    At 512 tokens a (heads, n, n) float32 attention is heads x 1 MB; its digest is 2 MB (``mean``) plus
    heads x 64 KB (``thumbs``), whatever the number of heads."""

    mean: np.ndarray  # (n, n) float64   mean over heads (rollout's Â, and its bars)
    stats: Dict[str, np.ndarray]  # STAT_KEYS -> (heads,) float64  (layer_stats)
    peak: np.ndarray  # (heads,) float64  each head's largest weight
    thumbs: np.ndarray  # (heads, m, m) float32  block max, m = min(n, pooled side for THUMB_CELLS)
    thumb_mask: Optional[np.ndarray]  # (m, m) bool  causal: the pooled cells wholly masked, else None
    pooled_masks: Dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)
    # thumbnail side -> thumb_mask pooled to it: one object for every head of the layer (``thumbnail``)

    @property
    def n_heads(self) -> int:
        return int(self.thumbs.shape[0])

    @property
    def nbytes(self) -> int:
        arrays = [self.mean, self.peak, self.thumbs] + list(self.stats.values())
        if self.thumb_mask is not None:
            arrays.append(self.thumb_mask)
        return sum(int(a.nbytes) for a in arrays)

    def thumbnail(self, head: int, cells: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """The head's thumbnail block-maxed to at most ``cells`` a side, and its mask (``pool_max``): float32
        (block maxima of float32 weights, exact), and one mask object per size for every head of the layer
        (the model view's hit regions carry it: it crosses to the page once, not once a head)."""
        shown, mask = pool_max(self.thumbs[head], cells, self.thumb_mask)
        if mask is not None and mask is not self.thumb_mask:
            mask = self.pooled_masks.setdefault(int(cells), mask)
        return shown.astype(np.float32, copy=False), mask


def digest(attn: np.ndarray, tokens: Sequence[str], causal: bool = False) -> LayerDigest:
    """The LayerDigest of one layer's (heads, n, n) attention, one head at a time (small temporaries)."""
    a = np.asarray(attn)
    if a.ndim == 2:
        a = a[None]
    heads, n, _ = a.shape
    total = None
    per_head = []
    peaks = np.empty(heads, dtype=np.float64)
    thumb_mask = causal_mask_of(n) if causal else None
    thumbs, pooled_mask = [], thumb_mask
    if len(tokens) != n:
        raise ValueError(f"{len(tokens)} tokens for an attention of {n} tokens")
    inputs = _StatInputs(tokens, causal)
    for h in range(heads):
        p = a[h]  # (n, n)
        total = np.asarray(p, dtype=np.float64) if total is None else total + p  # sum over heads, in order
        per_head.append(_layer_stats(np.asarray(p[None], dtype=np.float64), inputs))
        peaks[h] = float(np.max(p))
        t, pooled_mask = pool_max(p, THUMB_CELLS, thumb_mask)
        thumbs.append(np.asarray(t, dtype=np.float32))  # exact: block maxima of float32 weights (or 0)
    stats = {k: np.concatenate([st[k] for st in per_head]) for k in STAT_KEYS}
    mean = np.true_divide(total, heads) if heads > 1 else np.array(total, dtype=np.float64)
    return LayerDigest(mean, stats, peaks, np.stack(thumbs), pooled_mask)


def digest_stats(digests: Mapping[int, LayerDigest], tokens: Sequence[str], causal: bool = False) -> HeadStats:
    """``head_stats`` of the layers whose digests are given (same numbers as from their attention)."""
    return stats_rows(((int(k), digests[k].stats) for k in sorted(digests)), tokens, causal)


def rollout_of_means(means: Sequence[np.ndarray], residual: float = RESIDUAL_WEIGHT) -> np.ndarray:
    """The rollout of the whole stack (the last entry of ``rollout``) from each layer's head average (n, n)
    float64, bottom layer first, without keeping the cumulative products."""
    r = None
    for mean in means:
        step = residual_attention(mean, residual)  # (n, n)
        r = step if r is None else product(step, r)  # the higher layer on the left
    if r is None:
        raise ValueError("rollout needs at least one layer")
    return r


SORT_KEYS = ("layer", "head") + STAT_KEYS + ("label",)


def sort_rows(rows: Sequence[HeadStatRow], key: str = "layer", descending: bool = False) -> List[HeadStatRow]:
    """Rows sorted by a column (a SORT_KEYS entry); ties keep layer-then-head order (the sort is stable)."""
    if key not in SORT_KEYS:
        raise ValueError(f"unknown sort key {key!r} (one of {', '.join(SORT_KEYS)})")
    base = sorted(rows, key=lambda r: (r.layer, r.head))
    if key == "layer":
        return sorted(base, key=lambda r: r.layer, reverse=descending)
    if key == "head":
        return sorted(base, key=lambda r: (r.head, r.layer), reverse=descending)
    if key == "label":
        return sorted(base, key=lambda r: r.label_text, reverse=descending)
    return sorted(base, key=lambda r: r.values[key], reverse=descending)


# ---- exports ----------------------------------------------------------------------------------------
def attention_csv(attn: np.ndarray, tokens: Sequence[str], layer: int = 0,
                  heads: Optional[Sequence[int]] = None) -> str:
    """One layer's attention as CSV text: a row per (head, query) and a column per key token.

    Header: layer, head, query_index, query_token, then the key tokens as they are (duplicates kept, in
    order). Tokens are quoted by the csv module (commas, quotes, newlines survive a round trip). Weights
    are written with 9 significant digits, enough to read back every float32 exactly.
    """
    a = np.asarray(attn)
    if a.ndim == 2:
        a = a[None]
    n = a.shape[-1]
    if len(tokens) != n:
        raise ValueError(f"{len(tokens)} tokens for an attention of {n} tokens")
    heads = list(range(a.shape[0])) if heads is None else [int(h) for h in heads]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["layer", "head", "query_index", "query_token"] + [str(t) for t in tokens])
    for h in heads:
        for i in range(n):
            w.writerow([layer, h, i, str(tokens[i])] + _numbers(a[h, i].ravel()))
    return buf.getvalue()


def _numbers(values: np.ndarray) -> List[str]:
    """Shortest exact-for-float32 text of each value; non-finite values (masked -inf) become ''."""
    return [f"{v:.9g}" if math.isfinite(v) else "" for v in np.asarray(values, dtype=np.float64).tolist()]


TRACE_FIELDS = ("x", "q", "k", "v", "scores", "scaled", "masked", "logits", "probs", "head_outputs",
                "concat", "output")
TRACE_FORMAT = "mhsa-trace/1"


def trace_json(trace: Any, tokens: Sequence[str], meta: Optional[Mapping[str, Any]] = None,
               attentions: Optional[Attentions] = None) -> str:
    """The full trace of one layer (every intermediate of AttentionTrace) as JSON text.

    Each array is {"shape": [...], "dtype": "float32", "data": nested lists}; values that are not finite
    (the -inf of causally masked scores) are written as null, since JSON has no infinities. Arrays the
    trace does not hold (V/O not loaded) are null. ``attentions`` (optional) adds the softmax of every
    layer computed so far under "attentions": {"<layer>": array}. ``meta`` (model id, layer, text, …) is
    copied to the top level.
    """
    doc: Dict[str, Any] = {"format": TRACE_FORMAT}
    for k, v in (meta or {}).items():
        doc[str(k)] = _plain(v)
    doc["tokens"] = [str(t) for t in tokens]
    doc["temperature"] = float(getattr(trace, "temperature", 1.0))
    doc["causal"] = bool(getattr(trace, "causal", False))
    doc["n_heads"] = int(np.asarray(trace.q).shape[0])
    doc["d_k"] = int(np.asarray(trace.q).shape[2])
    arrays = {}
    for name in TRACE_FIELDS:
        arr = getattr(trace, name, None)
        arrays[name] = None if arr is None else _ArrayJSON(np.asarray(arr))
    doc["arrays"] = arrays
    if attentions is not None:
        doc["attentions"] = {str(k): _ArrayJSON(np.asarray(a)) for k, a in layer_list(attentions)}
    return _dumps(doc)


class _ArrayJSON:
    def __init__(self, arr: np.ndarray):
        self.arr = arr


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _array_text(arr: np.ndarray) -> str:
    """{"shape", "dtype", "data"} with numbers as %.9g text joined into nested JSON lists."""
    flat = [f"{v:.9g}" if math.isfinite(v) else "null"
            for v in np.asarray(arr, dtype=np.float64).ravel().tolist()]
    shape = list(arr.shape)

    def nest(start: int, dims: List[int]) -> Tuple[str, int]:
        if not dims:
            return flat[start], start + 1
        if len(dims) == 1:
            return "[" + ",".join(flat[start:start + dims[0]]) + "]", start + dims[0]
        parts = []
        for _ in range(dims[0]):
            s, start = nest(start, dims[1:])
            parts.append(s)
        return "[" + ",".join(parts) + "]", start

    data, _ = nest(0, shape)
    dtype = "float32" if arr.dtype.kind == "f" else str(arr.dtype)
    return f'{{"shape":{json.dumps(shape)},"dtype":"{dtype}","data":{data}}}'


def _dumps(v: Any) -> str:
    """JSON text of a document whose arrays are _ArrayJSON (written by _array_text, the rest by json)."""
    if isinstance(v, _ArrayJSON):
        return _array_text(v.arr)
    if isinstance(v, dict):
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + _dumps(x) for k, x in v.items()) + "}"
    return json.dumps(v, ensure_ascii=False, allow_nan=False)
