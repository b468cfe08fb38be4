"""The page with the compute worker (issue 12, phase 2): web/index.html in the Pyodide 0.17.1 harness with the
worker switched on (``window.mhsaComputeDefault = "auto"`` before web/coi.js runs, as ``data-compute="auto"``
on its tag would). The worker fetches, computes and draws; the page only presents its frames.

Checked: the page boots through the worker and shows the same heatmap as the main-thread page; across a
512-token scenario (every tab, every control) the main thread has no task over the long-task bound
(PerformanceObserver "longtask"); typing during a long every-layer computation supersedes it (the final view
equals a fresh page at the final URL, nothing older is drawn after the last change); a failing worker falls
back to the main-thread loop; a failed file gives the error frame with Retry.
"""

from __future__ import annotations

import json
import time

import pytest
from helpers import wait_js

pytestmark = pytest.mark.browser

WORKER_ON = "window.mhsaComputeDefault = 'auto';"
# The goal is 50 ms. What is left on the main thread is presenting a frame: decoding its message (hit regions),
# the chips, the hotspots, and one drawImage of the worker's bitmap (the Lines view at 512 tokens is 910 x 7,326
# px). bench/run_benchmark.py measured 51-59 ms at worst on a quiet machine (every tab and control, MiniLM and
# SmolLM2, 128 and 512 tokens; the main-thread loop: 3,043 ms); here, with other tests sharing the 2 cores,
# up to 188 ms was seen on the Lines tab, and 373 ms in a fresh-clone CI run (presenting its very tall bitmap).
# The steps whose computation blocked the main-thread loop for 0.8-3 s at 512 tokens (typing, layer, causal,
# the all-layer tabs) must stay under LONG_TASK_BOUND_MS; presenting any frame under PRESENT_BOUND_MS.
LONG_TASK_BOUND_MS = 250
PRESENT_BOUND_MS = 800
COMPUTE_STEPS = ("typing", "layer", "causal", "tab:model", "tab:rollout", "tab:stats")
LONG_TASKS = """() => {
    window.__long = [];
    window.__obs = new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(e.duration); });
    window.__obs.observe({type: "longtask", buffered: false});
}"""


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
    page, guard = new_page("pyodide", width=width, service_workers=service_workers)
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
    ref_page, _ = open_app()
    ref = report(ref_page)
    ref_page.close()
    assert r["tokens"] == ref["tokens"] and r["query"] == ref["query"]
    a, b = r["heatmap"]["matrix"], ref["heatmap"]["matrix"]
    assert max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)) < 1e-5
    # the canvas got the worker's drawing (not blank)
    ink = page.evaluate("""() => { const c = document.getElementById('view');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
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
    ref_page, _ = open_app(query="?" + r["query"])
    wait_js(ref_page, "() => (JSON.parse(document.body.dataset.report).layers_ready || []).length === 6",
            timeout=60_000)
    ref = report(ref_page)
    ref_page.close()
    assert r["query"] == ref["query"] and r["tokens"] == ref["tokens"]
    a, b = r["heatmap"], ref["heatmap"]
    assert (a is None) == (b is None)
    if a is not None and "matrix" in a:
        assert max(abs(x - y) for ra, rb in zip(a["matrix"], b["matrix"]) for x, y in zip(ra, rb)) < 1e-5


def test_worker_that_cannot_start_falls_back_to_the_main_thread(new_page, server):
    page, guard = new_page("pyodide")
    page.add_init_script(WORKER_ON)
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
    print("\nfallback page ready in %.1f s (%s)" % (time.time() - t0, why))


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
