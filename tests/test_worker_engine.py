"""The compute worker's pure parts in CPython: ``pyapp.worker.wire`` (what crosses postMessage) and
``pyapp.worker.engine`` (one request: files, layers one per check, partial frames, superseding).

The engine runs here with the models/ folder as its ``fetch`` and an asyncio loop standing in for the
worker's; the browser test (tests/browser/test_worker.py) runs the same code in a real Web Worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os

import numpy as np
import pytest

from pyapp.app.frame import Frame, build_frame
from pyapp.app.session import Session
from pyapp.app.state import AppState
from pyapp.core.files import default_models_dir, fetch_into, load_local_catalogue
from pyapp.draw.scene import Scene
from pyapp.worker import wire
from pyapp.worker.engine import Engine, Superseded

MODELS = default_models_dir()
LONG = " ".join(["every token looks at every other token"] * 12)


def _session() -> Session:
    return Session(load_local_catalogue(MODELS))


async def _disk_fetch(path, progress):
    await asyncio.sleep(0)
    with open(os.path.join(MODELS, path), "rb") as fh:
        data = fh.read()
    progress(len(data), len(data))
    return data


def _load_all(session: Session, state: AppState) -> None:
    """Every file ``state`` needs (the tokenizer first, then the weights of every layer it shows)."""
    for _ in range(10):
        plan = session.plan(session.normalise(state))
        if not plan:
            return
        fetch_into(session.store, plan.files(), MODELS)


def run_async(coro):
    """asyncio.run in a thread of its own (a browser test's Playwright may own this thread's event loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _unwire(obj):
    text, arrays = wire.pack(obj)
    return wire.unpack(text, [a.tobytes() for a in arrays])     # as the page gets them: bytes, not arrays


# ---- wire ---------------------------------------------------------------------------------------------------
def test_wire_round_trips_plain_data_arrays_and_pyapp_dataclasses():
    scene = Scene(120, 80, label="x")
    scene.rect(1, 2, 3, 4, fill="#ff0000")
    scene.regions.append({"kind": "attn_cell", "x": 0, "y": 0, "w": 4, "h": 4, "rows": 2, "cols": 2,
                          "data": {"matrix": np.eye(2, dtype=np.float32), "mask": None, "queries": ["a", "b"]}})
    obj = {"state": AppState(heads_shown=(0, 3), layer=2), "scene": scene, "nan": float("nan"),
           "inf": float("-inf"), "tuple": (1, "a"), "keys": {(0, 1): np.arange(4, dtype=np.int64)},
           "np": [np.float32(0.5), np.int64(7), np.bool_(True)], "__odd__": {"__nd__": 1}}
    back = _unwire(obj)
    assert back["state"] == obj["state"] and isinstance(back["state"], AppState)
    assert isinstance(back["scene"], Scene) and back["scene"].ops == scene.ops and back["scene"].label == "x"
    m = back["scene"].regions[0]["data"]["matrix"]
    assert m.dtype == np.float32 and np.array_equal(m, np.eye(2))
    assert np.isnan(back["nan"]) and back["inf"] == float("-inf")
    assert back["tuple"] == (1, "a") and np.array_equal(back["keys"][(0, 1)], np.arange(4))
    assert back["np"] == [0.5, 7, True] and back["__odd__"] == {"__nd__": 1}


def test_wire_rebuilds_a_frame_equal_to_the_original():
    session = _session()
    state = AppState()
    _load_all(session, state)
    frame = build_frame(session, state, 700.0)
    back = _unwire(frame)
    assert isinstance(back, Frame) and back.kind == "view"
    assert back.state == frame.state and back.controls == frame.controls and back.chips == frame.chips
    assert back.report == frame.report and back.link == frame.link
    assert [op["op"] for op in back.scene.ops] == [op["op"] for op in frame.scene.ops]
    for a, b in zip(back.scene.ops, frame.scene.ops):
        if a["op"] == "image":
            assert np.array_equal(a["rgba"], b["rgba"])


def test_wire_sends_an_array_referenced_twice_once():
    shared = np.triu(np.ones((5, 5), dtype=bool), 1)
    other = np.arange(6, dtype=np.float32).reshape(2, 3)
    text, arrays = wire.pack({"a": shared, "b": [shared, other[:, ::2]], "c": shared})
    assert len(arrays) == 2 and arrays[0] is shared                      # the strided view: made contiguous
    back = wire.unpack(text, wire.split(wire.join(arrays)))
    for m in (back["a"], back["b"][0], back["c"]):
        assert m.dtype == bool and np.array_equal(m, shared)
    assert np.array_equal(back["b"][1], other[:, ::2]) and back["b"][1].dtype == np.float32


def test_wire_join_puts_every_array_in_one_aligned_buffer_and_split_takes_them_back():
    arrays = [np.arange(3, dtype=np.float64), np.ones((2, 2), dtype=bool), np.zeros(0, dtype=np.float32),
              np.arange(5, dtype=np.int32)]
    blob = wire.join(arrays)
    assert blob.dtype == np.uint8 and blob.ndim == 1
    parts = wire.split(blob.tobytes())                                  # as the page gets it: one buffer
    assert [p.nbytes for p in parts] == [a.nbytes for a in arrays]
    assert all(p.ctypes.data % wire.ALIGN == 0 for p in wire.split(blob))
    for p, a in zip(parts, arrays):
        assert np.array_equal(np.frombuffer(p.tobytes(), dtype=a.dtype).reshape(a.shape), a)
    assert wire.split(wire.join([])) == []


def test_wire_refuses_to_rebuild_classes_outside_pyapp():
    with pytest.raises(ValueError):
        wire.unpack('{"__dc__": ["os", "system", {}]}')


# ---- engine -------------------------------------------------------------------------------------------------
class Harness:
    """An Engine with disk I/O, a message log and a 'page' that can send newer requests."""

    def __init__(self):
        self.session = _session()
        self.posts = []
        self.newest = 0
        self.engine = Engine(self.session, _disk_fetch, self.post, lambda: self.newest, pause=self.pause,
                             partial_ms=0.0)
        self.on_post = None

    def post(self, kind, rid, payload):
        self.posts.append((kind, rid, payload))
        if self.on_post is not None:
            self.on_post(kind, rid, payload)

    @staticmethod
    async def pause():
        await asyncio.sleep(0)

    def run(self, rid, state, width=800.0):
        self.newest = max(self.newest, rid)
        return run_async(self.engine.compute(rid, state, width))


def test_engine_frame_equals_build_frame_in_one_go():
    h = Harness()
    state = AppState(text="The quick brown fox jumps over the lazy dog.", tab="model", layer=2)
    frame = h.run(1, state)
    ref = _session()
    _load_all(ref, state)
    want = build_frame(ref, state, 800.0, new_layers=None)
    assert frame.kind == want.kind == "view"
    assert frame.report["layers_ready"] == want.report["layers_ready"] == list(range(6))
    assert frame.chips == want.chips and frame.controls == want.controls and frame.report == want.report
    kinds = [k for k, _, _ in h.posts]
    stages = [p["stage"] for k, _, p in h.posts if k == "progress"]
    assert kinds.count("partial") >= 2                          # the loading frame, then the model grid filling in
    assert "forward" in stages and "layers" in stages and "fetch" in stages
    first = next(p["frame"] for k, _, p in h.posts if k == "partial")
    assert first.kind == "loading"
    layers = [p["done"] for k, _, p in h.posts if k == "progress" and p["stage"] == "layers"]
    assert layers == sorted(layers) and layers[-1] == 6


def test_download_progress_reaches_the_page_at_most_every_50_ms_and_when_each_file_is_in():
    """A download reports every network chunk; the page is told on a file's start and end, and in between at
    most every PROGRESS_S of the engine's clock (here a fake one: 10 ms a chunk, 64 chunks a file)."""
    from pyapp.worker import engine as engine_module

    h = Harness()
    now = [0.0]
    h.engine.clock = lambda: now[0]

    async def chunked(path, progress):
        data = await _disk_fetch(path, lambda n, t: None)
        progress(0, 0)
        for i in range(1, 65):
            now[0] += 0.01
            progress(len(data) * i // 64, len(data))
        return data

    h.engine.fetch = chunked
    frame = h.run(1, AppState(text="The quick brown fox jumps over the lazy dog.", tab="steps"))
    assert frame.kind == "view"
    fetches = [p for k, _, p in h.posts if k == "progress" and p["stage"] == "fetch"]
    files = {p["file"] for p in fetches}
    done = [p for p in fetches if p["file_done"] == p["file_size"]]
    assert {p["file"] for p in done} == files                  # every file's end is told
    assert fetches[-1]["done"] == fetches[-1]["of"] or any(p["done"] == p["of"] for p in fetches)
    middle = [p for p in fetches if 0 < p["file_done"] < p["file_size"]]
    assert middle, "progress inside a file is still told"
    chunks = 64 * len(files)
    # at 10 ms a chunk, a message at most every 50 ms: ~1/5 of the chunks (plus each file's start and end)
    assert len(middle) <= chunks * 0.01 / engine_module.PROGRESS_S + len(files), (len(middle), chunks)


def test_engine_accepts_a_url_query_and_makes_error_frames_for_missing_files(tmp_path):
    h = Harness()
    frame = h.run(1, "tab=heads&layer=1")
    assert frame.kind == "view" and frame.state.layer == 1 and frame.state.tab == "heads"

    async def broken(path, progress):
        raise OSError("HTTP 404")
    h2 = Harness()
    h2.engine.fetch = broken
    bad = h2.run(1, AppState(text="brand new words here"))
    assert bad.kind == "error" and "could not be downloaded" in bad.status and bad.retry


def test_a_newer_request_stops_the_running_one_between_layers():
    h = Harness()
    state = AppState(text=LONG, tab="rollout")
    layers_done = []

    def newer_after_two_layers(kind, rid, payload):
        if kind == "progress" and payload["stage"] == "layers":
            layers_done.append(payload["done"])
            if len(layers_done) == 2:
                h.newest = 2                                   # the page sent request 2
    h.on_post = newer_after_two_layers
    with pytest.raises(Superseded):
        h.run(1, state)
    after = len(h.posts)
    assert len(layers_done) == 2                               # it stopped at the next check
    h.on_post = None
    frame = h.run(2, state.with_(tab="overview"))
    assert frame.kind == "view" and frame.state.tab == "overview"
    assert all(rid == 2 for _, rid, _ in h.posts[after:])      # nothing more for request 1


def test_superseded_before_it_starts_computes_nothing():
    h = Harness()
    h.newest = 5
    with pytest.raises(Superseded):
        h.run(3, AppState(text=LONG, tab="model"))
    assert h.posts == [] and h.session.stats["context"] == 0


def test_a_failed_file_is_remembered_until_retry_and_others_still_work():
    """As the page's loader: a file that failed is not fetched again (an error frame at once) until Retry."""
    calls = []

    async def layer2_broken(path, progress):
        calls.append(path)
        if path.endswith("layer2.qk.json"):
            raise OSError("HTTP 404")
        return await _disk_fetch(path, progress)
    h = Harness()
    h.engine.fetch = layer2_broken
    state = AppState(text="The quick brown fox.", tab="heads", layer=2)
    bad = h.run(1, state)
    assert bad.kind == "error" and "layer2.qk.json" in bad.status and bad.retry
    tries = calls.count("minilm-l6/layer2.qk.json")
    assert h.run(2, state.with_(layer=1)).kind == "view"          # another layer is not blocked
    again = h.run(3, state)
    assert again.kind == "error" and calls.count("minilm-l6/layer2.qk.json") == tries   # remembered
    h.engine.fetch = _disk_fetch
    h.engine.retry()
    assert h.run(4, state).kind == "view"


def test_a_newer_request_does_not_wait_for_a_stalled_download():
    """A download that never ends: the request is superseded within a check interval, not when it ends."""
    async def stalled(path, progress):
        if path.endswith("layer3.qk.json"):
            await asyncio.sleep(3600)
        return await _disk_fetch(path, progress)

    async def scenario():
        h = Harness()
        h.engine.fetch = stalled
        h.newest = 1
        task = asyncio.ensure_future(h.engine.compute(1, AppState(text="A stalled file.", tab="heads", layer=3),
                                                      800.0))
        await asyncio.sleep(0.5)
        assert not task.done()
        h.newest = 2
        t0 = asyncio.get_event_loop().time()
        with pytest.raises(Superseded):
            await task
        return asyncio.get_event_loop().time() - t0
    assert run_async(scenario()) < 0.5


def test_a_superseded_requests_download_is_shared_not_repeated():
    """Request 2 needs the file request 1 (superseded) is still downloading: ONE download, which request 2
    gets (the page's first request supersedes web/coi.js's page-open request mid-download, for example)."""
    async def scenario():
        h = Harness()
        calls = []
        gate = asyncio.Event()

        async def slow(path, progress):
            calls.append(path)
            if path.endswith("layer2.qk.json"):
                await gate.wait()
            return await _disk_fetch(path, progress)
        h.engine.fetch = slow
        h.newest = 1
        st = AppState(text="One download, two requests.", tab="heads", layer=2)
        first = asyncio.ensure_future(h.engine.compute(1, st, 800.0))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if any(p.endswith("layer2.qk.json") for p in calls):
                break
        started = list(calls)
        h.newest = 2
        with pytest.raises(Superseded):
            await first
        second = asyncio.ensure_future(h.engine.compute(2, st, 800.0))
        await asyncio.sleep(0.1)
        assert not second.done()                    # waiting for the shared download
        gate.set()
        return started, calls, await second
    started, calls, frame = run_async(scenario())
    assert any(p.endswith("layer2.qk.json") for p in started), started     # request 1 had started it
    assert frame.kind == "view" and frame.state.layer == 2
    assert sorted(calls) == sorted(set(calls)), calls                     # no file downloaded twice


def test_the_loading_frame_names_only_the_files_still_coming():
    """A round of downloads (the tokenizer, the embedding norm, layer 0's Q/K on a fresh page): once some are
    in and one is still coming, the next loading frame names that one alone, not the round's first files."""
    async def scenario():
        h = Harness()
        gate = asyncio.Event()

        async def slow_tokenizer(path, progress):
            if path.endswith("tokenizer.json"):
                await gate.wait()
            return await _disk_fetch(path, progress)
        h.engine.fetch = slow_tokenizer
        h.newest = 1
        run = asyncio.ensure_future(h.engine.compute(1, AppState(text="Only the tokenizer is late."), 800.0))
        for _ in range(100):
            await asyncio.sleep(0.02)
            if len([p for k, _, p in h.posts if k == "partial"]) >= 2:
                break
        held = [p["frame"] for k, _, p in h.posts if k == "partial"]
        gate.set()
        return held, await run
    held, frame = run_async(scenario())
    assert frame.kind == "view"
    first, later = held[0], held[1]
    assert first.kind == later.kind == "loading"
    assert "tokenizer.json" in first.status and "layer0.qk.json" in first.status     # the whole round at first
    assert later.status == "Loading minilm-l6/tokenizer.json…", later.status          # then only what is left
    assert "tokenizer.json" in later.scene.alt_text and "layer0.qk" not in later.scene.alt_text
