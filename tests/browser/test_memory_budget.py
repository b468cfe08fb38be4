"""The every-layer tabs of the largest shipped model at its longest input, inside Pyodide 0.17.1 (Python 3.8,
numpy 1.17.5, a wasm heap of at most 2 GB): SmolLM2-135M (30 layers x 9 heads) at 512 tokens, the Model,
Rollout and Head stats frames of the app's Session, every layer at once.

Before the caches had byte budgets each of these frames failed with a MemoryError (every layer's trace, 46 MB
each at 512 tokens, plus float64 copies of every layer's attention); now each frame is a view, the caches stay
within their budgets, and the figures (every head's statistics and label, the thumbnails' maxima, the rollout)
equal CPython's, computed by the same code on the same files.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pyapp.app.session import Session
from pyapp.core.files import default_models_dir, load_local_catalogue
from pyapp.figures import load_plan

pytestmark = pytest.mark.browser

MODELS = default_models_dir()
TEXT = " ".join("sentence %d: the cat sat on the mat, and it was happy." % i for i in range(120))  # > 512 tokens
TABS = ("model", "rollout", "stats")

FIGURES = '''
def _figures(session, state):
    """Every number the three tabs draw from, as plain lists (the same code in Pyodide and CPython)."""
    from pyapp.core.analysis import STAT_KEYS, digest_stats
    ctx = session.context(state.with_(tab="rollout"), new_layers=0)
    digests = ctx.layer_digests()
    rows = digest_stats(digests, ctx.tokens, ctx.causal).rows
    roll = ctx.rollout()
    return {"n": ctx.n, "layers": sorted(digests),
            "stats": [[r.values[k] for k in STAT_KEYS] for r in rows], "labels": [r.label for r in rows],
            "peaks": [digests[k].peak.tolist() for k in sorted(digests)],
            "thumbs": [digests[k].thumbs.astype("float64").sum(axis=(1, 2)).tolist() for k in sorted(digests)],
            "rollout_last": roll[-1].tolist(), "rollout_diag": roll.diagonal().tolist()}
'''

IN_PAGE = FIGURES + '''
import gc, time
import js
from js import fetch
from pyapp.app.frame import build_frame
from pyapp.app.session import Session
from pyapp.app.state import AppState
from pyapp.core.catalogue import load_catalogue


async def _get(path):
    resp = await fetch("/models/" + path)
    return bytes(js.Uint8Array.new(await resp.arrayBuffer()).to_py())


def _heap_mb():
    try:
        return js.pyodide._module.HEAP8.length / 2**20
    except Exception:  # noqa: BLE001 - only a figure for the log
        return -1.0


async def _budget_frames(text, tabs):
    s = Session(load_catalogue(await _get("index.json")))
    st = AppState(model="smollm2-135m", text=text)
    for tab in tabs:
        while True:
            files = s.plan(st.with_(tab=tab)).files()
            if not files:
                break
            for f in files:
                s.add_file(f.path, await _get(f.path))
    frames = {}
    for tab in tabs:
        t0 = time.perf_counter()
        f = build_frame(s, st.with_(tab=tab), 1000, new_layers=None)
        frames[tab] = {"kind": f.kind, "status": f.status, "n": f.report.get("n"),
                       "layers": f.report.get("layers_ready"), "entropy": f.entropy, "detail": f.detail[-800:],
                       "ms": (time.perf_counter() - t0) * 1000}
    figures = _figures(s, st)
    enc = s.source(st).encoder
    caches = {name: [c.bytes, c.maxbytes] for name, c in (
        ("digests", s._digests), ("tempered", s._tempered), ("rollouts", s._rollouts), ("traces", enc._traces),
        ("hidden", enc._hidden))}
    caches["dequantised"] = [s.store.cached_bytes, s.store.dequant_cache_bytes]
    heap = _heap_mb()
    del s, enc
    gc.collect()
    return {"frames": frames, "figures": figures, "caches": caches, "heap_mb": heap}
'''


def _cpython_figures(out: dict) -> None:
    """The same figures in this CPython (run in a thread while Pyodide computes: numpy releases the GIL)."""
    from pyapp.app.state import AppState
    try:
        ns: dict = {}
        exec(compile(FIGURES, "figures", "exec"), ns)
        s = Session(load_local_catalogue(MODELS))
        st = AppState(model="smollm2-135m", text=TEXT)
        load_plan(s, st.with_(tab="model"), MODELS)
        s.context(st.with_(tab="model"), new_layers=None)  # every layer, as build_frame(new_layers=None) does
        out["figures"] = ns["_figures"](s, st)
    except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
        out["error"] = e


def test_smollm2_every_layer_tabs_at_512_tokens_in_pyodide(pyodide):
    ours: dict = {}
    worker = threading.Thread(target=_cpython_figures, args=(ours,), daemon=True)
    worker.start()
    pyodide.run(IN_PAGE)
    got = pyodide.run("await _budget_frames(%r, %r)" % (TEXT, list(TABS)))
    worker.join()
    if "error" in ours:
        raise ours["error"]
    want = ours["figures"]

    for tab in TABS:
        f = got["frames"][tab]
        assert f["kind"] == "view", (tab, f["status"], f["detail"])      # before the budgets: a MemoryError
        assert f["n"] == 512 and f["layers"] == list(range(30)), (tab, f["n"], f["layers"])
    for name, (used, budget) in got["caches"].items():
        assert 0 <= used <= budget, (name, used, budget)

    fig = got["figures"]
    assert fig["n"] == want["n"] == 512 and fig["layers"] == want["layers"] == list(range(30))
    assert fig["labels"] == want["labels"]
    assert "sink" in fig["labels"]                                         # SmolLM2's heads park on token 0
    np.testing.assert_allclose(fig["stats"], want["stats"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fig["peaks"], want["peaks"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fig["thumbs"], want["thumbs"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fig["rollout_last"], want["rollout_last"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fig["rollout_diag"], want["rollout_diag"], rtol=1e-4, atol=1e-6)
    print("SmolLM2 at 512 tokens in Pyodide 0.17.1: %s; caches (MB) %s; wasm heap %.0f MB" % (
        ", ".join("%s %.1f s" % (t, got["frames"][t]["ms"] / 1000) for t in TABS),
        {k: round(v[0] / 2**20, 1) for k, v in got["caches"].items()}, got["heap_mb"]))
