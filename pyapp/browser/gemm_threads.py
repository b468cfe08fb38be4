"""The large matrix products on two threads: the compute worker and one plain-JavaScript helper thread.

When the compute worker is cross-origin isolated (SharedArrayBuffer, Atomics) and the engine has WebAssembly
threads, ``wasm_gemm.install(threads=True)`` runs the kernel's shared build (``WASM_SHARED_BASE64``, the same
functions on an imported shared ``WebAssembly.Memory``) and ``start()`` starts ``web/gemm-thread.js``: a nested
Web Worker (no Pyodide) that instantiates the same compiled module on the same memory.  The weights are packed
into that memory once, x is copied in once, the product out once, as with one thread; in between:

* ``x @ W^T`` (``gemm``) is split by rows, in whole register tiles (4 rows; 6 in the relaxed build): this
  worker computes the first rows, the thread the rest; below ``COLUMN_ROWS`` rows (12 tokens: three tiles do not halve) by columns instead, in whole
  8-column panels of the packed weight (``gemm_ld``: the kernel with C's row stride as a parameter); the
  per-head stacks (``gemm_batch``: Q K^T, probs @ V) are split by heads.  Every output
  element is computed by the same kernel code as on one thread (one float32 sum over the inner index in order;
  rows and heads are independent), so the results are bit-identical to the single-thread kernel's.
* The elementwise kernels (``wasm_gemm.WasmElementwise``) are split the same way: exp / GELU / SiLU by ranges of
  whole 8-float iterations (so this worker's part writes nothing past its end), the softmax by rows (when a row
  is no multiple of 8 floats its kernel writes up to 7 floats past the row: the thread's rows then go ``GAP``
  bytes further on and come out in two copies).  Every element goes through the same instructions: the same bits.
* Only products of at least ``MIN_SPLIT`` multiply-adds (``MIN_COLUMN_SPLIT`` by columns, ``MIN_BATCHED_SPLIT``
  for the stacks) are split: below
  that the hand-over (two kernel calls and the thread's wake-up) eats the gain.
* Protocol (``web/gemm-thread.js`` documents the 16 Int32 slots of the control block, allocated in the shared
  memory): this worker writes the job (operation, arguments, state "posted"), adds 1 to SEQ and notifies; the
  thread claims it (compareExchange posted -> running), runs the kernel, sets "done" and notifies; this worker
  computes its own part meanwhile, then waits for "done".  This worker's side is two functions of the kernel's
  shared build, ``post`` and ``join`` (scripts/build_gemm_wasm.py ``hand_over_funcs``: the same atomic
  operations in WebAssembly, one call each instead of a dozen Atomics calls through Pyodide's proxies).  A job
  the thread has not claimed by the time this worker finished its own part (thread not woken yet: the second
  core is busy) is taken back the same way and computed here (then the product costs what one thread costs).
  A failed job (the thread's kernel call threw) is computed here and the thread is no longer used.
* When the second core is busy (another process), a split is slower than one thread: after ``LOSSES`` splits in
  a row where the wait for the thread exceeded this worker's own part, the next ``PAUSE`` products stay here.

``Atomics.wait`` may not block a page's main thread, so the split only runs in a worker; the page's main-thread
loop keeps one thread.  Without isolation, shared memory, nested workers or the thread's script, everything
stays on one thread, silently, with the reason in ``problem`` (as ``wasm_gemm.problem``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Dict, Optional

from .compat import create_proxy, js
from .wasm_gemm import WasmGemm

SCRIPT = "gemm-thread.js"      # next to the compute worker's script (web/compute-worker.js)
MAX_PAGES = 32768              # the shared build's memory maximum (scripts/build_gemm_wasm.py SHARED_MAX_PAGES)
TILE = 4                       # the plain kernel's rows per register tile: row splits fall on whole tiles
RELAXED_TILE = 6               # the relaxed build's (scripts/build_gemm_wasm.py RELAXED_ROWS)
PANEL = 8                      # the packed weight's columns per panel: column splits fall on whole panels
MIN_SPLIT = 1 << 23            # n * in * out below this: one thread (12 x 384 x 1536: no gain; 128 x 384 x 384: 1.6x)
MIN_BATCHED_SPLIT = 1 << 22    # heads * n * m * p below this: one thread (12 x 128 x 32 x 128 = 6.3M: ~3 ms less in (b))
COLUMN_ROWS = 32               # fewer rows than this: split by columns (whole 8-column panels), not by rows
MIN_COLUMN_SPLIT = 1 << 20     # n * in * out below this: one thread for those (12 x 384 x 384 = 1.8M: split)
MIN_ELEMENTWISE_SPLIT = 1 << 16  # elements below this: the elementwise kernels on one thread (~1-3 ns each)
VECTORS = 8                    # the map kernels' floats per iteration: a split falls on whole iterations
GAP = 64                       # bytes between the softmax halves' outputs when rows overrun (n % 8 != 0)
CLAIM_MS = 0.0                 # how long to wait for the thread to claim a job before computing it here (tests)
WAIT_MS = 1000.0               # memory.atomic.wait32 slices while the thread runs a job
POLLS = 1 << 17                # polls of the job's state before sleeping in that wait (a few ns each: ~0.3 ms)
THREAD_SPIN_US = 1000          # the thread polls this long after a job before it sleeps: a block's products come
#                                a few 0.1 ms apart and a wake-up from Atomics.wait costs about a small half-product
#                                ((b) at 12 tokens ~16 -> ~14.5 ms, at 128 ~72 -> ~69.5 ms; 0: no polling)
LOSSES = 3                     # splits in a row where the thread finished after this worker's whole-product time...
PAUSE = 64                     # ... make the next PAUSE products run on one thread (the second core is busy)

# the control block (Int32 slots; web/gemm-thread.js)
SEQ, STATE, OP, ARGS, READY, COUNT, STOP, SPIN_US = 0, 1, 2, 3, 10, 11, 12, 13
IDLE, POSTED, RUNNING, DONE, FAILED = 0, 1, 2, 3, 4
OP_GEMM, OP_BATCH = 1, 2
ELEMENTWISE_OPS = {"exp": 3, "gelu": 4, "silu": 5}   # (src, dst, n): web/gemm-thread.js
OP_SOFTMAX = 6                                      # (src, dst, rows, n)
OP_GEMM_LD = 7                                      # gemm_ld(x, w, c, n, k, m, ldc): columns of a wider C

problem = ""  # why the products stay on one thread ("" when two threads share them)


def why_not() -> str:
    """Why this JavaScript context cannot split products over two threads ("" when it can)."""
    if hasattr(js, "document") or not hasattr(js, "WorkerGlobalScope"):
        return "not in a worker: Atomics.wait may not block the page's main thread"
    if not bool(getattr(js.self, "crossOriginIsolated", False)):
        return "the worker is not cross-origin isolated (no COOP/COEP: service worker absent or blocked)"
    for name in ("SharedArrayBuffer", "Atomics", "Worker"):
        if not hasattr(js, name):
            return "no %s in this worker" % name
    return ""


def shared_memory():
    """A new shared ``WebAssembly.Memory`` for the kernel's shared build (raises if the engine has none)."""
    desc = js.Object.new()
    desc.initial = 1
    desc.maximum = MAX_PAGES
    desc.shared = True
    memory = js.WebAssembly.Memory.new(desc)
    if getattr(memory.buffer, "constructor", None) is None or str(memory.buffer.constructor.name) != "SharedArrayBuffer":
        raise RuntimeError("WebAssembly.Memory({shared: true}) gave no SharedArrayBuffer")
    return memory


def shared_gemm() -> Optional[WasmGemm]:
    """The kernel on a shared memory when this worker can run a second thread, else None (reason in ``problem``)."""
    global problem
    problem = why_not()
    if problem:
        return None
    try:
        return WasmGemm(memory=shared_memory())
    except Exception as e:  # noqa: BLE001 - no WebAssembly threads in this engine, ...: one thread
        problem = "no shared WebAssembly memory (%s: %s)" % (type(e).__name__, e)
        return None


class GemmThreads:
    """The helper thread of one ``WasmGemm`` (on a shared memory), and the split of its kernel calls."""

    def __init__(self, gemm: WasmGemm, script: str):
        self.gemm = gemm
        self.single = gemm._gemm              # the kernel's own exports: this worker's part of each product
        self.single_batch = gemm._gemm_batch
        self.tile = RELAXED_TILE if gemm.relaxed else TILE   # the kernel's register tile: rows split on whole ones
        self.ld = getattr(gemm.exports, "gemm_ld", None)   # C rows ldc floats apart: the column split
        self.ctl_off = gemm._alloc(64)
        self.ctl = js.Int32Array.new(gemm.memory.buffer, self.ctl_off, 16)   # shared memory never moves
        self.ctl.fill(0)                      # the block may be reused space (e.g. the start-up checks' vectors)
        self._wasm_post, self._wasm_join = gemm.exports.post, gemm.exports.join   # the shared build's hand-over
        self.atomics = js.Atomics
        self.atomics.store(self.ctl, SPIN_US, THREAD_SPIN_US)
        self.enabled = True                   # the benchmark's 1-thread / 2-thread switch
        self.ready = False
        self.broken = ""                      # set when the thread failed: one thread from then on
        self.splits = 0                       # products shared with the thread
        self.taken_back = 0                   # jobs the thread had not claimed in time (computed here)
        self.losses = 0                       # splits in a row that were slower than one thread would be
        self.paused = 0                       # products left to run on one thread after LOSSES such splits
        self.pauses = 0
        self._on_message = create_proxy(self._message)
        self.worker = js.Worker.new(script)
        self.worker.addEventListener("message", self._on_message)
        self.worker.addEventListener("error", self._on_message)
        msg = js.Object.new()
        msg.type = "start"
        msg.module = gemm.code
        msg.memory = gemm.memory
        msg.ctl = self.ctl_off
        self.worker.postMessage(msg)
        gemm._gemm = self.gemm_call
        gemm._gemm_batch = self.batch_call
        gemm.threads = self

    def _message(self, event) -> None:
        global problem
        data = getattr(event, "data", None)
        kind = str(getattr(data, "type", "")) if data is not None else "error"
        if kind == "error":
            msg = getattr(data, "message", None) if data is not None else getattr(event, "message", None)
            self.broken = problem = "the gemm thread failed to start: %s" % (msg or "its script did not load")

    # ---- state ----------------------------------------------------------------------------------------
    def usable(self) -> bool:
        if not self.enabled or self.broken:
            return False
        if self.paused:
            self.paused -= 1
            return False
        if not self.ready:
            self.ready = int(self.atomics.load(self.ctl, READY)) == 1
        return self.ready

    def thread_jobs(self) -> int:
        """Jobs the helper thread has completed (its own counter in the shared control block)."""
        return int(self.atomics.load(self.ctl, COUNT))

    def status(self) -> Dict[str, Any]:
        self.ready = self.ready or int(self.atomics.load(self.ctl, READY)) == 1
        two = self.enabled and not self.broken and self.ready
        return {"threads": 2 if two else 1, "enabled": self.enabled, "ready": self.ready, "paused": self.paused,
                "broken": self.broken, "splits": self.splits, "taken_back": self.taken_back,
                "pauses": self.pauses, "thread_jobs": self.thread_jobs()}

    def _score(self, own: float, waited: float) -> None:
        """After a split: this worker computed its part in ``own`` s, then waited ``waited`` s for the thread.
        Waiting longer than its own part took means the split lost to one thread (the thread was descheduled:
        another process has the second core); LOSSES of those in a row pause the split for PAUSE products."""
        if waited <= own:
            self.losses = 0
            return
        self.losses += 1
        if self.losses >= LOSSES:
            self.losses = 0
            self.paused = PAUSE
            self.pauses += 1

    async def wait_ready(self, timeout_s: float = 10.0) -> bool:
        """Let the event loop run until the thread waits for jobs (or ``timeout_s`` passed / it failed)."""
        waited = 0.0
        while not self.usable() and not self.broken and waited < timeout_s:
            await asyncio.sleep(0.01)
            waited += 0.01
        return self.usable()

    def stop(self) -> None:
        """Stop the thread; the kernel goes back to one thread."""
        a = self.atomics
        a.store(self.ctl, STOP, 1)
        a.add(self.ctl, SEQ, 1)
        a.notify(self.ctl, SEQ)
        self.enabled = False
        self.gemm._gemm, self.gemm._gemm_batch = self.single, self.single_batch
        self.gemm.threads = None

    # ---- the split ------------------------------------------------------------------------------------
    def _post(self, op: int, a0: int, a1: int, a2: int, a3: int, a4: int, a5: int, a6: int) -> None:
        """OP and ARGS, then STATE = posted (seq-cst: the slots are visible to whoever sees "posted"), SEQ += 1 and
        a notify: the kernel's ``post``, one call (the same through Pyodide's Atomics proxies costs ~15 us)."""
        self._wasm_post(self.ctl_off, op, a0, a1, a2, a3, a4, a5, a6)

    def _join(self, here) -> None:
        """Wait for the posted job; compute it here (``here()``) if the thread has not claimed it yet (it would
        finish no sooner than this worker can: the thread was not woken in time, the second core is busy) or if
        its kernel call failed.  The waiting is the kernel's ``join`` (CLAIM_MS for the claim, then take it back
        if still posted; else POLLS polls, then memory.atomic.wait32 slices of WAIT_MS while it runs): one call."""
        state = int(self._wasm_join(self.ctl_off, int(CLAIM_MS), POLLS, int(WAIT_MS)))
        if state == IDLE:  # taken back: the thread had not claimed it
            self.taken_back += 1
            here()
            return
        if state == DONE:
            self.splits += 1
            return
        self.broken = "the gemm thread's kernel call failed"
        here()

    def gemm_call(self, x: int, w: int, c: int, n: int, k: int, m: int) -> None:
        """``gemm(x, w, c, n, k, m)`` (byte offsets), rows [0, r) here and [r, n) on the thread; or, below
        COLUMN_ROWS rows (few 4-row tiles to share evenly), the first panels of columns here and the rest there."""
        if n < COLUMN_ROWS and m >= 2 * PANEL and n * k * m >= MIN_COLUMN_SPLIT and self.ld is not None:
            if self.usable():
                self.column_call(x, w, c, n, k, m)
            else:
                self.single(x, w, c, n, k, m)
            return
        if n < 2 * TILE or n * k * m < MIN_SPLIT or not self.usable():
            self.single(x, w, c, n, k, m)
            return
        r = split_rows(n, self.tile if n >= 2 * self.tile else TILE)
        x2, c2 = x + r * k * 4, c + r * m * 4
        self._post(OP_GEMM, x2, w, c2, n - r, k, m, 0)
        t0 = time.perf_counter()
        try:
            self.single(x, w, c, r, k, m)
        finally:  # even when interrupted (a superseded pass): no job may outlive the call that owns its memory
            t1 = time.perf_counter()
            self._join(lambda: self.single(x2, w, c2, n - r, k, m))
        self._score(t1 - t0, time.perf_counter() - t1)

    def column_call(self, x: int, w: int, c: int, n: int, k: int, m: int) -> None:
        """Columns [0, j) here and [j, m) on the thread (``gemm_ld``: C's rows stay m floats apart); j a whole
        number of 8-column panels (each panel is k x 8 contiguous floats of the packed weight)."""
        j = m // PANEL // 2 * PANEL
        ld = self.ld
        w2, c2 = w + j * k * 4, c + j * 4
        self._post(OP_GEMM_LD, x, w2, c2, n, k, m - j, m)
        t0 = time.perf_counter()
        try:
            ld(x, w, c, n, k, j, m)
        finally:
            t1 = time.perf_counter()
            self._join(lambda: ld(x, w2, c2, n, k, m - j, m))
        self._score(t1 - t0, time.perf_counter() - t1)

    def batch_call(self, x: int, w: int, c: int, h: int, n: int, k: int, m: int) -> None:
        """``gemm_batch(x, w, c, h, n, k, m)``: heads [0, h // 2) here, the others on the thread."""
        if h < 2 or h * n * k * m < MIN_BATCHED_SPLIT or not self.usable():
            self.single_batch(x, w, c, h, n, k, m)
            return
        g = h // 2
        x2, w2, c2 = x + g * n * k * 4, w + g * k * m * 4, c + g * n * m * 4
        self._post(OP_BATCH, x2, w2, c2, h - g, n, k, m)
        t0 = time.perf_counter()
        try:
            self.single_batch(x, w, c, g, n, k, m)
        finally:
            t1 = time.perf_counter()
            self._join(lambda: self.single_batch(x2, w2, c2, h - g, n, k, m))
        self._score(t1 - t0, time.perf_counter() - t1)

    def elementwise_call(self, op: str, fn, src: int, dst: int, size: int, n: int):
        """``fn`` (the kernel's ``op``: "exp", "gelu", "silu" or "softmax" over rows of ``n``) on ``size`` floats
        at byte offset ``src`` -> ``dst``, about half on the thread.  Returns the output's pieces
        ((first element, elements, byte offset), ...), or None (not split: the caller runs ``fn`` itself)."""
        if size < MIN_ELEMENTWISE_SPLIT or not self.usable():
            return None
        if op == "softmax":
            rows = size // n
            if rows < 2:
                return None
            r = rows // 2
            e = r * n
            gap = 0 if n % VECTORS == 0 else GAP
            s2, d2 = src + 4 * e, dst + 4 * e + gap
            self._post(OP_SOFTMAX, s2, d2, rows - r, n, 0, 0, 0)

            def mine():
                fn(src, dst, r, n)

            def theirs():
                fn(s2, d2, rows - r, n)
        else:
            e = size // 2 // VECTORS * VECTORS
            if e == 0:
                return None
            gap = 0
            s2, d2 = src + 4 * e, dst + 4 * e
            self._post(ELEMENTWISE_OPS[op], s2, d2, size - e, 0, 0, 0, 0)

            def mine():
                fn(src, dst, e)

            def theirs():
                fn(s2, d2, size - e)
        t0 = time.perf_counter()
        try:
            mine()
        finally:
            t1 = time.perf_counter()
            self._join(theirs)
        self._score(t1 - t0, time.perf_counter() - t1)
        return ((0, size, dst),) if not gap else ((0, e, dst), (e, size - e, d2))


def split_rows(n: int, tile: int = TILE) -> int:
    """Rows this worker computes of an n-row product: about half, a whole number of ``tile``-row tiles (the
    kernel's register tile: no row of the first part goes through its one-row remainder loop)."""
    return max(tile, min(n - tile, (n + tile) // (2 * tile) * tile))


def script_url(script: Optional[str] = None) -> str:
    """``web/gemm-thread.js``: as web/compute-worker.js names it (``self.mhsaGemmThread``), else relative to this
    worker's script, unless given."""
    named = getattr(js.self, "mhsaGemmThread", None)
    return str(js.URL.new(script or named or SCRIPT, js.self.location.href).href)


def start(gemm: WasmGemm, script: Optional[str] = None) -> Optional[GemmThreads]:
    """Start the helper thread of ``gemm`` (a kernel on a shared memory); None (reason in ``problem``) if not."""
    global problem
    if gemm.threads is not None:
        return gemm.threads
    if not gemm.shared:
        problem = problem or "the kernel's memory is not shared"
        return None
    try:
        return GemmThreads(gemm, script_url(script))
    except Exception as e:  # noqa: BLE001 - no nested workers, ...: one thread
        problem = "the gemm thread could not start (%s: %s)" % (type(e).__name__, e)
        return None


def status() -> Dict[str, Any]:
    """What the installed kernel runs on: {"threads": 1 or 2, "problem": ..., + the split's counters}."""
    from . import wasm_gemm

    gemm = wasm_gemm._installed
    threads = getattr(gemm, "threads", None)
    out: Dict[str, Any] = {"threads": 1, "problem": problem if gemm is not None else "no wasm kernel"}
    if threads is not None:
        out.update(threads.status())
        if threads.broken:
            out["problem"] = threads.broken
        elif not threads.ready:
            out["problem"] = out["problem"] or "the gemm thread is not ready yet"
    return out
