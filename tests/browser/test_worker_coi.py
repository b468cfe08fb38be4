"""Cross-origin isolation from a service worker (web/coi.js registers web/coi-sw.js), for static hosting.

GitHub Pages cannot send COOP/COEP headers; the service worker adds them to the site's own responses, so from
the next load on the page is ``crossOriginIsolated`` (SharedArrayBuffer, shared memory between workers). Served
here by a plain ``http.server`` under a sub-path (as a Pages project site), in real Chromium: registration then
isolation after a reload; ``data-reload="once"`` reloads by itself exactly once (never a loop); with service
workers blocked the page still works, unisolated, and does not reload; a worker of an isolated page is
isolated too. And the real app (web/index.html in the Pyodide 0.17.1 harness) boots isolated.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]

PAGE = """<!doctype html><meta charset="utf-8"><title>coi</title>
<script src="./coi.js"%s></script>
<p id="p">page</p>
<script>
  window.loads = Number(sessionStorage.getItem("loads") || 0) + 1;
  sessionStorage.setItem("loads", String(window.loads));
</script>
"""

WORKER_ISOLATED = """() => new Promise((done) => {
  const src = "postMessage([self.crossOriginIsolated === true, typeof SharedArrayBuffer === 'function'])";
  const w = new Worker(URL.createObjectURL(new Blob([src], {type: "text/javascript"})));
  w.onmessage = (e) => { w.terminate(); done(e.data); };
})"""


def _harness():
    spec = importlib.util.spec_from_file_location("browser_harness_coi", Path(__file__).with_name("conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A static site under a sub-path: /project/web/{coi.js, coi-sw.js, plain.html, reload.html}."""
    root = tmp_path_factory.mktemp("coi-site")
    web = root / "project" / "web"
    web.mkdir(parents=True)
    for name in ("coi.js", "coi-sw.js"):
        shutil.copy(ROOT / "web" / name, web / name)
    (web / "plain.html").write_text(PAGE % "")
    (web / "reload.html").write_text(PAGE % ' data-reload="once"')
    server = _harness().Server(root)
    yield server
    server.close()


def _wait(page, expr: str, timeout: int = 20_000):
    """wait_js that survives the page reloading itself meanwhile (the evaluation's context is destroyed)."""
    import time

    deadline = time.monotonic() + timeout / 1000.0
    while True:
        try:
            if page.evaluate(expr):
                return
        except Exception as e:  # noqa: BLE001 - only a navigation in progress is expected here
            if "context was destroyed" not in str(e) and "navigat" not in str(e):
                raise
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for %s" % expr)
        page.wait_for_timeout(50)


def _state(page):
    return page.evaluate("() => ({state: window.mhsaCoi.state, isolated: window.crossOriginIsolated === true,"
                         " sab: typeof SharedArrayBuffer === 'function', loads: window.loads,"
                         " error: window.mhsaCoi.error})")


def test_isolated_from_the_second_load(browser, site):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(site.url("/project/web/plain.html"))
        _wait(page, "() => window.mhsaCoi && window.mhsaCoi.state !== 'starting'")
        first = _state(page)
        assert first["state"] == "registered" and not first["isolated"], first
        page.reload()
        _wait(page, "() => window.mhsaCoi && window.mhsaCoi.state === 'isolated'")
        second = _state(page)
        assert second["isolated"] and second["sab"], second
        assert page.evaluate(WORKER_ISOLATED) == [True, True]
        assert page.evaluate("document.getElementById('p').textContent") == "page"
    finally:
        context.close()


def test_reload_once_then_isolated_and_never_a_loop(browser, site):
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(site.url("/project/web/reload.html"))
        _wait(page, "() => window.mhsaCoi && window.mhsaCoi.state === 'isolated'")
        page.wait_for_timeout(500)
        st = _state(page)
        assert st["isolated"] and st["loads"] == 2, st        # exactly one reload
        page.reload()                                         # later loads: isolated at once, no reload
        _wait(page, "() => window.mhsaCoi && window.mhsaCoi.state === 'isolated'")
        page.wait_for_timeout(300)
        assert _state(page)["loads"] == 3
    finally:
        context.close()


NO_SW_API = "Object.defineProperty(Navigator.prototype, 'serviceWorker', {get: () => undefined});"


@pytest.mark.parametrize("how", ["blocked", "no-api", "register-throws"])
def test_service_workers_blocked_the_page_still_works(browser, site, how):
    """Service workers blocked (Playwright's service_workers="block": registered, never in control), absent
    (no navigator.serviceWorker, e.g. some private modes) or refusing (register() rejects): no isolation, no
    reload, the page works."""
    context = browser.new_context(service_workers="block" if how == "blocked" else "allow")
    if how == "no-api":
        context.add_init_script(NO_SW_API)
    if how == "register-throws":
        context.add_init_script("ServiceWorkerContainer.prototype.register = () => Promise.reject("
                                "new DOMException('denied', 'SecurityError'));")
    try:
        page = context.new_page()
        page.goto(site.url("/project/web/reload.html"))
        _wait(page, "() => window.mhsaCoi && window.mhsaCoi.state !== 'starting'")
        page.wait_for_timeout(800)
        st = _state(page)
        want = {"blocked": "registered", "no-api": "unavailable", "register-throws": "blocked"}[how]
        assert st["state"] == want and not st["isolated"], st
        assert st["loads"] == 1                                # no reload when it cannot help
        assert page.evaluate("document.getElementById('p').textContent") == "page"
    finally:
        context.close()


def test_the_app_boots_cross_origin_isolated(new_page, server):
    """web/index.html (its head registers web/coi-sw.js) in the Pyodide 0.17.1 harness: the second load is
    isolated, and the app boots and draws as before (COEP does not block anything it loads)."""
    wait_ready = _harness().wait_ready
    page, guard = new_page("pyodide")
    page.goto(server.url("/web/index.html"))
    wait_ready(page, guard)
    _wait(page, "() => window.mhsaCoi && window.mhsaCoi.state !== 'starting'")
    page.reload()
    wait_ready(page, guard)
    assert page.evaluate("() => [window.crossOriginIsolated, window.mhsaCoi.state]") == [True, "isolated"]
    assert page.evaluate("document.body.dataset.state") == "ready"
    guard.check()
