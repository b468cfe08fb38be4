"""ggml's block-quantised formats, dequantised in NumPy (what GGUF files and the shipped SmolLM2 files hold).

A row of ``cols`` values (cols a multiple of 32) is ``cols / 32`` blocks of 32 values; a (rows, cols)
matrix is its rows' blocks one after another.  Scales are IEEE float16, little-endian.

=========  =====  ==========================================================  ========================
format     bytes  block layout                                                value of element i
=========  =====  ==========================================================  ========================
``q4_0``   18     d (f16), 16 bytes of nibbles                                d * (q_i - 8)
``q4_1``   20     d (f16), m (f16), 16 bytes of nibbles                       d * q_i + m
``q8_0``   34     d (f16), 32 int8                                            d * q_i
=========  =====  ==========================================================  ========================

Nibbles: byte j holds element j in its low 4 bits and element j + 16 in its high 4 bits (elements
0..15 are the low nibbles, 16..31 the high ones).  The arithmetic is float32 in the order ggml and the
``gguf`` package use (d * q + m), so the values are bit-identical to theirs.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

BLOCK = 32  # values per block
BLOCK_BYTES = {"q4_0": 18, "q4_1": 20, "q8_0": 34}
FORMATS = tuple(BLOCK_BYTES)


def quantized_size(fmt: str, shape: Tuple[int, ...]) -> int:
    """Bytes of a tensor of ``shape`` (last axis a multiple of 32) in block format ``fmt``."""
    count = int(np.prod(shape, dtype=np.int64))
    if not shape or shape[-1] % BLOCK:
        raise ValueError(f"{fmt}: the last axis of {list(shape)} is not a multiple of {BLOCK}")
    return count // BLOCK * BLOCK_BYTES[fmt]


def _scale(blocks: np.ndarray, offset: int) -> np.ndarray:
    """Column ``offset`` .. +2 of every block read as float16 -> float32: (n_blocks, 1)."""
    return np.ascontiguousarray(blocks[:, offset:offset + 2]).view("<f2").astype(np.float32)


def _nibbles(packed: np.ndarray) -> np.ndarray:
    """(n_blocks, 16) bytes -> (n_blocks, 32) uint8: the 16 low nibbles, then the 16 high nibbles."""
    return np.concatenate([packed & np.uint8(0x0F), packed >> np.uint8(4)], axis=1)


def dequantize(fmt: str, data: bytes, shape: Tuple[int, ...]) -> np.ndarray:
    """Raw blocks -> float32 array of ``shape``."""
    size = quantized_size(fmt, shape)
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size != size:
        raise ValueError(f"{fmt}: {raw.size} bytes for shape {list(shape)}, expected {size}")
    blocks = raw.reshape(-1, BLOCK_BYTES[fmt])  # (n_blocks, block bytes)
    if fmt == "q8_0":
        values = blocks[:, 2:].view(np.int8).astype(np.float32) * _scale(blocks, 0)  # (n_blocks, 32)
    elif fmt == "q4_1":
        q = _nibbles(blocks[:, 4:]).astype(np.float32)  # (n_blocks, 32) in 0..15
        values = _scale(blocks, 0) * q + _scale(blocks, 2)  # d * q + m
    elif fmt == "q4_0":
        q = _nibbles(blocks[:, 2:]).astype(np.int8) - np.int8(8)  # (n_blocks, 32) in -8..7
        values = _scale(blocks, 0) * q.astype(np.float32)
    else:
        raise ValueError(f"unknown block format {fmt!r} (known: {', '.join(FORMATS)})")
    return values.reshape(shape)


def row_bytes(fmt: str, cols: int) -> int:
    """Bytes of one row of ``cols`` values."""
    return quantized_size(fmt, (1, cols))


def take_rows(fmt: str, data: bytes, cols: int, rows) -> bytes:
    """The raw blocks of the chosen rows (in that order): rows of a quantised matrix stay whole blocks."""
    per_row = row_bytes(fmt, cols)
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, per_row)  # (rows, per_row)
    return raw[np.asarray(rows, dtype=np.int64)].tobytes()
