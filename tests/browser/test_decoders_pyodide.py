"""The causal decoders' maths core inside Pyodide 0.17.1 (Python 3.8, numpy 1.17.5): SmolLM2-135M-Instruct
from the shipped files, fetched by path like the app does: the first heatmap's files only, then everything
next-token prediction needs; attention and the top-5 next tokens equal CPython's."""

from __future__ import annotations

import numpy as np
import pytest

from pyapp.core.files import LocalModel
from pyapp.core.sampling import next_token_probs, top_tokens

pytestmark = pytest.mark.browser

IDS = [504, 2644, 2643, 335, 260, 1171, 975, 357, 436]  # "The cat sat on the mat because it was"

IN_PAGE = """
import json, time
import js
from js import fetch
from pyapp.core.catalogue import load_catalogue
from pyapp.core.sampling import next_token_probs, top_tokens
from pyapp.core.sources import make_source
from pyapp.core.store import WeightStore


async def _get(path):
    resp = await fetch("/models/" + path)
    return bytes(js.Uint8Array.new(await resp.arrayBuffer()).to_py())


async def _decoder_check(ids):
    cat = load_catalogue(await _get("index.json"))
    store = WeightStore(cat)
    entry = cat.get("smollm2-135m")
    first = store.missing(entry.id, ids, 0, ("qk",))
    for f in first:
        store.add(f.path, await _get(f.path))
    model = make_source(entry, None, store).encoder
    t = time.perf_counter()
    layer0 = model.trace(ids, 0)
    first_ms = (time.perf_counter() - t) * 1000
    for f in store.missing(entry.id, ids, next_token=True):
        store.add(f.path, await _get(f.path))
    t = time.perf_counter()
    top = model.attentions(ids, [29])[29]
    forward_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    logits = model.next_token_logits(ids)
    next_ms = (time.perf_counter() - t) * 1000
    return {"first_bytes": sum(f.size for f in first), "layer0": layer0.probs.tolist(),
            "rotated": layer0.q_unrotated is not None, "layer29": top.tolist(),
            "top5": top_tokens(next_token_probs(logits), 5), "first_ms": first_ms, "forward_ms": forward_ms,
            "next_ms": next_ms}
"""


def test_smollm2_in_pyodide_equals_cpython(pyodide):
    pyodide.run(IN_PAGE)
    got = pyodide.run("await _decoder_check(%r)" % (IDS,))
    local = LocalModel("smollm2-135m")
    local.need(IDS, next_token=True)
    ours = local.encoder.attentions(IDS, [0, 29])
    np.testing.assert_allclose(np.array(got["layer0"]), ours[0], atol=1e-5)
    np.testing.assert_allclose(np.array(got["layer29"]), ours[29], atol=1e-5)
    want = top_tokens(next_token_probs(local.encoder.next_token_logits(IDS)), 5)
    assert [i for i, _ in got["top5"]] == [i for i, _ in want] == [253, 260, 281, 915, 1147]  # " a", " the", ...
    assert got["rotated"] and got["first_bytes"] < 1_000_000
    print("SmolLM2 in Pyodide 0.17.1: layer-0 trace %.0f ms, 30-layer forward %.0f ms, next-token logits %.0f ms"
          % (got["first_ms"], got["forward_ms"], got["next_ms"]))
