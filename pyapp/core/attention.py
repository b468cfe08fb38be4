"""Multi-head self-attention, written like the paper, returning every intermediate.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V
    MultiHead(X) = Concat(head_1 .. head_h) W_O^T + b_O,   head_i = Attention(X W_Qi^T + b_Qi, ...)

Weights use the ``nn.Linear`` layout of the checkpoints: ``weight`` is (out, in) and y = x @ W.T + b.
All heads are computed together (one matmul per projection, batched over heads), in float32.  The two
kernels that dominate in the browser (no BLAS there) come from ``numerics``: ``matmul_t`` (x @ W.T),
``batched_matmul`` (one product per head) and ``exp`` (the softmax's e**x); see its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

from . import numerics


@dataclass
class AttentionWeights:
    """One layer's attention projections (nn.Linear layout).  ``v_*``/``o_*`` may be None (Q/K-only load)."""

    q_weight: np.ndarray  # (heads*d_k, d_model)
    q_bias: np.ndarray  # (heads*d_k,)
    k_weight: np.ndarray  # (heads*d_k, d_model)
    k_bias: np.ndarray  # (heads*d_k,)
    v_weight: Optional[np.ndarray]  # (heads*d_k, d_model)
    v_bias: Optional[np.ndarray]  # (heads*d_k,)
    o_weight: Optional[np.ndarray]  # (d_model, heads*d_k)
    o_bias: Optional[np.ndarray]  # (d_model,)
    n_heads: int

    @property
    def d_k(self) -> int:
        return int(self.q_weight.shape[0]) // self.n_heads

    @property
    def has_values(self) -> bool:
        return self.v_weight is not None and self.o_weight is not None


@dataclass
class AttentionTrace:
    """Every intermediate of the nine steps, float32."""

    x: np.ndarray  # (n, d_model)   input to the layer
    q: np.ndarray  # (heads, n, d_k)
    k: np.ndarray  # (heads, n, d_k)
    v: Optional[np.ndarray]  # (heads, n, d_k)  None when only Q/K weights are loaded
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

    @property
    def n_heads(self) -> int:
        return int(self.q.shape[0])

    @property
    def d_k(self) -> int:
        return int(self.q.shape[2])

    def with_temperature(self, temperature: float) -> "AttentionTrace":
        """The same trace seen through another temperature: one softmax, plus probs @ V if V is loaded."""
        logits, probs = attention_probs(self, temperature)
        heads = concat = output = None
        if self.v is not None and self.projection is not None:
            heads = numerics.batched_matmul(probs, self.v)  # (heads, n, d_k)
            concat = concat_heads(heads)  # (n, heads*d_k)
            output = linear(concat, *self.projection)  # (n, d_model)
        return AttentionTrace(self.x, self.q, self.k, self.v, self.scores, self.scaled, self.masked, logits,
                              probs, heads, concat, output, float(temperature), self.causal, self.projection)


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


def causal_mask(scores: np.ndarray) -> np.ndarray:
    """-inf above the diagonal: token i may only look at tokens j <= i."""
    n = scores.shape[-1]
    future = np.triu(np.ones((n, n), dtype=bool), k=1)  # (n, n)
    return np.where(future, np.float32(-np.inf), scores).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis (numerically stable, float32; -inf -> exactly 0)."""
    logits = np.asarray(logits, dtype=np.float32)
    e = numerics.exp(logits - logits.max(axis=-1, keepdims=True))  # (..., n)  e**(l - max) in (0, 1]
    e /= e.sum(axis=-1, keepdims=True)
    return e


def check_temperature(temperature: float) -> float:
    t = float(temperature)
    if not (t > 0.0 and np.isfinite(t)):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    return t


def attention_probs(trace_or_logits, temperature: float = 1.0):
    """Cheap re-softmax for a new temperature (no matmuls).

    Given an AttentionTrace: returns ``(logits, probs)`` computed from its scaled (or masked) scores.
    Given an array of T=1 logits (scaled or masked scores): returns the probabilities only.
    """
    t = check_temperature(temperature)
    if isinstance(trace_or_logits, AttentionTrace):
        base = trace_or_logits.masked if trace_or_logits.masked is not None else trace_or_logits.scaled
        logits = _tempered(base, t)
        return logits, softmax(logits)
    return softmax(_tempered(np.asarray(trace_or_logits, dtype=np.float32), t))


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
    k = split_heads(linear(x, w.k_weight, w.k_bias), h)  # (heads, n, d_k)
    scores = numerics.batched_matmul(q, k.transpose(0, 2, 1))  # (heads, n, n)   Q K^T
    scaled = scores / np.float32(np.sqrt(d_k))  # (heads, n, n)   / sqrt(d_k)
    masked = causal_mask(scaled) if causal else None  # (heads, n, n)   -inf above the diagonal
    logits = _tempered(masked if causal else scaled, t)  # (heads, n, n)   / temperature
    probs = softmax(logits)  # (heads, n, n)   rows sum to 1
    trace = AttentionTrace(x, q, k, None, scores, scaled, masked, logits, probs, None, None, None, t, causal)
    return with_values(trace, w) if w.has_values else trace


def with_values(trace: AttentionTrace, w: AttentionWeights) -> AttentionTrace:
    """Steps 7-9 added to a trace: V, probs @ V, the concatenated heads and the output projection.

    Q, K and the softmax are taken from ``trace`` as they are (a Q/K-only trace is completed, not redone).
    """
    h = w.n_heads
    v = np.ascontiguousarray(split_heads(linear(trace.x, w.v_weight, w.v_bias), h))  # (heads, n, d_k)
    heads = numerics.batched_matmul(trace.probs, v)  # (heads, n, d_k)  probs @ V
    concat = concat_heads(heads)  # (n, heads*d_k)
    output = linear(concat, w.o_weight, w.o_bias)  # (n, d_model)
    return AttentionTrace(trace.x, trace.q, trace.k, v, trace.scores, trace.scaled, trace.masked, trace.logits,
                          trace.probs, heads, concat, output, trace.temperature, trace.causal,
                          (w.o_weight, w.o_bias))
