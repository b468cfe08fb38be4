"""The compact weight-file formats and the parameter layout of each architecture (no I/O here).

Format 1 (encoders' files, ``*.json``) is UTF-8 JSON::

    {"format": "mhsa-weights/1", "model": "minilm-l6", "part": "layer.0.qk",
     "tensors": {"encoder.layer.0.attention.self.query.weight":
                     {"dtype": "float16", "shape": [384, 384], "data": "<base64 of little-endian bytes>"},
                 ...}}

Format 2 (decoders' files, ``*.bin``: no base64, a third smaller) is binary::

    b"MHSAWGT2", header length H (u32 little-endian), H bytes of UTF-8 JSON header, then the data:
    {"format": "mhsa-weights/2", "model", "part",
     "tensors": {name: {"dtype", "shape", "offset", "nbytes"}}}    # offset from the start of the data
    (header padded with spaces and each tensor with zero bytes to multiples of 8)

dtypes: ``float16``, ``float32`` (little-endian), and ggml's block formats ``q4_0``, ``q4_1``, ``q8_0``
(``core/quant.py``: raw blocks, shape = the logical (rows, cols); kept quantised by the store and
dequantised to float32 when a model reads them).

Chunk files of a row-split table (``embeddings.word.<i>``, ``embeddings.position.<i>``) hold rows
``i*per_file .. (i+1)*per_file - 1`` of the table under the table's name.

Parts (what a view fetches); names are the checkpoint's (BERT's internal names for the encoders):

===========================  ==========================================================================
``embeddings.norm``          bert/distilbert: embeddings.LayerNorm.* (+ BERT: token_type_embeddings row 0)
``embeddings.word.<i>``      rows of the word table: embeddings.word_embeddings.weight | wte.weight (gpt2)
                             | model.embed_tokens.weight (llama)
``embeddings.position.<i>``  rows of the position table: embeddings.position_embeddings.weight |
                             wpe.weight (gpt2); none for llama (RoPE)
``layer.<l>.qk``             bert: encoder.layer.<l>.attention.self.{query,key}.*
                             gpt2: h.<l>.ln_1.*, h.<l>.attn.c_attn.* (Conv1D (in, out), Q|K|V fused: all three)
                             llama: model.layers.<l>.input_layernorm.weight, self_attn.{q,k}_proj.weight
``layer.<l>.vo``             bert: attention.self.value.*, attention.output.dense.*
                             gpt2: h.<l>.attn.c_proj.*;  llama: self_attn.{v,o}_proj.weight
``layer.<l>.ffn``            bert: attention.output.LayerNorm.*, intermediate.dense.*, output.dense.*,
                             output.LayerNorm.*;  gpt2: h.<l>.ln_2.*, h.<l>.mlp.{c_fc,c_proj}.*
                             llama: post_attention_layernorm.weight, mlp.{gate,up,down}_proj.weight
``head``                     decoders: the final norm, ln_f.* | model.norm.weight (the LM head is the
                             word table: tied)
===========================  ==========================================================================

The encoders' extraction maps DistilBERT's keys (``transformer.layer.<l>.attention.q_lin.weight``,
``sa_layer_norm``, ``ffn.lin1``, ``output_layer_norm`` ...) onto BERT's names; GPT-2 and Llama keep
their own (``transformer.`` dropped from GPT-2's).
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from . import quant

FORMAT = "mhsa-weights/1"
FORMAT_BINARY = "mhsa-weights/2"
MAGIC = b"MHSAWGT2"
DTYPES = {"float16": "<f2", "float32": "<f4"}
BLOCK_DTYPES = quant.FORMATS  # "q4_0", "q4_1", "q8_0"
LAYER_PARTS = ("qk", "vo", "ffn")
HEAD_PART = "head"  # final norm before the (tied) LM head: next-token prediction only
WORD_TABLE, POSITION_TABLE = "embeddings.word", "embeddings.position"


class WeightFileError(Exception):
    """A catalogue file is missing, truncated or corrupt.  The message names the model and the file."""

    def __init__(self, model: str, path: str, problem: str):
        self.model, self.path, self.problem = model, path, problem
        super().__init__(f"model {model!r}: weight file {path} {problem}")


@dataclass
class Blocks:
    """A block-quantised tensor as stored: ``fmt`` (``core/quant.py``), logical ``shape``, raw bytes."""

    fmt: str
    shape: Tuple[int, ...]
    data: bytes

    def dequantize(self) -> np.ndarray:
        return quant.dequantize(self.fmt, self.data, self.shape)  # float32, shape

    def rows(self, rows) -> np.ndarray:
        """float32 values of the chosen rows of a matrix: (len(rows), cols)."""
        cols = self.shape[-1]
        return quant.dequantize(self.fmt, quant.take_rows(self.fmt, self.data, cols, rows), (len(rows), cols))

    @property
    def nbytes(self) -> int:
        return len(self.data)


Tensor = Union[np.ndarray, Blocks]


# ----------------------------------------------------------------------------------------- layouts

def layer_prefix(layer: int) -> str:
    """BERT-family layer prefix (the encoders' internal names)."""
    return f"encoder.layer.{layer}."


def gpt2_prefix(layer: int) -> str:
    return f"h.{layer}."


def llama_prefix(layer: int) -> str:
    return f"model.layers.{layer}."


def table_name(config, table: str) -> Optional[str]:
    """Tensor name of a row-split table (``embeddings.word`` / ``embeddings.position``), None if the
    architecture has none (Llama: no position table)."""
    names = {"gpt2": ("wte.weight", "wpe.weight"), "llama": ("model.embed_tokens.weight", None)}.get(
        config.arch, ("embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"))
    return names[0] if table == WORD_TABLE else names[1] if table == POSITION_TABLE else None


def part_layout(config, part: str, rows: Tuple[int, int] = (0, 0)) -> Dict[str, Tuple[int, ...]]:
    """Tensor names and shapes a part must contain for this ModelConfig (``rows``: chunk row range)."""
    for table in (WORD_TABLE, POSITION_TABLE):
        name = table_name(config, table)
        if name and part.startswith(table + "."):
            return {name: (rows[1] - rows[0], config.d_model)}
    fields = part.split(".")
    layer = int(fields[1]) if len(fields) == 3 and fields[0] == "layer" and fields[2] in LAYER_PARTS else -1
    layout = {"gpt2": _gpt2_layout, "llama": _llama_layout}.get(config.arch, _bert_layout)(
        config, fields[2] if layer >= 0 else part, layer)
    if layout is None:
        raise ValueError(f"unknown part {part!r} for a {config.arch} model")
    return layout


def _bert_layout(config, part: str, layer: int) -> Optional[Dict[str, Tuple[int, ...]]]:
    d, a, f, p = config.d_model, config.d_attn, config.d_ff, layer_prefix(layer)
    if part == "embeddings.norm":
        out = {"embeddings.LayerNorm.weight": (d,), "embeddings.LayerNorm.bias": (d,)}
        if config.arch == "bert":
            out["embeddings.token_type_embeddings.weight"] = (1, d)
        return out
    if layer < 0:
        return None
    if part == "qk":
        return {p + "attention.self.query.weight": (a, d), p + "attention.self.query.bias": (a,),
                p + "attention.self.key.weight": (a, d), p + "attention.self.key.bias": (a,)}
    if part == "vo":
        return {p + "attention.self.value.weight": (a, d), p + "attention.self.value.bias": (a,),
                p + "attention.output.dense.weight": (d, a), p + "attention.output.dense.bias": (d,)}
    return {p + "attention.output.LayerNorm.weight": (d,), p + "attention.output.LayerNorm.bias": (d,),
            p + "intermediate.dense.weight": (f, d), p + "intermediate.dense.bias": (f,),
            p + "output.dense.weight": (d, f), p + "output.dense.bias": (d,),
            p + "output.LayerNorm.weight": (d,), p + "output.LayerNorm.bias": (d,)}


def _gpt2_layout(config, part: str, layer: int) -> Optional[Dict[str, Tuple[int, ...]]]:
    """GPT-2's Conv1D weights are (in, out): y = x W + b."""
    d, a, f, p = config.d_model, config.d_attn, config.d_ff, gpt2_prefix(layer)
    if part == HEAD_PART:
        return {"ln_f.weight": (d,), "ln_f.bias": (d,)}
    if layer < 0:
        return None
    if part == "qk":
        return {p + "ln_1.weight": (d,), p + "ln_1.bias": (d,), p + "attn.c_attn.weight": (d, 3 * a),
                p + "attn.c_attn.bias": (3 * a,)}
    if part == "vo":
        return {p + "attn.c_proj.weight": (a, d), p + "attn.c_proj.bias": (d,)}
    return {p + "ln_2.weight": (d,), p + "ln_2.bias": (d,), p + "mlp.c_fc.weight": (d, f), p + "mlp.c_fc.bias": (f,),
            p + "mlp.c_proj.weight": (f, d), p + "mlp.c_proj.bias": (d,)}


def _llama_layout(config, part: str, layer: int) -> Optional[Dict[str, Tuple[int, ...]]]:
    d, a, kv, f, p = config.d_model, config.d_attn, config.d_kv, config.d_ff, llama_prefix(layer)
    if part == HEAD_PART:
        return {"model.norm.weight": (d,)}
    if layer < 0:
        return None
    if part == "qk":
        return {p + "input_layernorm.weight": (d,), p + "self_attn.q_proj.weight": (a, d),
                p + "self_attn.k_proj.weight": (kv, d)}
    if part == "vo":
        return {p + "self_attn.v_proj.weight": (kv, d), p + "self_attn.o_proj.weight": (d, a)}
    return {p + "post_attention_layernorm.weight": (d,), p + "mlp.gate_proj.weight": (f, d),
            p + "mlp.up_proj.weight": (f, d), p + "mlp.down_proj.weight": (d, f)}


# ------------------------------------------------------------------------------------ encode / decode

def _raw(array: Tensor, dtype: str) -> Tuple[List[int], bytes]:
    """(shape, little-endian bytes) of one tensor in ``dtype``."""
    if dtype in BLOCK_DTYPES:
        if not isinstance(array, Blocks) or array.fmt != dtype:
            raise ValueError(f"a {dtype} tensor must be given as its Blocks")
        return [int(s) for s in array.shape], bytes(array.data)
    data = np.ascontiguousarray(np.asarray(array), dtype=DTYPES[dtype])
    return [int(s) for s in data.shape], data.tobytes()


def encode_tensor(array: Tensor, dtype: str) -> dict:
    shape, raw = _raw(array, dtype)
    return {"dtype": dtype, "shape": shape, "data": base64.b64encode(raw).decode("ascii")}


def encode_weight_file(model: str, part: str, tensors: List[Tuple[str, Tensor, str]],
                       binary: bool = False) -> bytes:
    """Serialise ``[(name, array or Blocks, dtype), ...]`` deterministically (same input -> same bytes).
    ``binary``: format 2 (see the module docstring), else format 1 (JSON + base64)."""
    if not binary:
        doc = {"format": FORMAT, "model": model, "part": part,
               "tensors": {name: encode_tensor(array, dtype) for name, array, dtype in tensors}}
        return (json.dumps(doc, separators=(",", ":")) + "\n").encode("utf-8")
    header, chunks, offset = {}, [], 0
    for name, array, dtype in tensors:
        shape, raw = _raw(array, dtype)
        header[name] = {"dtype": dtype, "shape": shape, "offset": offset, "nbytes": len(raw)}
        chunks.append(raw + b"\0" * (-len(raw) % 8))
        offset += len(chunks[-1])
    text = json.dumps({"format": FORMAT_BINARY, "model": model, "part": part, "tensors": header},
                      separators=(",", ":")).encode("utf-8")
    text += b" " * (-(len(MAGIC) + 4 + len(text)) % 8)
    return MAGIC + struct.pack("<I", len(text)) + text + b"".join(chunks)


def _parse(data: bytes) -> Tuple[dict, Optional[memoryview]]:
    """(document, binary data section or None for format 1); ValueError etc. when malformed."""
    if data[:len(MAGIC)] == MAGIC:
        (n,) = struct.unpack_from("<I", data, len(MAGIC))
        start = len(MAGIC) + 4
        doc = json.loads(bytes(data[start:start + n]).decode("utf-8"))
        if doc.get("format") != FORMAT_BINARY:
            raise ValueError(f"format {doc.get('format')!r}")
        return doc, memoryview(data)[start + n:]
    doc = json.loads(data.decode("utf-8"))
    if doc.get("format") != FORMAT:
        raise ValueError(f"format {doc.get('format')!r}")
    return doc, None


def _tensor_bytes(t: dict, blob: Optional[memoryview]) -> bytes:
    if blob is None:
        return base64.b64decode(t["data"].encode("ascii"), validate=True)
    lo, n = int(t["offset"]), int(t["nbytes"])
    if lo < 0 or n < 0 or lo + n > len(blob):
        raise ValueError("data out of range")
    return bytes(blob[lo:lo + n])


def decode_weight_file(data: bytes, model: str, path: str,
                       expected: Dict[str, Tuple[int, ...]]) -> Dict[str, Tensor]:
    """Parse and check a weight file (either format) against the expected names/shapes.

    float16/float32 tensors come out as float32 arrays; block-quantised ones as ``Blocks`` (checked,
    still quantised: ``.dequantize()`` when needed)."""
    try:
        doc, blob = _parse(bytes(data))
        tensors = doc["tensors"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, struct.error) as e:
        raise WeightFileError(model, path, f"is not a valid weight file ({e})") from None
    if sorted(tensors) != sorted(expected):
        raise WeightFileError(model, path, f"holds tensors {sorted(tensors)}, expected {sorted(expected)}")
    out: Dict[str, Tensor] = {}
    for name, shape in expected.items():
        t = tensors[name]
        dtype = t.get("dtype") if isinstance(t, dict) else None
        if dtype not in DTYPES and dtype not in BLOCK_DTYPES:
            raise WeightFileError(model, path, f"has unsupported dtype {dtype!r} for {name}")
        if tuple(t.get("shape") or ()) != tuple(shape):
            raise WeightFileError(model, path, f"has shape {t.get('shape')} for {name}, expected {list(shape)}")
        try:
            raw = _tensor_bytes(t, blob)
        except (ValueError, KeyError, AttributeError, TypeError):
            raise WeightFileError(model, path, f"has corrupt data in {name}") from None
        if dtype in BLOCK_DTYPES:
            try:
                want = quant.quantized_size(dtype, shape)
            except ValueError as e:
                raise WeightFileError(model, path, f"has a bad {dtype} shape for {name} ({e})") from None
        else:
            want = int(np.prod(shape, dtype=np.int64)) * np.dtype(DTYPES[dtype]).itemsize
        if len(raw) != want:
            raise WeightFileError(model, path, f"has {len(raw)} data bytes for {name} {dtype} {list(shape)}, "
                                               f"expected {want}")
        if dtype in BLOCK_DTYPES:
            out[name] = Blocks(dtype, tuple(shape), raw)
        else:
            out[name] = np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(shape).astype(np.float32)
    return out
