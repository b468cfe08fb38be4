"""The lazy forward pass every architecture shares (``LazyModel``), and the BERT / DistilBERT encoder.

    x_0 = embed(ids)
    a_l = MultiHead(attention_input(x_l))          # the layer's attention (traced: every intermediate)
    x_(l+1) = block_output(x_l, a_l)               # residuals, norms, feed-forward

An architecture (``encoder.Encoder``, ``gpt2.GPT2``, ``llama.Llama``) supplies ``embed``,
``attention_weights``, ``attention_input`` (identity for post-norm encoders, the block's first norm for
pre-norm decoders), ``block_output`` and ``value_names``; this class caches the hidden states per
(ids, causal, layer) and the T = 1 traces per (ids, causal, layer), so showing layer k computes layers < k
once.  Both caches are bounded in bytes (``TRACE_BYTES``, ``HIDDEN_BYTES``; least recently used first out): a
trace that was dropped is recomputed from the cached hidden state entering its layer (one attention), a
hidden state from the highest one still cached below it.
Decoders (``config.causal_only``) always apply the causal mask: their ``causal`` argument is ignored.

One encoder block (both families, post-LayerNorm):

    a = MultiHead(x)                          # attention.self.* + attention.output.dense
    h = LayerNorm(x + a)                      # attention.output.LayerNorm   (DistilBERT: sa_layer_norm)
    f = W_2 GELU(W_1 h + b_1) + b_2           # intermediate.dense, output.dense  (DistilBERT: ffn.lin1/lin2)
    y = LayerNorm(h + f)                      # output.LayerNorm             (DistilBERT: output_layer_norm)

Parameters are read through a small ``params`` object (``core/params.py``) using the internal (BERT) names
listed in ``weights.py``; no model does I/O.
"""

from __future__ import annotations

from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from .attention import (
    AttentionTrace,
    AttentionWeights,
    check_temperature,
    linear,
    multi_head_attention,
    trace_nbytes,
    trace_softmax,
    with_values,
)
from .config import ModelConfig
from .embeddings import hash_embeddings, random_embeddings, sinusoidal_positions
from .layers import erf, erfc_abs, gelu, layer_norm
from .lru import LRU
from .params import DictParams, WeightsMissing
from .weights import layer_prefix

__all__ = ["LazyModel", "Encoder", "ModelConfig", "DictParams", "WeightsMissing", "layer_norm", "gelu", "erf",
           "erfc_abs"]

Key = Tuple[Tuple[int, ...], bool]


class LazyModel:
    """Lazy forward pass: hidden states are computed on demand and cached per (ids, causal).

    Showing layer k needs the full blocks of layers < k and only the attention of layer k.
    """

    # Byte budgets of the caches (float32 arrays).  A trace of SmolLM2 (9 heads) at 512 tokens is ~46 MB (four
    # (heads, n, n) arrays: scores, scaled, masked, probs), so 160 MB keeps the last three; at 128 tokens every
    # layer's trace fits.  Hidden states are (n, d_model) per layer: 31 x 1.2 MB for SmolLM2 at 512 tokens.
    TRACE_BYTES = 160 * 2**20
    HIDDEN_BYTES = 96 * 2**20

    def __init__(self, config: ModelConfig, params):
        self.config = config
        self.params = params
        self._hidden: LRU[np.ndarray] = LRU(maxbytes=self.HIDDEN_BYTES)  # (key, layer) -> (n, d_model)
        self._traces: LRU[AttentionTrace] = LRU(maxbytes=self.TRACE_BYTES, sizeof=trace_nbytes)
        # (ids, causal, layer, values) -> the T = 1 trace

    # -- what an architecture supplies ----------------------------------------------------------------
    def embed(self, ids: Sequence[int]) -> np.ndarray:
        """Input X of layer 0: (n, d_model)."""
        raise NotImplementedError

    def attention_weights(self, layer: int, values: bool = True) -> AttentionWeights:
        """The layer's projections; with ``values=False`` only Q/K (V/O are left out: cheapest)."""
        raise NotImplementedError

    def attention_input(self, x: np.ndarray, layer: int) -> np.ndarray:
        """What the layer's Q/K/V projections read (pre-norm models: the normalised residual stream)."""
        return x

    def block_output(self, x: np.ndarray, attention_output: np.ndarray, layer: int) -> np.ndarray:
        """The rest of the block after the attention: (n, d_model) -> (n, d_model)."""
        raise NotImplementedError

    def value_names(self, layer: int) -> Tuple[str, ...]:
        """Names of the layer's V and output-projection weights (their presence = V/O loaded)."""
        raise NotImplementedError

    # -- lazy forward ---------------------------------------------------------------------------------
    def layer_input(self, ids: Sequence[int], layer: int, causal: bool = False) -> np.ndarray:
        """Hidden state entering ``layer`` (layer 0: the embeddings).  Computes layers < layer only."""
        return self._state(self._key(ids, causal), self._check_layer(layer))

    def _state(self, key: Key, layer: int) -> np.ndarray:
        """Hidden state entering ``layer``; ``layer == n_layers``: the last block's output.  Starts from the
        highest cached state at or below ``layer`` (the embeddings when none is)."""
        below = layer
        x = self._hidden.get((key, below))
        while x is None and below > 0:
            below -= 1
            x = self._hidden.get((key, below))
        if x is None:
            x = self._hidden[(key, 0)] = self.embed(key[0])  # (n, d_model)
        while below < layer:
            trace = self._trace_t1(key, below, values=True)
            x = self.block_output(x, trace.output, below)  # (n, d_model)
            below += 1
            self._hidden[(key, below)] = x
        return x

    def _trace_t1(self, key: Key, layer: int, values: bool) -> AttentionTrace:
        ids, causal = key
        trace = self._traces.get((ids, causal, layer, values))
        if trace is None and not values:
            trace = self._traces.get((ids, causal, layer, True))
        if trace is None:
            qk_only = self._traces.get((ids, causal, layer, False)) if values else None
            if qk_only is not None:  # the layer was computed Q/K only: complete it with V and W_O, not redo it
                trace = with_values(qk_only, self.attention_weights(layer, True))
                self._traces.pop((ids, causal, layer, False))  # the completed trace holds all of it
            else:
                x = self.attention_input(self._state(key, layer), layer)  # (n, d_model)
                trace = multi_head_attention(x, self.attention_weights(layer, values), 1.0, causal)
            if values and trace.output is None:
                raise WeightsMissing(f"value/output weights of layer {layer} not loaded")
            self._traces[(ids, causal, layer, trace.output is not None)] = trace
        return trace

    def trace(self, ids: Sequence[int], layer: int, temperature: float = 1.0, causal: bool = False,
              values: Optional[bool] = None) -> AttentionTrace:
        """Every intermediate of ``layer``'s attention, seen at ``temperature`` (layers below run at T=1).

        ``values=None``: include V / head outputs / output projection when their weights are loaded.
        ``values=False``: Q/K only (cheapest; what the head-averaged first view needs).
        """
        t = check_temperature(temperature)
        key = self._key(ids, causal)
        self._check_layer(layer)
        want = values if values is not None else self._has_values(layer)
        trace = self._trace_t1(key, layer, bool(want))
        return trace if t == 1.0 else trace.with_temperature(t)

    def attentions(self, ids: Sequence[int], layers: Iterable[int], temperature: float = 1.0,
                   causal: bool = False) -> Dict[int, np.ndarray]:
        """Attention probabilities (heads, n, n) of each requested layer at ``temperature``."""
        out = {}
        for layer in layers:
            trace = self.trace(ids, layer, 1.0, causal, values=False)
            out[layer] = trace.probs if temperature == 1.0 else trace_softmax(trace, temperature)[1]
        return out

    def clear(self) -> None:
        self._hidden.clear()
        self._traces.clear()

    # -- helpers --------------------------------------------------------------------------------------
    def _key(self, ids: Sequence[int], causal: bool) -> Key:
        return tuple(int(i) for i in ids), bool(causal) or self.config.causal_only

    def _has_values(self, layer: int) -> bool:
        return all(self.params.has(name) for name in self.value_names(layer))

    def _check_layer(self, layer: int) -> int:
        if not 0 <= int(layer) < self.config.n_layers:
            raise ValueError(f"layer {layer} out of range: this model has layers 0..{self.config.n_layers - 1}")
        return int(layer)


class Encoder(LazyModel):
    """Lazy BERT / DistilBERT encoder (and the synthetic toy encoders)."""

    def embed(self, ids: Sequence[int]) -> np.ndarray:
        """Input X of layer 0: (n, d_model) after the embedding LayerNorm."""
        c, ids = self.config, [int(i) for i in ids]
        n = len(ids)
        if n > c.max_positions:
            raise ValueError(f"{n} tokens exceed the model's {c.max_positions} positions")
        if c.embeddings == "hash":
            return hash_embeddings(ids, c.d_model) + sinusoidal_positions(n, c.d_model)  # (n, d_model)
        if c.embeddings == "random":
            return random_embeddings(ids, c.d_model, c.seed) + sinusoidal_positions(n, c.d_model)
        p = self.params
        x = p.rows("embeddings.word_embeddings.weight", ids)  # (n, d_model)
        x = x + p.rows("embeddings.position_embeddings.weight", list(range(n)))
        if c.arch == "bert":
            x = x + p.rows("embeddings.token_type_embeddings.weight", [0])  # segment A for every token
        return layer_norm(x.astype(np.float32), p.tensor("embeddings.LayerNorm.weight"),
                          p.tensor("embeddings.LayerNorm.bias"), c.layer_norm_eps)

    def attention_weights(self, layer: int, values: bool = True) -> AttentionWeights:
        """The layer's projections; with ``values=False`` only Q/K (V/O are left out: cheapest)."""
        p, pre = self.params, layer_prefix(self._check_layer(layer))
        qk = [p.tensor(pre + f"attention.self.{m}.{t}") for m in ("query", "key") for t in ("weight", "bias")]
        vo = [p.tensor(pre + f"attention.{m}.{t}") if values else None
              for m in ("self.value", "output.dense") for t in ("weight", "bias")]
        return AttentionWeights(*qk, *vo, n_heads=self.config.n_heads)

    def block_output(self, x: np.ndarray, attention_output: np.ndarray, layer: int) -> np.ndarray:
        """Residual + LayerNorm -> feed-forward -> residual + LayerNorm: (n, d_model) -> (n, d_model)."""
        p, pre, eps = self.params, layer_prefix(layer), self.config.layer_norm_eps
        h = layer_norm(x + attention_output, p.tensor(pre + "attention.output.LayerNorm.weight"),
                       p.tensor(pre + "attention.output.LayerNorm.bias"), eps)  # (n, d_model)
        f = gelu(linear(h, p.tensor(pre + "intermediate.dense.weight"),
                        p.tensor(pre + "intermediate.dense.bias")))  # (n, d_ff)
        f = linear(f, p.tensor(pre + "output.dense.weight"), p.tensor(pre + "output.dense.bias"))  # (n, d_model)
        return layer_norm(h + f, p.tensor(pre + "output.LayerNorm.weight"),
                          p.tensor(pre + "output.LayerNorm.bias"), eps)

    def value_names(self, layer: int) -> Tuple[str, ...]:
        pre = layer_prefix(layer)
        return pre + "attention.self.value.weight", pre + "attention.output.dense.weight"
