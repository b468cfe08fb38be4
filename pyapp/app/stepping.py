"""The steps of the Step-by-step tab, derived from the model in one place.

An encoder (BERT, DistilBERT, synthetic) has the paper's nine steps.  A causal decoder shows its own where
they differ: the block's input norm (RMSNorm for Llama, LayerNorm for GPT-2) with the embeddings, Q/K/V
with grouped-query attention as it is, a RoPE step when Q and K are rotated by position (Llama), and the
causal mask as a step of its own (it is part of the model, not a lens).

    step_keys(arch, rope) -> ("tokens", "embed", "qkv", ["rope"], "scores", "scale", ["mask"], "softmax",
                              "values", "concat", "output")

``MAX_STEPS`` bounds the ``step`` in URLs (a link may name any model); a model's own count is
``len(step_keys(...))`` and the page clamps to it at the first draw.
"""

from __future__ import annotations

from typing import Dict, Tuple

from ..core.config import DECODER_ARCHS

ENCODER_STEPS = ("tokens", "embed", "qkv", "scores", "scale", "softmax", "values", "concat", "output")
GPT2_STEPS = ("tokens", "embed", "qkv", "scores", "scale", "mask", "softmax", "values", "concat", "output")
ROPE_STEPS = ("tokens", "embed", "qkv", "rope", "scores", "scale", "mask", "softmax", "values", "concat",
              "output")
MAX_STEPS = max(len(ENCODER_STEPS), len(GPT2_STEPS), len(ROPE_STEPS))

TITLES: Dict[str, str] = {
    "tokens": "Input tokens",
    "embed": "Token embeddings",
    "qkv": "Linear projections Q, K, V",
    "rope": "Rotary positions (RoPE)",
    "scores": "Scores Q·Kᵀ",
    "scale": "Scaling by √d_k",
    "mask": "Causal mask",
    "softmax": "Softmax",
    "values": "Attention × values",
    "concat": "Concatenate the heads",
    "output": "Output projection",
}
DECODER_TITLES: Dict[Tuple[str, str], str] = {
    ("llama", "embed"): "Embeddings → RMSNorm",
    ("gpt2", "embed"): "Embeddings → LayerNorm",
    ("llama", "qkv"): "Q, K, V (grouped-query)",
}


def step_keys(arch: str = "", rope: bool = False) -> Tuple[str, ...]:
    """The steps of a model: ``arch`` is its ModelConfig.arch, ``rope`` whether Q and K are rotated."""
    if arch not in DECODER_ARCHS:
        return ENCODER_STEPS
    return ROPE_STEPS if rope else GPT2_STEPS


def step_title(key: str, arch: str = "") -> str:
    return DECODER_TITLES.get((arch, key), TITLES[key])


def step_titles(arch: str = "", rope: bool = False) -> Tuple[str, ...]:
    return tuple(step_title(k, arch) for k in step_keys(arch, rope))
