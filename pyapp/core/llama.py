"""Llama-architecture decoders (SmolLM2), computed lazily layer by layer; names are HF's
(``model.layers.<l>.self_attn.q_proj.weight`` ...).

    x_0 = embed_tokens[ids]                                         # no position table: RoPE in attention
    h   = x + o_proj(MultiHead_causal(RMSNorm(x)))                  # input_layernorm; Q, K rotated (RoPE);
                                                                    # n_kv_heads K/V heads shared (GQA)
    y   = h + down_proj(SiLU(gate_proj(n)) * up_proj(n)),  n = RMSNorm(h)   # post_attention_layernorm, SwiGLU
    logits = RMSNorm(x_L) @ embed_tokens^T                          # model.norm; tied LM head
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from .attention import AttentionWeights, linear
from .decoder import Decoder
from .layers import rms_norm, silu
from .weights import llama_prefix


class Llama(Decoder):
    """Lazy Llama decoder (``config.arch == "llama"``)."""

    def embed(self, ids: Sequence[int]) -> np.ndarray:
        self.check_length(ids)
        return self.params.rows("model.embed_tokens.weight", [int(i) for i in ids]).astype(np.float32)  # (n, d)

    def attention_input(self, x: np.ndarray, layer: int) -> np.ndarray:
        w = self.params.tensor(llama_prefix(layer) + "input_layernorm.weight")  # (d_model,)
        return rms_norm(x, w, self.config.layer_norm_eps)  # (n, d_model)

    def attention_weights(self, layer: int, values: bool = True) -> AttentionWeights:
        p, pre, c = self.params, llama_prefix(self._check_layer(layer)), self.config
        q, k = p.tensor(pre + "self_attn.q_proj.weight"), p.tensor(pre + "self_attn.k_proj.weight")
        v = p.tensor(pre + "self_attn.v_proj.weight") if values else None  # (kv_heads*d_k, d_model)
        o = p.tensor(pre + "self_attn.o_proj.weight") if values else None  # (d_model, heads*d_k)
        return AttentionWeights(q, None, k, None, v, None, o, None, n_heads=c.n_heads, n_kv_heads=c.kv_heads,
                                rope_theta=c.rope_theta)

    def block_output(self, x: np.ndarray, attention_output: np.ndarray, layer: int) -> np.ndarray:
        p, pre = self.params, llama_prefix(layer)
        h = x + attention_output  # (n, d_model)  residual
        n = rms_norm(h, p.tensor(pre + "post_attention_layernorm.weight"), self.config.layer_norm_eps)
        gate = silu(linear(n, p.tensor(pre + "mlp.gate_proj.weight"), None))  # (n, d_ff)
        gate *= linear(n, p.tensor(pre + "mlp.up_proj.weight"), None)  # (n, d_ff)  SwiGLU
        return h + linear(gate, p.tensor(pre + "mlp.down_proj.weight"), None)  # (n, d_model)

    def value_names(self, layer: int) -> Tuple[str, ...]:
        pre = llama_prefix(layer)
        return pre + "self_attn.v_proj.weight", pre + "self_attn.o_proj.weight"

    def final_norm(self, h: np.ndarray) -> np.ndarray:
        return rms_norm(h, self.params.tensor("model.norm.weight"), self.config.layer_norm_eps)
