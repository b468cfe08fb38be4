"""One compute request of the page, done in the worker: fetch what is missing, compute bottom up, build the
Frame (``pyapp.app.frame.build_frame``: the scene, chips, controls, status, report).

Pure Python + numpy (runs in CPython: ``tests/test_worker_engine.py``); the worker's shell
(``pyapp.worker.entry``) gives it I/O as callables:

* ``fetch(path, progress) -> bytes`` (async): one model file (``models/<path>``); ``progress(done, total)``.
* ``post(kind, req_id, payload)``: a message to the page: "progress" ({"stage": "fetch" | "forward" |
  "layers", "done", "of", ...}) and "partial" ({"frame": Frame, "partial": True}: a loading frame while the
  shown state's files come in, the view before its V/O file or while the every-layer tabs fill in).
* ``latest()``: the newest request id the page has sent.  A request whose id is below it is superseded: the
  engine stops at its next check (between files, between layers) with ``Superseded``, posting nothing more
  for it. ``pause()`` (async) runs before each check so the worker's event loop can take messages in.

What a request computes is what the page's shell did on the main thread: the Session's file plan, the
layers below the shown one ONE per check (so a long forward pass reports which layer it is on and can be
abandoned), the view; for the every-layer tabs the other layers one per check, with a partial frame at
most every ``partial_ms`` (and at most a third of the time spent drawing them).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, Union

from ..app.frame import Frame, build_frame
from ..app.session import Session
from ..app.state import AppState, parse_query
from ..core.catalogue import CatalogueError, FileEntry
from ..core.weights import WeightFileError

Fetch = Callable[[str, Callable[[int, int], None]], Awaitable[bytes]]
MAX_CONCURRENT = 8            # downloads at once (the page's loader: the same)
PROGRESS_S = 0.05             # download progress to the page at most this often (and when a file is in)
Post = Callable[[str, int, Dict[str, Any]], None]


class Superseded(Exception):
    """A newer request arrived: this one stops (nothing more is posted for it)."""


class FileFailed(Exception):
    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def wanted_state(state: Union[AppState, str]) -> AppState:
    return state if isinstance(state, AppState) else parse_query(str(state))[0]


class Engine:
    def __init__(self, session: Session, fetch: Fetch, post: Post, latest: Callable[[], int],
                 pause: Optional[Callable[[], Awaitable[None]]] = None, partial_ms: float = 150.0,
                 clock: Callable[[], float] = time.time):
        self.session = session
        self.fetch = fetch
        self.post = post
        self.latest = latest
        self.pause = pause
        self.partial_ms = float(partial_ms)
        self.clock = clock
        self.timing: Dict[str, float] = {}
        self.failures: Dict[str, Exception] = {}     # path -> why it failed, until ``retry``
        self.inflight: Dict[str, "asyncio.Future[bytes]"] = {}   # path -> its download, shared by requests
        self.listeners: Dict[str, Callable[[int, int], None]] = {}  # path -> the newest request's progress
        self.joined: Dict[str, int] = {}                           # path -> the newest request awaiting it
        self.previous = -1                # the compute request before the running one (ids grow)
        self.received: Dict[str, Tuple[int, int]] = {}             # path -> (bytes, total) so far
        self.running = -1

    # ---- superseding ------------------------------------------------------------------------------------
    async def check(self, req_id: int) -> None:
        if self.pause is not None:
            await self.pause()
        if self.latest() > req_id:
            raise Superseded(req_id)

    # ---- files ------------------------------------------------------------------------------------------
    async def _fetch_files(self, req_id: int, files: List[FileEntry],
                           still: Optional[Callable[[List[FileEntry]], None]] = None) -> None:
        """Fetch and add ``files``, at most ``MAX_CONCURRENT`` at once (as the page's loader); progress counts
        the bytes of them all. ``still(remaining)``: the files not in yet, each time fewer are left (checked
        every 50 ms: the loading frame then names only those). Raises FileFailed (the first failure),
        Superseded."""
        files = [f for f in files if not self.session.store.has(f.path)]
        if not files:
            return
        known = next((self.failures[f.path] for f in files if f.path in self.failures), None)
        if known is not None:                   # failed before: remembered until Retry (``retry``)
            raise FileFailed(known)
        total = sum(int(f.size) for f in files)
        paths = {f.path: int(f.size) for f in files} if len(files) <= 12 else {}   # the bar lists these
        got: Dict[str, int] = {}
        slots = asyncio.Semaphore(MAX_CONCURRENT)
        failed: List[Exception] = []
        told = [-PROGRESS_S]            # when the page was last told: a message per network chunk was ~160 a
        #                                 second on the Model tab, each one the page's main thread to handle

        async def one(f: FileEntry) -> None:
            def progress(n: int, size: int, path=f.path, expected=int(f.size)) -> None:
                got[path] = int(n)
                now = self.clock()
                if 0 < n < expected and now - told[0] < PROGRESS_S:
                    return
                told[0] = now
                self.post("progress", req_id, {"stage": "fetch", "file": path, "done": sum(got.values()),
                                               "of": total, "files": len(files), "file_done": int(n),
                                               "file_size": expected, "paths": paths})
            async with slots:
                if failed or self.latest() > req_id or self.session.store.has(f.path):
                    return                                     # stop starting files once it failed / is old
                try:
                    data = await self._download(req_id, f.path, progress)
                except Exception as e:  # noqa: BLE001 - the frame says which file failed and why
                    failed.append(self.session.fetch_error(f.path, "could not be downloaded (%s)" % e))
                    return
                if self.session.store.has(f.path):               # a request sharing the download added it
                    return
                try:
                    self.session.add_file(f.path, data)
                except WeightFileError as e:
                    failed.append(e)

        task = asyncio.ensure_future(asyncio.gather(*[one(f) for f in files]))
        left = len(files)
        while not task.done():                  # a newer request does not wait for a slow or stalled file
            tick = asyncio.ensure_future(asyncio.sleep(0.05))     # left to run out: never a cancelled timer
            await asyncio.wait([task, tick], return_when=asyncio.FIRST_COMPLETED)
            if self.latest() > req_id:            # its downloads finish (or time out) on their own, unread
                task.add_done_callback(lambda t: None if t.cancelled() else t.exception())
                raise Superseded(req_id)
            if still is None or task.done() or failed:
                continue
            remaining = [f for f in files if not self.session.store.has(f.path)]
            if 0 < len(remaining) < left:
                left = len(remaining)
                still(remaining)
        await self.check(req_id)
        for e in failed:
            path = getattr(e, "path", None)
            if path:
                self.failures[path] = e
        if failed:
            raise FileFailed(failed[0])

    def _download(self, req_id: int, path: str, progress: Callable[[int, int], None]) -> "asyncio.Future[bytes]":
        """The download of ``path``: the one in flight if the request just before this one (which this one
        superseded) started or joined it -- a file is not downloaded twice at once when the page's next request
        wants it too (web/coi.js's page-open request, typing); its progress goes to the newest request --
        else a new one (as the page's own loader, which drops what the shown state no longer needs)."""
        self.listeners[path] = progress
        fut = self.inflight.get(path)
        if fut is None or fut.done() or self.joined.get(path, -1) < self.previous:
            progress(0, 0)                                      # on its way (a held request shows at 0%)
            self.received[path] = (0, 0)

            def relay(n: int, t: int, path=path) -> None:
                self.received[path] = (n, t)
                self.listeners[path](n, t)
            fut = asyncio.ensure_future(self.fetch(path, relay))
            self.inflight[path] = fut
        else:
            progress(*self.received.get(path, (0, 0)))          # joined: how far it got already

            def done(f, path=path):
                if self.inflight.get(path) is f:
                    del self.inflight[path]
                    self.listeners.pop(path, None)
                    self.joined.pop(path, None)
                    self.received.pop(path, None)
                if not f.cancelled():
                    f.exception()                # retrieved: a failure nobody awaits any more is not logged
            fut.add_done_callback(done)
        self.joined[path] = max(self.joined.get(path, req_id), req_id)
        return asyncio.shield(fut)

    def retry(self) -> None:
        """Forget every failed file: the next request downloads them again (the page's Retry), afresh."""
        self.failures.clear()
        self.inflight.clear()
        self.joined.clear()

    # ---- the request ------------------------------------------------------------------------------------
    async def compute(self, req_id: int, state: Union[AppState, str], width: float,
                      view: Optional[Dict[str, Any]] = None) -> Frame:
        """The final Frame of ``state`` (an AppState or a URL query) at layout ``width``; partial frames and
        progress go through ``post`` on the way. ``view``: page-only view state (hover_token, hover_side).
        Raises ``Superseded``; a failed file gives an error frame (as on the page)."""
        view = {k: v for k, v in (view or {}).items() if k in ("hover_token", "hover_side")}
        if req_id != self.running:
            self.previous, self.running = self.running, req_id
        wanted = wanted_state(state)
        session = self.session
        t0 = self.clock()
        await self.check(req_id)
        try:
            st = session.normalise(wanted)
            plan = session.plan(st)
        except Exception:  # noqa: BLE001 - build_frame makes the error frame of this state
            return build_frame(session, wanted, width, **view)
        try:
            def loading(waiting: List[FileEntry]) -> None:   # the canvas names the files still coming
                self.post("partial", req_id, {"frame": build_frame(session, wanted, width, waiting=waiting, **view),
                                              "partial": True})

            while plan.required:                              # the tokenizer first, then the weights
                loading(plan.required)
                await self._fetch_files(req_id, plan.required, loading)
                st = session.normalise(wanted)
                plan = session.plan(st)
            t1 = self.clock()
            await self._forward(req_id, st)
            loading = ("V/O weights of layer %d" % st.layer) if plan.later else ""
            last = self.clock()
            if plan.later or plan.layers:
                await self.check(req_id)
                self._partial(req_id, wanted, width, view, loading)
                last = self.clock()
            if plan.later:
                await self._fetch_files(req_id, plan.later)
            n_layers = session.shape(st)[0]
            for layer, files in plan.layers:
                await self._fetch_files(req_id, files)
                await self.check(req_id)
                have = session.layer_attentions(st, new_layers=1, computed=min(st.layer, n_layers - 1))
                self.post("progress", req_id, {"stage": "layers", "layer": layer, "done": len(have), "of": n_layers})
                wait = max(self.partial_ms, 2.0 * self.timing.get("render_ms", 0.0))
                if len(have) < n_layers and (self.clock() - last) * 1000.0 >= wait:
                    await self.check(req_id)
                    self._partial(req_id, wanted, width, view)
                    last = self.clock()
        except FileFailed as e:
            return build_frame(session, wanted, width, error=e.error, **view)
        await self.check(req_id)
        t2 = self.clock()
        frame = self._build(wanted, width, view)
        self.timing.update({"fetch_ms": (t1 - t0) * 1000.0, "compute_ms": (t2 - t1) * 1000.0})
        return frame

    async def _forward(self, req_id: int, st: AppState) -> None:
        """The layers below the shown one, one per check (the Encoder caches each; the frame reuses them)."""
        layer = min(st.layer, self.session.shape(st)[0] - 1)
        if layer <= 0:
            return
        session = self.session
        session.context(st.with_(layer=0, tab="overview"), new_layers=0)   # caches keyed by these ids
        step = getattr(session.source(st).encoder, "layer_input", None)
        if step is None:
            return
        ids = session.encode(st).ids
        for k in range(1, layer + 1):
            await self.check(req_id)
            self.post("progress", req_id, {"stage": "forward", "layer": k - 1, "done": k - 1, "of": layer})
            step(ids, k, bool(st.causal))

    def _build(self, wanted: AppState, width: float, view: Dict[str, Any], loading: str = "") -> Frame:
        t0 = self.clock()
        frame = build_frame(self.session, wanted, width, loading=loading, new_layers=0, **view)
        self.timing["render_ms"] = (self.clock() - t0) * 1000.0
        return frame

    def _partial(self, req_id: int, wanted: AppState, width: float, view: Dict[str, Any], loading: str = ""):
        self.post("partial", req_id, {"frame": self._build(wanted, width, view, loading), "partial": True})


__all__ = ["Engine", "Superseded", "wanted_state", "CatalogueError"]
