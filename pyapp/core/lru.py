"""A bounded cache: a dict that forgets its least recently used entry beyond ``maxsize``. Pure Python."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Generic, Hashable, Iterator, Optional, TypeVar

V = TypeVar("V")


class LRU(Generic[V]):
    """``cache[key] = value`` keeps at most ``maxsize`` entries; ``get`` / ``in`` count as a use."""

    def __init__(self, maxsize: int):
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1, got %r" % (maxsize,))
        self.maxsize = int(maxsize)
        self._data: "OrderedDict[Hashable, V]" = OrderedDict()

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
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __contains__(self, key: Any) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Hashable]:
        return iter(list(self._data))

    def setdefault(self, key: Hashable, default: V) -> V:
        if key not in self._data:
            self[key] = default
        return self[key]

    def drop(self, keep: Callable[[Hashable], bool]) -> None:
        """Forget every entry whose key ``keep(key)`` rejects."""
        for key in [k for k in self._data if not keep(k)]:
            del self._data[key]

    def clear(self) -> None:
        self._data.clear()
