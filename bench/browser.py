"""Chromium (Debian's, never a downloaded one) and the Pyodide harness page, for the benchmark scripts."""

from __future__ import annotations

import contextlib

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]


@contextlib.contextmanager
def chromium():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def guard(page, origin, log):
    """Abort any request that would leave 127.0.0.1 (and remember it); collect page errors."""
    def route(r):
        if r.request.url.startswith(origin) or r.request.url.startswith("data:") or r.request.url.startswith("blob:"):
            r.continue_()
        else:
            log.append("blocked external request: " + r.request.url)
            r.abort()
    page.route("**/*", route)
    page.on("pageerror", lambda e: log.append("pageerror: %s" % e))


def open_pyodide(browser, srv, timeout_ms=180000):
    """A fresh context on bench/pyodide.html with Pyodide + numpy booted; returns the page."""
    ctx = browser.new_context()
    page = ctx.new_page()
    log = []
    guard(page, srv.origin, log)
    page.goto(srv.origin + "/bench/pyodide.html")
    page.wait_for_function("window.PY_READY === true || window.PY_ERROR !== undefined", timeout=timeout_ms)
    err = page.evaluate("window.PY_ERROR || null")
    if err:
        raise RuntimeError("Pyodide failed to boot: %s %s" % (err, log))
    page.bench_log = log
    return page
