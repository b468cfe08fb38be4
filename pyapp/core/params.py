"""Where a model reads its parameters: the small ``params`` interface, and an in-memory implementation.

A model never does I/O: it asks ``params`` for tensors by their checkpoint names::

    params.has(name) -> bool
    params.tensor(name) -> np.ndarray                  # float32; WeightsMissing if its file is not loaded
    params.rows(name, ids) -> (len(ids), width)        # rows of a (row-chunked) table
    params.row_blocks(name) -> iterator of (first_row, (rows, width) block) covering the whole table

``DictParams`` (here) holds arrays in memory (synthetic sources, tests, scripts); ``store.StoreParams``
answers from the verified weight files of a WeightStore.
"""

from __future__ import annotations

from typing import Dict, Iterator, Sequence, Tuple

import numpy as np


class WeightsMissing(KeyError):
    """A parameter needed for this computation has not been loaded yet (ask the store what is missing)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "weights missing"


class DictParams:
    """Parameters held in memory (synthetic sources, tests, scripts)."""

    def __init__(self, tensors: Dict[str, np.ndarray]):
        self.tensors = {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}

    def has(self, name: str) -> bool:
        return name in self.tensors

    def tensor(self, name: str) -> np.ndarray:
        try:
            return self.tensors[name]
        except KeyError:
            raise WeightsMissing(f"weights not loaded: {name}") from None

    def rows(self, name: str, ids: Sequence[int]) -> np.ndarray:
        return self.tensor(name)[np.asarray(ids, dtype=np.int64)]

    def row_blocks(self, name: str) -> Iterator[Tuple[int, np.ndarray]]:
        yield 0, self.tensor(name)
