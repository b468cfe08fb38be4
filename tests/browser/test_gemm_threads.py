"""The matrix products on two threads (pyapp/browser/gemm_threads.py + web/gemm-thread.js), in real Chromium.

In a cross-origin isolated dedicated worker running Pyodide 0.17.1 (the compute worker's situation), the kernel
runs on a shared WebAssembly.Memory and a plain-JavaScript thread computes part of each large product: the
results are bit-identical to the single-thread kernel (and to the unshared build) for MiniLM's shapes at 12, 128
and 512 tokens and for odd shapes, and the thread really computed (its own job counter). Without isolation
(a worker of a page without COOP/COEP) or on a page's main thread, everything stays on one thread, with the
reason reported. And the real page, isolated by web/coi-sw.js, runs its compute worker on two threads.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path

import pytest
from helpers import WRITE_FILES, wait_js

pytestmark = pytest.mark.browser

ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp",
             "Cross-Origin-Resource-Policy": "same-origin", "Cache-Control": "no-store"}

# Pyodide 0.17.1 + numpy in a dedicated worker made from a Blob (it inherits the page's isolation); Python runs
# through window.pyw(code), which resolves to the value of the code as a string.
BOOT_WORKER = """async (indexURL) => {
  const src = `
    importScripts(${JSON.stringify(indexURL)} + "pyodide.js");
    const ready = (async () => {
      self.pyodide = await loadPyodide({indexURL: ${JSON.stringify(indexURL)}});
      await self.pyodide.loadPackage("numpy");
    })();
    onmessage = async (e) => {
      try {
        await ready;
        const r = await self.pyodide.runPythonAsync(e.data.code);
        postMessage({id: e.data.id, result: String(r)});
      } catch (err) { postMessage({id: e.data.id, error: String(err && err.stack || err)}); }
    };`;
  const worker = new Worker(URL.createObjectURL(new Blob([src], {type: "text/javascript"})));
  const waiting = {};
  let next = 0;
  worker.onmessage = (e) => {
    const w = waiting[e.data.id];
    delete waiting[e.data.id];
    if (e.data.error) w[1](new Error(e.data.error)); else w[0](e.data.result);
  };
  window.pyw = (code) => new Promise((ok, bad) => { const id = ++next; waiting[id] = [ok, bad]; worker.postMessage({id, code}); });
  return [window.crossOriginIsolated === true, await window.pyw("1 + 1")];
}"""

INSTALL = WRITE_FILES + """
import numpy as np
from pyapp.browser import gemm_threads, wasm_gemm
gemm_threads.SCRIPT = %r          # a Blob worker has no script URL of its own to resolve it against
gemm_threads.LOSSES = 10 ** 9     # never pause the split here (the tests count the thread's jobs on busy machines)
gemm_threads.CLAIM_MS = 5000.0    # and let the thread claim every job, however small (it computes the odd shapes)
G = wasm_gemm.install(threads=True)
ready = (await G.threads.wait_ready(20.0)) if G is not None and G.threads is not None else False
json.dumps({"installed": G is not None, "shared": bool(getattr(G, "shared", False)), "ready": ready,
            "problem": gemm_threads.problem, "status": gemm_threads.status(),
            "isolated": bool(getattr(__import__("js").self, "crossOriginIsolated", False))})
"""

# (n, in, out) of MiniLM's products at 12, 128 and 512 tokens, then odd shapes: row counts that are no multiple
# of the 4-row tile (the split gives the thread the remainder rows), inner sizes that are no multiple of 4.
SHAPES = [(n, k, m) for n in (12, 128, 512) for k, m in ((384, 384), (384, 1536), (1536, 384))] + [
    (9, 384, 384), (13, 384, 1536), (130, 1536, 384), (61, 100, 200), (8, 7, 8), (255, 33, 64),
    (5, 33, 24), (17, 40, 72), (31, 9, 16)]   # fewer than COLUMN_ROWS rows: column splits of 3, 9 and 2 panels
# (heads, n, k, p): Q K^T and probs @ V of MiniLM at 12, 128, 512 tokens, then odd stacks (odd head counts)
BATCHED = [(12, n, 32, n) for n in (12, 128, 512)] + [(12, n, n, 32) for n in (12, 128, 512)] + [
    (3, 5, 7, 9), (5, 61, 32, 61), (2, 13, 30, 17)]

COMPARE = """
import json
import numpy as np
from pyapp.core import numerics
T = G.threads
single = wasm_gemm.WasmGemm()                      # the unshared build, one thread
out = {"shapes": [], "batched": []}
rng = np.random.RandomState(5)

def both(fn):
    T.enabled = False
    one = fn()
    T.enabled = True
    jobs, back = T.thread_jobs(), T.taken_back
    two = fn()
    return one, two, T.thread_jobs() - jobs, T.taken_back - back

for n, k, m in json.loads(%r):
    x = rng.standard_normal((n, k)).astype(np.float32)
    w = (rng.standard_normal((m, k)) / np.sqrt(k)).astype(np.float32)
    jobs0 = T.thread_jobs() + T.taken_back
    G.matmul_t(x, w)                                               # the real thresholds: split or not?
    natural = T.thread_jobs() + T.taken_back - jobs0
    saved = gemm_threads.MIN_SPLIT, gemm_threads.MIN_COLUMN_SPLIT
    gemm_threads.MIN_SPLIT = gemm_threads.MIN_COLUMN_SPLIT = 0     # split every product here, odd ones too
    one, two, jobs, back = both(lambda: G.matmul_t(x, w))
    gemm_threads.MIN_SPLIT, gemm_threads.MIN_COLUMN_SPLIT = saved
    via = numerics.matmul_t(x, w) if n * k * m >= wasm_gemm.MIN_WORK else two      # the app's entry point
    out["shapes"].append({"shape": [n, k, m], "equal": bool(np.array_equal(one, two)),
                          "unshared": bool(np.array_equal(single.matmul_t(x, w), two)),
                          "via_numerics": bool(np.array_equal(via, two)), "natural_split": natural,
                          "thread_jobs": jobs, "taken_back": back, "dtype": str(two.dtype),
                          "finite": bool(np.isfinite(two).all()), "nonzero": bool(np.abs(two).max() > 0)})
for h, n, k, p in json.loads(%r):
    a = rng.standard_normal((h, n, k)).astype(np.float32)
    b = rng.standard_normal((h, p, k)).astype(np.float32).transpose(0, 2, 1)
    saved, gemm_threads.MIN_BATCHED_SPLIT = gemm_threads.MIN_BATCHED_SPLIT, 0
    one, two, jobs, back = both(lambda: G.batched_matmul(a, b))
    gemm_threads.MIN_BATCHED_SPLIT = saved
    out["batched"].append({"shape": [h, n, k, p], "equal": bool(np.array_equal(one, two)),
                           "unshared": bool(np.array_equal(single.batched_matmul(a, b), two)),
                           "thread_jobs": jobs, "taken_back": back, "out": list(two.shape)})
out["status"] = gemm_threads.status()
out["failures"] = G.failures
json.dumps(out)
"""


def _harness():
    """tests/browser/conftest.py as a module (``conftest`` on the path is tests/conftest.py)."""
    spec = importlib.util.spec_from_file_location("browser_harness_gemm_threads",
                                                  Path(__file__).with_name("conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _files(server):
    return [[server.url("/" + f), f] for f in _harness()._browser_files()]


def _boot(page, server):
    """Boot the Blob worker on ``page`` and install the kernel with threads there; returns install's report."""
    iso, two = page.evaluate(BOOT_WORKER, server.url("/node_modules/@pyodide/pyodide/dist/"))
    assert two == "2"
    info = json.loads(page.evaluate("(code) => window.pyw(code)",
                                    INSTALL % (json.dumps(_files(server)), server.url("/web/gemm-thread.js"))))
    info["page_isolated"] = iso
    return info


@pytest.fixture(scope="module")
def iso_server():
    """The repository served WITH COOP/COEP on every response (as web/coi-sw.js makes the Pages site, and as
    bench/server.py serves it): the nested worker web/gemm-thread.js must carry COEP like the worker that starts
    it, and Playwright's routes do not see a worker's own workers' requests, so the headers come from here."""
    harness = _harness()

    class Handler(harness._Handler):
        def end_headers(self):
            for k, v in ISOLATION.items():
                if k != "Cache-Control":
                    self.send_header(k, v)
            super().end_headers()

    srv = harness.Server(harness.ROOT)
    srv.httpd.RequestHandlerClass = functools.partial(Handler, directory=str(harness.ROOT))
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def isolated_worker(browser, iso_server):
    context = browser.new_context()
    offhost = []

    def guard(route):
        if route.request.url.startswith(iso_server.origin) or route.request.url.startswith(("blob:", "data:")):
            route.continue_()
        else:
            offhost.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.goto(iso_server.url("/web/pyscript.toml"))         # any same-origin document, served with COOP/COEP
    info = _boot(page, iso_server)
    print("\nisolated worker: %s" % json.dumps(info))
    yield page, info
    context.close()
    assert not offhost, offhost


def test_isolated_worker_runs_two_threads(isolated_worker):
    _, info = isolated_worker
    assert info["page_isolated"] and info["isolated"] and info["installed"] and info["shared"], info
    assert info["ready"] and info["problem"] == "", info
    assert info["status"]["threads"] == 2 and info["status"]["broken"] == "", info


def test_two_threads_equal_one_thread_bit_for_bit(isolated_worker):
    page, _ = isolated_worker
    got = json.loads(page.evaluate("(code) => window.pyw(code)", COMPARE % (json.dumps(SHAPES), json.dumps(BATCHED))))
    print("\nstatus after the comparisons: %s" % json.dumps(got["status"]))
    for row in got["shapes"]:
        assert row["equal"] and row["unshared"] and row["via_numerics"], row
        assert row["dtype"] == "float32" and row["finite"] and row["nonzero"], row
        assert row["thread_jobs"] == 1 and row["taken_back"] == 0, row   # split, the thread computed its part
    for row in got["batched"]:
        assert row["equal"] and row["unshared"], row
        assert row["out"] == [row["shape"][0], row["shape"][1], row["shape"][3]], row
        assert row["thread_jobs"] == 1 and row["taken_back"] == 0, row   # (its counter in the shared memory)
    assert [r["natural_split"] for r in got["shapes"][:9]] == [1] * 9   # 12 tokens too (by columns)
    assert got["failures"] == 0 and got["status"]["broken"] == ""


def test_threshold_keeps_small_products_on_one_thread(isolated_worker):
    page, _ = isolated_worker
    got = json.loads(page.evaluate("(code) => window.pyw(code)", """
import json
import numpy as np
T = G.threads
jobs, splits = T.thread_jobs() + T.taken_back, T.splits + T.taken_back
x = np.ones((12, 384), np.float32)
G.matmul_t(x[:, :64], np.ones((384, 64), np.float32))             # 12 x 64 x 384: below MIN_COLUMN_SPLIT
G.matmul_t(np.ones((32, 64), np.float32), np.ones((384, 64), np.float32))   # 32 rows: by rows, below MIN_SPLIT
G.batched_matmul(np.ones((12, 64, 32), np.float32), np.ones((12, 32, 64), np.float32))   # below the stacks'
small = [T.thread_jobs() + T.taken_back - jobs, T.splits + T.taken_back - splits]
G.matmul_t(np.ones((128, 384), np.float32), np.ones((1536, 384), np.float32))               # 128 tokens: split
G.matmul_t(x, np.ones((1536, 384), np.float32))                     # 12 tokens: split by columns
G.batched_matmul(np.ones((12, 128, 32), np.float32), np.ones((12, 32, 128), np.float32))   # 128 tokens: split
large = T.thread_jobs() + T.taken_back - jobs
saved, gemm_threads.LOSSES = gemm_threads.LOSSES, 3      # three splits in a row slower than one thread: a pause
for _ in range(3):
    T._score(0.001, 0.002)
paused = [T.paused, T.usable(), T.paused]
for _ in range(gemm_threads.PAUSE):
    T.usable()
paused.append(T.usable())
T._score(0.002, 0.001)
gemm_threads.LOSSES = saved
json.dumps({"small": small, "large": large, "paused": paused})
"""))
    assert got["small"] == [0, 0] and got["large"] == 3, got
    assert got["paused"] == [64, False, 63, True], got      # PAUSE products on one thread, then two again


# the elementwise kernels split over the two threads: (op, shape) for exp / GELU / SiLU (ranges of whole 8-float
# iterations: MiniLM's FFN at 12 and 128 tokens, then sizes that are no multiple of 8) and the softmax (by rows:
# MiniLM's scores at 12 and 128 tokens, then rows that are no multiple of 8 floats, whose halves go GAP apart)
ELEMENTWISE = [("gelu", [12, 1536]), ("gelu", [128, 1536]), ("silu", [128, 1536]), ("exp", [128, 1536]),
               ("gelu", [1021]), ("silu", [77777]), ("exp", [8195]), ("gelu", [9]),
               ("softmax", [12, 12, 12]), ("softmax", [12, 128, 128]), ("softmax", [3, 6, 139]),
               ("softmax", [5, 61, 61]), ("softmax", [2, 3, 1]), ("softmax", [1, 7, 12])]

COMPARE_ELEMENTWISE = """
import json
import numpy as np
from pyapp.core import attention, layers, numerics
T = G.threads
EW = wasm_gemm.elementwise
single = wasm_gemm.WasmElementwise(wasm_gemm.WasmGemm())          # the unshared build, one thread
ref = {"exp": numerics.exp, "gelu": layers.gelu, "silu": layers.silu, "softmax": attention.softmax}
rng = np.random.RandomState(11)
out = []
saved_split, gemm_threads.MIN_ELEMENTWISE_SPLIT = gemm_threads.MIN_ELEMENTWISE_SPLIT, 0   # split every call
saved_small, numerics.SMALL = numerics.SMALL, 1          # numpy's polynomial exp at any size (the kernels' maths)
backend = numerics.set_elementwise_backend(None)
try:
    for op, shape in json.loads(%r):
        x = (rng.standard_normal(shape) * (9.0 if op == "softmax" else 4.0)).astype(np.float32)
        flat = x.reshape(-1)
        flat[:6] = [0.0, -0.0, np.inf, -np.inf, np.nan, 100.0][:flat.size]
        if op == "softmax" and x.ndim == 3 and x.shape[1] > 1:
            x[0, 1, :] = -np.inf                                 # a fully masked row: NaN, as numpy
            x[-1][np.triu(np.ones(x.shape[1:], dtype=bool), 1)] = -np.inf   # a causal mask on the last head
        T.enabled = False
        one = EW.run(op, x)
        T.enabled = True
        jobs, back = T.thread_jobs(), T.taken_back
        two = EW.run(op, x)
        jobs, back = T.thread_jobs() - jobs, T.taken_back - back
        want = ref[op](x)
        out.append({"op": op, "shape": shape, "equal": wasm_gemm._same_bits(two, one),
                    "unshared": wasm_gemm._same_bits(single.run(op, x), two),
                    "numpy": wasm_gemm._same_bits(two, want), "thread_jobs": jobs, "taken_back": back,
                    "finite": int(np.isfinite(two).sum())})
finally:
    numerics.set_elementwise_backend(backend)
    numerics.SMALL = saved_small
    gemm_threads.MIN_ELEMENTWISE_SPLIT = saved_split
natural = []
for size in (12 * 1536, 128 * 1536, 12 * 128 * 128):         # the real threshold: 12 tokens stay on one thread
    jobs = T.thread_jobs() + T.taken_back
    EW.run("gelu", np.ones(size, np.float32))
    natural.append(T.thread_jobs() + T.taken_back - jobs)
json.dumps({"rows": out, "natural": natural, "failures": EW.failures, "broken": T.broken})
"""


def test_elementwise_split_equals_one_thread_bit_for_bit(isolated_worker):
    """exp, GELU, SiLU and the softmax, forced to split over the two threads, give the single-thread kernel's
    bits (and the unshared build's, and numpy's), with the thread computing its half."""
    page, _ = isolated_worker
    got = json.loads(page.evaluate("(code) => window.pyw(code)", COMPARE_ELEMENTWISE % json.dumps(ELEMENTWISE)))
    for row in got["rows"]:
        assert row["equal"] and row["unshared"] and row["numpy"], row
        assert row["finite"] > 0, row
        size = 1
        for d in row["shape"]:
            size *= d
        rows = size // row["shape"][-1]
        split = rows >= 2 if row["op"] == "softmax" else size >= 16
        assert (row["thread_jobs"], row["taken_back"]) == ((1, 0) if split else (0, 0)), row
    assert got["natural"] == [0, 1, 1], got
    assert got["failures"] == 0 and got["broken"] == "", got


def test_the_control_block_starts_clean_in_reused_space(isolated_worker):
    """The thread's control block may be space the allocator reuses (the start-up checks' LayerNorm vectors were
    freed just before the thread starts): it is cleared first, so stale floats there are no job state or count."""
    page, _ = isolated_worker
    got = json.loads(page.evaluate("(code) => window.pyw(code)", """
import json
import numpy as np
from pyapp.browser import gemm_threads, wasm_gemm
g = wasm_gemm.WasmGemm(memory=gemm_threads.shared_memory())
stale = g._alloc(64)
g._upload(np.full(16, -0.66, dtype=np.float32), stale)   # float bits in every slot (SEQ, STATE, COUNT, ...)
g._release(stale, 64)
t = gemm_threads.start(g)
ready = await t.wait_ready(20.0)
x = np.random.RandomState(3).standard_normal((128, 384)).astype(np.float32)
w = np.random.RandomState(4).standard_normal((1536, 384)).astype(np.float32)
y = g.matmul_t(x, w)
out = {"reused": t.ctl_off == stale, "ready": ready, "jobs": t.thread_jobs(), "splits": t.splits,
       "taken_back": t.taken_back, "broken": t.broken,
       "equal": bool(np.array_equal(y, wasm_gemm.WasmGemm().matmul_t(x, w)))}
t.stop()
json.dumps(out)
"""))
    assert got["reused"] and got["ready"], got
    assert (got["jobs"], got["splits"], got["taken_back"], got["broken"]) == (1, 1, 0, ""), got
    assert got["equal"], got


def test_a_thread_that_cannot_start_leaves_one_thread(isolated_worker):
    """A second kernel whose thread script is missing (404): marked broken with the reason, its products are
    computed here, right; and a stopped thread is no longer used."""
    page, _ = isolated_worker
    got = json.loads(page.evaluate("(code) => window.pyw(code)", """
import asyncio, json
import numpy as np
from pyapp.browser import gemm_threads, wasm_gemm
g = wasm_gemm.WasmGemm(memory=gemm_threads.shared_memory())
t = gemm_threads.start(g, script=gemm_threads.SCRIPT.replace("gemm-thread.js", "no-such-thread.js"))
for _ in range(200):
    if t.broken:
        break
    await asyncio.sleep(0.02)
x = np.random.RandomState(3).standard_normal((128, 384)).astype(np.float32)
w = np.random.RandomState(4).standard_normal((1536, 384)).astype(np.float32)
y = g.matmul_t(x, w)
out = {"broken": t.broken, "usable": t.usable(), "jobs": t.thread_jobs(), "splits": t.splits,
       "equal": bool(np.array_equal(y, wasm_gemm.WasmGemm().matmul_t(x, w)))}
T = G.threads
T.stop()
jobs = T.thread_jobs()
G.matmul_t(x, w)
out["stopped"] = [G.threads is None, T.thread_jobs() - jobs]
json.dumps(out)
"""))
    assert "failed to start" in got["broken"] and not got["usable"], got
    assert got["jobs"] == 0 and got["splits"] == 0 and got["equal"], got
    assert got["stopped"] == [True, 0], got


def test_without_isolation_one_thread_with_a_reason(new_page, server):
    """A worker of a page without COOP/COEP: no shared memory, so one thread, the reason reported, right products."""
    page, guard = new_page("pyodide")
    blank = server.url("/__gemm_threads__/plain.html")
    page.route(blank, lambda r: r.fulfill(status=200, content_type="text/html", body="<!doctype html><title>t</title>"))
    page.goto(blank)
    info = _boot(page, server)
    try:
        assert info["page_isolated"] is False
        assert info["installed"] and not info["shared"] and not info["isolated"], info
        assert "not cross-origin isolated" in info["problem"], info
        assert info["status"]["threads"] == 1 and info["status"]["problem"] == info["problem"], info
        ok = page.evaluate("(code) => window.pyw(code)", """
import numpy as np
x = np.random.RandomState(1).standard_normal((128, 384)).astype(np.float32)
w = np.random.RandomState(2).standard_normal((384, 384)).astype(np.float32)
str(G.threads is None and np.allclose(G.matmul_t(x, w), x.astype(np.float64) @ w.T.astype(np.float64), atol=1e-3))
""")
        assert ok == "True"
        guard.check()
    finally:
        page.context.close()


def test_page_main_thread_never_splits(pyodide):
    """Atomics.wait may not block a page's main thread: there the kernel keeps one thread."""
    got = pyodide.run("""
from pyapp.browser import gemm_threads
[gemm_threads.shared_gemm() is None, gemm_threads.problem]
""")
    assert got[0] is True and "main thread" in got[1], got


def test_the_app_worker_runs_two_threads_when_isolated(new_page, server):
    """web/index.html with its compute worker (web/coi.js, data-compute auto), isolated by web/coi-sw.js from
    the second load: the worker's kernel shares its products with web/gemm-thread.js."""
    wait_ready = _harness().wait_ready
    page, guard = new_page("pyodide")
    page.context.add_init_script("window.mhsaComputeDefault = 'auto';")
    page.goto(server.url("/web/index.html?tab=stats&text=" + "+".join(["attention"] * 120)))   # all six layers
    wait_ready(page, guard)
    wait_js(page, "() => window.mhsaCoi && window.mhsaCoi.state !== 'starting'")
    page.reload()
    wait_ready(page, guard)
    assert page.evaluate("() => window.crossOriginIsolated") is True
    stats = None
    for _ in range(40):
        stats = json.loads(page.evaluate("""async () => {
          const c = window.mhsaCompute, w = c && c.worker;
          if (!w) return JSON.stringify({error: "no compute worker"});
          return await new Promise((ok) => {
            const id = 900000 + Math.floor(Math.random() * 1000);
            const on = (e) => { if (e.data && e.data.id === id && e.data.type === "result") {
              w.removeEventListener("message", on); ok(e.data.json); } };
            w.addEventListener("message", on);
            w.postMessage({type: "call", id: id, name: "stats"});
          });
        }"""))
        if "error" in stats or (stats.get("gemm_threads", {}).get("thread_jobs", 0) > 0):
            break
        page.wait_for_timeout(250)
    print("\napp worker stats: %s" % json.dumps(stats)[:600])
    threads = stats["gemm_threads"]
    assert threads["threads"] == 2 and threads["problem"] == "", threads
    assert threads["splits"] + threads["taken_back"] > 0, threads   # 120+ tokens: the projections were split
    assert threads["thread_jobs"] > 0, threads                         # and the thread computed parts of them
    guard.check()
