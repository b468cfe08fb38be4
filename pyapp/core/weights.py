"""The compact weight-file format and the internal parameter layout (no I/O here).

A weight file is UTF-8 JSON::

    {"format": "mhsa-weights/1", "model": "minilm-l6", "part": "layer.0.qk",
     "tensors": {"encoder.layer.0.attention.self.query.weight":
                     {"dtype": "float16", "shape": [384, 384], "data": "<base64 of little-endian bytes>"},
                 ...}}

Chunk files of a row-split table (``embeddings.word.<i>``, ``embeddings.position.<i>``) hold rows
``i*per_file .. (i+1)*per_file - 1`` of the table under the table's name.

Parts (what a view fetches):

===========================  =========================================================================
``embeddings.norm``          embeddings.LayerNorm.{weight,bias} (+ BERT: token_type_embeddings row 0)
``embeddings.word.<i>``      rows of embeddings.word_embeddings.weight
``embeddings.position.<i>``  rows of embeddings.position_embeddings.weight
``layer.<l>.qk``             attention.self.{query,key}.{weight,bias}
``layer.<l>.vo``             attention.self.value.*, attention.output.dense.*
``layer.<l>.ffn``            attention.output.LayerNorm.*, intermediate.dense.*, output.dense.*,
                             output.LayerNorm.*  (everything else of the block)
===========================  =========================================================================

Internal names are BERT's (``encoder.layer.<l>.attention.self.query.weight`` ...); the extraction script
maps DistilBERT's keys (``transformer.layer.<l>.attention.q_lin.weight``, ``sa_layer_norm``, ``ffn.lin1``,
``output_layer_norm`` ...) onto them.
"""

from __future__ import annotations

import base64
import json
from typing import Dict, List, Tuple

import numpy as np

FORMAT = "mhsa-weights/1"
DTYPES = {"float16": "<f2", "float32": "<f4"}
LAYER_PARTS = ("qk", "vo", "ffn")


class WeightFileError(Exception):
    """A catalogue file is missing, truncated or corrupt.  The message names the model and the file."""

    def __init__(self, model: str, path: str, problem: str):
        self.model, self.path, self.problem = model, path, problem
        super().__init__(f"model {model!r}: weight file {path} {problem}")


def layer_prefix(layer: int) -> str:
    return f"encoder.layer.{layer}."


def part_layout(config, part: str, rows: Tuple[int, int] = (0, 0)) -> Dict[str, Tuple[int, ...]]:
    """Tensor names and shapes a part must contain for this ModelConfig (``rows``: chunk row range)."""
    d, a, f = config.d_model, config.d_attn, config.d_ff
    if part == "embeddings.norm":
        out = {"embeddings.LayerNorm.weight": (d,), "embeddings.LayerNorm.bias": (d,)}
        if config.arch == "bert":
            out["embeddings.token_type_embeddings.weight"] = (1, d)
        return out
    if part.startswith("embeddings.word."):
        return {"embeddings.word_embeddings.weight": (rows[1] - rows[0], d)}
    if part.startswith("embeddings.position."):
        return {"embeddings.position_embeddings.weight": (rows[1] - rows[0], d)}
    fields = part.split(".")
    if len(fields) == 3 and fields[0] == "layer" and fields[2] in LAYER_PARTS:
        p = layer_prefix(int(fields[1]))
        if fields[2] == "qk":
            return {p + "attention.self.query.weight": (a, d), p + "attention.self.query.bias": (a,),
                    p + "attention.self.key.weight": (a, d), p + "attention.self.key.bias": (a,)}
        if fields[2] == "vo":
            return {p + "attention.self.value.weight": (a, d), p + "attention.self.value.bias": (a,),
                    p + "attention.output.dense.weight": (d, a), p + "attention.output.dense.bias": (d,)}
        return {p + "attention.output.LayerNorm.weight": (d,), p + "attention.output.LayerNorm.bias": (d,),
                p + "intermediate.dense.weight": (f, d), p + "intermediate.dense.bias": (f,),
                p + "output.dense.weight": (d, f), p + "output.dense.bias": (d,),
                p + "output.LayerNorm.weight": (d,), p + "output.LayerNorm.bias": (d,)}
    raise ValueError(f"unknown part {part!r}")


def encode_tensor(array: np.ndarray, dtype: str) -> dict:
    data = np.ascontiguousarray(np.asarray(array), dtype=DTYPES[dtype])
    return {"dtype": dtype, "shape": [int(s) for s in data.shape],
            "data": base64.b64encode(data.tobytes()).decode("ascii")}


def encode_weight_file(model: str, part: str, tensors: List[Tuple[str, np.ndarray, str]]) -> bytes:
    """Serialise ``[(name, array, dtype), ...]`` deterministically (same input -> same bytes)."""
    doc = {"format": FORMAT, "model": model, "part": part,
           "tensors": {name: encode_tensor(array, dtype) for name, array, dtype in tensors}}
    return (json.dumps(doc, separators=(",", ":")) + "\n").encode("utf-8")


def decode_weight_file(data: bytes, model: str, path: str,
                       expected: Dict[str, Tuple[int, ...]]) -> Dict[str, np.ndarray]:
    """Parse and check a weight file against the expected names/shapes; float32 arrays out."""
    try:
        doc = json.loads(data.decode("utf-8"))
        tensors = doc["tensors"]
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise WeightFileError(model, path, f"is not a valid weight file ({e})") from None
    if sorted(tensors) != sorted(expected):
        raise WeightFileError(model, path, f"holds tensors {sorted(tensors)}, expected {sorted(expected)}")
    out = {}
    for name, shape in expected.items():
        t = tensors[name]
        dtype = t.get("dtype") if isinstance(t, dict) else None
        if dtype not in DTYPES:
            raise WeightFileError(model, path, f"has unsupported dtype {dtype!r} for {name}")
        if tuple(t.get("shape") or ()) != tuple(shape):
            raise WeightFileError(model, path, f"has shape {t.get('shape')} for {name}, expected {list(shape)}")
        try:
            raw = base64.b64decode(t["data"].encode("ascii"), validate=True)
        except (ValueError, KeyError, AttributeError, TypeError):
            raise WeightFileError(model, path, f"has corrupt base64 data in {name}") from None
        count = int(np.prod(shape, dtype=np.int64))
        if len(raw) != count * np.dtype(DTYPES[dtype]).itemsize:
            raise WeightFileError(model, path, f"has {len(raw)} data bytes for {name} {dtype} {list(shape)}, expected {count * np.dtype(DTYPES[dtype]).itemsize}")
        out[name] = np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(shape).astype(np.float32)
    return out
