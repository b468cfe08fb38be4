"""From next-token logits to what a sampler would draw: temperature, top-k, top-p (nucleus), in HF's order.

    p = softmax(logits / T)           restricted to the k highest logits (top_k > 0),
                                      then to the smallest set of tokens whose mass reaches top_p,
                                      renormalised (every other token: exactly 0)
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from .attention import check_temperature, softmax


def next_token_probs(logits: np.ndarray, temperature: float = 1.0, top_k: int = 0,
                     top_p: float = 1.0) -> np.ndarray:
    """Sampling distribution over the vocabulary: (vocab,) float32 summing to 1."""
    t = check_temperature(temperature)
    if not 0.0 < float(top_p) <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    z = np.asarray(logits, dtype=np.float64) / t  # (vocab,)
    if 0 < int(top_k) < z.size:
        kth = np.partition(z, -int(top_k))[-int(top_k)]  # the k-th highest logit
        z = np.where(z < kth, -np.inf, z)
    z = z - z.max()  # (vocab,)  <= 0 in float64 first: a tiny T cannot overflow float32 (softmax is shift-free)
    p = softmax(z.astype(np.float32)).astype(np.float64)  # (vocab,)
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")  # most probable first
        before = np.cumsum(p[order]) - p[order]  # mass of the tokens ranked above each one
        p[order[before >= top_p]] = 0.0  # keep a token while the mass above it is still below top_p
    return (p / p.sum()).astype(np.float32)


def top_tokens(probs: np.ndarray, k: int = 5) -> List[Tuple[int, float]]:
    """The ``k`` most probable token ids with their probabilities, best first (ties: lower id first)."""
    probs = np.asarray(probs)
    order = np.argsort(-probs, kind="stable")[:int(k)]
    return [(int(i), float(probs[i])) for i in order]
