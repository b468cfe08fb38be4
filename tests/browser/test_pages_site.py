"""The folder the GitHub Pages workflow deploys (scripts/assemble_site.py) boots the app in Chromium.

Served on its own (not the repository) under a sub-path like a GitHub Pages project site, opened at its
root ``index.html`` like a visitor would, it must
redirect to the page, boot ``pyapp`` in Pyodide 0.17.1 (its compute worker too, which draws the heatmap) (the harness's bootstrap stands in for the PyScript
CDN; Pyodide itself comes from node_modules, and its compiled standard library from the harness's
tests/browser/.generated, which the site does not contain) and reach the ready state,
with no request answered 4xx/5xx and none leaving 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from helpers import canvas_colour_count, report

ROOT = Path(__file__).resolve().parents[2]


def _harness():
    """tests/browser/conftest.py's helpers (Server, router, readiness), loaded under a name of its own."""
    spec = importlib.util.spec_from_file_location("browser_harness", Path(__file__).with_name("conftest.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fulfil_repo(h, route, folder: str):
    """A file of the repository's test infrastructure ``folder`` (node_modules, the harness's pyc bundle)."""
    rel = route.request.url.split("/%s/" % folder, 1)[1].split("?", 1)[0]
    found = h._local_file(ROOT / folder / rel)
    if found is None:
        route.fulfill(status=404, body="not in %s: %s" % (folder, rel))
    else:
        route.fulfill(status=200, body=found[0], content_type=found[1])


def test_assembled_site_boots_the_app_from_its_root(browser, tmp_path):
    # Under a sub-path, as GitHub Pages serves a project site (https://user.github.io/<repo>/).
    site = tmp_path / "pages" / "mhsa-visualizer"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "assemble_site.py"), "--out", str(site)],
                       cwd=str(ROOT), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr

    h = _harness()
    server = h.Server(site.parent)
    guard = h.Guard()
    # As the harness's new_page("pyodide") does: Pyodide 0.17's JS bridge needs 'unsafe-eval', which the
    # page's CSP (written for the modern runtime) forbids, so the 0.17 harness bypasses the CSP.
    # No service worker: the site's COI worker would serve node_modules itself, past the routes below.
    context = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True,
                                  service_workers="block")
    try:
        context.add_init_script(h._STRIP_SRI)
        context.route("**/*", h._router(server, "pyodide", guard))
        page = context.new_page()
        # The harness's bootstrap loads Pyodide 0.17.1 from the repository's node_modules, which is test
        # infrastructure and not part of the site: map it here, the way the PyScript CDN is mapped.
        page.route(server.url("/node_modules/**"), lambda route: _fulfil_repo(h, route, "node_modules"))
        # and so is the runtime's compiled standard library the harness makes (tests/browser/pycache.py)
        page.route(server.url("/tests/browser/.generated/**"),
                   lambda route: _fulfil_repo(h, route, "tests/browser/.generated"))
        failed = []
        page.on("response", lambda resp: failed.append("%d %s" % (resp.status, resp.url))
                if resp.status >= 400 else None)
        page.on("console", lambda m: guard.console.append("%s: %s" % (m.type, m.text)))
        page.on("pageerror", lambda e: guard.page_errors.append(str(e)))

        # a shared link to the root keeps its state through the root index.html's redirect
        page.goto(server.url("/mhsa-visualizer/?text=Shared+link+text&tab=heads&layer=2"))
        page.wait_for_url("**/mhsa-visualizer/web/?text=Shared+link+text&tab=heads&layer=2", timeout=30_000)
        h.wait_ready(page, guard)
        state = report(page)
        assert (state["tab"], state["layer"], state["tokens"]) == (
            "heads", 2, ["[CLS]", "shared", "link", "text", "[SEP]"])
        # the site's compute worker (web/compute-worker.js under the sub-path) computed and drew it
        assert page.evaluate("() => window.mhsaApp.uses_worker()") is True, state.get("compute")
        assert state["compute"]["fallback"] == "", state["compute"]
        assert canvas_colour_count(page) > 20

        guard.check()
        assert not failed, failed
        assert not guard.page_errors, guard.page_errors
        served = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        assert any("/mhsa-visualizer/models/" in url for url in served), "the app fetched no model file"
    finally:
        context.close()
        server.close()
