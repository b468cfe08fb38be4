"""ModelConfig: the shape of a model, shared by the data modules (catalogue, store, weights) and the maths.

A leaf module (imports nothing of the package) so the data modules need not import a compute module.
Architectures (``arch``):

=============  ===================================================================================
``bert``       BERT encoder: post-LayerNorm blocks, learned positions + token type 0, exact erf GELU
``distilbert`` DistilBERT encoder: like BERT without token types
``synthetic``  toy encoders made on the spot (hash or random embeddings + sinusoidal positions)
``gpt2``       GPT-2 decoder: pre-LayerNorm blocks, learned positions, GELU (tanh form), tied LM head
``llama``      Llama decoder (SmolLM2): pre-RMSNorm blocks, RoPE, grouped-query attention, SwiGLU,
               tied LM head
=============  ===================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

BERT_VOCAB_SIZE = 30522  # defaults: BERT's (the catalogue's oldest entries omit them)
BERT_MAX_POSITIONS = 512
BERT_LAYER_NORM_EPS = 1e-12
ENCODER_ARCHS = ("bert", "distilbert", "synthetic")
DECODER_ARCHS = ("gpt2", "llama")


@dataclass
class ModelConfig:
    d_model: int
    n_layers: int
    n_heads: int
    d_k: int
    max_positions: int = BERT_MAX_POSITIONS
    arch: str = "bert"  # one of ENCODER_ARCHS + DECODER_ARCHS
    layer_norm_eps: float = BERT_LAYER_NORM_EPS  # eps of the LayerNorms (bert, distilbert, gpt2) or RMSNorms (llama)
    d_ff: int = 0  # feed-forward width (0: no feed-forward, attention-only model)
    vocab_size: int = BERT_VOCAB_SIZE
    embeddings: str = "table"  # "table" (rows of a word table (+ positions)) | "hash" | "random"
    seed: int = 0  # for "random" embeddings
    n_kv_heads: int = 0  # key/value heads of grouped-query attention (0: one per query head)
    rope_theta: float = 0.0  # base of the rotary position angles (0: no RoPE, learned positions)
    tied_embeddings: bool = False  # the LM head is the word-embedding table (next-token prediction)
    extra: Dict[str, object] = field(default_factory=dict)

    @property
    def d_attn(self) -> int:
        """Width of the concatenated heads (= d_model unless the model is a head subset)."""
        return self.n_heads * self.d_k

    @property
    def kv_heads(self) -> int:
        """Number of distinct key/value heads (= n_heads without grouped-query attention)."""
        return self.n_kv_heads or self.n_heads

    @property
    def d_kv(self) -> int:
        """Width of the K (and V) projection: kv_heads * d_k."""
        return self.kv_heads * self.d_k

    @property
    def is_decoder(self) -> bool:
        return self.arch in DECODER_ARCHS

    @property
    def causal_only(self) -> bool:
        """Decoders are trained with the causal mask: it is part of the model, always on (``causal=False``
        is ignored by their ``trace``/``attentions``/``layer_input``; a view should not offer it)."""
        return self.is_decoder
