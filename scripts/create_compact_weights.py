#!/usr/bin/env python3
"""Derived models: per-head subsets of a built model's layer 0, and the tiny demo model.

    python scripts/create_compact_weights.py subsets --parent minilm-l6 [--heads 4 2 1]
    python scripts/create_compact_weights.py demo-tiny

Subsets (``<parent>-<k>head``) hold heads 0..k-1 of layer 0 (Q/K rows, V rows and the matching W_O
columns; b_O whole), sliced from the parent's verified files, so they equal the parent's slices exactly.
They share the parent's tokenizer and embedding files.  demo-tiny: 64-dim, 4 heads, 2 layers, weights
from ``pyapp.core.sources.synthetic_weights`` with the fixed deterministic seed, SHA-256 hash embeddings
(no embedding files).  Both rewrite their folders and their models/index.json entries reproducibly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from extract_model_weights import (  # noqa: E402
    CONFIG_KEYS,
    clean_model_dir,
    known,
    update_index,
    write_part,
)

from pyapp.core.catalogue import ModelEntry  # noqa: E402
from pyapp.core.files import load_local_catalogue, read_file  # noqa: E402
from pyapp.core.sources import DETERMINISTIC_SEED, synthetic_weights  # noqa: E402
from pyapp.core.store import WeightStore  # noqa: E402


def head_slice(tensors: Dict[str, np.ndarray], heads: List[int], d_k: int) -> Dict[str, np.ndarray]:
    """Rows (Q/K/V) and W_O columns of the chosen heads of layer 0."""
    cols = np.concatenate([np.arange(h * d_k, (h + 1) * d_k) for h in heads])
    out = {}
    for name, a in tensors.items():
        if name.endswith("attention.output.dense.weight"):
            out[name] = a[:, cols]  # (d_model, k*d_k)
        elif name.endswith("attention.output.dense.bias"):
            out[name] = a  # (d_model,)
        else:
            out[name] = a[cols]  # (k*d_k, d_model) or (k*d_k,)
    return out


def make_subset(models_dir: str, parent: ModelEntry, store: WeightStore, k: int) -> dict:
    model_id = f"{parent.id}-{k}head"
    spec = known(model_id) or dict(id=model_id, name=f"{parent.name} layer 0, {k} heads",
                                   head_subset=list(range(k)), description="")
    heads = list(spec["head_subset"])
    entry = dict(id=model_id, name=spec["name"], description=spec["description"], source=parent.source,
                 built=True, architecture=parent.architecture, d_model=parent.d_model, layers=1,
                 heads=len(heads), d_k=parent.d_k, max_positions=parent.max_positions, d_ff=0,
                 vocab_size=parent.vocab_size, layer_norm_eps=parent.layer_norm_eps,
                 embeddings=parent.embeddings, tokenizer=parent.tokenizer_path, shares=parent.id,
                 head_subset=heads, files={})
    cfg = ModelEntry(**{**{f: entry[f] for f in ("id", "name", "description", "architecture", "d_model",
                                                  "d_k", "max_positions", "d_ff", "vocab_size",
                                                  "layer_norm_eps", "embeddings")},
                        "n_layers": 1, "n_heads": len(heads)}).config
    clean_model_dir(models_dir, model_id)
    for part in ("qk", "vo"):
        f = parent.layer_file(0, part)
        data = read_file(store, f, models_dir)
        store.add(f.path, data)  # verified against the catalogue
        dtypes = {n: t["dtype"] for n, t in json.loads(data)["tensors"].items()}  # keep the parent's dtypes
        sliced = head_slice(store.tensors(f.path), heads, parent.d_k)
        entry["files"][f"layer.0.{part}"] = write_part(models_dir, model_id, f"layer.0.{part}",
                                                       f"{model_id}/layer0.{part}.json", cfg, sliced,
                                                       dtypes=dtypes)
    return entry


def make_demo_tiny(models_dir: str) -> dict:
    spec = known("demo-tiny")
    entry = {k: spec[k] for k in ("id", "name", "description", "source", *CONFIG_KEYS, "tokenizer")}
    entry["built"] = True
    cfg = ModelEntry(id=spec["id"], name=spec["name"], description="", architecture=spec["architecture"],
                     d_model=spec["d_model"], n_layers=spec["layers"], n_heads=spec["heads"], d_k=spec["d_k"],
                     max_positions=spec["max_positions"], d_ff=spec["d_ff"], embeddings="hash").config
    weights = synthetic_weights(cfg, DETERMINISTIC_SEED)
    clean_model_dir(models_dir, "demo-tiny")
    files = {}
    for layer in range(cfg.n_layers):
        for part in ("qk", "vo", "ffn"):
            files[f"layer.{layer}.{part}"] = write_part(models_dir, "demo-tiny", f"layer.{layer}.{part}",
                                                        f"demo-tiny/layer{layer}.{part}.json", cfg, weights,
                                                        dtype=lambda a: "float32")
    entry["files"] = files
    return entry


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["subsets", "demo-tiny"])
    ap.add_argument("--parent", default="minilm-l6", help="built model whose layer 0 is sliced")
    ap.add_argument("--heads", type=int, nargs="+", default=[4, 2, 1])
    ap.add_argument("--models-dir", default=os.path.join(ROOT, "models"))
    args = ap.parse_args(argv)
    if args.what == "demo-tiny":
        entries = [make_demo_tiny(args.models_dir)]
    else:
        cat = load_local_catalogue(args.models_dir)
        parent = cat.get(args.parent)
        if not parent.built:
            raise SystemExit(f"{args.parent} is not built: run extract_model_weights.py first")
        store = WeightStore(cat)
        entries = [make_subset(args.models_dir, parent, store, k) for k in args.heads]
    update_index(args.models_dir, entries)
    for e in entries:
        print(f"{e['id']}: {e['layers']} layers x {e['heads']} heads, {len(e['files'])} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
