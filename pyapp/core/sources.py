"""Model sources: a real catalogue model, or a synthetic one made on the spot (no files).

    source = make_source(entry_or_spec, tokenizer, store)
    source.encoder.trace(ids, layer=0)        # the model: Encoder, GPT2 or Llama (same interface)
    source.config, source.tokenizer, source.id, source.name

The model class follows the entry's architecture (``model_class``); the tokenizer class follows the
catalogue's tokenizer kind (``load_tokenizer``: ``wordpiece`` -> WordPieceTokenizer, ``bpe`` ->
``core/bpe.py``'s BPETokenizer).

Synthetic sources tokenize with the MiniLM tokenizer and take ``d_model`` and ``n_heads``:

* ``deterministic``: SHA-256 hash embeddings + sinusoidal positions; weights Xavier-uniform from a fixed
  seed (numpy's frozen legacy RandomState stream: identical on numpy 1.17 and 2.x).
* ``random``: Xavier-uniform embeddings and weights, all from ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Union

import numpy as np

from .catalogue import ModelEntry
from .config import BERT_LAYER_NORM_EPS, BERT_MAX_POSITIONS, BERT_VOCAB_SIZE, ModelConfig
from .embeddings import xavier_uniform
from .encoder import Encoder, LazyModel
from .gpt2 import GPT2
from .llama import Llama
from .params import DictParams
from .weights import LAYER_PARTS, part_layout

MODEL_CLASSES = {"gpt2": GPT2, "llama": Llama}  # every other architecture: Encoder


def model_class(config: ModelConfig):
    """The class computing this architecture (all share LazyModel's interface)."""
    return MODEL_CLASSES.get(config.arch, Encoder)


def load_tokenizer(kind: str, data: bytes):
    """The tokenizer of a catalogue entry from its file's bytes: ``wordpiece`` or ``bpe`` (HF tokenizer.json
    or the compact form ``core/bpe.py`` writes)."""
    if kind == "bpe":
        from . import bpe  # noqa: PLC0415 - byte-level BPE (GPT-2, SmolLM2); imported only when needed

        if data[:1] == b"{":
            return bpe.BPETokenizer.from_json(data)
        return bpe.BPETokenizer.from_compact(data)
    from .tokenizer import WordPieceTokenizer  # noqa: PLC0415

    return WordPieceTokenizer.from_json(data)

DETERMINISTIC_SEED = 20170612  # "Attention Is All You Need" arXiv date


SYNTHETIC_KINDS = ("deterministic", "random")   # the synthetic sources' ids in the app and the CLI


@dataclass
class SyntheticSpec:
    kind: str = "deterministic"  # "deterministic" | "random"
    d_model: int = 64
    n_heads: int = 4
    seed: int = 0  # used by "random"
    n_layers: int = 1
    vocab_size: int = BERT_VOCAB_SIZE
    max_positions: int = BERT_MAX_POSITIONS

    @property
    def id(self) -> str:
        if self.kind == "random":
            return f"random-d{self.d_model}-h{self.n_heads}-s{self.seed}"
        return f"deterministic-d{self.d_model}-h{self.n_heads}"

    def config(self) -> ModelConfig:
        if self.kind not in SYNTHETIC_KINDS:
            raise ValueError(f"unknown synthetic source {self.kind!r}")
        if self.d_model <= 0 or self.n_heads <= 0 or self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a positive multiple of the number of heads ({self.n_heads})")
        return ModelConfig(d_model=self.d_model, n_layers=self.n_layers, n_heads=self.n_heads,
                           d_k=self.d_model // self.n_heads, max_positions=self.max_positions,
                           arch="synthetic", layer_norm_eps=BERT_LAYER_NORM_EPS, d_ff=4 * self.d_model,
                           vocab_size=self.vocab_size,
                           embeddings="hash" if self.kind == "deterministic" else "random", seed=self.seed)


def synthetic_weights(config: ModelConfig, seed: int) -> Dict[str, np.ndarray]:
    """Xavier-uniform projections (zero biases, unit LayerNorms) for every layer, from one seed."""
    rng = np.random.RandomState(int(seed) & 0xFFFFFFFF)
    out = {}
    for layer in range(config.n_layers):
        for part in LAYER_PARTS:
            for name, shape in part_layout(config, f"layer.{layer}.{part}").items():
                if len(shape) == 2:
                    out[name] = xavier_uniform(rng, shape)
                elif "LayerNorm.weight" in name:
                    out[name] = np.ones(shape, dtype=np.float32)
                else:
                    out[name] = np.zeros(shape, dtype=np.float32)
    return out


@dataclass
class ModelSource:
    id: str
    name: str
    config: ModelConfig
    encoder: LazyModel  # Encoder | GPT2 | Llama (the name is historical: decoders too)
    tokenizer: object
    entry: Optional[ModelEntry] = None

    @property
    def synthetic(self) -> bool:
        return self.entry is None

    @property
    def model(self) -> LazyModel:
        return self.encoder


def make_source(what: Union[ModelEntry, SyntheticSpec], tokenizer, store=None) -> ModelSource:
    """A catalogue entry (weights read from ``store``) or a SyntheticSpec (weights made here)."""
    if isinstance(what, SyntheticSpec):
        config = what.config()
        seed = DETERMINISTIC_SEED if what.kind == "deterministic" else what.seed
        encoder = Encoder(config, DictParams(synthetic_weights(config, seed)))
        name = f"{what.kind.capitalize()} (d_model {what.d_model}, {what.n_heads} heads)"
        return ModelSource(what.id, name, config, encoder, tokenizer, None)
    if store is None:
        raise ValueError("a catalogue model needs a WeightStore")
    params = store.params(what.id)
    config = what.config
    return ModelSource(what.id, what.name, config, model_class(config)(config, params), tokenizer, what)
