"""Downloads: the session's files fetched concurrently, each with a stall timeout, cancellable; the loading bar.

Each file is its own task, so no download ever waits for another and the update loop waits only for the
files the shown state needs (``wait`` returns as soon as the state changes). A file that fails (HTTP error,
network error, a stall, a corrupt or truncated body) is remembered with its error until ``retry``; one that
no state needs any more is cancelled (``keep``: its AbortController) and forgotten, not counted as failed.

The stall timeout: a download with no progress for ``timeout_s`` seconds (20 s on the site; a test sets
``window.mhsaFetchTimeoutMs`` before the page starts) is aborted and fails with "timed out".
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Dict, Iterable, List, Optional, Set

from ..core.catalogue import FileEntry
from ..core.weights import WeightFileError
from .compat import js
from .dom import el, size_label
from .fetch import FetchError, fetch_bytes

MODELS_URL = "../models/"      # weight files: fetched on demand, relative to web/index.html
TIMEOUT_S = 20.0               # abort a download after this long without a byte
MAX_CONCURRENT = 8             # downloads at once; the others wait their turn (their stall clock not started)
GROUP_OVER = 12                # the loading bar shows more files than this as one line (the LM head: 1,600)


def timeout_seconds() -> float:
    """The stall timeout: ``window.mhsaFetchTimeoutMs`` when a test set it, else TIMEOUT_S."""
    ms = getattr(js.window, "mhsaFetchTimeoutMs", None)
    try:
        return float(ms) / 1000.0 if ms is not None and float(ms) > 0 else TIMEOUT_S
    except (TypeError, ValueError):
        return TIMEOUT_S


class _Watchdog:
    """Aborts a request when ``seconds`` pass without ``poke()``; says whether it did (``fired``).

    Its timer is never cancelled, only disarmed (``stop``): Pyodide 0.17's event loop still runs a cancelled
    timer's handle and logs an error for it."""

    def __init__(self, seconds: float, controller):
        self.seconds = seconds
        self.controller = controller
        self.fired = False
        self.cancelled = False        # aborted on purpose (nobody needs the file): not a failure
        self.stopped = False
        self._last = time.monotonic()
        self._loop = asyncio.get_event_loop()
        self._loop.call_later(seconds, self._check)

    def poke(self):
        self._last = time.monotonic()

    def cancel(self):
        self.cancelled = True
        self.controller.abort()

    def stop(self):
        self.stopped = True

    def _check(self):
        if self.stopped:
            return
        idle = time.monotonic() - self._last
        if idle >= self.seconds - 0.05:
            self.fired = True
            self.controller.abort()
        else:
            self._loop.call_later(self.seconds - idle, self._check)


class Loader:
    """The session's files, downloaded into it: ``start``, ``wait``, ``keep``, ``failure``, ``retry``."""

    def __init__(self, session, on_progress: Optional[Callable[[str, float], None]] = None,
                 base_url: str = MODELS_URL, timeout_s: Optional[float] = None):
        self.session = session
        self.base_url = base_url
        self.timeout_s = timeout_seconds() if timeout_s is None else float(timeout_s)
        self.on_progress = on_progress
        self.tasks: Dict[str, asyncio.Future] = {}
        self.failures: Dict[str, Exception] = {}
        self.fraction: Dict[str, float] = {}
        self.pinned: Set[str] = set()            # files an export waits for: never cancelled by ``keep``
        self._watch: Dict[str, _Watchdog] = {}
        self._slots = asyncio.Semaphore(MAX_CONCURRENT)
        self._wanted: Optional[Set[str]] = None   # the paths of the latest ``keep``: a queued file not in it is dropped

    def failure(self, files: Iterable[FileEntry]) -> Optional[Exception]:
        """The error of the first of ``files`` that failed (until ``retry``), else None."""
        return next((self.failures[f.path] for f in files if f.path in self.failures), None)

    def start(self, files: Iterable[FileEntry]):
        """Start downloading each of ``files`` not in the store, not on its way and not failed."""
        for f in files:
            if f.path in self.tasks or f.path in self.failures or self.session.store.has(f.path):
                continue
            self.tasks[f.path] = asyncio.ensure_future(self._download(f))

    def keep(self, paths: Set[str]):
        """Cancel the downloads whose file is not in ``paths`` (nobody needs it any more); queued ones are
        dropped when their turn comes."""
        self._wanted = set(paths)
        for path, watch in list(self._watch.items()):
            if path not in paths and path not in self.pinned:
                watch.cancel()

    def retry(self):
        """Forget every failure: the next ``start`` downloads those files again."""
        self.failures.clear()

    def busy(self, files: Iterable[FileEntry]) -> List[FileEntry]:
        return [f for f in files if f.path in self.tasks]

    async def wait(self, files: Iterable[FileEntry], changed: Optional[asyncio.Event] = None,
                   timeout: Optional[float] = None, any_done: bool = False) -> bool:
        """Until none of ``files`` is downloading any more (each arrived, failed or was cancelled; with
        ``any_done``: until one of them is done), or ``changed`` is set, or ``timeout`` seconds passed.
        True when none (``any_done``: not all) of them is downloading any more."""
        files = list(files)
        started = sum(1 for f in files if f.path in self.tasks)
        # the deadline is a sleep left to run out (not asyncio.wait's timeout, whose timer gets cancelled)
        timer = asyncio.ensure_future(asyncio.sleep(timeout)) if timeout is not None else None
        while True:
            pending = [self.tasks[f.path] for f in files if f.path in self.tasks]
            if not pending or (any_done and len(pending) < started):
                return True
            if (changed is not None and changed.is_set()) or (timer is not None and timer.done()):
                return False
            waits = pending + [timer] if timer is not None else list(pending)
            woken = asyncio.ensure_future(changed.wait()) if changed is not None else None
            if woken is not None:
                waits.append(woken)
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if woken is not None and not woken.done():
                    woken.cancel()

    async def _download(self, f: FileEntry):
        path = f.path
        async with self._slots:                    # at most MAX_CONCURRENT at once
            if self._wanted is not None and path not in self._wanted and path not in self.pinned:
                self.tasks.pop(path, None)          # nobody needs it any more: never started, not a failure
                return
            await self._fetch_one(f)

    async def _fetch_one(self, f: FileEntry):
        path = f.path
        controller = js.AbortController.new()
        watch = self._watch[path] = _Watchdog(self.timeout_s, controller)
        self._progress(path, 0.0)

        def progress(done: int, total: int):
            watch.poke()
            self._progress(path, done / float(total or 1))

        try:
            try:
                data = await fetch_bytes(self.base_url + path, progress, expected=f.size, signal=controller.signal)
            except FetchError as e:
                if not watch.cancelled:
                    why = ("timed out: no data for %g s" % self.timeout_s) if watch.fired else str(e)
                    self.failures[path] = self.session.fetch_error(path, "could not be downloaded (%s)" % why)
                return
            finally:
                watch.stop()
            try:
                self.session.add_file(path, data)
            except WeightFileError as e:
                self.failures[path] = e
                return
            self._progress(path, 1.0)
        finally:
            self._watch.pop(path, None)
            self.tasks.pop(path, None)

    def _progress(self, path: str, fraction: float):
        self.fraction[path] = fraction
        if self.on_progress is not None:
            self.on_progress(path, fraction)


class ProgressBar:
    """The page's loading bar (drawn by web/boot.js): the files the shown state waits for, with progress.

    An episode starts when the bar is hidden and something is tracked; files no state needs any more leave
    the list; ``fail`` turns it red with the reason; ``finish`` hides it."""

    def __init__(self, loader: Loader):
        self.loader = loader
        self.labels: Dict[str, str] = {}
        self.group: Dict[str, int] = {}      # many files shown as one line: path -> size
        self.group_done: Dict[str, float] = {}
        self.group_total = 0
        self.group_sum = 0.0
        self.group_label = ""

    def track(self, files: Iterable[FileEntry]):
        files = list(files)
        bar = el("loading")
        boot = js.mhsaBoot
        if bar.hidden:
            boot.clear()
            self.labels = {}
            self.group = {}
            boot.progress("runtime", "Python runtime", 1)
            boot.progress("numpy", "numpy", 1)
        if len(files) > GROUP_OVER:          # one line for them all (a line per file would be 1,600 lines)
            self.group = {f.path: f.size for f in files}
            self.group_done = {f.path: self.loader.fraction.get(f.path, 0.0) * f.size for f in files}
            self.group_total = sum(self.group.values()) or 1
            self.group_sum = sum(self.group_done.values())
            self.group_label = "%d files (%s)" % (len(files), size_label(self.group_total))
            self._update_group()
            files = []
        wanted = {f.path for f in files}
        for path in [p for p in self.labels if p not in wanted and self.loader.fraction.get(p, 0) < 1]:
            boot.remove("file:" + path)
            del self.labels[path]
        for f in files:
            self.labels[f.path] = "%s (%s)" % (f.path, size_label(f.size))
            self.update(f.path, self.loader.fraction.get(f.path, 0.0))
        boot.failed("")
        bar.classList.remove("failed")
        bar.hidden = False

    def _update_group(self):
        js.mhsaBoot.progress("group", self.group_label, self.group_sum / self.group_total)

    def update(self, path: str, fraction: float):
        if path in self.group:
            before = self.group_sum
            self.group_sum += fraction * self.group[path] - self.group_done.get(path, 0.0)
            self.group_done[path] = fraction * self.group[path]
            if int(100 * before / self.group_total) != int(100 * self.group_sum / self.group_total):
                self._update_group()            # the bar moves by whole percents
            return
        if path in self.labels:
            js.mhsaBoot.progress("file:" + path, self.labels[path], fraction)

    def fail(self, message: str):
        bar = el("loading")
        bar.classList.add("failed")
        bar.hidden = False
        js.mhsaBoot.failed(message)

    def finish(self):
        bar = el("loading")
        bar.classList.remove("failed")
        bar.hidden = True
