"""The page with the compute worker (issue 12): web/index.html in the Pyodide 0.17.1 harness as shipped
(``data-compute="auto"`` on web/coi.js's tag: the worker is the default). The worker fetches, computes and draws
straight into the page's canvas (handed to it with ``transferControlToOffscreen``); the page presents no pixels.

Checked: the page boots through the worker and shows the same heatmap as the main-thread page; across a
512-token scenario (every tab, every control) the main thread has no task over the long-task bound
(PerformanceObserver "longtask"); typing during a long every-layer computation supersedes it (the final view
equals a fresh page at the final URL, nothing older is drawn after the last change); a failing worker falls
back to the main-thread loop (its script missing, or no ``Worker`` at all) and the page still works (heatmap
pixels, an edit); the page works with service workers blocked; a failed file gives the error frame with Retry.
"""

from __future__ import annotations

import json
import time

import pytest
from helpers import SHOWN, canvas_colour_count, wait_js

pytestmark = pytest.mark.browser

WORKER_ON = ""                                            # the default page: web/coi.js starts the worker
# The goal is 50 ms. What is left on the main thread is presenting a frame: decoding its message (hit regions,
# chips, report) and then, in a task of its own, the controls, the chips, the hotspots and the canvas' CSS size:
# no pixels, the worker draws into the page's canvas (handed to it with transferControlToOffscreen). Before
# that, drawing the worker's bitmap of the Lines view at 512 tokens (910 x 7,326 px) took 188-373 ms here; now
# the longest task of this scenario measured 51-70 ms with other tests sharing the 2 cores (0 on most steps),
# and presenting the Lines view at 512 tokens 30 ms plus 50 ms of decoding in another task. The bounds keep
# about twice that as margin for the shared machines (the benchmark reports the real figures).
LONG_TASK_BOUND_MS = 150      # the steps whose computation blocked the main-thread loop for 0.8-3 s at 512 tokens
PRESENT_BOUND_MS = 150        # any step
COMPUTE_STEPS = ("typing", "layer", "causal", "tab:model", "tab:rollout", "tab:stats")
LONG_TASKS = """() => {
    window.__long = [];
    window.__obs = new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); });
    window.__obs.observe({type: "longtask", buffered: false});
}"""


# the kernel the page's own Python computes with (NoneType: none installed, numpy would be used)
PAGE_KERNEL = """() => pyodide.runPython('from pyapp.core import numerics\\ntype(numerics.matmul_backend()).__name__')"""


def wait_ready(page, guard, timeout: int = 180_000):
    wait_js(page, "() => ['ready', 'error'].includes(document.body.dataset.state)", timeout=timeout)
    assert page.evaluate("document.body.dataset.state") == "ready", (guard.console + guard.page_errors)[-20:]


def long_paragraph(tokens: int = 512) -> str:
    words = ("attention lets every token look at every other token and weigh how much each one matters "
             "for its meaning while the heads learn different habits").split()
    return " ".join(words[i % len(words)] for i in range(tokens))


def report(page):
    return json.loads(page.evaluate("document.body.dataset.report || '{}'"))


def open_worker_app(new_page, server, query: str = "", init: str = WORKER_ON, width: int = 1280,
                    service_workers: str = "allow"):
    page, guard = new_page("pyodide", width=width, service_workers=service_workers, compute="auto")
    if init:
        page.add_init_script(init)
    page.goto(server.url("/web/index.html" + query))
    wait_ready(page, guard)
    return page, guard


def settle(page, timeout: int = 120_000):
    """Until the worker has answered the newest pass (a view or error frame, nothing pending); first past the
    text box's debounce (250 ms), so a change just typed has been sent."""
    page.wait_for_timeout(300)
    wait_js(page, """() => { const a = window.mhsaApp; if (!a) return false;
        const r = JSON.parse(document.body.dataset.report || '{}');
        return r.frame !== 'loading' && a.idle(); }""", timeout=timeout)


@pytest.fixture(scope="module")
def wpage(new_page, server):
    page, guard = open_worker_app(new_page, server)
    yield page, guard
    guard.check()


def test_page_boots_through_the_worker(wpage, open_app):
    page, _ = wpage
    settle(page)
    r = report(page)
    assert r["compute"]["fallback"] == "" and r["compute"]["worker"]["numpy"].startswith("1.17"), r["compute"]
    assert r["frame"] == "view" and r["model"] == "minilm-l6" and r["n"] == 13
    assert r["stats"]["context"] >= 1 and r["images"] >= 1          # the worker session's counters
    # the page's own Python computes nothing: no kernel compiled there (the worker has its own)
    assert page.evaluate(PAGE_KERNEL) == "NoneType"
    ref_page, _ = open_app(compute="main")                       # the main-thread loop, for reference
    assert ref_page.evaluate("() => window.mhsaApp.uses_worker()") is False
    assert ref_page.evaluate(PAGE_KERNEL) == "WasmGemm"
    ref = report(ref_page)
    ref_page.close()
    assert r["tokens"] == ref["tokens"] and r["query"] == ref["query"]
    a, b = r["heatmap"]["matrix"], ref["heatmap"]["matrix"]
    assert max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)) < 1e-5
    # the worker drew into the page's own canvas (handed to it: no context here), not blank
    assert r["compute"]["worker"]["direct"] is True and page.evaluate("() => window.mhsaCompute.transferred")
    assert "InvalidStateError" in page.evaluate("""() => { try { document.getElementById('view').getContext('2d');
        return 'context'; } catch (e) { return e.name; } }""")
    ink = page.evaluate("""async () => { const c = document.getElementById('view');
        const d = (await (""" + SHOWN + """)(c)).getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] < 200) n++; return n / (d.length / 4); }""")
    assert ink > 0.02, ink


def _scenario(page, text: str):
    """Every control and every tab on ``text``; returns the longest main-thread tasks seen per step."""
    page.evaluate(LONG_TASKS)
    out = {}

    def step(name, action):
        page.evaluate("() => { window.__long = []; }")
        action()
        settle(page)
        page.wait_for_timeout(50)
        out[name] = max(page.evaluate("() => window.__long") or [0])

    def typed():
        box = page.locator("#text")
        box.fill(text)
        box.press("End")
        box.type(" again", delay=30)          # typing while the worker computes

    step("typing", typed)
    tabs = page.evaluate("() => [...document.querySelectorAll('[role=tab]')].map(b => b.id.slice(4))")
    for t in tabs:
        step("tab:" + t, lambda t=t: page.click("#tab-" + t))
    page.click("#tab-overview")
    settle(page)
    step("layer", lambda: page.select_option("#layer", "5"))
    step("head", lambda: page.select_option("#head", "3"))
    step("temperature", lambda: page.evaluate("""() => { const s = document.getElementById('temperature');
        s.value = String(Number(s.value) + 0.2); s.dispatchEvent(new Event('input')); }"""))
    step("causal", lambda: page.click("#causal"))
    page.click("#tab-steps")
    settle(page)
    step("step", lambda: page.click("#next"))
    return out


def test_no_long_main_thread_task_at_512_tokens(wpage):
    page, _ = wpage
    got = _scenario(page, long_paragraph(520))
    r = report(page)
    print("\nlongest main-thread task per step, 512 tokens, worker: %s" % json.dumps(got))
    assert r["n"] == 512 and r["frame"] == "view"
    assert set(COMPUTE_STEPS) <= set(got), got
    assert max(got[k] for k in COMPUTE_STEPS) < LONG_TASK_BOUND_MS, got
    assert max(got.values()) < PRESENT_BOUND_MS, got


def test_typing_supersedes_a_long_all_layer_computation(wpage, open_app):
    """Type while the model tab computes every layer of 512 tokens: the old computation is abandoned (no
    stale frame drawn after the last change) and the final view equals a fresh page at the final URL."""
    page, _ = wpage
    long = long_paragraph(520)
    page.click("#tab-overview")
    page.fill("#text", long)
    settle(page)
    page.evaluate("""() => {
        window.__drawn = [];
        const app = window.mhsaApp;
        new MutationObserver(() => { const r = JSON.parse(document.body.dataset.report || '{}');
            window.__drawn.push([performance.now(), r.frame, r.n, (r.layers_ready || []).length, r.tab]); })
          .observe(document.body, {attributes: true, attributeFilter: ["data-report"]});
    }""")
    page.click("#tab-model")
    page.wait_for_timeout(400)                 # the worker is inside the layers of the long text now
    final = "The cat sat on the mat."
    t_change = page.evaluate("() => performance.now()")
    page.fill("#text", final)
    settle(page)
    drawn = page.evaluate("() => window.__drawn")
    r = report(page)
    assert r["n"] == 9 and r["tab"] == "model" and r["layers_ready"] == [0, 1, 2, 3, 4, 5], r
    # after the change (+ the debounce), nothing of the 512-token text was presented again
    late = [d for d in drawn if d[0] > t_change + 260 and d[2] == 512]
    assert not late, late
    assert r["compute"]["superseded"] >= 1, r["compute"]
    ref_page, _ = open_app(query="?" + r["query"], compute="main")
    wait_js(ref_page, "() => (JSON.parse(document.body.dataset.report).layers_ready || []).length === 6",
            timeout=60_000)
    ref = report(ref_page)
    ref_page.close()
    assert r["query"] == ref["query"] and r["tokens"] == ref["tokens"]
    a, b = r["heatmap"], ref["heatmap"]
    assert (a is None) == (b is None)
    if a is not None and "matrix" in a:
        assert max(abs(x - y) for ra, rb in zip(a["matrix"], b["matrix"]) for x, y in zip(ra, rb)) < 1e-5


def _still_works(page):
    """The page shows the heatmap (pixels on the canvas) and recomputes after an edit (main-thread loop)."""
    r = report(page)
    assert r["frame"] == "view" and r["n"] == 13, r
    assert canvas_colour_count(page) > 20                    # a real heatmap, not a blank canvas
    draws = r["draws"]
    page.fill("#text", "The dog ran.")
    wait_js(page, "(n) => JSON.parse(document.body.dataset.report).draws > n", draws, timeout=60_000)
    r = report(page)
    assert r["tokens"] == ["[CLS]", "the", "dog", "ran", ".", "[SEP]"] and r["frame"] == "view", r
    assert canvas_colour_count(page) > 20


def test_worker_that_cannot_start_falls_back_to_the_main_thread(new_page, server):
    page, guard = new_page("pyodide")
    page.context.route("**/web/compute-worker.js", lambda r: r.fulfill(status=404, body="missing"))
    t0 = time.time()
    page.goto(server.url("/web/index.html"))
    wait_ready(page, guard)
    r = report(page)
    assert r["frame"] == "view" and r["n"] == 13, r
    assert r.get("compute") is None or r["compute"]["fallback"], r     # the main-thread loop's report
    assert page.evaluate("() => window.mhsaApp.uses_worker()") is False
    why = page.evaluate("() => String(window.mhsaApp.remote.get('fallback'))")
    assert "could not start" in why, why           # the failed script, not the boot timeout
    # the canvas had been handed to the worker at page open: a fresh one took its place, drawn here
    assert page.evaluate("() => window.mhsaCompute.transferred") is False
    assert page.evaluate("() => !!document.getElementById('view').getContext('2d')")
    assert page.evaluate("() => document.querySelectorAll('canvas#view').length") == 1
    # the fresh canvas has the pointer: hovering the heatmap shows a cell's tooltip
    box = page.locator("#view").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.4)
    tip = wait_js(page, "() => !document.getElementById('tooltip').hidden && "
                        "document.getElementById('tooltip').textContent", timeout=10_000)
    assert "→" in tip, tip
    _still_works(page)
    print("\nfallback page ready in %.1f s (%s)" % (time.time() - t0, why))


def test_python_call_needs_the_debug_flag(new_page, server):
    """The worker runs Python sent from JavaScript (mhsaCompute.call("python"): the tests' instrument) only for a
    page that set window.mhsaDebug = true; the deployed page does not, and every other call still answers."""
    page, guard = open_worker_app(new_page, server, init="window.mhsaDebug = false;")
    call = """(name) => window.mhsaCompute.call(name, {source: "x = 6 * 7", expr: "x"})
        .then((r) => ["ok", r], (e) => ["refused", String(e.message)])"""
    got = page.evaluate(call, "python")
    assert got[0] == "refused" and "mhsaDebug" in got[1], got
    assert page.evaluate(call, "ping") == ["ok", {"pong": True}]
    assert report(page)["compute"]["worker"]["debug"] is False
    page, guard = open_worker_app(new_page, server)             # the test harness's pages: on
    assert page.evaluate(call, "python") == ["ok", {"value": 42}]
    assert report(page)["compute"]["worker"]["debug"] is True


def test_worker_lost_after_start_up_falls_back_to_the_main_thread(new_page, server):
    """The worker's Python stops taking messages after the page is up (as after a Pyodide fatal error, every
    call into it throws): the next change is computed on the main thread, on a fresh canvas, instead of waiting
    for an answer that never comes; later changes too."""
    page, guard = open_worker_app(new_page, server)
    settle(page)
    assert page.evaluate("() => window.mhsaApp.uses_worker()") is True
    # an uncaught error in the worker that leaves its Python working: the page asks (ping) and keeps the worker
    page.evaluate("""() => window.mhsaCompute.call("python", {source:
        "import js\\njs.setTimeout(js.Function.new('throw new Error(\\"a stray error\\")'), 0)"})""")
    page.fill("#text", "A stray error.")
    settle(page)
    assert page.evaluate("() => window.mhsaApp.uses_worker()") is True
    assert report(page)["tokens"] == ["[CLS]", "a", "stray", "error", ".", "[SEP]"]
    assert "a stray error" in page.evaluate("() => String(window.mhsaApp.client.error)")   # seen, then pinged
    broken = page.evaluate("""() => window.mhsaCompute.call("python", {source:
        "import pyapp.worker.entry as e\\ne._host.receive = None", expr: "1"})""")
    assert broken == {"value": 1}
    page.fill("#text", "The dog ran.")
    wait_js(page, "() => !window.mhsaApp.uses_worker()", timeout=30_000)
    wait_js(page, "() => { const r = JSON.parse(document.body.dataset.report || '{}');"
                  " return r.frame === 'view' && (r.tokens || []).includes('dog'); }", timeout=120_000)
    r = report(page)
    assert r["tokens"] == ["[CLS]", "the", "dog", "ran", ".", "[SEP]"], r
    why = page.evaluate("() => String(window.mhsaApp.remote.get('fallback'))")
    assert why.startswith("lost:") and "NoneType" in why, why
    assert page.evaluate("() => window.mhsaCompute.transferred") is False      # a fresh canvas, drawn here
    assert page.evaluate("() => document.querySelectorAll('canvas#view').length") == 1
    assert canvas_colour_count(page) > 20
    assert page.evaluate("document.getElementById('loading').hidden") is True
    assert page.evaluate(PAGE_KERNEL) == "WasmGemm"        # the main thread's kernel, installed at the fallback
    draws = report(page)["draws"]
    page.fill("#text", "Cats sleep.")                         # the main-thread loop keeps going
    wait_js(page, "(n) => JSON.parse(document.body.dataset.report).draws > n", draws, timeout=60_000)
    assert report(page)["tokens"] == ["[CLS]", "cats", "sleep", ".", "[SEP]"]
    assert canvas_colour_count(page) > 20


def test_page_without_web_workers_runs_on_the_main_thread(new_page, server):
    """No ``Worker`` at all (removed before the page's scripts run): the main-thread loop, same page."""
    page, guard = new_page("pyodide")
    page.add_init_script("delete window.Worker;")
    page.goto(server.url("/web/index.html"))
    wait_ready(page, guard)
    assert page.evaluate("() => typeof Worker") == "undefined"
    assert page.evaluate("() => window.mhsaCompute.worker === null && !window.mhsaCompute.transferred")
    assert page.evaluate("() => window.mhsaApp.uses_worker()") is False
    assert "compute" not in report(page)                # the main-thread App's report
    _still_works(page)


def test_page_works_with_service_workers_blocked(new_page, server):
    """No service worker (blocked): not cross-origin isolated, and the compute worker still draws the page."""
    page, guard = open_worker_app(new_page, server, service_workers="block")
    settle(page)
    r = report(page)
    # Playwright's "block": the service worker registers but never controls the page (not isolated)
    assert page.evaluate("() => [window.crossOriginIsolated, !!navigator.serviceWorker.controller]") == [False, False]
    assert r["compute"]["fallback"] == "" and r["compute"]["worker"]["isolated"] is False, r["compute"]
    assert r["compute"]["worker"]["direct"] is True
    assert page.evaluate("() => window.mhsaApp.uses_worker()") is True
    assert canvas_colour_count(page) > 20
    page.fill("#text", "The dog ran.")
    settle(page)
    r = report(page)
    assert r["tokens"] == ["[CLS]", "the", "dog", "ran", ".", "[SEP]"] and r["frame"] == "view", r
    assert canvas_colour_count(page) > 20
    page.goto(server.url("/web/index.html?" + r["query"]))    # the next load: not isolated, still the worker
    wait_ready(page, guard)
    settle(page)
    assert page.evaluate("() => [window.crossOriginIsolated, window.mhsaApp.uses_worker()]") == [False, True], (
        report(page).get("compute"), guard.console[-12:])
    assert report(page)["tokens"] == ["[CLS]", "the", "dog", "ran", ".", "[SEP]"]
    assert canvas_colour_count(page) > 20


def test_a_failed_file_in_the_worker_is_an_error_frame_with_retry(new_page, server):
    # service workers blocked: Playwright's page routes do not see what a service worker fetches
    page, guard = open_worker_app(new_page, server, query="?tab=heads", service_workers="block")
    settle(page)
    failing = {"on": True}

    def route(r):
        if failing["on"]:
            r.fulfill(status=404, body="gone")
        else:
            r.continue_()
    page.route("**/models/minilm-l6/layer4.qk.json", route)   # the page's route sees the worker's files
    page.select_option("#layer", "4")
    wait_js(page, "() => JSON.parse(document.body.dataset.report).frame === 'error'", timeout=60_000)
    r = report(page)
    assert "layer4.qk.json" in r["error"] and "404" in r["error"], r["error"]
    assert page.is_visible("#retry")
    failing["on"] = False
    page.click("#retry")
    wait_js(page, "() => JSON.parse(document.body.dataset.report).frame === 'view'", timeout=60_000)
    assert report(page)["layer"] == 4
    guard.console.clear()
