"""A bounded cache: a dict that forgets its least recently used entries beyond a count and/or a byte
budget. Pure Python (``nbytes`` reads numpy arrays' sizes).

``LRU(maxsize)`` keeps at most ``maxsize`` entries; ``LRU(maxbytes=B)`` keeps the entries whose sizes
(``sizeof(value)``, default ``nbytes``: the bytes of every distinct numpy buffer the value holds) add up to at
most ``B``: older entries are forgotten first, and a value larger than the whole budget is not kept at all
(the caller still has it), so the cache never holds more than its budget.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any, Callable, Dict, Generic, Hashable, Iterator, Optional, Set, TypeVar

import numpy as np

V = TypeVar("V")


def nbytes(value: Any, _seen: Optional[Set[int]] = None) -> int:
    """Bytes of the numpy buffers ``value`` holds (arrays, and those inside dataclasses, dicts, lists, tuples
    and objects with an ``nbytes`` integer); each buffer counts once, a view counts its whole base array."""
    seen = set() if _seen is None else _seen
    if value is None or isinstance(value, (str, bytes, int, float, bool)):
        return len(value) if isinstance(value, bytes) else 0
    if isinstance(value, np.ndarray):
        root = value
        while isinstance(root.base, np.ndarray):
            root = root.base
        if id(root) in seen:
            return 0
        seen.add(id(root))
        return int(root.nbytes)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name), seen) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return sum(nbytes(v, seen) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v, seen) for v in value)
    size = getattr(value, "nbytes", 0)
    return int(size) if isinstance(size, int) else 0


class LRU(Generic[V]):
    """``cache[key] = value`` keeps at most ``maxsize`` entries and ``maxbytes`` bytes (None: no bound of that
    kind); ``get`` / ``in`` count as a use."""

    def __init__(self, maxsize: Optional[int] = None, maxbytes: Optional[int] = None,
                 sizeof: Callable[[Any], int] = nbytes):
        if maxsize is None and maxbytes is None:
            raise ValueError("an LRU needs a bound: maxsize and/or maxbytes")
        if maxsize is not None and maxsize < 1:
            raise ValueError("maxsize must be >= 1, got %r" % (maxsize,))
        if maxbytes is not None and maxbytes < 0:
            raise ValueError("maxbytes must be >= 0, got %r" % (maxbytes,))
        self.maxsize = None if maxsize is None else int(maxsize)
        self.maxbytes = None if maxbytes is None else int(maxbytes)
        self.sizeof = sizeof
        self._data: "OrderedDict[Hashable, V]" = OrderedDict()
        self._sizes: Dict[Hashable, int] = {}
        self.bytes = 0  # sum of the kept entries' sizes
        self.evicted = 0  # entries forgotten to stay within the bounds (a measure of thrash)

    def get(self, key: Hashable, default: Optional[V] = None) -> Optional[V]:
        if key not in self._data:
            return default
        self._data.move_to_end(key)
        return self._data[key]

    def __getitem__(self, key: Hashable) -> V:
        value = self._data[key]
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: Hashable, value: V) -> None:
        size = int(self.sizeof(value)) if self.maxbytes is not None else 0
        if key in self._data:
            self._remove(key)
        if self.maxbytes is not None and size > self.maxbytes:
            return  # larger than the whole budget: not kept
        self._data[key] = value
        self._sizes[key] = size
        self.bytes += size
        while self._over():
            self._remove(next(iter(self._data)))
            self.evicted += 1

    def _over(self) -> bool:
        return ((self.maxsize is not None and len(self._data) > self.maxsize)
                or (self.maxbytes is not None and self.bytes > self.maxbytes))

    def _remove(self, key: Hashable) -> None:
        del self._data[key]
        self.bytes -= self._sizes.pop(key)

    def __delitem__(self, key: Hashable) -> None:
        self._remove(key)

    def pop(self, key: Hashable, default: Optional[V] = None) -> Optional[V]:
        if key not in self._data:
            return default
        value = self._data[key]
        self._remove(key)
        return value

    def __contains__(self, key: Any) -> bool:
        return key in self._data

    def peek(self, key: Hashable, default: Optional[V] = None) -> Optional[V]:
        """The value of ``key`` without counting as a use."""
        return self._data.get(key, default)

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self._data))

    def setdefault(self, key: Hashable, default: V) -> V:
        if key not in self._data:
            self[key] = default
            return default
        return self[key]

    def drop(self, keep: Callable[[Hashable], bool]) -> None:
        """Forget every entry whose key ``keep(key)`` rejects."""
        for key in [k for k in self._data if not keep(k)]:
            self._remove(key)

    def clear(self) -> None:
        self._data.clear()
        self._sizes.clear()
        self.bytes = 0
