"""The page's update loop with the compute worker (issue 12): the worker fetches, computes and draws; the main
thread only sends the state and shows what comes back, so no long task blocks typing.

``RemoteApp`` is ``app.App`` with its pass replaced: each change of the user sends the state to the worker
(``WorkerClient.compute``), which supersedes the previous request at once (the worker abandons it between
files and layers; its late messages are dropped unread). Partial frames (a loading frame while files come in,
the view while the every-layer tabs fill in, layer by layer) and the final frame are presented exactly as the
main-thread loop presents its frames (``App.present``: controls, chips, status, report, URL), except that the
canvas gets the worker's bitmap (``worker_client.present``); the frame's hit regions keep hover, hotspots and
the keyboard cursor on the main thread. The loading bar follows the worker's progress (which file, how far;
which layer). Exports ask the worker (``call("csv" / "trace_json")``).

When web/coi.js handed the page's canvas to the worker (``transferControlToOffscreen``, where the browser has
it), the worker draws each frame straight into it: presenting a frame here is then its CSS size and hit regions
only, no pixels (``Shown.drawn``); frames made here (a WorkerError's error frame) go to the worker to be drawn,
and the PNG export asks the worker (``convertToBlob``).

If the worker cannot start (no Worker, a failed boot, no answer within ``READY_TIMEOUT_S``) the page falls back
to the main-thread loop (``App``), silently but for a console line; a canvas already handed to the worker is
replaced by a fresh one (``fresh_canvas``).
"""

from __future__ import annotations

import asyncio
import time
import traceback
from typing import Any, Dict, Optional

from ..app.context import VIEW_FIELDS
from ..app.frame import Frame
from . import wasm_gemm
from .app import App
from .compat import js, to_js, to_uint8array
from .dom import el, size_label
from .export import Exporter
from .loader import timeout_seconds
from .worker_client import Shown, WorkerClient, WorkerError, WorkerLost, css_size
from .worker_client import present as present_bitmap

READY_TIMEOUT_S = 120.0       # the worker's boot (Pyodide + numpy + pyapp), alongside the page's own
PLACEHOLDER_AFTER_S = 0.25    # as app.PLACEHOLDER_AFTER_S: a loading frame takes the canvas after this long
BAR_AFTER_S = 0.25            # the loading bar shows the worker's progress once a pass takes this long


def worker_requested() -> bool:
    """The page asked for the compute worker: web/coi.js started it at page open (``data-compute``)."""
    booted = getattr(js, "mhsaCompute", None)
    return booted is not None and getattr(booted, "worker", None) is not None


def transferred() -> bool:
    """web/coi.js handed the page's canvas to the worker (``window.mhsaCompute.transferred``)."""
    booted = getattr(js, "mhsaCompute", None)
    return booted is not None and bool(getattr(booted, "transferred", False))


def fresh_canvas():
    """A new <canvas id="view"> (same attributes) in place of the one handed to the worker: the main thread
    draws again (fallback). Its listeners must be bound again (``Stage.bind_canvas``)."""
    old = el("view")
    new = old.cloneNode(False)
    old.parentNode.replaceChild(new, old)
    js.mhsaCompute.transferred = False
    return new


class RemoteExporter(Exporter):
    """CSV and trace JSON computed by the worker (the main thread has no weights); PNG as on the page, or from
    the worker when it draws into the page's canvas."""

    def png(self):
        app = self.app
        if app.client is None or not app.direct:
            return Exporter.png(self)
        if app.shown is None:
            return
        self._png_name = "%s-%s.png" % (self._stem(), app.shown.tab)
        app.run_soon(self._remote_png(self._png_name))

    async def _remote_png(self, name: str):
        try:
            out = await self.app.client.call("png")
        except WorkerError as e:
            self.app.show_status("Could not make a PNG of this view: %s" % e, "error")
            return
        u8 = to_uint8array(out["png"])
        self._download(js.Blob.new(to_js([u8]), js.JSON.parse('{"type": "image/png"}')), name)

    def csv(self):
        self.app.run_soon(self._remote("csv", "-attention.csv", "text/csv"))

    async def json(self):
        await self._remote("trace_json", "-trace.json", "application/json")

    async def _remote(self, name: str, suffix: str, mime: str):
        app = self.app
        if app.client is None:
            return await (Exporter.json(self) if name == "trace_json" else _sync(Exporter.csv, self))
        if app.shown is None:
            return
        try:
            out = await app.client.call(name, app.shown)
        except WorkerError as e:
            app.show_status("Could not export: %s" % e, "error")
            return
        self._download_text(out["text"], self._stem() + suffix, mime)


async def _sync(fn, *args):
    return fn(*args)


class RemoteProgress:
    """The loading bar (web/boot.js) fed by the worker's progress messages, as ``loader.ProgressBar`` shows
    the main thread's downloads: one line per file ("<path> (<size>)", its fraction), or one line for more
    than a dozen files; the layers being computed as one more line."""

    def __init__(self):
        self.shown = False
        self.lines: Dict[str, str] = {}

    def _open(self):
        bar = el("loading")
        if bar.hidden or not self.shown:
            boot = js.mhsaBoot
            boot.clear()
            boot.progress("runtime", "Python runtime", 1)
            boot.progress("numpy", "numpy", 1)
            boot.failed("")
            bar.classList.remove("failed")
            bar.hidden = False
            self.shown = True
            self.lines = {}

    def update(self, p: Dict[str, Any]):
        boot = js.mhsaBoot
        stage = str(p.get("stage") or "")
        done, of = float(p.get("done") or 0), float(p.get("of") or 0)
        if stage == "fetch":
            self._open()
            paths = p.get("paths") or {}
            if paths:
                for path, size in paths.items():        # the request's files, listed once
                    if path not in self.lines:
                        self.lines[path] = "%s (%s)" % (path, size_label(int(size)))
                        boot.progress("file:" + path, self.lines[path], 0.0)
                path = str(p.get("file") or "")
                size = float(p.get("file_size") or 0)
                if path in self.lines:
                    boot.progress("file:" + path, self.lines[path],
                                  min(float(p.get("file_done") or 0) / size, 1.0) if size > 0 else 1.0)
                return
            label = "%d files (%s)" % (int(p.get("files") or 0), size_label(int(of)))
            boot.progress("group", label, min(done / of, 1.0) if of > 0 else 0.0)
            return
        if stage == "forward":
            label = "Computing layer %d of %d (the layers below the shown one)" % (int(done) + 1, int(of))
        elif stage == "layers":
            label = "Every layer: %d of %d computed" % (int(done), int(of))
        else:
            return
        self._open()
        boot.progress("worker:compute", label, min(max(done / of if of > 0 else 0.0, 0.0), 1.0))

    def finish(self):
        if self.shown:
            el("loading").hidden = True
            self.shown = False


class RemoteApp(App):
    """``App`` whose passes run in the compute worker; ``client`` None: the main-thread loop (fallback)."""

    def __init__(self, session, state, client: Optional[WorkerClient]):
        super().__init__(session, state)
        self.client = client
        self.exporter = RemoteExporter(self)
        self.progress = RemoteProgress()
        self.remote: Dict[str, Any] = {"stats": {}, "images": 0, "timing": {}, "passes": 0, "superseded": 0,
                                       "partials": 0, "fallback": ""}
        self._scheduled = False
        self._retry = False
        self._pass_no = 0                      # the newest pass: older passes' frames are never presented
        self._booted = False
        self.direct = False                    # the worker draws into the page's canvas (handed to it)
        self._bitmap: Optional[Shown] = None   # the worker frame being presented
        self._placeholder = None               # (pass, loading frame) waiting for PLACEHOLDER_AFTER_S
        self.stage.painter = self._paint
        if client is not None:
            client.timeout_ms = timeout_seconds() * 1000.0
            # the files web/coi.js's page-open request (id 0) fetched before this Python ran: listed in the bar
            client.on_early_progress = self._early_progress
            for p in client.early:
                self._early_progress(p)

    # ---- the loop -----------------------------------------------------------------------------------
    def schedule(self):
        if self.client is None:
            return super().schedule()
        self.dirty = True
        self.changed.set()
        if not self._scheduled:                # several changes in one task: one request
            self._scheduled = True
            self.run_soon(self._remote_pass())

    async def run(self):
        if self.client is None:
            return await super().run()
        self.schedule()

    async def _boot(self) -> bool:
        """Wait for the worker once; on failure fall back to the main-thread loop. True: use the worker."""
        if self._booted:
            return self.client is not None
        try:
            info = await asyncio.wait_for(self.client.ready(), READY_TIMEOUT_S)
            self.remote["worker"] = {k: info.get(k) for k in ("python", "numpy", "simd", "fma", "isolated",
                                                              "shared", "offscreen", "direct", "debug")}
            self.direct = bool(info.get("direct")) and transferred()
            if transferred() and not self.direct:      # handed over, but no 2d context there: bitmaps
                self._fresh_canvas()
        except (WorkerError, asyncio.TimeoutError) as e:
            self._fall_back(str(e) or "timeout")
        self._booted = True
        return self.client is not None

    def _fall_back(self, why: str):
        """No worker from now on (it could not start, or it was lost): the main-thread loop, on a fresh canvas
        if the worker had the page's."""
        print("compute worker unavailable, computing on the main thread: %s" % why)
        self.remote["fallback"] = why
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - it may never have started
            pass
        self.client = None
        self.direct = False
        wasm_gemm.install()                    # the main thread computes from now on
        self.progress.finish()                 # the worker's bar, if it showed one; the loop below has its own
        if transferred():
            self._fresh_canvas()

    async def _remote_pass(self):
        self._scheduled = False
        if not await self._boot():
            self.stage.painter = None
            return App.schedule(self)
        if self.session.problem or self.session.catalogue is None:
            self.dirty = False                  # no catalogue: the error frame with Retry, made here (no model)
            self.present(self.frame())
            return
        self.dirty = False
        self.changed.clear()
        self._pass_no += 1
        me = self._pass_no
        self.remote["passes"] += 1
        started = self._pass_started = time.time()
        view = dict(self.view, **self.hover)
        view = {k: view[k] for k in VIEW_FIELDS if k in view}
        retry, self._retry = self._retry, False
        try:
            shown = await self.client.compute(
                self.state, self.stage.width(), self.stage.dpr(), view=view, retry=retry,
                on_progress=lambda p: self._on_worker_progress(me, started, p),
                on_partial=lambda s: self._show(me, started, s))
        except WorkerLost as e:               # it stopped answering after start-up: compute here from now on
            self._fall_back("lost: %s" % e)
            self.stage.painter = None
            return App.schedule(self)
        except WorkerError as e:              # a bug in the worker: show it for this state, keep the page
            traceback.print_exc()
            if me == self._pass_no:
                self.present(self.frame(error=e))
            return
        if shown is None:                     # superseded by a newer pass
            self.remote["superseded"] += 1
            return
        self._show(me, started, shown)

    def _early_progress(self, p: Dict[str, Any]):
        if p.get("stage") == "fetch" and (self._pass_no == 0 or self.progress.shown):
            self.progress.update(p)

    def _current(self, me: int) -> bool:
        return me == self._pass_no and not self._scheduled

    def _on_worker_progress(self, me: int, started: float, p: Dict[str, Any]):
        """Files at once (as the main-thread loop lists its downloads); computing once it takes a while."""
        if self._current(me) and (p.get("stage") == "fetch" or time.time() - started >= BAR_AFTER_S):
            self.progress.update(p)

    def _show(self, me: int, started: float, s: Shown):
        """Present a worker frame of pass ``me`` (never one of an older pass: no stale picture)."""
        if not self._current(me):
            if s.bitmap is not None:
                s.bitmap.close()
            return
        t0 = time.time()
        try:
            self._present_shown(me, started, s)
        finally:          # the main thread's cost of presenting a frame (decoding its message: decode_max_ms)
            ms = (time.time() - t0) * 1000.0
            self.remote["present_ms"] = ms
            self.remote["present_max_ms"] = max(self.remote.get("present_max_ms", 0.0), ms)
            if self.client is not None:
                self.remote["decode_max_ms"] = self.client.stats["decode_max_ms"]

    def _present_shown(self, me: int, started: float, s: Shown):
        frame: Frame = s.frame
        self.remote["stats"] = s.stats or self.remote["stats"]
        self.remote["images"] = s.images
        self.remote["timing"] = dict(s.timing)
        if s.partial:
            self.remote["partials"] += 1
        self._drop_placeholder()
        wait = PLACEHOLDER_AFTER_S - (time.time() - started)
        canvas = frame.kind != "loading" or wait <= 0
        self._bitmap = s
        try:
            self.present(frame, canvas=canvas)
        finally:
            self._bitmap = None
            if canvas and s.bitmap is not None:
                s.bitmap.close()
                s.bitmap = None
        if not canvas:           # the previous picture stays a moment; then the placeholder, if still waiting
            self._placeholder = (me, s)
            asyncio.get_event_loop().call_later(wait, self._late_placeholder, me, s)
        if not s.partial and frame.kind == "view":
            self.progress.finish()
            self.bar.finish()

    def _drop_placeholder(self):
        if self._placeholder is not None:
            s = self._placeholder[1]
            self._placeholder = None
            if s.bitmap is not None:
                s.bitmap.close()
                s.bitmap = None

    def _late_placeholder(self, me: int, s: Shown):
        if self._placeholder is None or self._placeholder[1] is not s:
            return                                # something newer was presented meanwhile
        self._placeholder = None
        if self._current(me):
            self._bitmap = s
            try:
                self.present(s.frame)
            finally:
                self._bitmap = None
        if s.bitmap is not None:
            s.bitmap.close()
            s.bitmap = None

    def _fresh_canvas(self):
        fresh_canvas()
        self.stage.bind_canvas(self.listeners)

    def _paint(self, scene, canvas):
        s = self._bitmap
        if s is not None and (s.bitmap is not None or s.drawn):
            present_bitmap(s, canvas)
        elif self.direct and self.client is not None:     # made here: the worker draws it into the canvas
            css_size(canvas, scene.width, scene.height)
            self.run_soon(self._draw_remote(scene))
        else:
            from . import canvas as canvas_backend
            canvas_backend.draw(scene, canvas, self.stage.dpr())

    async def _draw_remote(self, scene):
        try:
            await self.client.call("draw", {"scene": scene, "dpr": self.stage.dpr()})
        except WorkerError as e:
            print("the worker could not draw a frame: %s" % e)

    def idle(self) -> bool:
        """No pass waiting for the worker (tests, the benchmark)."""
        busy = self.client is not None and any(p["kind"] == "compute" for p in self.client.pending.values())
        return not busy and not self._scheduled

    def uses_worker(self) -> bool:
        return self.client is not None

    # ---- what the page shows ----------------------------------------------------------------------------
    def _report(self, frame: Frame):
        if self.client is None:
            return super()._report(frame)
        import json

        report = dict(frame.report, draws=self.draws, frames=self.frames, dpr=self.stage.dpr(),
                      stats=dict(self.remote["stats"]), images=self.remote["images"],
                      timing=dict(self.timing, page_ms=float(js.performance.now()),
                                  **{"worker_" + k: v for k, v in self.remote["timing"].items()}),
                      compute={k: v for k, v in self.remote.items() if k not in ("stats", "timing", "images")})
        js.document.body.dataset.report = json.dumps(report)

    @property
    def ctx(self):
        return super().ctx if self.client is None else None

    async def retry(self):
        if self.client is None:
            return await super().retry()
        if self.session.problem:              # the catalogue again, here and in the worker
            await self._reload_catalogue()
            if not self.session.problem:
                try:
                    await self.client.call("reload_catalogue")
                except WorkerError as e:
                    print("the worker could not reload the catalogue: %s" % e)
        self._retry = True                    # the next request tells the worker to forget its failed files
        self.schedule()


def make_app(session, state) -> App:
    """The page's App: the worker's when web/coi.js started one, else the main-thread loop (and its kernel:
    x @ W^T on WebAssembly SIMD when the browser has it, numpy otherwise; the worker installs its own)."""
    client = None
    if worker_requested():
        try:
            client = WorkerClient.start()
        except Exception as e:  # noqa: BLE001 - no worker: compute here
            print("compute worker unavailable: %s" % e)
            if transferred():
                fresh_canvas()                  # before App binds the canvas' listeners
    if client is not None:
        return RemoteApp(session, state, client)
    wasm_gemm.install()
    return App(session, state)
