"""Next-token prediction as the page shows it: the sampler's controls and the k most probable next tokens.

    logits = model.next_token_logits(ids)                     # (vocab,)  the tied LM head at the last token
    p = next_token_probs(logits, T, top_k, top_p)             # core/sampling.py, Hugging Face's order
    candidates(logits, decode, sampler)  -> best first: id, token, text, probability, logit, p at T = 1

Pure Python + numpy: the session builds a ``Prediction`` (logits once per text, the sampler re-applied on
every change of its controls), the ``next`` view draws it, and the CLI's ``next`` prints the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

from ..core.sampling import next_token_probs, top_tokens

SHOWN = 10                       # bars drawn (the sampler's top-k may keep fewer or more)
TOP_K_CHOICES = (0, 1, 5, 10, 50)    # 0: off (every token)
TOP_P_CHOICES = (0.5, 0.8, 0.9, 0.95, 1.0)
SAMPLE_T_CHOICES = (0.3, 0.7, 1.0, 1.5, 2.0)
DEFAULT_TOP_K = 0
DEFAULT_TOP_P = 1.0
DEFAULT_SAMPLE_T = 1.0


@dataclass(frozen=True)
class Sampler:
    """The sampling controls: temperature (divides the logits), top-k (0: off), top-p (1: off)."""

    temperature: float = DEFAULT_SAMPLE_T
    top_k: int = DEFAULT_TOP_K
    top_p: float = DEFAULT_TOP_P

    def describe(self) -> str:
        parts = ["T = %g" % self.temperature, "top-k %s" % (self.top_k or "off"),
                 "top-p %s" % ("off" if self.top_p >= 1.0 else "%g" % self.top_p)]
        return " · ".join(parts)


@dataclass
class Candidate:
    id: int
    token: str            # the vocabulary entry ("Ġcat")
    text: str             # what it adds to the text (" cat")
    probability: float    # under the sampler (0 when top-k / top-p removed it)
    logit: float
    raw: float            # softmax(logits) at T = 1, no filter: the model's own belief


@dataclass
class Prediction:
    """What the ``next`` view draws; ``candidates`` is empty while the LM head is loading."""

    sampler: Sampler = field(default_factory=Sampler)
    candidates: List[Candidate] = field(default_factory=list)
    kept: int = 0                 # tokens the sampler can draw (probability > 0)
    vocab_size: int = 0
    loading: str = ""             # e.g. "LM head: 412 of 1,537 files (8.1 of 30.2 MB)"
    error: str = ""               # a failed download, said in the view
    decoder: bool = True          # False: an encoder (no next-token head); the view explains

    @property
    def ready(self) -> bool:
        return bool(self.candidates)


def candidates(logits: np.ndarray, decode: Callable[[int], str], token: Callable[[int], Optional[str]],
               sampler: Sampler, shown: int = SHOWN) -> Prediction:
    """The ``shown`` most probable next tokens under ``sampler`` (best first, ties by logit), each with its
    T = 1 probability too; tokens the filters removed are left out."""
    logits = np.asarray(logits, dtype=np.float32)  # (vocab,)
    probs = next_token_probs(logits, sampler.temperature, sampler.top_k, sampler.top_p)  # (vocab,)
    raw = next_token_probs(logits)  # (vocab,)  T = 1, no filter
    best = [(i, p) for i, p in top_tokens(probs, shown) if p > 0.0]
    best.sort(key=lambda ip: (-ip[1], -float(logits[ip[0]])))
    out = [Candidate(i, token(i) or "", decode(i), p, float(logits[i]), float(raw[i])) for i, p in best]
    return Prediction(sampler, out, int(np.count_nonzero(probs)), int(logits.shape[0]))
