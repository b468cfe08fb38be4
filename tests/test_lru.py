"""core.lru.LRU: the bounded cache behind the session's and the models' caches (by count and by bytes)."""

from __future__ import annotations

import numpy as np
import pytest

from pyapp.app.session import Session
from pyapp.core.encoder import LazyModel
from pyapp.core.lru import LRU, nbytes


def test_forgets_the_least_recently_used():
    c = LRU(2)
    c["a"], c["b"] = 1, 2
    assert c.get("a") == 1                  # a use: "b" is now the oldest
    c["c"] = 3
    assert "b" not in c and list(c) == ["a", "c"] and len(c) == 2
    assert c.setdefault("d", {}) == {} and "a" not in c
    c.drop(lambda k: k != "c")
    assert list(c) == ["d"] and c.get("zzz", 7) == 7
    with pytest.raises(ValueError):
        LRU(0)
    with pytest.raises(ValueError):
        LRU()                               # a cache without any bound


def test_byte_budget_forgets_the_oldest_and_never_exceeds():
    c = LRU(maxbytes=1000)
    a, b, d = np.zeros(100, np.float32), np.zeros(100, np.float32), np.zeros(50, np.float32)   # 400, 400, 200 B
    c["a"], c["b"] = a, b
    assert c.bytes == 800 and list(c) == ["a", "b"]
    c.get("a")                              # a use: "b" is now the oldest
    c["d"] = d
    assert c.bytes == 1000 and list(c) == ["b", "a", "d"]          # oldest first
    c["e"] = np.zeros(10, np.float32)       # 40 B more: "b" (400 B) goes
    assert list(c) == ["a", "d", "e"] and c.bytes == 640 and c.evicted == 1
    c["big"] = np.zeros(300, np.float32)    # 1200 B: larger than the budget, not kept, nothing else lost
    assert "big" not in c and list(c) == ["a", "d", "e"] and c.bytes == 640
    assert c.pop("d") is d and c.bytes == 440 and c.peek("zzz") is None
    c["d"] = d
    c["a"] = np.zeros(200, np.float32)      # replacing a value re-counts it: 240 + 800 B, "e" (40 B) goes
    assert c.bytes == 1000 and list(c) == ["d", "a"]
    c.clear()
    assert c.bytes == 0 and not len(c)


def test_byte_budget_under_random_traffic():
    rs = np.random.RandomState(0)
    c = LRU(maxbytes=50_000)
    for _ in range(2000):
        c[int(rs.randint(40))] = np.zeros(int(rs.randint(1, 5000)), np.uint8)
        assert c.bytes == sum(c.peek(k).nbytes for k in c) <= 50_000


def test_nbytes_counts_each_buffer_once():
    x = np.zeros((10, 10), np.float32)
    assert nbytes(x) == 400 and nbytes([x, x, x.T, x[2:]]) == 400     # views count their base, once
    assert nbytes({"a": x, "b": (np.zeros(5, np.float64), None, "text")}) == 440


def test_session_caches_are_bounded():
    s = Session(None)
    for name in ("_tokenizers", "_encodings", "_sources", "_last_ids", "_tempered"):
        assert isinstance(getattr(s, name), LRU) and getattr(s, name).maxsize <= 64, name
    for name in ("_tempered", "_digests", "_rollouts"):                    # the caches of arrays: bounded in bytes
        assert isinstance(getattr(s, name), LRU) and getattr(s, name).maxbytes <= 256 * 2**20, name
    assert s.store.dequant_cache_bytes <= 256 * 2**20
    assert LazyModel.TRACE_BYTES + LazyModel.HIDDEN_BYTES <= 256 * 2**20
