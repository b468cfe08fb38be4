"""Multi-head self-attention, written like the paper, returning every intermediate.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V
    MultiHead(X) = Concat(head_1 .. head_h) W_O^T + b_O,   head_i = Attention(X W_Qi^T + b_Qi, ...)

Two decoder extensions, both off by default (the encoders' attention is unchanged):

* grouped-query attention (Llama/SmolLM2): ``n_kv_heads`` < ``n_heads`` key/value heads; query head h
  reads kv head ``h // (n_heads // n_kv_heads)`` (``kv_head_of``).  K and V are computed once per kv
  head and then repeated per query head (like HF's ``repeat_kv``), so a trace's ``k``/``v`` are always
  (heads, n, d_k).
* rotary position embeddings (RoPE, HF's "rotate_half" layout): Q and K of position p are rotated by the
  angles p * theta^(-2i/d_k) before Q K^T; the trace keeps both sides (``q_unrotated``, ``k_unrotated``).

Weights use the ``nn.Linear`` layout of the checkpoints: ``weight`` is (out, in) and y = x @ W.T + b.
All heads are computed together (one matmul per projection, batched over heads), in float32.  The two
kernels that dominate in the browser (no BLAS there) come from ``numerics``: ``matmul_t`` (x @ W.T),
``batched_matmul`` (one product per head) and ``exp`` (the softmax's e**x); see its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Tuple

import numpy as np

from . import numerics


@dataclass
class AttentionWeights:
    """One layer's attention projections (nn.Linear layout).  ``v_*``/``o_*`` may be None (Q/K-only load);
    biases may be None (Llama has none)."""

    q_weight: np.ndarray  # (heads*d_k, d_model)
    q_bias: Optional[np.ndarray]  # (heads*d_k,)
    k_weight: np.ndarray  # (kv_heads*d_k, d_model)
    k_bias: Optional[np.ndarray]  # (kv_heads*d_k,)
    v_weight: Optional[np.ndarray]  # (kv_heads*d_k, d_model)
    v_bias: Optional[np.ndarray]  # (kv_heads*d_k,)
    o_weight: Optional[np.ndarray]  # (d_model, heads*d_k)
    o_bias: Optional[np.ndarray]  # (d_model,)
    n_heads: int
    n_kv_heads: int = 0  # grouped-query attention: key/value heads (0: one per query head)
    rope_theta: float = 0.0  # rotary position embeddings with this base (0: none)

    @property
    def d_k(self) -> int:
        return int(self.q_weight.shape[0]) // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def has_values(self) -> bool:
        return self.v_weight is not None and self.o_weight is not None


@dataclass
class AttentionTrace:
    """Every intermediate of the nine steps, float32."""

    x: np.ndarray  # (n, d_model)   what the projections read (pre-norm decoders: the normalised input)
    q: np.ndarray  # (heads, n, d_k)  RoPE models: after the rotation
    k: np.ndarray  # (heads, n, d_k)  per query head (GQA: kv heads repeated); RoPE: after the rotation
    v: Optional[np.ndarray]  # (heads, n, d_k)  None when only Q/K weights are loaded; per query head
    scores: np.ndarray  # (heads, n, n)   Q K^T
    scaled: np.ndarray  # (heads, n, n)   / sqrt(d_k)
    masked: Optional[np.ndarray]  # (heads, n, n)   causal mask applied (-inf above the diagonal), else None
    logits: np.ndarray  # (heads, n, n)   what enters the softmax: (masked or scaled) / temperature
    probs: np.ndarray  # (heads, n, n)   softmax, rows sum to 1
    head_outputs: Optional[np.ndarray]  # (heads, n, d_k)  probs @ V
    concat: Optional[np.ndarray]  # (n, heads*d_k)
    output: Optional[np.ndarray]  # (n, d_model)     concat @ W_O^T + b_O
    temperature: float
    causal: bool
    projection: Optional[Tuple[np.ndarray, Optional[np.ndarray]]] = field(default=None, repr=False, compare=False)
    # (o_weight, o_bias), kept so a new temperature can redo the output projection
    q_unrotated: Optional[np.ndarray] = None  # (heads, n, d_k)     RoPE models: Q before the rotation, else None
    k_unrotated: Optional[np.ndarray] = None  # (heads, n, d_k)     RoPE models: K before the rotation (expanded)
    n_kv_heads: int = 0  # grouped-query attention: distinct K/V heads (0: one per query head)

    @property
    def n_heads(self) -> int:
        return int(self.q.shape[0])

    @property
    def d_k(self) -> int:
        return int(self.q.shape[2])

    @property
    def kv_heads(self) -> int:
        """Distinct key/value heads (k and v hold them repeated per query head)."""
        return self.n_kv_heads or self.n_heads

    def kv_head(self, head: int) -> int:
        """The key/value head that query head ``head`` reads."""
        return kv_head_of(head, self.n_heads, self.kv_heads)

    def with_temperature(self, temperature: float) -> "AttentionTrace":
        """The same trace seen through another temperature: one softmax, plus probs @ V if V is loaded."""
        logits, probs = trace_softmax(self, temperature)
        heads = concat = output = None
        if self.v is not None and self.projection is not None:
            heads = numerics.batched_matmul(probs, self.v)  # (heads, n, d_k)
            concat = concat_heads(heads)  # (n, heads*d_k)
            output = linear(concat, *self.projection)  # (n, d_model)
        return replace(self, logits=logits, probs=probs, head_outputs=heads, concat=concat, output=output,
                       temperature=float(temperature))


TRACE_ARRAYS = ("x", "q", "k", "v", "scores", "scaled", "masked", "logits", "probs", "head_outputs", "concat",
                "output", "q_unrotated", "k_unrotated")


def trace_nbytes(trace: AttentionTrace) -> int:
    """Bytes a trace holds of its own: each distinct array once (at T = 1 ``logits`` IS ``scaled``/``masked``;
    the output projection's weights are the model's, not the trace's)."""
    seen: set = set()
    total = 0
    for name in TRACE_ARRAYS:
        a = getattr(trace, name)
        while a is not None and isinstance(a.base, np.ndarray):
            a = a.base  # a view keeps its whole base alive
        if a is not None and id(a) not in seen:
            seen.add(id(a))
            total += int(a.nbytes)
    return total


def linear(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray]) -> np.ndarray:
    """y = x W^T + b in float32 (nn.Linear): (n, in) -> (n, out)."""
    y = numerics.matmul_t(x, weight)  # (n, out)
    if bias is not None:
        y += bias.astype(np.float32, copy=False)
    return y


def split_heads(x: np.ndarray, n_heads: int) -> np.ndarray:
    """(n, heads*d_k) -> (heads, n, d_k)"""
    n, width = x.shape
    return x.reshape(n, n_heads, width // n_heads).transpose(1, 0, 2)


def concat_heads(x: np.ndarray) -> np.ndarray:
    """(heads, n, d_k) -> (n, heads*d_k)"""
    heads, n, d_k = x.shape
    return np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(n, heads * d_k)


def kv_head_of(head: int, n_heads: int, n_kv_heads: int) -> int:
    """Grouped-query attention: query head h shares kv head h // (n_heads // n_kv_heads)."""
    return int(head) // (n_heads // n_kv_heads)


def repeat_kv(x: np.ndarray, n_heads: int) -> np.ndarray:
    """(kv_heads, n, d_k) -> (heads, n, d_k): each kv head repeated for its group of query heads."""
    group = n_heads // x.shape[0]
    return x if group == 1 else np.repeat(x, group, axis=0)


def rope_angles(n: int, d_k: int, theta: float) -> Tuple[np.ndarray, np.ndarray]:
    """cos and sin of the rotary angles p * theta^(-2i/d_k), float32 like HF: each (n, d_k) (halves repeated)."""
    inv_freq = (1.0 / theta ** (np.arange(0, d_k, 2, dtype=np.float64) / d_k)).astype(np.float32)  # (d_k/2,)
    angles = np.arange(n, dtype=np.float32)[:, None] * inv_freq[None, :]  # (n, d_k/2)
    angles = np.concatenate([angles, angles], axis=1).astype(np.float64)  # (n, d_k)
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """RoPE in HF's rotate_half layout: x cos + (-x2, x1) sin, for x (heads, n, d_k) split in halves x1, x2."""
    half = x.shape[-1] // 2
    turned = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)  # (heads, n, d_k)
    return (x * cos + turned * sin).astype(np.float32)


def causal_mask(scores: np.ndarray) -> np.ndarray:
    """-inf above the diagonal: token i may only look at tokens j <= i."""
    n = scores.shape[-1]
    future = np.triu(np.ones((n, n), dtype=bool), k=1)  # (n, n)
    return np.where(future, np.float32(-np.inf), scores).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis (numerically stable, float32; -inf -> exactly 0)."""
    logits = np.asarray(logits, dtype=np.float32)
    fast = numerics.elementwise("softmax", logits)  # a backend's kernel (the browser's WebAssembly SIMD), same bits
    if fast is not None:
        return fast
    e = numerics.exp(logits - logits.max(axis=-1, keepdims=True))  # (..., n)  e**(l - max) in (0, 1]
    e /= e.sum(axis=-1, keepdims=True)
    return e


def check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not (t > 0.0 and np.isfinite(t)):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    return t


def probs_at(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / T) for an array of T=1 logits (scaled or masked scores): the probabilities."""
    return softmax(_tempered(np.asarray(logits, dtype=np.float32), check_temperature(temperature)))


def trace_softmax(trace: AttentionTrace, temperature: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Cheap re-softmax of a trace for a new temperature (no matmuls): ``(logits, probs)`` from its scaled
    (or masked) scores."""
    base = trace.masked if trace.masked is not None else trace.scaled  # (heads, n, n)
    logits = _tempered(base, check_temperature(temperature))  # (heads, n, n)
    return logits, softmax(logits)


def _tempered(logits: np.ndarray, temperature: float) -> np.ndarray:
    """logits / T in float32; at T = 1 the logits themselves (no copy: traces are never written to)."""
    return logits if temperature == 1.0 else logits / np.float32(temperature)


def multi_head_attention(x: np.ndarray, w: AttentionWeights, temperature: float = 1.0,
                         causal: bool = False) -> AttentionTrace:
    """Multi-head self-attention of one layer, keeping every intermediate."""
    t = check_temperature(temperature)
    x = np.asarray(x, dtype=np.float32)  # (n, d_model)
    h, d_k = w.n_heads, w.d_k
    q = split_heads(linear(x, w.q_weight, w.q_bias), h)  # (heads, n, d_k)
    k = repeat_kv(split_heads(linear(x, w.k_weight, w.k_bias), w.kv_heads), h)  # (heads, n, d_k)
    q_unrotated = k_unrotated = None
    if w.rope_theta:
        cos, sin = rope_angles(x.shape[0], d_k, w.rope_theta)  # (n, d_k) each
        q_unrotated, k_unrotated = q, k
        q, k = rotate(q, cos, sin), rotate(k, cos, sin)  # (heads, n, d_k)  position p turned by p * angle
    scores = numerics.batched_matmul(q, k.transpose(0, 2, 1))  # (heads, n, n)   Q K^T
    scaled = scores / np.float32(np.sqrt(d_k))  # (heads, n, n)   / sqrt(d_k)
    masked = causal_mask(scaled) if causal else None  # (heads, n, n)   -inf above the diagonal
    logits = _tempered(masked if causal else scaled, t)  # (heads, n, n)   / temperature
    probs = softmax(logits)  # (heads, n, n)   rows sum to 1
    trace = AttentionTrace(x, q, k, None, scores, scaled, masked, logits, probs, None, None, None, t, causal,
                           q_unrotated=q_unrotated, k_unrotated=k_unrotated, n_kv_heads=w.n_kv_heads)
    return with_values(trace, w) if w.has_values else trace


def with_values(trace: AttentionTrace, w: AttentionWeights) -> AttentionTrace:
    """Steps 7-9 added to a trace: V, probs @ V, the concatenated heads and the output projection.

    Q, K and the softmax are taken from ``trace`` as they are (a Q/K-only trace is completed, not redone).
    """
    v = split_heads(linear(trace.x, w.v_weight, w.v_bias), w.kv_heads)  # (kv_heads, n, d_k)
    v = np.ascontiguousarray(repeat_kv(v, w.n_heads))  # (heads, n, d_k)
    heads = numerics.batched_matmul(trace.probs, v)  # (heads, n, d_k)  probs @ V
    concat = concat_heads(heads)  # (n, heads*d_k)
    output = linear(concat, w.o_weight, w.o_bias)  # (n, d_model)
    return replace(trace, v=v, head_outputs=heads, concat=concat, output=output,
                   projection=(w.o_weight, w.o_bias))
