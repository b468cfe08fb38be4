"""core.lru.LRU: the bounded cache behind the session's caches."""

from __future__ import annotations

import pytest

from pyapp.app.session import Session
from pyapp.core.lru import LRU


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


def test_session_caches_are_bounded():
    s = Session(None)
    for name in ("_tokenizers", "_encodings", "_sources", "_last_ids", "_tempered", "_attentions"):
        assert isinstance(getattr(s, name), LRU) and getattr(s, name).maxsize <= 64, name
