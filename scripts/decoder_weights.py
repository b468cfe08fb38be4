"""Decoder checkpoints -> the compact weight files (imported by extract_model_weights.py).

* a GGUF file of a Llama-architecture model (SmolLM2-135M-Instruct, Q4_1 matrices, Q8_0 embeddings):
  read with ``pyapp.core.gguf``; quantised tensors stay quantised (raw ggml blocks, dtype q4_1 / q8_0 in
  the weight files; dequantised by ``pyapp.core.quant`` when the app reads them).  llama.cpp stores the
  rows of Q and K permuted for its RoPE layout; they are put back in HF's order here (the same
  permutation transformers applies when it loads a GGUF), whole rows of blocks moving together.
* a GPT-2 / distilgpt2 Hugging Face checkpoint (``GPT2LMHeadModel``): names kept (``transformer.``
  dropped), matrices float16, vectors float32 (``--float32``: all float32).

The tokenizer file: HF tokenizer.json (GGUF: built from the file's metadata by transformers' converter).
"""

from __future__ import annotations

import os
import re
from typing import Dict, Tuple

import numpy as np

from pyapp.core import quant
from pyapp.core.config import ModelConfig
from pyapp.core.gguf import read_gguf
from pyapp.core.weights import HEAD_PART, LAYER_PARTS, Blocks, Tensor, part_layout

GGUF_LAYER = {"attn_norm.weight": "input_layernorm.weight", "attn_q.weight": "self_attn.q_proj.weight",
              "attn_k.weight": "self_attn.k_proj.weight", "attn_v.weight": "self_attn.v_proj.weight",
              "attn_output.weight": "self_attn.o_proj.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
              "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
              "ffn_down.weight": "mlp.down_proj.weight"}
GGUF_GLOBAL = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight"}


def expected_names(cfg: ModelConfig) -> list:
    """Every tensor name the model's files hold (tables whole), in file order."""
    from pyapp.core.weights import POSITION_TABLE, WORD_TABLE, table_name

    names = [n for n in (table_name(cfg, WORD_TABLE), table_name(cfg, POSITION_TABLE)) if n]
    for layer in range(cfg.n_layers):
        for part in LAYER_PARTS:
            names += list(part_layout(cfg, f"layer.{layer}.{part}"))
    return names + list(part_layout(cfg, HEAD_PART))


def check_complete(cfg: ModelConfig, tensors: Dict[str, Tensor]) -> Dict[str, Tensor]:
    names = expected_names(cfg)
    missing = [n for n in names if n not in tensors]
    if missing:
        raise SystemExit(f"checkpoint lacks {len(missing)} tensors, e.g. {missing[:3]}")
    return {n: tensors[n] for n in names}


# ----------------------------------------------------------------------------------------------- GGUF

def unpermute_rows(n_heads: int, rows: int) -> np.ndarray:
    """Row order that undoes llama.cpp's Q/K permutation: HF row r = GGUF row perm[r]."""
    dim = rows // n_heads // 2
    return np.arange(rows).reshape(n_heads, dim, 2).swapaxes(1, 2).reshape(-1)


def _tensor(t, rows_order=None) -> Tensor:
    """A GGUF tensor as stored here: Blocks for block formats, float32 otherwise (rows reordered)."""
    if t.dtype in quant.FORMATS:
        data = t.data if rows_order is None else quant.take_rows(t.dtype, t.data, t.shape[-1], rows_order)
        return Blocks(t.dtype, tuple(t.shape), data)
    a = t.numpy()
    return a if rows_order is None else a[rows_order]


def load_gguf(path: str) -> Tuple[ModelConfig, Dict[str, Tensor], dict]:
    with open(path, "rb") as fh:
        meta, raw = read_gguf(fh.read())
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise SystemExit(f"GGUF architecture {arch!r} is not supported (llama only)")
    heads, kv = int(meta["llama.attention.head_count"]), int(meta["llama.attention.head_count_kv"])
    d = int(meta["llama.embedding_length"])
    if "output.weight" in raw:
        raise SystemExit("only tied LM heads are supported (the GGUF has output.weight)")
    cfg = ModelConfig(d_model=d, n_layers=int(meta["llama.block_count"]), n_heads=heads, d_k=d // heads,
                      max_positions=int(meta["llama.context_length"]), arch="llama",
                      layer_norm_eps=float(np.float32(meta["llama.attention.layer_norm_rms_epsilon"])),
                      d_ff=int(meta["llama.feed_forward_length"]),
                      vocab_size=int(raw["token_embd.weight"].shape[0]), n_kv_heads=kv,
                      rope_theta=float(meta.get("llama.rope.freq_base", 10000.0)), tied_embeddings=True)
    out: Dict[str, Tensor] = {}
    for name, t in raw.items():
        if name in GGUF_GLOBAL:
            out[GGUF_GLOBAL[name]] = _tensor(t)
            continue
        m = re.match(r"blk\.(\d+)\.(.*)$", name)
        if not m or m.group(2) not in GGUF_LAYER:
            continue  # e.g. rope_freqs: not used by these models
        order = None
        if m.group(2) in ("attn_q.weight", "attn_k.weight"):
            order = unpermute_rows(heads if m.group(2) == "attn_q.weight" else kv, t.shape[0])
        out[f"model.layers.{m.group(1)}.{GGUF_LAYER[m.group(2)]}"] = _tensor(t, order)
    return cfg, check_complete(cfg, out), meta


def gguf_tokenizer_json(path: str) -> bytes:
    """HF tokenizer.json built from the GGUF metadata by transformers' converter (the reference's own)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(path)), gguf_file=os.path.basename(path))
    return tok.backend_tokenizer.to_str().encode("utf-8")


# ---------------------------------------------------------------------------------------------- GPT-2

def gpt2_to_internal(hf: dict, tensors: Dict[str, np.ndarray]) -> Tuple[ModelConfig, Dict[str, Tensor]]:
    """A GPT2Model / GPT2LMHeadModel state dict: names kept (``transformer.`` dropped), float32."""
    act = hf.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh"):
        raise SystemExit(f"unsupported activation {act!r} (GPT-2's tanh GELU only)")
    if not hf.get("tie_word_embeddings", True):
        raise SystemExit("only tied LM heads are supported")
    if hf.get("scale_attn_by_inverse_layer_idx") or hf.get("reorder_and_upcast_attn") or \
            not hf.get("scale_attn_weights", True):
        raise SystemExit("GPT-2 attention variants are not supported")
    d, heads = hf["n_embd"], hf["n_head"]
    cfg = ModelConfig(d_model=d, n_layers=hf["n_layer"], n_heads=heads, d_k=d // heads,
                      max_positions=hf["n_positions"], arch="gpt2",
                      layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5), d_ff=hf.get("n_inner") or 4 * d,
                      vocab_size=hf["vocab_size"], tied_embeddings=True)
    out = {re.sub(r"^transformer\.", "", k): np.asarray(v, dtype=np.float32) for k, v in tensors.items()
           if v.dtype.kind == "f"}
    return cfg, check_complete(cfg, out)
