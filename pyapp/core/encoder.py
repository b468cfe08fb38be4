"""The whole encoder of BERT- and DistilBERT-family checkpoints, computed lazily layer by layer.

One block (both families, post-LayerNorm):

    a = MultiHead(x)                          # attention.self.* + attention.output.dense
    h = LayerNorm(x + a)                      # attention.output.LayerNorm   (DistilBERT: sa_layer_norm)
    f = W_2 GELU(W_1 h + b_1) + b_2           # intermediate.dense, output.dense  (DistilBERT: ffn.lin1/lin2)
    y = LayerNorm(h + f)                      # output.LayerNorm             (DistilBERT: output_layer_norm)

Parameters are read through a small ``params`` object (``tensor(name)``, ``rows(name, ids)``) using the
internal (BERT) names listed in ``weights.py``; the encoder itself never does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import numerics
from .attention import (
    AttentionTrace,
    AttentionWeights,
    attention_probs,
    check_temperature,
    linear,
    multi_head_attention,
    with_values,
)
from .embeddings import hash_embeddings, random_embeddings, sinusoidal_positions
from .weights import layer_prefix


@dataclass
class ModelConfig:
    d_model: int
    n_layers: int
    n_heads: int
    d_k: int
    max_positions: int = 512
    arch: str = "bert"  # "bert" | "distilbert" | "synthetic"
    layer_norm_eps: float = 1e-12
    d_ff: int = 0  # feed-forward width (0: no feed-forward, attention-only model)
    vocab_size: int = 30522
    embeddings: str = "table"  # "table" (word + position (+ type 0) -> LayerNorm) | "hash" | "random"
    seed: int = 0  # for "random" embeddings
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def d_attn(self) -> int:
        """Width of the concatenated heads (= d_model unless the model is a head subset)."""
        return self.n_heads * self.d_k


class WeightsMissing(KeyError):
    """A parameter needed for this computation has not been loaded yet (ask the store what is missing)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "weights missing"


class DictParams:
    """Parameters held in memory (synthetic sources, tests, scripts)."""

    def __init__(self, tensors: Dict[str, np.ndarray]):
        self.tensors = {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}

    def has(self, name: str) -> bool:
        return name in self.tensors

    def tensor(self, name: str) -> np.ndarray:
        try:
            return self.tensors[name]
        except KeyError:
            raise WeightsMissing(f"weights not loaded: {name}") from None

    def rows(self, name: str, ids: Sequence[int]) -> np.ndarray:
        return self.tensor(name)[np.asarray(ids, dtype=np.int64)]


# ---------------------------------------------------------------------------------------------- maths

def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis, float32 like torch: (x - mean) / sqrt(var + eps) * weight + bias."""
    x = np.asarray(x, dtype=np.float32)
    centred = x - x.mean(axis=-1, keepdims=True)  # (n, d)
    var = np.einsum("...i,...i->...", centred, centred)[..., None] / np.float32(x.shape[-1])  # (n, 1)
    centred *= 1.0 / np.sqrt(var + np.float32(eps))
    centred *= weight
    centred += bias
    return centred


_ERFC_POLY = (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418,
              0.37409196, 1.00002368, -1.26551223)  # Numerical Recipes erfc Chebyshev fit, highest first


def erfc_abs(z: np.ndarray) -> np.ndarray:
    """erfc(|z|) by the Numerical Recipes Chebyshev fit (|error| < 1.2e-7), in z's float dtype.

    float64 in -> float64 (np.exp); float32 in -> float32 throughout (``numerics.exp``: the fast path).
    """
    z = np.asarray(z)
    dt = np.float32 if z.dtype == np.float32 else np.float64
    z = np.abs(z.astype(dt, copy=False))
    t = dt(1.0) / (dt(1.0) + dt(0.5) * z)
    acc = np.full_like(t, dt(_ERFC_POLY[0]))
    for c in _ERFC_POLY[1:]:  # Horner: acc = P(t)
        acc *= t
        acc += dt(c)
    acc -= z * z  # -z^2 + P(t)
    acc = numerics.exp(acc) if dt is np.float32 else np.exp(acc)
    acc *= t
    return acc


def erf(x: np.ndarray) -> np.ndarray:
    """erf without scipy (numpy has none): 1 - erfc(|x|), odd.  |error| < 1.2e-7 in float64."""
    x = np.asarray(x)
    e = erfc_abs(x)
    return np.where(x >= 0, 1.0 - e, e - 1.0).astype(e.dtype)


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), the exact form BERT uses, in float32.

    Phi(x) = 1 - erfc(|x| / sqrt 2) / 2 for x >= 0 and erfc(|x| / sqrt 2) / 2 for x < 0 (no cancellation).
    """
    x = np.asarray(x, dtype=np.float32)
    half = erfc_abs(x * np.float32(1.0 / np.sqrt(2.0)))
    half *= np.float32(0.5)  # erfc(|x| / sqrt 2) / 2
    phi = np.where(x >= 0, np.float32(1.0) - half, half)  # (n, d_ff)  Phi(x)
    phi *= x
    return phi


# -------------------------------------------------------------------------------------------- encoder

class Encoder:
    """Lazy encoder: hidden states are computed on demand and cached per (ids, causal).

    Showing layer k needs the full blocks of layers < k and only the attention of layer k.
    """

    CACHE_SENTENCES = 8

    def __init__(self, config: ModelConfig, params):
        self.config = config
        self.params = params
        self._hidden: Dict[Tuple[Tuple[int, ...], bool], List[np.ndarray]] = {}
        self._traces: Dict[Tuple[Tuple[int, ...], bool, int, bool], AttentionTrace] = {}

    # -- steps ----------------------------------------------------------------------------------------
    def embed(self, ids: Sequence[int]) -> np.ndarray:
        """Input X of layer 0: (n, d_model)."""
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

    # -- lazy forward ---------------------------------------------------------------------------------
    def layer_input(self, ids: Sequence[int], layer: int, causal: bool = False) -> np.ndarray:
        """Hidden state entering ``layer`` (layer 0: the embeddings).  Computes layers < layer only."""
        key = (tuple(int(i) for i in ids), bool(causal))
        self._check_layer(layer)
        states = self._hidden.get(key)
        if states is None:
            if len(self._hidden) >= self.CACHE_SENTENCES:  # bounded memory: forget older sentences
                self.clear()
            states = self._hidden[key] = [self.embed(key[0])]
        while len(states) <= layer:
            below = len(states) - 1
            x = states[below]
            trace = self._trace_t1(key[0], below, causal, values=True)
            if trace.output is None:
                raise ValueError(f"layer {below} has no value/output weights")
            states.append(self.block_output(x, trace.output, below))
        return states[layer]

    def _trace_t1(self, ids: Tuple[int, ...], layer: int, causal: bool, values: bool) -> AttentionTrace:
        key = (ids, bool(causal), layer, values)
        trace = self._traces.get(key)
        if trace is None and not values:
            trace = self._traces.get((ids, bool(causal), layer, True))
        if trace is None:
            qk_only = self._traces.get((ids, bool(causal), layer, False)) if values else None
            if qk_only is not None:  # the layer was computed Q/K only: complete it with V and W_O, not redo it
                trace = with_values(qk_only, self.attention_weights(layer, True))
            else:
                x = self.layer_input(ids, layer, causal)
                trace = multi_head_attention(x, self.attention_weights(layer, values), 1.0, causal)
            if values and trace.output is None:
                raise WeightsMissing(f"value/output weights of layer {layer} not loaded")
            self._traces[(ids, bool(causal), layer, trace.output is not None)] = trace
        return trace

    def trace(self, ids: Sequence[int], layer: int, temperature: float = 1.0, causal: bool = False,
              values: Optional[bool] = None) -> AttentionTrace:
        """Every intermediate of ``layer``'s attention, seen at ``temperature`` (layers below run at T=1).

        ``values=None``: include V / head outputs / output projection when their weights are loaded.
        ``values=False``: Q/K only (cheapest; what the head-averaged first view needs).
        """
        t = check_temperature(temperature)
        ids_t = tuple(int(i) for i in ids)
        self._check_layer(layer)
        want = values if values is not None else self._has_values(layer)
        trace = self._trace_t1(ids_t, layer, causal, bool(want))
        return trace if t == 1.0 else trace.with_temperature(t)

    def attentions(self, ids: Sequence[int], layers: Iterable[int], temperature: float = 1.0,
                   causal: bool = False) -> Dict[int, np.ndarray]:
        """Attention probabilities (heads, n, n) of each requested layer at ``temperature``."""
        out = {}
        for layer in layers:
            trace = self.trace(ids, layer, 1.0, causal, values=False)
            out[layer] = trace.probs if temperature == 1.0 else attention_probs(trace, temperature)[1]
        return out

    def clear(self) -> None:
        self._hidden.clear()
        self._traces.clear()

    # -- helpers --------------------------------------------------------------------------------------
    def _has_values(self, layer: int) -> bool:
        return self.params.has(layer_prefix(layer) + "attention.self.value.weight") and \
            self.params.has(layer_prefix(layer) + "attention.output.dense.weight")

    def _check_layer(self, layer: int) -> int:
        if not 0 <= int(layer) < self.config.n_layers:
            raise ValueError(f"layer {layer} out of range: this model has layers 0..{self.config.n_layers - 1}")
        return int(layer)
