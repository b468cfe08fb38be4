"""The page's update loop: the user's state -> the files it needs -> a Frame -> the page.

The shell computes nothing itself: ``pyapp.app.frame.build_frame`` makes each Frame (plain data: the scene,
the chips, the controls, the status, the report) and the parts below present it -- ``controls`` (the form and
the tab bar), ``stage`` (the canvas, pointer, keys, hotspots), ``chips`` (tokens), ``loader`` (downloads and
the loading bar), ``export``. Everything the user typed reaches the DOM through ``textContent`` (or the
canvas' ``fillText``), never as markup.

The loop never waits for a file the shown state does not need. Each pass plans the state's files
(``Session.plan``), cancels downloads nobody needs any more, and then:

* a needed file failed -> an error frame for THIS state (what failed, Retry), whatever was shown before;
* files are missing    -> they download concurrently; the controls, status and URL show the new state at
                          once, a loading placeholder takes the canvas if it takes longer than a moment; any
                          change of the user starts the next pass right away;
* else                 -> the view; then its V/O (``later``) and, for the every-layer tabs, one layer per
                          frame (``layers``), each pass stopping as soon as the user changes something.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from typing import Any, Dict, Optional

from ..app.context import VIEW_FIELDS
from ..app.frame import Frame, build_frame, describe, format_bits
from ..app.session import FilePlan, Session, SessionError
from ..app.state import LINK_TEXT_LEFT_OUT, AppState, fitted_problems, parse_query, query_notice
from ..core.catalogue import CatalogueError, load_catalogue
from . import canvas as canvas_backend
from .chips import TokenChips
from .compat import create_proxy, js
from .controls import ControlPanel
from .dom import Debouncer, Listeners, el
from .export import Exporter
from .fetch import FetchError, fetch_bytes
from .loader import Loader, ProgressBar
from .stage import Stage

CATALOGUE_PATH = "models/index.json"     # written into the file system by PyScript's [files]
CATALOGUE_URL = "../models/index.json"   # fetched again by Retry
URL_DEBOUNCE_MS = 300
RESIZE_DEBOUNCE_MS = 120
PLACEHOLDER_AFTER_S = 0.25     # a download taking longer than this puts the loading placeholder on the canvas
STATE_ACTIONS = ("pinned_row", "head", "tab", "step", "arch", "layer", "heads_shown", "sort_by", "sort_desc",
                 "sample_t", "top_k", "top_p", "text")


class App:
    def __init__(self, session: Session, state: AppState):
        self.session = session
        self.state = state                       # as the user set it (the text as typed)
        self.shown: Optional[AppState] = None    # the state of the last view drawn (exports read it)
        self.view: Dict[str, Any] = {}           # page-only view state set by clicks (VIEW_FIELDS)
        self.hover: Dict[str, Any] = {}          # transient view state while the pointer is over a region
        self.link = ""
        self.link_check = None       # (state asked for by the URL, its query, problems so far) until drawn
        self.dirty = True
        self.running = False
        self.draws = 0               # view frames drawn
        self.frames = 0              # frames presented on the canvas (view, loading, error)
        self.timing: Dict[str, float] = {}
        self.changed = asyncio.Event()
        self.loader = Loader(session, on_progress=self._on_progress)
        self.bar = ProgressBar(self.loader)
        self.controls = ControlPanel(self)
        self.stage = Stage(self.apply_action, self.set_hover)
        self.chips = TokenChips()
        self.exporter = Exporter(self)
        self.listeners = Listeners()
        self.url_writer = Debouncer(URL_DEBOUNCE_MS, self._write_url)
        self.resized = Debouncer(RESIZE_DEBOUNCE_MS, self._resized)
        self._width = 0
        self._left_out = False
        self._pass_started = time.time()

    def bind(self):
        on = self.listeners.on
        self.controls.bind(self.listeners)
        self.stage.bind(self.listeners)
        self.chips.bind(self.listeners)
        self.exporter.bind(self.listeners)
        on(el("retry"), "click", lambda e: self.run_soon(self.retry()))
        on(el("link-notice-close"), "click", lambda e: self.show_link_notice(""))
        on(js.window, "resize", self.resized.poke)

    # ---- what the user changes ----------------------------------------------------------------------
    def set(self, **changes):
        new = self.state.with_(**changes)
        if new != self.state:
            self.state = new
            self.schedule()

    def schedule(self):
        self.dirty = True
        self.changed.set()
        if not self.running:
            self.run_soon(self.run())

    @staticmethod
    def run_soon(coro):
        return asyncio.ensure_future(coro)

    def apply_action(self, act: Dict[str, Any]):
        """A view's click action: state changes (in the URL) and view-only ones (VIEW_FIELDS)."""
        view = {k: v for k, v in act.items() if k in VIEW_FIELDS}
        if view and any(self.view.get(k) != v for k, v in view.items()):
            self.view.update(view)
            self.schedule()
        changes = {k: (tuple(v) if k == "heads_shown" and v is not None else v)
                   for k, v in act.items() if k in STATE_ACTIONS}
        if "text" in changes:                      # the next-token view appends a token: the box shows it
            el("text").value = changes["text"]
        if changes:
            self.set(**changes)

    def set_hover(self, hover: Dict[str, Any]):
        """Transient view state under the pointer (the head view's hovered token); redraws when it changes."""
        if hover != self.hover:
            self.hover = hover
            self.schedule()

    def view_state_reset(self):
        self.view = {}

    async def retry(self):
        if self.session.problem:
            await self._reload_catalogue()
        self.loader.retry()
        self.schedule()

    def _resized(self):
        if self.stage.width() != self._width:
            self.schedule()

    # ---- the update loop ------------------------------------------------------------------------------
    async def run(self):
        if self.running:
            return
        self.running = True
        try:
            while self.dirty:
                self.dirty = False
                self.changed.clear()
                self._pass_started = time.time()
                try:
                    await self._pass()
                except Exception as e:  # noqa: BLE001 - show it for this state, keep the page alive
                    traceback.print_exc()
                    self.present(self.frame(error=e))
        finally:
            self.running = False

    async def _pass(self):
        try:
            st = self.session.normalise(self.state)
            plan = self.session.plan(st)
        except (SessionError, CatalogueError) as e:
            self.present(self.frame(error=e))
            return
        self.loader.keep({f.path for f in plan.files()})
        failed = self.loader.failure(plan.required)
        if failed is not None:
            self.present(self.frame(error=failed))
            return
        if plan.required:
            await self._wait_for(plan.required)
            self.dirty = True                      # plan again: files came in, failed, or the state changed
            return
        self.loader.start(plan.later)
        if plan.later:
            self.bar.track(plan.later)
        self.present(self.frame(loading=self.session.later_label(st, plan)))
        if plan.later:
            await self.loader.wait(plan.later, self.changed)
            if self.dirty:
                return
            failed = self.loader.failure(plan.later)
            if failed is not None:
                self.present(self.frame(error=failed))
                return
            self.present(self.frame())
        if await self._fill_layers():
            self.bar.finish()

    async def _wait_for(self, files):
        """Download ``files`` (the state's required ones); show the new state at once, the placeholder on the
        canvas if it takes a while; return when one of them is in or failed (the next pass lists the rest),
        or when the user changes something."""
        self.loader.start(files)
        self.bar.track(files)
        self.present(self.frame(waiting=self.loader.busy(files) or files), canvas=False)
        if not await self.loader.wait(files, self.changed, timeout=PLACEHOLDER_AFTER_S) and not self.dirty:
            self.present(self.frame(waiting=self.loader.busy(files) or files))
            await self.loader.wait(files, self.changed, any_done=True)

    async def _fill_layers(self) -> bool:
        """Tabs that read every layer: their files download concurrently; the layers are computed bottom up,
        ONE per frame, redrawing after each, so the page stays responsive. Stops as soon as the user changes
        something (the next pass continues from what is computed). True when every layer is in."""
        while not self.dirty:
            plan = self.session.plan(self.session.normalise(self.state))
            if not plan.layers:
                return True
            batches = [f for _, batch in plan.layers for f in batch]
            batch = plan.layers[0][1]
            failed = self.loader.failure(batch)
            if failed is not None:                          # the view shows the layers below it; Retry
                self.present(self.frame(error=failed, keep_view=True))
                self.bar.fail(describe(failed))
                return False
            self.loader.start(batches)
            if batch:
                self.bar.track(batch)
                await self.loader.wait(batch, self.changed)
                continue
            await asyncio.sleep(0.005)                      # a frame for the browser: paint, input
            if self.dirty:
                return
            self.present(self.frame(new_layers=1))
        return False

    async def fetch_now(self, plan: FilePlan) -> bool:
        """Download every file of ``plan`` (an export's), whatever the user does meanwhile; False (and the
        error shown) if one fails."""
        files = plan.required + plan.later
        self.loader.pinned.update(f.path for f in files)
        try:
            self.loader.start(files)
            await self.loader.wait(files)
        finally:
            self.loader.pinned.difference_update(f.path for f in files)
        failed = self.loader.failure(files)
        if failed is not None:
            self.show_status(describe(failed), "error", retry=True)
            return False
        return True

    # ---- frames -----------------------------------------------------------------------------------------
    def frame(self, error: Optional[BaseException] = None, waiting=(), loading: str = "",
              new_layers: Optional[int] = 0, keep_view: bool = False) -> Frame:
        """The Frame of the current state (``build_frame``); ``keep_view``: an error that does not stop the
        view (a layer of an every-layer tab failed): the view, with the error in the status."""
        view = dict(self.view, **self.hover)
        hover = {k: view[k] for k in VIEW_FIELDS if k in view}
        frame = build_frame(self.session, self.state, self.stage.width(), error=None if keep_view else error,
                            waiting=waiting, loading=loading, new_layers=new_layers, **hover)
        if keep_view and error is not None:
            frame.status, frame.status_kind, frame.retry = describe(error), "error", True
        return frame

    def present(self, frame: Frame, canvas: bool = True):
        """Show ``frame`` everywhere: controls, chips, status, readout, URL; the canvas unless ``canvas`` is
        False (a loading frame's first moment: the previous picture stays until the placeholder is due)."""
        self.state = frame.state.with_(text=self.state.text)      # the state shown; the text as typed
        self.controls.sync(frame.controls)
        if frame.chips is not None:
            self.chips.show(frame.chips)
        self.show_status(frame.status, frame.status_kind, frame.retry)
        self.link = frame.link
        self.url_writer.poke()
        if frame.link_text_left_out != self._left_out:
            self._left_out = frame.link_text_left_out
            self.show_link_notice(LINK_TEXT_LEFT_OUT if self._left_out else "")
        if frame.detail:
            print(frame.detail)
        if not canvas:
            return
        t0 = time.time()
        self._width = self.stage.width()
        self.stage.show(frame.scene)
        self.frames += 1
        el("entropy").textContent = format_bits(frame.entropy)          # "–" unless a view is drawn
        el("entropy-of").textContent = frame.entropy_of
        if frame.kind == "view":
            self.draws += 1
            self.shown = frame.state
        elif frame.kind == "error":
            self.bar.fail(frame.status)
            js.document.body.dataset.error = frame.status
        t1 = time.time()
        self.timing = dict(frame.timing, draw_ms=(t1 - t0) * 1000, update_ms=(t1 - self._pass_started) * 1000)
        self._report(frame)
        if frame.kind != "loading":
            self._finish_link_check(frame.state)
            body = js.document.body
            if str(body.dataset.state) != "ready":
                body.dataset.state = "ready"
                js.mhsaBoot.ready()

    def uses_worker(self) -> bool:
        """False: this loop computes on the main thread (``remote.RemoteApp`` may use the compute worker)."""
        return False

    @property
    def ctx(self):
        """The ViewContext of the last view drawn (exports, debugging)."""
        return None if self.shown is None else self.session.context(self.shown, new_layers=0)

    def _report(self, frame: Frame):
        """A JSON summary on <body data-report> for tests and the benchmark (read-only, no markup)."""
        report = dict(frame.report, draws=self.draws, frames=self.frames, dpr=self.stage.dpr(),
                      stats=dict(self.session.stats), images=canvas_backend.stats["images"],
                      timing=dict(self.timing, page_ms=float(js.performance.now())))
        js.document.body.dataset.report = json.dumps(report)

    def show_status(self, message: str, kind: str = "", retry: bool = False):
        el("status-text").textContent = message
        el("status").className = "status " + kind if message else "status"
        el("retry").hidden = not retry

    def _on_progress(self, path: str, fraction: float):
        self.bar.update(path, fraction)

    # ---- the URL mirrors the state; the link notice ----------------------------------------------------
    def _write_url(self):
        search = ("?" + self.link) if self.link else ""
        if str(js.location.search or "") != search:
            js.history.replaceState(js.history.state, "", str(js.location.pathname) + search
                                    + str(js.location.hash or ""))

    def show_link_notice(self, message: str):
        el("link-notice-text").textContent = message
        el("link-notice").hidden = not message

    def _finish_link_check(self, shown: AppState):
        if self.link_check is not None:     # the model and the text are known: finish checking the link
            requested, query, problems = self.link_check
            self.link_check = None
            self.show_link_notice(query_notice(problems + fitted_problems(requested, shown, query)))

    async def _reload_catalogue(self):
        try:
            catalogue, problem = load_catalogue(await fetch_bytes(CATALOGUE_URL)), ""
        except (FetchError, CatalogueError) as e:
            catalogue, problem = None, catalogue_problem(e)
        self.session = Session(catalogue, problem=problem)
        self.loader = Loader(self.session, on_progress=self._on_progress)
        self.bar.loader = self.loader
        if catalogue is not None:
            self.state = self.session.normalise(self.state).with_(text=self.state.text)
            self.controls.populate_models()


# ---- entry point ------------------------------------------------------------------------------------------
def catalogue_problem(e: Exception) -> str:
    if isinstance(e, OSError):
        e = "it is missing"
    return "Could not read the model catalogue (%s). Press Retry to load it again." % (e,)


def _load_catalogue():
    try:
        with open(CATALOGUE_PATH, "rb") as fh:
            return load_catalogue(fh.read()), ""
    except (OSError, CatalogueError) as e:
        return None, catalogue_problem(e)


async def main():
    """Start the app (called by web/main.py)."""
    boot = js.mhsaBoot
    boot.progress("runtime", "Python runtime", 1)
    boot.progress("numpy", "numpy", 1)
    try:
        catalogue, problem = _load_catalogue()
        session = Session(catalogue, problem=problem)
        query = str(js.location.search or "")
        state, problems = parse_query(query) if query else (AppState(), [])
        from .remote import make_app  # the compute worker's loop when web/coi.js started one

        app = make_app(session, state)
        js.window.mhsaApp = create_proxy(app)        # handle for the benchmark / debugging
        app.bind()
        app.show_link_notice(query_notice(problems))
        app.link_check = (state, query, problems)    # finished by the first frame that shows a model
        await app.run()
    except Exception as e:  # noqa: BLE001 - the page must say what happened
        traceback.print_exc()
        boot.fail("The app could not start: %s: %s" % (type(e).__name__, e))
