"""The page's side of the compute worker (``web/compute-worker.js`` + ``pyapp.worker``): the main thread
asks, the worker computes AND draws, the main thread only shows the result.

    client = WorkerClient.start()                  # or adopts the worker web/coi.js started at page open
    info = await client.ready()                    # {"python", "numpy", "simd", "isolated", "offscreen", ...}
    shown = await client.compute(state, width, dpr, view={"hover_token": 3},
                                 on_progress=lambda p: ..., on_partial=lambda s: present(s, canvas))
    if shown is not None:                          # None: a newer compute() superseded this one
        present(shown, canvas)                     # the worker's bitmap (or its scene) onto the <canvas>
        shown.frame                                # pyapp.app.frame.Frame: chips, controls, status, report, ...

``compute`` takes an ``AppState`` (or a URL query) and returns a ``Shown``: the ``Frame`` that
``build_frame`` made in the worker, and, with ``bitmap=True`` (and an OffscreenCanvas in the worker), the
worker's drawing of its scene as an ``ImageBitmap``: ``frame.scene`` then keeps its hit regions (hover,
hotspots) but no drawing ops. Each call gets a new id; calling again supersedes every earlier call: their
awaits return None at once, their late partials and results are dropped here unread, and the worker abandons
them (the newest id is also written to a SharedArrayBuffer the worker reads between layers when the page is
cross-origin isolated, so it need not yield to its event loop to notice).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Union

from ..app import frame as _frame  # noqa: F401 - imported at start-up, not by the first message's decode
from ..worker import wire
from . import canvas as canvas_backend
from .compat import create_proxy, from_uint8array, js

WORKER_SCRIPT = "./compute-worker.js"        # relative to web/index.html
CONFIG = "./pyscript.toml"                   # the page's PyScript config: the worker reads the same [files]
PYODIDE_CDN = "https://cdn.jsdelivr.net/pyodide/v%s/full/"
PROBE_TIMEOUT_S = 20.0                       # a worker that threw must answer a ping within this, or it is lost


class WorkerError(Exception):
    """The worker could not start, or a request failed inside it (a bug: user errors are error frames)."""


class WorkerLost(WorkerError):
    """The worker had started, then stopped taking requests (its runtime failed, an uncaught error): every
    pending and later request raises this."""


@dataclass
class Shown:
    """One frame from the worker: ``frame`` (``pyapp.app.frame.Frame``), ``bitmap`` (its scene drawn by the
    worker at ``dpr``, an ImageBitmap; None: draw ``frame.scene`` here), ``partial`` (more is coming)."""
    frame: Any
    bitmap: Any = None
    dpr: float = 1.0
    partial: bool = False
    scene_ops: int = 0
    timing: Dict[str, float] = field(default_factory=dict)
    stats: Dict[str, int] = field(default_factory=dict)      # the worker session's counters (tokenize, context...)
    images: int = 0                                          # image ops in the scene the worker drew
    drawn: bool = False                                      # drawn by the worker into the page's own canvas


def runtime_index_url() -> str:
    """Where the worker loads Pyodide from: what the page says (``mhsaWorkerRuntime.indexURL``: the test
    harness's Pyodide 0.17.1), else the jsDelivr folder of the Pyodide version running this page (PyScript's
    own, so the worker reuses the files the browser has just fetched)."""
    hint = getattr(js, "mhsaWorkerRuntime", None)
    if hint is not None and getattr(hint, "indexURL", None):
        return str(hint.indexURL)
    try:
        import pyodide_js  # type: ignore

        version = str(pyodide_js.version)
    except ImportError:
        version = str(js.pyodide.version)
    return PYODIDE_CDN % version


def worker_type(index_url: str = "") -> str:
    """ "classic" for Pyodide 0.17-0.2x (the harness's 0.17.1: importScripts), else "module" (modern Pyodide
    refuses classic workers). From ``mhsaWorkerRuntime.type`` / ``.version`` when the page sets it."""
    hint = getattr(js, "mhsaWorkerRuntime", None)
    if hint is not None and getattr(hint, "type", None):
        return str(hint.type)
    version = str(getattr(hint, "version", "") or "") if hint is not None else ""
    if not version:
        version = index_url.rstrip("/").split("/v")[-1].split("/")[0] if "/pyodide/v" in index_url else ""
    if version.startswith("0.") and version[2:4].rstrip(".").isdigit() and int(version[2:4].rstrip(".")) < 23:
        return "classic"
    return "module"


def decode(msg) -> Any:
    """A worker message's payload (JSON text + its arrays ``wire.join``-ed in one transferred buffer) -> plain
    data with numpy arrays (views of one copy)."""
    buffers = msg.buffers
    arrays = wire.split(from_uint8array(buffers[0])) if buffers and int(buffers.length) else []
    return wire.unpack(str(msg.json) if msg.json else "{}", arrays)


def shown(msg) -> Shown:
    payload = decode(msg)
    return Shown(payload["frame"], getattr(msg, "bitmap", None), float(payload.get("dpr") or 1.0),
                 bool(payload.get("partial")), int(payload.get("scene_ops") or 0), dict(payload.get("timing") or {}),
                 dict(payload.get("stats") or {}), int(payload.get("images") or 0), bool(payload.get("drawn")))


def css_size(canvas, width: float, height: float) -> None:
    """The CSS size of a canvas the worker draws into (its pixels are the worker's: never touched here)."""
    w, h = "%dpx" % int(math.ceil(width)), "%dpx" % int(math.ceil(height))
    style = canvas.style
    if str(style.width) != w or str(style.height) != h:
        style.width = w
        style.height = h


def present(result: Shown, canvas, dpr: Optional[float] = None) -> float:
    """Show a worker frame on the page's ``canvas``: nothing but its CSS size when the worker drew it into
    the page's canvas itself (transferred to it), else the worker's ImageBitmap (one drawImage), or, without
    one, its scene drawn here by ``pyapp.browser.canvas``. Returns the milliseconds it took."""
    t0 = time.time()
    scene = result.frame.scene
    if result.drawn:
        css_size(canvas, scene.width, scene.height)
    elif result.bitmap is not None:
        canvas_backend.size_canvas(canvas, scene.width, scene.height, result.dpr)
        ctx = canvas.getContext("2d")
        ctx.setTransform(1, 0, 0, 1, 0, 0)
        ctx.clearRect(0, 0, canvas.width, canvas.height)
        ctx.drawImage(result.bitmap, 0, 0)
        result.bitmap.close()
        result.bitmap = None
    else:
        canvas_backend.draw(scene, canvas, float(dpr or js.window.devicePixelRatio or 1))
    return (time.time() - t0) * 1000.0


class WorkerClient:
    def __init__(self, worker, index_url: str = "", config: str = CONFIG, boot: bool = True):
        self.worker = worker
        self.next_id = 0
        self.latest = 0
        self.pending: Dict[int, Dict[str, Any]] = {}
        self.info: Optional[Dict[str, Any]] = None
        self.boot_stages: Dict[str, float] = {}
        self.error = ""
        self.lost: Optional[str] = None                      # why the worker stopped after start-up (WorkerLost)
        self.on_boot_progress: Optional[Callable[[str], None]] = None
        self._ready = asyncio.get_event_loop().create_future()
        self.shared = None
        self.stats = {"messages": 0, "decode_ms": 0.0, "decode_max_ms": 0.0, "dropped": 0}
        self.timeout_ms = 0.0                                # the page's download stall timeout (0: the worker's)
        self.early: list = []                                # progress of web/coi.js's page-open request (id 0)
        self.on_early_progress: Optional[Callable[[Dict[str, Any]], None]] = None
        self._proxy = create_proxy(self._on_message)
        self._error_proxy = create_proxy(self._on_error)
        worker.addEventListener("message", self._proxy)
        worker.addEventListener("error", self._error_proxy)
        booted = getattr(js, "mhsaCompute", None)
        if not boot and booted is not None:                 # started by web/coi.js at page open
            self.shared = getattr(booted, "shared", None)
            seen = booted.seen
            for i in range(int(seen.length)):               # the messages it got before we listened
                self._on_message(seen[i])
            booted.seen = None                              # web/coi.js stops recording
            failed = getattr(booted, "error", None)
            if failed and not self._ready.done():           # its script failed before we listened
                self.error = str(failed)
                self._ready.set_exception(WorkerError("the compute worker could not start: " + self.error))
        if boot:
            if bool(getattr(js, "crossOriginIsolated", False)) and hasattr(js, "SharedArrayBuffer"):
                self.shared = js.SharedArrayBuffer.new(8)
            msg = js.Object.new()
            msg.type = "boot"
            msg.indexURL = index_url or runtime_index_url()
            hint = getattr(js, "mhsaWorkerRuntime", None)    # its compiled stdlib, if the page has one
            msg.pycache = str(getattr(hint, "pycache", "") or "") if hint is not None else ""
            msg.config = str(js.URL.new(config, js.location.href).href)
            msg.interrupt = self.shared
            msg.options = js.Object.new()
            msg.options.debug = getattr(js, "mhsaDebug", None) is True    # the worker's "python" call
            worker.postMessage(msg)
        self._latest_view = js.Int32Array.new(self.shared) if self.shared is not None else None

    @classmethod
    def start(cls, script: str = WORKER_SCRIPT, index_url: str = "", config: str = CONFIG) -> "WorkerClient":
        """The worker web/coi.js started at page open (``window.mhsaCompute.worker``), or a new one."""
        booted = getattr(js, "mhsaCompute", None)
        worker = getattr(booted, "worker", None) if booted is not None else None
        if worker is not None:
            return cls(worker, index_url, config, boot=False)
        index_url = index_url or runtime_index_url()
        options = js.Object.new()
        options.type = worker_type(index_url)
        return cls(js.Worker.new(str(js.URL.new(script, js.location.href).href), options), index_url, config)

    # ---- boot ---------------------------------------------------------------------------------------
    async def ready(self) -> Dict[str, Any]:
        """The worker's report once Python, numpy and pyapp are up in it (raises WorkerError if it failed)."""
        return await self._ready

    def close(self) -> None:
        self.worker.terminate()
        for p in self.pending.values():
            if not p["future"].done():
                p["future"].set_result(None)
        self.pending.clear()

    # ---- requests -------------------------------------------------------------------------------------
    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    async def compute(self, state: Union[Any, str], width: float, dpr: float = 1.0,
                      view: Optional[Dict[str, Any]] = None,
                      on_progress: Optional[Callable[[Dict[str, Any]], None]] = None,
                      on_partial: Optional[Callable[[Shown], None]] = None,
                      bitmap: bool = True, retry: bool = False) -> Optional[Shown]:
        """The frame of ``state`` (an AppState, or a URL query) at layout ``width``; None when a later call
        superseded this one. ``view``: page-only view state (hover_token, hover_side). ``on_progress(p)``:
        {"stage": "fetch" | "forward" | "layers", "done", "of", ...}; ``on_partial(shown)``: a loading frame,
        or the view before the last layers / files are in."""
        if self.lost is not None:
            raise WorkerLost(self.lost)
        rid = self._new_id()
        self.latest = rid
        for old, p in list(self.pending.items()):           # every earlier compute is superseded now
            if p["kind"] == "compute" and not p["future"].done():
                p["future"].set_result(None)
                del self.pending[old]
        if self._latest_view is not None:
            js.Atomics.store(self._latest_view, 0, rid)
        fut = asyncio.get_event_loop().create_future()
        self.pending[rid] = {"kind": "compute", "future": fut, "progress": on_progress, "partial": on_partial}
        msg = js.Object.new()
        msg.type = "compute"
        msg.id = rid
        if isinstance(state, str):
            msg.query = state
        else:
            msg.state = wire.pack(state)[0]
        msg.width = float(width)
        msg.dpr = float(dpr)
        msg.bitmap = bool(bitmap)
        msg.view = wire.pack(view)[0] if view else ""
        if retry:                                           # the page's Retry: forget the failed files
            msg.retry = True
        if self.timeout_ms > 0:
            msg.timeout_ms = float(self.timeout_ms)
        self.worker.postMessage(msg)
        return await fut

    async def call(self, name: str, state: Optional[Any] = None) -> Dict[str, Any]:
        """A small request to the worker, answered at the running compute's next check: "ping", "stats",
        "models" ({"models": [ModelOption]}), "csv" / "trace_json" of an AppState ({"text": ...}: the page's
        CSV and trace-JSON exports). Raises WorkerError if it failed."""
        if self.lost is not None:
            raise WorkerLost(self.lost)
        rid = self._new_id()
        fut = asyncio.get_event_loop().create_future()
        self.pending[rid] = {"kind": "call", "future": fut, "progress": None, "partial": None}
        msg = js.Object.new()
        msg.type = "call"
        msg.id = rid
        msg.name = name
        if state is not None:
            msg.state = wire.pack(state)[0]
        self.worker.postMessage(msg)
        return await fut

    # ---- messages ---------------------------------------------------------------------------------------
    def _on_error(self, event) -> None:
        """The worker's script failed (not found, a syntax error, refused): before it is ready, a boot error."""
        self.error = str(getattr(event, "message", "") or "the worker script failed to load")
        if not self._ready.done():
            self._ready.set_exception(WorkerError("the compute worker could not start: " + self.error))
        elif self.lost is None:
            asyncio.ensure_future(self._probe(self.error))

    async def _probe(self, why: str) -> None:
        """An uncaught error in the worker after start-up (a Pyodide fatal error surfaces so, from a task of its
        event loop): still there if it answers a ping (taken at its running request's next check), else lost."""
        try:
            await asyncio.wait_for(self.call("ping"), PROBE_TIMEOUT_S)
        except (WorkerError, asyncio.TimeoutError):
            self._lose(why)

    def _lose(self, why: str) -> None:
        """After start-up: the worker will not answer any more; fail what waits, and every later request."""
        self.lost = why or "the compute worker stopped"
        for p in self.pending.values():
            if not p["future"].done():
                p["future"].set_exception(WorkerLost(self.lost))
        self.pending.clear()

    def _on_message(self, event) -> None:
        msg = getattr(event, "data", None) or event
        kind = str(getattr(msg, "type", ""))
        if kind.startswith("fetch"):                        # web/coi.js fetches model files for the worker
            return
        if kind == "boot-progress":
            self.boot_stages[str(msg.stage)] = float(msg.ms)
            if self.on_boot_progress is not None:
                self.on_boot_progress(str(msg.stage))
            return
        if kind == "ready":
            self.info = json.loads(js.JSON.stringify(msg.info))
            if not self._ready.done():
                self._ready.set_result(self.info)
            return
        if kind == "lost":
            self._lose(str(msg.message))
            return
        if kind == "boot-error":
            self.error = str(msg.message)
            if not self._ready.done():
                self._ready.set_exception(WorkerError("the compute worker could not start: " + self.error))
            return
        rid = int(msg.id)
        if rid < 0:                                         # an answer to web/coi.js's mhsaCompute.call (JS)
            return
        if rid == 0 and kind == "progress":                 # web/coi.js's page-open request: its downloads
            p0 = decode(msg)
            self.early.append(p0)
            if self.on_early_progress is not None:
                self.on_early_progress(p0)
            return
        p = self.pending.get(rid)
        if p is None:
            self.stats["dropped"] += 1                      # superseded here already: drop it unread
            bitmap = getattr(msg, "bitmap", None)
            if bitmap is not None:
                bitmap.close()
            return
        if kind == "superseded":
            del self.pending[rid]
            if not p["future"].done():
                p["future"].set_result(None)
            return
        t0 = time.time()
        if kind == "error":
            del self.pending[rid]
            payload = decode(msg)
            if not p["future"].done():
                p["future"].set_exception(WorkerError(payload.get("message", "error")))
            return
        if kind == "progress":
            if p["progress"] is not None:
                p["progress"](decode(msg))
            return
        if p["kind"] == "call":
            del self.pending[rid]
            if not p["future"].done():
                p["future"].set_result(decode(msg))
            return
        result = shown(msg)
        self.stats["messages"] += 1
        ms = (time.time() - t0) * 1000.0
        self.stats["decode_ms"] += ms
        self.stats["decode_max_ms"] = max(self.stats["decode_max_ms"], ms)
        if kind == "partial":
            if p["partial"] is not None and rid == self.latest:
                # presented in a task of its own: decoding and presenting a large frame never add up to one task
                asyncio.get_event_loop().call_soon(p["partial"], result)
            elif result.bitmap is not None:
                result.bitmap.close()
        elif kind == "result":
            del self.pending[rid]
            if not p["future"].done():
                p["future"].set_result(result)
