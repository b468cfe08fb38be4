"""Embedding sources that need no weight files.

* ``hash_embeddings``: deterministic vectors from SHA-256 of the token id -- identical on every run,
  process and platform (Python's ``hash()`` is salted, so it is never used).
* ``random_embeddings``: Xavier-uniform vectors drawn from a seed (numpy's legacy ``RandomState``, whose
  streams are frozen across numpy versions, so numpy 1.17 in the browser and 2.x in CPython agree).
* ``sinusoidal_positions``: the paper's fixed position encoding, added to both.
"""

from __future__ import annotations

import hashlib
from typing import Sequence, Tuple

import numpy as np


def hash_vector(key: bytes, size: int) -> np.ndarray:
    """``size`` floats, uniform in [-sqrt 3, sqrt 3) (unit variance), from SHA-256 in counter mode."""
    blocks = (size * 2 + 31) // 32
    raw = b"".join(hashlib.sha256(key + b"#" + str(i).encode()).digest() for i in range(blocks))
    u = np.frombuffer(raw[: size * 2], dtype="<u2").astype(np.float64)  # (size,) in 0..65535
    return ((u + 0.5) / 65536.0 * 2.0 - 1.0) * np.sqrt(3.0)


def hash_embeddings(ids: Sequence[int], d_model: int) -> np.ndarray:
    """(n, d_model) float32: one SHA-256-derived vector per token id."""
    rows = [hash_vector(b"mhsa-token:%d" % int(i), d_model) for i in ids]
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), d_model)


def xavier_uniform(rng: np.random.RandomState, shape: Tuple[int, int]) -> np.ndarray:
    """Glorot/Xavier uniform for an (out, in) matrix: U(-a, a), a = sqrt(6 / (in + out))."""
    fan_out, fan_in = shape
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape).astype(np.float32)


def random_embeddings(ids: Sequence[int], d_model: int, seed: int) -> np.ndarray:
    """(n, d_model) float32 Xavier-uniform rows; row ``i`` depends only on (seed, i), not on the sentence.

    Scaled to unit variance like the other sources (a Xavier row of a (vocab, d) table would be tiny).
    """
    rows = [xavier_uniform(np.random.RandomState([int(seed) & 0xFFFFFFFF, int(i)]), (1, d_model))[0]
            for i in ids]
    out = np.asarray(rows, dtype=np.float32).reshape(len(rows), d_model)
    return (out / np.float32(np.sqrt(2.0 / (1 + d_model)))).astype(np.float32)


def sinusoidal_positions(n: int, d_model: int) -> np.ndarray:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(...): (n, d_model) float32."""
    pos = np.arange(n, dtype=np.float64)[:, None]  # (n, 1)
    i = np.arange(0, d_model, 2, dtype=np.float64)[None, :]  # (1, d/2)
    angle = pos / np.power(10000.0, i / d_model)  # (n, d/2)
    pe = np.zeros((n, d_model), dtype=np.float64)
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle[:, : d_model // 2])
    return pe.astype(np.float32)
