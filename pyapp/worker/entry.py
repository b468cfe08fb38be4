"""The compute worker's Python side: ``web/compute-worker.js`` boots Pyodide, writes the pyapp files, then
calls ``start()`` once and ``receive(msg)`` for every message of the page.

The shell of the worker, as ``pyapp.browser.app`` is the page's: JavaScript is reached only through
``pyapp.browser.compat`` (the one shim between Pyodide versions); the work is ``engine.Engine`` (pure).

* Requests ``{type: "compute", id, state (``wire`` text of an AppState) or query, width, dpr, view (``wire``
  text: hover_token, hover_side), bitmap}``: one runs at a time; a
  newer one supersedes the older ones: those still queued are dropped, the running one stops at its next
  check (``Engine.check``), and each gets a "superseded" message. The newest id the page has sent is read
  from a SharedArrayBuffer the page writes (when the page is cross-origin isolated: no need to yield to the
  event loop), else from the messages received (the engine then yields before each check).
* Results ("partial", "result") carry ``{"frame": app.frame.Frame, ...}`` packed by ``wire.pack``: JSON text plus
  the arrays as transferred typed arrays. With ``bitmap`` (and an ``OffscreenCanvas`` in this worker) the
  scene is drawn HERE by ``pyapp.browser.canvas`` on an OffscreenCanvas at ``dpr`` and sent as an
  ``ImageBitmap`` (transferred); the frame's scene then keeps its hit regions but no ops. The page then only
  copies the bitmap to its canvas (``worker_client.present``). When web/coi.js handed the page's own canvas
  to this worker (``transferControlToOffscreen``; ``self.mhsaCanvas``) the scene is drawn straight into it
  instead (``drawn``: the page presents no pixels, it sets the canvas' CSS size and keeps the hit regions); a
  loading frame waits ``PLACEHOLDER_AFTER_S`` as on the page, and a superseded request draws nothing.
* ``{type: "call", id, name, state?}``: "ping", "stats", "models", "csv", "trace_json", "draw" (a frame the
  page made, into its canvas), "png" (the canvas as PNG bytes), "python" (tests and debugging: run Python
  here, e.g. count the encoder's work where it happens; see ``_call``; refused unless the page set
  ``window.mhsaDebug = true`` before web/coi.js, as the test harness does). Negative ids come from JavaScript
  (web/coi.js's ``mhsaCompute.call``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
import traceback
from typing import Any, Dict, List, Optional

import numpy as np

from ..app.session import Session
from ..browser import canvas as canvas_backend
from ..browser import gemm_threads, wasm_gemm
from ..browser.compat import emscripten_module, from_uint8array, js, to_js, to_uint8array
from ..browser.fetch import FetchError, fetch_bytes
from ..browser.loader import TIMEOUT_S, _Watchdog
from ..core.catalogue import CatalogueError, load_catalogue
from ..draw.scene import Scene
from . import wire
from .engine import Engine, Superseded

CATALOGUE_PATH = "models/index.json"   # written into the worker's file system from pyscript.toml's [files]
MODELS_URL = "../models/"              # relative to web/compute-worker.js, i.e. to the page
PLACEHOLDER_AFTER_S = 0.25             # as the page's loop: a loading frame takes the canvas after this long


def _get(msg, name: str):
    """A property of a JS message, None when absent (Pyodide 0.17 raises AttributeError, later ones not)."""
    try:
        value = getattr(msg, name)
    except AttributeError:
        return None
    return None if value is None else value


class _Style:
    """Stands in for ``canvas.style`` (an OffscreenCanvas has none; the page sizes its own canvas)."""

    width = ""
    height = ""


class OffscreenTarget:
    """An OffscreenCanvas dressed as the <canvas> ``pyapp.browser.canvas.draw`` expects: a new one (frames sent
    as ImageBitmaps), or ``canvas``, the page's canvas transferred to this worker (``transferControlToOffscreen``:
    what is drawn on it is shown by the page, no pixels cross the main thread)."""

    def __init__(self, canvas=None):
        self.canvas = canvas if canvas is not None else js.OffscreenCanvas.new(1, 1)
        self.style = _Style()
        self._ctx = None

    @property
    def width(self):
        return self.canvas.width

    @width.setter
    def width(self, value):
        self.canvas.width = int(value)

    @property
    def height(self):
        return self.canvas.height

    @height.setter
    def height(self, value):
        self.canvas.height = int(value)

    def getContext(self, kind):  # noqa: N802 - the DOM's name
        # asked once, then kept: Firefox refuses a second getContext on a canvas transferred to this worker
        # ("Cannot update created context to different thread"); resizing keeps the same context anyway
        if self._ctx is None:
            self._ctx = self.canvas.getContext(kind)
        return self._ctx

    def bitmap(self):
        return self.canvas.transferToImageBitmap()


def page_canvas() -> Optional[OffscreenTarget]:
    """The page's canvas if web/coi.js transferred it here (``self.mhsaCanvas``) and it gives a 2d context."""
    canvas = getattr(js, "mhsaCanvas", None)
    if canvas is None:
        return None
    target = OffscreenTarget(canvas)
    try:
        if target.getContext("2d") is None:
            return None
    except Exception:  # noqa: BLE001 - no 2d context on a transferred canvas in this engine
        return None
    return target


class WorkerHost:
    def __init__(self, session: Session, interrupt=None, direct: Optional[OffscreenTarget] = None,
                 debug: bool = False):
        self.session = session
        self.debug = debug              # the "python" call is allowed (the page's window.mhsaDebug)
        self.direct = direct            # the page's own canvas (transferred): frames are drawn straight into it
        self.drawn = 0                  # frames drawn into it (a late loading frame checks nothing came since)
        self.started = 0.0              # when the running request arrived (the loading placeholder's delay)
        self.latest_seen = 0
        self.shared = js.Int32Array.new(interrupt) if interrupt is not None else None
        self.queue: List[Dict[str, Any]] = []
        self.running = False
        self.target: Optional[OffscreenTarget] = None
        self.module = emscripten_module()
        self.engine = Engine(session, self._fetch, self.post, self.latest,
                             pause=None if self.shared is not None else self._pause)
        self.posted = {"messages": 0, "bytes": 0, "pack_ms": 0.0, "draw_ms": 0.0, "drawn": 0, "late_loading": 0}
        self.timeout_s = TIMEOUT_S        # the stall timeout of a download (the page sends its own)

    # ---- newest request ---------------------------------------------------------------------------------
    def latest(self) -> int:
        if self.shared is not None:
            return max(self.latest_seen, int(js.Atomics.load(self.shared, 0)))
        return self.latest_seen

    @staticmethod
    async def _pause():
        await asyncio.sleep(0)      # a macrotask: the worker's onmessage runs (receive records newer ids)

    # ---- I/O ------------------------------------------------------------------------------------------
    async def _fetch(self, path: str, progress) -> bytes:
        """One model file; aborted after ``timeout_s`` without a byte ("timed out", as the page's loader)."""
        controller = js.AbortController.new()
        watch = _Watchdog(self.timeout_s, controller)

        def poke(done: int, total: int) -> None:
            watch.poke()
            if progress is not None:
                progress(done, total)
        try:
            return await fetch_bytes(MODELS_URL + path, poke, signal=controller.signal)
        except FetchError:
            if watch.fired:
                raise FetchError("timed out: no data for %g s" % self.timeout_s) from None
            raise
        finally:
            watch.stop()

    def draw_on_page(self, req_id: Optional[int], scene: Scene, dpr: float, loading: bool = False) -> None:
        """Draw ``scene`` straight into the page's canvas, unless a newer request is known (no stale picture).
        A loading frame waits ``PLACEHOLDER_AFTER_S`` from the request's arrival, as the page's own loop does
        (the previous picture stays a moment), and is dropped if anything was drawn meanwhile."""
        self.drawn += 1
        if loading:
            wait = PLACEHOLDER_AFTER_S - (time.time() - self.started)
            if wait > 0:
                asyncio.get_event_loop().call_later(wait, self._late_loading, req_id, self.drawn, scene, dpr)
                return
        if req_id is not None and req_id < self.latest():
            return
        canvas_backend.draw(scene, self.direct, dpr)
        self.posted["drawn"] += 1

    def _late_loading(self, req_id: Optional[int], seq: int, scene: Scene, dpr: float) -> None:
        if self.drawn == seq and (req_id is None or req_id >= self.latest()) and self.running:
            canvas_backend.draw(scene, self.direct, dpr)
            self.posted["drawn"] += 1
            self.posted["late_loading"] += 1

    def post(self, kind: str, req_id: int, payload: Dict[str, Any], bitmap_dpr: float = 0.0) -> None:
        t0 = time.time()
        bitmap = None
        size = None
        frame = payload.get("frame") if isinstance(payload, dict) else None
        if frame is not None and bitmap_dpr > 0:
            scene = frame.scene
            if self.direct is not None:
                self.draw_on_page(req_id, scene, bitmap_dpr, loading=frame.kind == "loading")
                size = [float(scene.width), float(scene.height)]
            else:
                if self.target is None:
                    self.target = OffscreenTarget()
                canvas_backend.draw(scene, self.target, bitmap_dpr)
                bitmap = self.target.bitmap()
            bare = Scene(scene.width, scene.height, scene.background, scene.label)
            bare.alt_text, bare.regions = scene.alt_text, scene.regions
            payload = dict(payload, frame=dataclasses.replace(frame, scene=bare), scene_ops=len(scene.ops),
                           dpr=bitmap_dpr, drawn=self.direct is not None,
                           images=sum(1 for op in scene.ops if op["op"] == "image"))
        if frame is not None:       # the page's report: the session's counters, the images drawn
            payload = dict(payload, stats=dict(self.session.stats))
            if "images" not in payload:
                payload["images"] = sum(1 for op in frame.scene.ops if op["op"] == "image")
        t1 = time.time()
        text, arrays = wire.pack(payload)
        buffers = js.Array.new()
        if arrays:                  # one buffer: the page copies it into its heap in one piece (wire.split)
            buffers.push(to_uint8array(wire.join(arrays), self.module))
        js.mhsaPost(kind, int(req_id), text, buffers, bitmap, to_js(size) if size is not None else None)
        self.posted["messages"] += 1
        self.posted["bytes"] += len(text) + sum(int(a.nbytes) for a in arrays)
        self.posted["draw_ms"] += (t1 - t0) * 1000.0
        self.posted["pack_ms"] += (time.time() - t1) * 1000.0

    # ---- messages -----------------------------------------------------------------------------------------
    def receive(self, msg) -> None:
        req_id = int(_get(msg, "id") or 0)
        try:
            kind = str(_get(msg, "type"))
            if kind == "compute":
                self.latest_seen = max(self.latest_seen, req_id)
                if _get(msg, "retry"):
                    self.engine.retry()
                timeout_ms = _get(msg, "timeout_ms")
                if timeout_ms is not None and float(timeout_ms) > 0:
                    self.timeout_s = float(timeout_ms) / 1000.0
                state, view = _get(msg, "state"), _get(msg, "view")
                self.queue.append({"id": req_id, "width": float(_get(msg, "width") or 600),
                                   "state": wire.unpack(str(state)) if state else str(_get(msg, "query") or ""),
                                   "dpr": float(_get(msg, "dpr") or 1), "bitmap": bool(_get(msg, "bitmap")),
                                   "view": wire.unpack(str(view)) if view else None, "t": time.time()})
                if not self.running:
                    self.running = True
                    asyncio.ensure_future(self._run())
            elif kind == "call":
                state = _get(msg, "state")
                asyncio.ensure_future(self._call(req_id, str(_get(msg, "name")),
                                                 wire.unpack(str(state)) if state else None))
            else:
                raise ValueError("unknown message type %r" % kind)
        except Exception as e:  # noqa: BLE001 - a malformed message: answer it, keep serving
            traceback.print_exc()
            self.post("error", req_id, {"message": "%s: %s" % (type(e).__name__, e)})

    async def _call(self, req_id: int, name: str, state=None) -> None:
        """Small requests beside the computes (they run at the computes' checks, never superseded):
        "ping", "stats", "models" (the model select's options), and for an AppState ``state``: "csv" (the
        shown layer's attention, as the page's CSV export) and "trace_json" (the full trace, V/O fetched
        first, with the other layers computed so far: the page's JSON export)."""
        try:
            if name == "ping":
                out: Dict[str, Any] = {"pong": True}
            elif name == "draw" and isinstance(state, dict) and self.direct is not None:
                # a frame the page made itself (an error frame, the catalogue's): into the page's canvas
                self.draw_on_page(None, state["scene"], float(state.get("dpr") or 1.0))
                out = {"drawn": True}
            elif name == "png" and self.direct is not None:   # the PNG export of what the page's canvas shows
                blob = await self.direct.canvas.convertToBlob(js.JSON.parse('{"type": "image/png"}'))
                u8 = js.Uint8Array.new(await blob.arrayBuffer())
                out = {"png": from_uint8array(u8, self.module)}
            elif name == "python" and isinstance(state, dict):
                if not self.debug:
                    raise PermissionError("the python call is off (set window.mhsaDebug = true before web/coi.js)")
                # tests and debugging: run Python in THIS worker (where the page's computations happen), e.g.
                # instrument the encoder and read its counters; ``expr``'s value is returned (plain data)
                space = _debug_namespace
                exec(str(state.get("source") or ""), space)
                out = {"value": eval(str(state["expr"]), space) if state.get("expr") else None}
            elif name == "stats":
                out = {"session": dict(self.session.stats), "timing": dict(self.engine.timing),
                       "posted": dict(self.posted), "gemm_calls": getattr(wasm_gemm._installed, "calls", 0),
                       "gemm_threads": gemm_threads.status()}
            elif name == "reload_catalogue":          # the page's Retry after a missing / corrupt catalogue
                catalogue = load_catalogue(await self._fetch("index.json", None))
                self.session = self.engine.session = Session(catalogue)
                out = {"models": len(catalogue.ids())}
            elif name == "models":
                out = {"models": self.session.model_options()}
            elif name in ("csv", "trace_json") and state is not None:
                out = {"text": await self._export(req_id, name, state)}
            else:
                raise ValueError("unknown call %r" % name)
            self.post("result", req_id, out)
        except Exception as e:  # noqa: BLE001 - the page says the export failed; the worker keeps serving
            traceback.print_exc()
            self.post("error", req_id, {"message": "%s: %s" % (type(e).__name__, e)})

    async def _export(self, req_id: int, name: str, state) -> str:
        from ..core.analysis import attention_csv, trace_json

        session = self.session
        st = session.normalise(state)
        plan = session.plan(st.with_(tab="steps") if name == "trace_json" else st)    # V / W_O for the trace
        for _ in range(8):
            files = plan.required + (plan.later if name == "trace_json" else [])
            if not files:
                break
            for f in files:
                if not session.store.has(f.path):
                    session.add_file(f.path, await self._fetch(f.path, None))
            st = session.normalise(state)
            plan = session.plan(st.with_(tab="steps") if name == "trace_json" else st)
        ctx = session.context(st, new_layers=0)
        if name == "csv":
            return attention_csv(ctx.trace.probs, ctx.tokens, layer=ctx.layer)
        meta = {"model": st.model, "model_name": ctx.model_name, "layer": ctx.layer, "head": ctx.head_index,
                "text": ctx.text, "ids": ctx.ids}
        attentions = dict(session.layer_attentions(st, new_layers=0))
        attentions[ctx.layer] = ctx.trace.probs
        return trace_json(ctx.trace, ctx.tokens, meta=meta, attentions=attentions)

    async def _run(self) -> None:
        try:
            while self.queue:
                req = self.queue[-1]
                for old in self.queue[:-1]:
                    self.post("superseded", old["id"], {})
                self.queue = []
                if req["id"] < self.latest():
                    self.post("superseded", req["id"], {})
                    continue
                await self._compute(req)
        finally:
            self.running = False

    async def _compute(self, req: Dict[str, Any]) -> None:
        rid = req["id"]
        self.started = req.get("t", time.time())
        dpr = req["dpr"] if req["bitmap"] and self.can_draw() else 0.0
        engine = self.engine
        engine.post = lambda kind, i, payload: self.post(kind, i, payload, dpr if kind == "partial" else 0.0)
        t0 = time.time()
        try:
            frame = await engine.compute(rid, req["state"], req["width"], req["view"])
            timing = dict(engine.timing, worker_ms=(time.time() - t0) * 1000.0)
            self.post("result", rid, {"frame": frame, "partial": False, "timing": timing}, dpr)
        except Superseded:
            self.post("superseded", rid, {})
        except Exception as e:  # noqa: BLE001 - the page shows it; the worker keeps serving
            traceback.print_exc()
            self.post("error", rid, {"message": "%s: %s" % (type(e).__name__, e), "kind": "error"})

    @staticmethod
    def can_draw() -> bool:
        return hasattr(js, "OffscreenCanvas")


_host: Optional[WorkerHost] = None
_debug_namespace: Dict[str, Any] = {"__name__": "pyapp_worker_debug"}


def start(interrupt=None, options=None) -> str:
    """Install the wasm kernel, read the catalogue, make the Session; returns what this worker can do (JSON)."""
    global _host
    t0 = time.time()
    gemm = wasm_gemm.install(threads=True)   # + a second thread for the large products when isolated
    problem = ""
    try:
        with open(CATALOGUE_PATH, "rb") as fh:
            catalogue = load_catalogue(fh.read())
    except (OSError, CatalogueError) as e:
        catalogue, problem = None, str(e)
    direct = page_canvas()
    debug = options is not None and getattr(options, "debug", None) is True
    _host = WorkerHost(Session(catalogue), interrupt, direct, debug=debug)
    return json.dumps({
        "python": sys.version.split()[0], "numpy": np.__version__, "simd": gemm is not None,
        "fma": bool(gemm is not None and gemm.relaxed),     # the relaxed-SIMD build: fused multiply-adds
        "simd_problem": wasm_gemm.problem, "catalogue_problem": problem, "gemm_threads_problem": gemm_threads.problem,
        "isolated": bool(getattr(js, "crossOriginIsolated", False)), "shared": interrupt is not None,
        "offscreen": WorkerHost.can_draw(), "direct": direct is not None, "debug": debug, "start_ms": (time.time() - t0) * 1000.0,
    })


def receive(msg) -> None:
    if _host is None:
        raise RuntimeError("pyapp.worker.entry.start() was not called")
    _host.receive(msg)
