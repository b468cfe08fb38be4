"""What the causal decoders (GPT-2, Llama) share: the causal mask as part of the model, pre-norm blocks,
and next-token prediction through the tied LM head.

    x_0 = embed(ids)
    x_(l+1) = h + FFN(norm_2(h)),   h = x_l + MultiHead(norm_1(x_l))      # pre-norm block, causal mask
    logits = norm_f(x_L)[-1] @ E^T                                        # tied head: E = word table

A trace's ``x`` is ``norm_1(x_l)``, what the projections read (``layer_input`` gives x_l itself).
``causal`` arguments are ignored: the mask is always on (``config.causal_only``).  The logits read the
whole word table chunk by chunk (``params.row_blocks``), so nothing before them needs it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .encoder import LazyModel
from .weights import WORD_TABLE, table_name


class Decoder(LazyModel):
    """A lazy causal decoder; an architecture adds ``final_norm`` to the LazyModel hooks."""

    def final_norm(self, h: np.ndarray) -> np.ndarray:
        """The norm after the last block: (n, d_model) -> (n, d_model)."""
        raise NotImplementedError

    def check_length(self, ids: Sequence[int]) -> int:
        n = len(ids)
        if n > self.config.max_positions:
            raise ValueError(f"{n} tokens exceed the model's {self.config.max_positions} positions")
        if n == 0:
            raise ValueError("no tokens: a decoder needs at least one token to attend from")
        return n

    def final_state(self, ids: Sequence[int]) -> np.ndarray:
        """Output of the last block, before the final norm: (n, d_model)."""
        return self._state(self._key(ids, True), self.config.n_layers)

    def next_token_logits(self, ids: Sequence[int]) -> np.ndarray:
        """Scores of every vocabulary entry as the token after ``ids``: (vocab,) float32."""
        h = self.final_norm(self.final_state(ids)[-1:])[0]  # (d_model,)  last token, normalised
        logits = np.empty(self.config.vocab_size, dtype=np.float32)  # (vocab,)
        for lo, rows in self.params.row_blocks(table_name(self.config, WORD_TABLE)):
            logits[lo:lo + rows.shape[0]] = rows @ h  # (rows,)  tied head: the word table's rows . h
        return logits
