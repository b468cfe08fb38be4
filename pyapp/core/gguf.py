"""A GGUF reader in pure Python + NumPy (GGUF v2/v3, little-endian): metadata and raw tensor bytes.

    header:   b"GGUF", version u32, tensor count u64, metadata count u64
    metadata: key (string), value type u32, value              # string = u64 length + UTF-8 bytes
    tensors:  name, n_dims u32, dims u64 * n_dims (innermost first), ggml type u32, offset u64
    data:     at the first multiple of ``general.alignment`` (default 32) after the tensor infos

ggml lists a tensor's dimensions innermost first: GGUF dims ``[576, 1536]`` is a (1536, 576) row-major
matrix (the ``nn.Linear`` (out, in) layout).  ``shape`` below is already row-major.  Block formats are
dequantised by ``core/quant.py``.  Used by the extraction script (CPython); reads a file's bytes, no I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from . import quant

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
GGML_TYPES = {0: "float32", 1: "float16", 2: "q4_0", 3: "q4_1", 8: "q8_0"}  # the ones handled here
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
            12: "<d"}  # GGUF value types; 8 = string, 9 = array
STRING, ARRAY = 8, 9


class GGUFError(ValueError):
    """Not a GGUF file this reader understands."""


@dataclass
class GGUFTensor:
    name: str
    shape: Tuple[int, ...]  # row-major (outermost first)
    dtype: str  # "float32" | "float16" | "q4_0" | "q4_1" | "q8_0"
    data: bytes  # the raw bytes as stored

    def numpy(self) -> np.ndarray:
        """float32 values of ``shape``."""
        if self.dtype in quant.FORMATS:
            return quant.dequantize(self.dtype, self.data, self.shape)
        return np.frombuffer(self.data, dtype="<f4" if self.dtype == "float32" else "<f2").reshape(
            self.shape).astype(np.float32)


class _Cursor:
    def __init__(self, data: bytes):
        self.data, self.pos = memoryview(data), 0

    def scalar(self, fmt: str):
        (v,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v

    def string(self) -> str:
        n = self.scalar("<Q")
        s = bytes(self.data[self.pos:self.pos + n]).decode("utf-8", errors="replace")
        self.pos += n
        return s

    def value(self, kind: int):
        if kind == STRING:
            return self.string()
        if kind == ARRAY:
            inner, n = self.scalar("<I"), self.scalar("<Q")
            return [self.value(inner) for _ in range(n)]
        if kind not in _SCALARS:
            raise GGUFError(f"unknown metadata value type {kind}")
        return self.scalar(_SCALARS[kind])


def read_gguf(data: bytes) -> Tuple[Dict[str, object], Dict[str, GGUFTensor]]:
    """(metadata, tensors by name) of a GGUF file's bytes."""
    if bytes(data[:4]) != MAGIC:
        raise GGUFError("not a GGUF file (bad magic)")
    c = _Cursor(data)
    c.pos = 4
    version = c.scalar("<I")
    if version not in (2, 3):
        raise GGUFError(f"GGUF version {version} is not supported (2 or 3)")
    n_tensors, n_meta = c.scalar("<Q"), c.scalar("<Q")
    meta: Dict[str, object] = {}
    for _ in range(n_meta):
        key = c.string()
        meta[key] = c.value(c.scalar("<I"))
    infos: List[Tuple[str, Tuple[int, ...], int, int]] = []
    for _ in range(n_tensors):
        name = c.string()
        dims = [c.scalar("<Q") for _ in range(c.scalar("<I"))]
        infos.append((name, tuple(reversed(dims)), c.scalar("<I"), c.scalar("<Q")))
    align = int(meta.get("general.alignment", DEFAULT_ALIGNMENT))
    start = (c.pos + align - 1) // align * align
    tensors = {}
    for name, shape, kind, offset in infos:
        if kind not in GGML_TYPES:
            raise GGUFError(f"tensor {name}: ggml type {kind} is not supported ({sorted(GGML_TYPES)})")
        dtype = GGML_TYPES[kind]
        size = (quant.quantized_size(dtype, shape) if dtype in quant.FORMATS
                else int(np.prod(shape, dtype=np.int64)) * (4 if dtype == "float32" else 2))
        lo = start + offset
        if lo + size > len(data):
            raise GGUFError(f"tensor {name} runs past the end of the file (truncated?)")
        tensors[name] = GGUFTensor(name, shape, dtype, bytes(data[lo:lo + size]))
    return meta, tensors
