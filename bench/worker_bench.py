"""Issue 12, first phase: what moving the Python work into a Web Worker costs and buys (prints a table).

    .venv/bin/python bench/worker_bench.py                  # every part, 128 and 512 tokens
    .venv/bin/python bench/worker_bench.py --tokens 128 --parts boot,tabs

Parts (one Chromium, one local server, Pyodide 0.17.1 + numpy 1.17.5 from node_modules; the server sends
COOP/COEP so the page is cross-origin isolated, as web/coi-sw.js makes the Pages site from its second load):

* boot     Pyodide + numpy on the page's main thread (the harness page) against the compute worker's boot
           (web/compute-worker.js: interpreter, pyscript.toml's files, numpy, pyapp + the SIMD kernel), and
           both at once (what the real page would do: PyScript on the main thread, the worker beside it).
* tabs     for each tab at N tokens: the worker's frame (compute + build_frame + its OffscreenCanvas drawing
           sent as an ImageBitmap), what the main thread then spends (decoding the message, drawImage), what
           drawing the same scene on the main thread would cost instead, the bytes crossing, and the longest
           main-thread task (PerformanceObserver "longtask") while the worker works.
* first    page open -> the first heatmap drawn from the worker that web/coi.js starts at page open, while the
           main thread boots Pyodide + numpy (today's page), Pyodide alone, or no Python (best of 2 each).
* page     the real page (web/index.html as shipped: the compute worker drawing into the page's canvas; with
           the bitmap copy; on the main thread): page open -> first heatmap pixels, then for each tab and
           control at N tokens the longest main-thread task and the main thread's presenting time.
* split    the cost of sharing one layer's work between two workers at 128 tokens: a postMessage round trip
           carrying x (n x 384 float32) there and the result back, and an Atomics.wait / notify handshake over
           shared memory (the best case); against the per-layer figures of bench/README.md.
* interrupt  Pyodide 0.17.1's ``setInterruptBuffer`` in a worker: a Python loop stopped from the page by a
           write to shared memory (how long until KeyboardInterrupt).
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from browser import chromium  # noqa: E402

PYODIDE = "/node_modules/@pyodide/pyodide/dist/"
TABS = ("overview", "steps", "heads", "math", "architecture", "model", "lines", "neuron", "rollout", "stats")
WORDS = ("attention lets every token look at every other token and weigh how much each one matters for its "
         "meaning while the heads learn different habits").split()


def text_of(tokens: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(max(tokens - 2, 1)))


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = dict(http.server.SimpleHTTPRequestHandler.extensions_map,
                          **{".js": "text/javascript", ".wasm": "application/wasm", ".json": "application/json",
                             ".data": "application/octet-stream", ".toml": "text/plain", ".py": "text/plain"})

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_GET(self):
        if self.path.startswith("/__bench__/blank.html"):
            body = b"<!doctype html><meta charset=utf-8><title>worker bench</title><body></body>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def serve():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(ROOT)))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, "http://127.0.0.1:%d" % httpd.server_address[1]


def py(page, code: str):
    """Run Python (top-level await) in the page; the last line must assign ``_out`` (JSON-able)."""
    return json.loads(page.evaluate("async (src) => { await pyodide.runPythonAsync(src); "
                                    "return pyodide.runPython('import json as _j; _j.dumps(_out)'); }", code))


def open_page(browser, origin: str):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(origin + "/__bench__/blank.html")
    boot_ms = page.evaluate("""async (u) => {
        await new Promise((ok, bad) => { const s = document.createElement("script"); s.src = u + "pyodide.js";
                                          s.onload = ok; s.onerror = bad; document.head.appendChild(s); });
        const t0 = performance.now();
        globalThis.pyodide = await loadPyodide({indexURL: u});
        await pyodide.loadPackage(["numpy"]);
        return performance.now() - t0;
    }""", origin + PYODIDE)
    files = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pyapp").rglob("*.py") if "__pycache__" not in p.parts)
    files.append("models/index.json")
    t0 = time.time()
    py(page, """
import json, os, sys
from js import fetch
for url, dest in json.loads(%r):
    text = await (await fetch(url)).text()
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "w", encoding="utf-8") as f:
        f.write(text)
sys.path.insert(0, os.getcwd())
t = __import__("time").time()
import pyapp.browser.worker_client
_out = (__import__("time").time() - t) * 1000
""" % json.dumps([[origin + "/" + f, f] for f in files]))
    return ctx, page, boot_ms, (time.time() - t0) * 1000


START_WORKER = """
import js
from pyapp.browser.worker_client import WorkerClient
_t0 = js.performance.now()
_client = WorkerClient(js.Worker.new(%r), index_url=%r, config=%r)
_info = await _client.ready()
_info["ready_ms"] = js.performance.now() - _t0
_out = _info
"""


def start_worker(page, origin):
    return py(page, START_WORKER % (origin + "/web/compute-worker.js", origin + PYODIDE, origin + "/web/pyscript.toml"))


def part_boot(browser, origin, log):
    ctx, page, main_ms, files_ms = open_page(browser, origin)
    info = start_worker(page, origin)
    ctx.close()
    log("boot, sequential: main thread Pyodide + numpy %.0f ms (+ pyapp files and imports %.0f ms); worker ready "
        "%.0f ms: %s" % (main_ms, files_ms, info["ready_ms"], json.dumps(info["boot_ms"])))
    # at once: the worker starts while the main thread boots (what the page would do)
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(origin + "/__bench__/blank.html")
    both = page.evaluate("""async ([u, w, c]) => {
        const t0 = performance.now();
        const worker = new Worker(w);
        const ready = new Promise((ok) => worker.addEventListener("message", (e) => {
            if (e.data.type === "ready" || e.data.type === "boot-error") ok(performance.now() - t0); }));
        worker.postMessage({type: "boot", indexURL: u, config: c});
        await new Promise((ok, bad) => { const s = document.createElement("script"); s.src = u + "pyodide.js";
                                          s.onload = ok; s.onerror = bad; document.head.appendChild(s); });
        globalThis.pyodide = await loadPyodide({indexURL: u});
        await pyodide.loadPackage(["numpy"]);
        const main = performance.now() - t0;
        return [main, await ready];
    }""", [origin + PYODIDE, origin + "/web/compute-worker.js", origin + "/web/pyscript.toml"])
    ctx.close()
    log("boot, at once (2 cores): main thread Pyodide + numpy %.0f ms, worker ready %.0f ms" % tuple(both))
    return {"main_ms": main_ms, "worker": info, "together": both}


TAB_RUN = """
import js
from pyapp.app.state import AppState
from pyapp.browser.worker_client import present
cv = js.document.getElementById("cv")
if cv is None:
    cv = js.document.createElement("canvas"); cv.id = "cv"; js.document.body.appendChild(cv)
state = AppState(text=%r, tab=%r, layer=%d)
st = {"messages": _client.stats["messages"], "decode": _client.stats["decode_ms"]}
_client.stats["decode_max_ms"] = 0.0
shown_ms = []
t0 = js.performance.now()
s = await _client.compute(state, 1000.0, 1.0, on_partial=lambda p: shown_ms.append(present(p, cv)))
t1 = js.performance.now()
shown_ms.append(present(s, cv))
_out = {"total_ms": t1 - t0, "timing": s.timing, "ops": s.scene_ops, "present_max_ms": max(shown_ms),
        "messages": _client.stats["messages"] - st["messages"], "decode_ms": _client.stats["decode_ms"] - st["decode"],
        "decode_max_ms": _client.stats["decode_max_ms"], "kind": s.frame.kind, "n": s.frame.report.get("n"),
        "size": [s.frame.scene.width, s.frame.scene.height]}
"""

# the comparison, after the long tasks of the worker path are read: the same frame with its drawing ops, drawn here
MAIN_DRAW = """
import js
from pyapp.app.state import AppState
from pyapp.browser import canvas as canvas_backend
cv = js.document.getElementById("cv")
plain = await _client.compute(AppState(text=%r, tab=%r, layer=%d), 1000.0, 1.0, bitmap=False)
t2 = js.performance.now()
canvas_backend.draw(plain.frame.scene, cv, 1.0)
_out = js.performance.now() - t2
"""


def part_tabs(browser, origin, log, tokens_list, tabs=TABS):
    ctx, page, _, _ = open_page(browser, origin)
    start_worker(page, origin)
    page.evaluate("""() => { window.__long = []; new PerformanceObserver((l) => {
        for (const e of l.getEntries()) window.__long.push(e.duration); }).observe({type: "longtask"}); }""")
    rows = []
    for tokens in tokens_list:
        text = text_of(tokens)
        py(page, TAB_RUN % (text, "overview", 0))                 # the files and the first compute, once
        for tab in tabs:
            page.evaluate("() => { window.__long = []; }")
            layer = 5 if tab in ("steps", "math") else 0
            r = py(page, TAB_RUN % (text, tab, layer))
            page.wait_for_timeout(50)
            longest = page.evaluate("() => window.__long.slice()")
            r["main_draw_ms"] = py(page, MAIN_DRAW % (text, tab, layer))
            r.update(tab=tab, tokens=tokens, longtask_max=max(longest or [0]), longtasks=len(longest))
            rows.append(r)
            log("%4d tokens %-12s worker %7.0f ms (compute %6.0f, build %5.0f) | main: decode max %5.1f ms, "
                "present max %4.1f ms, drawing it here %6.1f ms | %5d ops, %dx%d px | longest main task %s ms"
                % (tokens, tab, r["total_ms"], r["timing"].get("compute_ms", 0), r["timing"].get("render_ms", 0),
                   r["decode_max_ms"], r["present_max_ms"], r["main_draw_ms"], r["ops"], r["size"][0], r["size"][1],
                   ("%.0f" % r["longtask_max"]) if longest else "none"))
    ctx.close()
    return rows


SPLIT = """async ([n, reps]) => {
    const src = `onmessage = (e) => {
        if (e.data.sab) { const f = new Int32Array(e.data.sab, 0, 2); const x = new Float32Array(e.data.sab, 8);
            for (;;) { Atomics.wait(f, 0, 0); const v = x[0]; x[1] = v; Atomics.store(f, 0, 0); Atomics.notify(f, 1); } }
        else postMessage(e.data.buf, [e.data.buf]); }`;
    const w = new Worker(URL.createObjectURL(new Blob([src], {type: "text/javascript"})));
    const bytes = n * 384 * 4;
    const times = [];
    for (let i = 0; i < reps; i++) {
        const buf = new Float32Array(n * 384).buffer;
        const t = performance.now();
        await new Promise((ok) => { w.onmessage = ok; w.postMessage({buf}, [buf]); });
        times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const pm = times[times.length >> 1];
    let atom = null;
    if (self.crossOriginIsolated) {
        const sab = new SharedArrayBuffer(8 + bytes);
        const f = new Int32Array(sab, 0, 2);
        const x = new Float32Array(sab, 8);
        const local = new Float32Array(n * 384);
        w.postMessage({sab});
        await new Promise((r) => setTimeout(r, 50));
        const t = performance.now();
        for (let i = 0; i < reps; i++) {
            x.set(local);                        // x in
            Atomics.store(f, 0, 1); Atomics.notify(f, 0);
            while (Atomics.load(f, 0) !== 0) {}  // spin: the main thread may not Atomics.wait
            local.set(x);                        // result out
        }
        atom = (performance.now() - t) / reps;
    }
    w.terminate();
    return {postmessage_ms: pm, atomics_ms: atom, bytes};
}"""

INTERRUPT = """async (u) => {
    const src = `importScripts("${u}pyodide.js");
        onmessage = async (e) => {
            const py = await loadPyodide({indexURL: "${u}"});
            py.setInterruptBuffer(new Int32Array(e.data));
            postMessage("ready");
            const t = performance.now();
            try { py.runPython("i = 0\\\\nwhile True:\\\\n    i += 1"); postMessage("finished?"); }
            catch (err) { postMessage({ms: performance.now() - t, error: String(err).split("\\\\n").slice(-2).join(" ")}); }
        };`;
    const w = new Worker(URL.createObjectURL(new Blob([src], {type: "text/javascript"})));
    const sab = new SharedArrayBuffer(4);
    const flag = new Int32Array(sab);
    const out = await new Promise((ok) => {
        setTimeout(() => ok("no answer within 60 s"), 60000);
        w.onerror = (e) => ok("worker error: " + e.message);
        w.onmessage = (e) => {
            if (e.data === "ready") { setTimeout(() => { flag[0] = 2; self.__sent = performance.now(); }, 300); }
            else ok(e.data);
        };
        w.postMessage(sab);
    });
    w.terminate();
    return out;
}"""


FIRST = """<!doctype html><meta charset="utf-8"><title>first</title>
<script>window.mhsaWorkerRuntime = {indexURL: %s, version: "0.17.1", type: "classic"};</script>
<script src="./coi.js" data-compute="./compute-worker.js"></script>
<canvas id="cv"></canvas>
<script>
  window.first = new Promise((done) => {
    const start = () => {
      const w = window.mhsaCompute.worker;
      w.addEventListener("message", (e) => {
        const d = e.data;
        if (d.type === "ready") window.readyAt = performance.now();
        if (d.type === "ready") w.postMessage({type: "compute", id: 1, query: "", width: 1000, dpr: 1, bitmap: true});
        if (d.type === "result" && d.id === 1 && d.bitmap) {
          const c = document.getElementById("cv");
          c.width = d.bitmap.width; c.height = d.bitmap.height;
          c.getContext("2d").drawImage(d.bitmap, 0, 0);
          done(performance.now());
        }
      });
    };
    if (window.mhsaCompute) start(); else document.addEventListener("DOMContentLoaded", start);
  });
  window.mainReady = (async () => {
    if (!%s) return null;
    await new Promise((ok) => { const s = document.createElement("script"); s.src = %s + "pyodide.js";
                                s.onload = ok; document.head.appendChild(s); });
    globalThis.pyodide = await loadPyodide({indexURL: %s});
    if (%s) await pyodide.loadPackage(["numpy"]);
    return performance.now();
  })();
</script>
"""


def _fulfil_html(body: str):
    def handle(route):
        route.fulfill(status=200, content_type="text/html", body=body,
                      headers={"Cross-Origin-Opener-Policy": "same-origin",
                               "Cross-Origin-Embedder-Policy": "require-corp"})
    return handle


def part_first(browser, origin, log):
    """Page open -> the first heatmap drawn from the worker (started at page open by web/coi.js), while the
    main thread boots its own Pyodide with numpy (today's page), without numpy, or not at all."""
    index = json.dumps(origin + PYODIDE)
    out = {}
    for label, main, numpy in (("main thread: Pyodide + numpy", True, True), ("main thread: Pyodide only", True, False),
                               ("main thread: no Python", False, False)):
        times = []
        for _ in range(2):
            ctx = browser.new_context()
            page = ctx.new_page()
            body = FIRST % (index, "true" if main else "false", index, index, "true" if numpy else "false")
            page.route(origin + "/web/__first__.html", _fulfil_html(body))
            page.goto(origin + "/web/__first__.html")
            times.append(page.evaluate("async () => [await window.first, await window.mainReady, window.readyAt]"))
            ctx.close()
        best = min(times, key=lambda t: t[0])
        out[label] = times
        log("first heatmap from the worker %.0f ms after navigation (worker ready at %.0f ms; %s ready at %s ms)"
            % (best[0], best[2], label, "%.0f" % best[1] if best[1] else "-"))
    return out


def part_split(browser, origin, log):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(origin + "/__bench__/blank.html")
    out = {}
    for n in (12, 128, 512):
        r = page.evaluate(SPLIT, [n, 50])
        out[n] = r
        log("split: x of %d x 384 float32 (%d kB) to a second worker and back: postMessage (transfer) %.2f ms, "
            "shared memory + Atomics %s ms" % (n, r["bytes"] // 1024, r["postmessage_ms"],
                                               "%.3f" % r["atomics_ms"] if r["atomics_ms"] is not None else "n/a"))
    ctx.close()
    return out


def part_interrupt(browser, origin, log):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(origin + "/__bench__/blank.html")
    r = page.evaluate(INTERRUPT, origin + PYODIDE)
    ctx.close()
    log("interrupt: Pyodide 0.17.1 setInterruptBuffer in a worker: %s" % json.dumps(r))
    return r


PYSCRIPT_CDN = "https://cdn.jsdelivr.net/npm/@pyscript/core@0.7.31/dist/"
STRIP_SRI = """new MutationObserver((records) => { for (const r of records) for (const n of r.addedNodes)
  if (n.tagName === "SCRIPT" && (n.getAttribute("src") || "").startsWith(%s)) n.removeAttribute("integrity"); })
  .observe(document, {childList: true, subtree: true});""" % json.dumps(PYSCRIPT_CDN)
# page open -> the first frame on the page's canvas showing a heatmap (more than 20 colours on a 48 x 48 grid),
# read every animation frame from a copy of the canvas (drawImage works on a canvas handed to the worker too)
FIRST_PIXELS = """(() => {
  window.__firstPixels = null;
  const probe = () => {
    const c = document.getElementById("view");
    if (c && c.width > 50 && c.height > 50) {
      try {
        const t = document.createElement("canvas"); t.width = 48; t.height = 48;
        const g = t.getContext("2d"); g.drawImage(c, 0, 0, 48, 48);
        const d = g.getImageData(0, 0, 48, 48).data; const seen = new Set();
        for (let i = 0; i < d.length; i += 4) seen.add(d[i] + "," + d[i + 1] + "," + d[i + 2]);
        if (seen.size > 20) { window.__firstPixels = performance.now(); return; }
      } catch (e) { /* not drawn yet */ }
    }
    requestAnimationFrame(probe);
  };
  requestAnimationFrame(probe);
})();"""
PAGE_MODES = (("worker, canvas handed over", ""), ("worker, bitmap copy", "window.mhsaOffscreen = false;"),
              ("main thread", "window.mhsaComputeDefault = 'main';"))
CONTROLS = ("layer", "head", "temperature", "causal", "step")
# the main thread's cost of each worker frame (pyapp.browser.remote: presenting it; decoding its message), the
# main-thread loop's own frames excluded (their cost is the longest task)
RESET = """() => { window.__long = []; const a = window.mhsaApp;
    if (a.uses_worker()) { a.remote.set('present_max_ms', 0); a.client.stats.set('decode_max_ms', 0); } }"""
PRESENTED = """() => { const a = window.mhsaApp; if (!a.uses_worker()) return {present_max_ms: 0, decode_max_ms: 0};
    return {present_max_ms: a.remote.get('present_max_ms'), decode_max_ms: a.client.stats.get('decode_max_ms')}; }"""


def _page_settle(page, timeout_s: float = 180.0):
    page.wait_for_timeout(300)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if page.evaluate("""() => { const a = window.mhsaApp; if (!a || document.body.dataset.state !== 'ready')
            return false; const r = JSON.parse(document.body.dataset.report || '{}');
            return r.frame !== 'loading' && (!a.uses_worker() || a.idle()) && !a.running; }"""):
            return
        page.wait_for_timeout(40)
    raise TimeoutError("the page did not settle")


def part_page(browser, origin, log, tokens_list, tabs=TABS, modes=None):
    """The real page (web/index.html, Pyodide 0.17.1 through the test bootstrap; this server's COOP/COEP make
    it cross-origin isolated, as the service worker does from the second visit): page open -> first heatmap pixels and ready; then per tab and control at N tokens the
    longest main-thread task and the main thread's presenting time of the frame (report timing.draw_ms)."""
    bootstrap = (ROOT / "tests" / "browser" / "bootstrap.js").read_bytes()
    out = {}
    for label, init in PAGE_MODES:
        if modes and label.split(",")[0] not in modes and label not in modes:
            continue
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True, service_workers="block")
        ctx.add_init_script(STRIP_SRI)
        ctx.add_init_script(FIRST_PIXELS)
        if init:
            ctx.add_init_script(init)

        def route(r):
            url = r.request.url
            if url.startswith(PYSCRIPT_CDN) and url.endswith("/core.js"):
                r.fulfill(status=200, body=bootstrap, content_type="text/javascript")
            elif url.startswith(PYSCRIPT_CDN):
                r.fulfill(status=200, body=b"", content_type="text/css")
            elif url.startswith(origin) or url.startswith("data:") or url.startswith("blob:"):
                r.continue_()
            else:
                r.abort()
        ctx.route("**/*", route)
        page = ctx.new_page()
        page.goto(origin + "/web/index.html")
        _page_settle(page)
        first = page.evaluate("() => window.__firstPixels")
        ready = json.loads(page.evaluate("document.body.dataset.report"))["timing"]["page_ms"]
        row = {"first_pixels_ms": first, "ready_report_ms": ready,
               "worker": page.evaluate("() => window.mhsaApp.uses_worker()"),
               "direct": page.evaluate("() => !!(window.mhsaCompute && window.mhsaCompute.transferred)"), "steps": []}
        log("page [%s]: page open -> first heatmap pixels %.0f ms (first view reported by the page's Python at %.0f ms)"
            % (label, first or -1, ready))
        page.evaluate("""() => { window.__long = []; new PerformanceObserver((l) => {
            for (const e of l.getEntries()) window.__long.push(e.duration); }).observe({type: "longtask"}); }""")
        for tokens in tokens_list:
            page.click("#tab-overview")
            page.fill("#text", text_of(tokens))
            _page_settle(page)
            steps = [("tab:" + t, "#tab-" + t) for t in tabs] + [(c, c) for c in CONTROLS]
            for name, what in steps:
                if name == "step":
                    page.click("#tab-steps")
                    _page_settle(page)
                page.evaluate(RESET)
                t0 = time.time()
                if name.startswith("tab:"):
                    page.click(what)
                elif name == "layer":
                    page.click("#tab-overview")
                    _page_settle(page)
                    page.evaluate(RESET)
                    page.select_option("#layer", "5")
                elif name == "head":
                    page.select_option("#head", "3")
                elif name == "temperature":
                    page.evaluate("""() => { const s = document.getElementById('temperature');
                        s.value = String(Number(s.value) + 0.2); s.dispatchEvent(new Event('input')); }""")
                elif name == "causal":
                    page.click("#causal")
                elif name == "step":
                    page.click("#next")
                _page_settle(page)
                page.wait_for_timeout(60)
                longest = page.evaluate("() => window.__long.slice()")
                rep = json.loads(page.evaluate("document.body.dataset.report"))
                r = {"tokens": tokens, "step": name, "longtask_max": max(longest or [0]), "longtasks": len(longest),
                     "draw_ms": rep["timing"].get("draw_ms"), "wall_ms": (time.time() - t0) * 1000.0}
                r.update(page.evaluate(PRESENTED))
                row["steps"].append(r)
                log("  %4d tokens %-16s longest main task %5s ms (%d); presenting a frame: at most %5.1f ms (its "
                    "message's decoding at most %5.1f ms), the canvas part of the last %5.1f ms"
                    % (tokens, name, "%.0f" % r["longtask_max"] if longest else "none", len(longest),
                       r["present_max_ms"], r["decode_max_ms"], r["draw_ms"] or 0.0))
            page.evaluate("() => { const c = document.getElementById('causal'); if (c.checked) c.click(); }")
        out[label] = row
        ctx.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", default="128,512")
    ap.add_argument("--parts", default="boot,first,split,interrupt,tabs")
    ap.add_argument("--tabs", default=",".join(TABS), help="tabs of the 'tabs' part")
    ap.add_argument("--modes", default="", help="modes of the 'page' part: worker, main, or a full label")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)
    httpd, origin = serve()
    out = {"load": os.getloadavg()}

    def log(s):
        print(s, flush=True)

    log("Chromium, %d CPUs, load average %.1f" % (os.cpu_count() or 0, os.getloadavg()[0]))
    try:
        with chromium() as browser:
            parts = args.parts.split(",")
            if "boot" in parts:
                out["boot"] = part_boot(browser, origin, log)
            if "first" in parts:
                out["first"] = part_first(browser, origin, log)
            if "split" in parts:
                out["split"] = part_split(browser, origin, log)
            if "interrupt" in parts:
                out["interrupt"] = part_interrupt(browser, origin, log)
            if "page" in parts:
                out["page"] = part_page(browser, origin, log, [int(t) for t in args.tokens.split(",") if t],
                                        args.tabs.split(","), args.modes.split(",") if args.modes else None)
            if "tabs" in parts:
                out["tabs"] = part_tabs(browser, origin, log, [int(t) for t in args.tokens.split(",")],
                                        args.tabs.split(","))
    finally:
        httpd.shutdown()
    out["load_after"] = os.getloadavg()
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    if "tabs" in out:
        log("\nlongest main-thread task per tab (ms): " + "; ".join(
            "%s@%d %s" % (r["tab"], r["tokens"], "%.0f" % r["longtask_max"] if r["longtasks"] else "none")
            for r in out["tabs"]))
        worst = max(r["longtask_max"] for r in out["tabs"])
        log("worst: %.0f ms; median worker frame %.0f ms" % (worst, statistics.median(r["total_ms"] for r in out["tabs"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
