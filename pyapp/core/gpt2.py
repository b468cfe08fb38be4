"""GPT-2 (and distilgpt2), computed lazily layer by layer; names are the checkpoint's (``h.<l>.attn.c_attn``).

    x_0 = wte[ids] + wpe[0..n-1]                                  # learned positions
    h   = x + c_proj(MultiHead_causal(ln_1(x)))                   # c_attn fuses Q | K | V
    y   = h + mlp.c_proj(GELU_tanh(mlp.c_fc(ln_2(h))))            # "gelu_new"
    logits = ln_f(x_L) @ wte^T                                    # tied LM head

GPT-2's ``Conv1D`` stores weights (in, out) with y = x W + b; the attention core wants ``nn.Linear``'s
(out, in), so each weight is transposed once (a contiguous copy, cached per name).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .attention import AttentionWeights, linear
from .decoder import Decoder
from .layers import gelu_tanh, layer_norm
from .weights import gpt2_prefix


class GPT2(Decoder):
    """Lazy GPT-2 decoder (``config.arch == "gpt2"``)."""

    def __init__(self, config, params):
        super().__init__(config, params)
        self._linear: Dict[Tuple[str, int], np.ndarray] = {}  # (name, column block) -> (out, in) weight

    def as_linear(self, name: str, block: Optional[int] = None, blocks: int = 1) -> np.ndarray:
        """Conv1D (in, out) weight -> nn.Linear (out, in), or its ``block``-th of ``blocks`` column blocks."""
        key = (name, -1 if block is None else block)
        w = self._linear.get(key)
        if w is None:
            full = self.params.tensor(name)  # (in, out)
            width = full.shape[1] // blocks
            part = full if block is None else full[:, block * width:(block + 1) * width]  # (in, width)
            w = self._linear[key] = np.ascontiguousarray(part.T, dtype=np.float32)  # (width, in)
        return w

    def embed(self, ids: Sequence[int]) -> np.ndarray:
        n = self.check_length(ids)
        x = self.params.rows("wte.weight", [int(i) for i in ids])  # (n, d_model)
        return (x + self.params.rows("wpe.weight", list(range(n)))).astype(np.float32)  # (n, d_model)

    def attention_input(self, x: np.ndarray, layer: int) -> np.ndarray:
        p, pre = self.params, gpt2_prefix(layer)
        return layer_norm(x, p.tensor(pre + "ln_1.weight"), p.tensor(pre + "ln_1.bias"),
                          self.config.layer_norm_eps)  # (n, d_model)

    def attention_weights(self, layer: int, values: bool = True) -> AttentionWeights:
        """Q, K (and V) are column blocks 0, 1 (and 2) of the fused c_attn; W_O is attn.c_proj."""
        pre = gpt2_prefix(self._check_layer(layer))
        w, b = pre + "attn.c_attn.weight", self.params.tensor(pre + "attn.c_attn.bias")  # b: (3 * d_attn,)
        a = self.config.d_attn
        q, k = self.as_linear(w, 0, 3), self.as_linear(w, 1, 3)  # (d_attn, d_model) each
        v = self.as_linear(w, 2, 3) if values else None  # (d_attn, d_model)
        o = self.as_linear(pre + "attn.c_proj.weight") if values else None  # (d_model, d_attn)
        o_bias = self.params.tensor(pre + "attn.c_proj.bias") if values else None  # (d_model,)
        return AttentionWeights(q, b[:a], k, b[a:2 * a], v, b[2 * a:] if values else None, o, o_bias,
                                n_heads=self.config.n_heads)

    def block_output(self, x: np.ndarray, attention_output: np.ndarray, layer: int) -> np.ndarray:
        p, pre = self.params, gpt2_prefix(layer)
        h = x + attention_output  # (n, d_model)  residual
        f = layer_norm(h, p.tensor(pre + "ln_2.weight"), p.tensor(pre + "ln_2.bias"), self.config.layer_norm_eps)
        f = linear(f, self.as_linear(pre + "mlp.c_fc.weight"), p.tensor(pre + "mlp.c_fc.bias"))  # (n, d_ff)
        f = linear(gelu_tanh(f), self.as_linear(pre + "mlp.c_proj.weight"),
                   p.tensor(pre + "mlp.c_proj.bias"))  # (n, d_model)
        return h + f

    def value_names(self, layer: int) -> Tuple[str, ...]:
        pre = gpt2_prefix(layer)
        return pre + "attn.c_attn.weight", pre + "attn.c_proj.weight"

    def final_norm(self, h: np.ndarray) -> np.ndarray:
        return layer_norm(h, self.params.tensor("ln_f.weight"), self.params.tensor("ln_f.bias"),
                          self.config.layer_norm_eps)

    def clear(self) -> None:
        super().clear()
        self._linear.clear()
