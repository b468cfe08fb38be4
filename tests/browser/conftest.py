"""Real-browser harness: the repo served on 127.0.0.1, Playwright Chromium, Pyodide 0.17.1 + numpy 1.17.5.

Fixtures
- ``server``   (session) serves the repo root on 127.0.0.1 on a free port; ``server.url(path)``.
- ``browser``  (session) headless Debian Chromium (never ``playwright install``).
- ``new_page`` factory: ``new_page(mode="pyodide", width=1280, height=800, scale=1)`` -> ``(page, guard)``.
  Every request is routed: 127.0.0.1 goes through; the PyScript CDN module is replaced by
  ``tests/browser/bootstrap.js`` (mode "pyodide") or served from ``node_modules/@pyscript/core`` (mode
  "pyscript", with Pyodide's CDN mapped to ``node_modules/pyodide``); anything else is aborted and recorded
  in ``guard.offhost`` -- the fixture fails the test if that list is not empty.
- ``pyodide``  (session) a blank page with Pyodide 0.17.1 + numpy and the repo's ``pyapp`` package (and
  ``models/index.json``) written into its file system; ``pyodide.run(code)`` runs Python with
  ``runPythonAsync`` (top-level ``await`` allowed) and returns the JSON-decoded value of the last expression.
- ``app_page`` (session) ``web/index.html`` booted in Pyodide 0.17.1 through the bootstrap, waited on until
  ``document.body.dataset.state == "ready"``; ``open_app(...)`` opens a fresh one (other sizes / isolation).
  The page as shipped computes in the compute worker (web/coi.js, ``data-compute="auto"``), which draws into
  the page's canvas; ``new_page(compute="main")`` / ``open_app(compute="main")`` (or ``MHSA_COMPUTE=main``
  for every page) runs the main-thread loop instead.
"""

from __future__ import annotations

import ast
import functools
import http.server
import json
import mimetypes
import os
import threading
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import urlsplit

import pycache
import pytest
from helpers import PYSCRIPT_CDN, WRITE_FILES, boot_blank_pyodide, wait_js

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PYODIDE_CDN_PREFIX = "https://cdn.jsdelivr.net/pyodide/v"
BOOT_TIMEOUT_MS = 180_000

MIME = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
        ".data": "application/octet-stream", ".json": "application/json", ".toml": "text/plain",
        ".py": "text/plain", ".map": "application/json", ".zip": "application/zip", ".whl": "application/zip"}


# ---- server -----------------------------------------------------------------------------------------
class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = dict(http.server.SimpleHTTPRequestHandler.extensions_map, **MIME)

    def log_message(self, *args):  # keep test output clean
        pass

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class Server:
    def __init__(self, root: Path):
        handler = functools.partial(_Handler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.origin = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return self.origin + (path if path.startswith("/") else "/" + path)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def server():
    s = Server(ROOT)
    yield s
    s.close()


# ---- browser ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def playwright_instance():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium not installed at %s" % CHROMIUM)
    b = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield b
    b.close()


@pytest.fixture(scope="session", autouse=True)
def pycache_bundle(browser, server):
    """The harness runtime's compiled standard library (``tests/browser/pycache.py``), made once per session:
    bootstrap.js and the compute worker write it into each Pyodide 0.17.1 before the app's first import."""
    return pycache.build(browser, server.origin)


class Guard:
    """What a page tried that it should not have, and what it logged."""

    def __init__(self):
        self.offhost: List[str] = []
        self.console: List[str] = []
        self.page_errors: List[str] = []

    def check(self):
        assert not self.offhost, "requests tried to leave 127.0.0.1: %s" % self.offhost


# Strip the Subresource-Integrity attribute of the PyScript module tag before the parser prepares it, so the
# test bootstrap can be served under the CDN URL (the smoke test serves the real file and keeps SRI on).
_STRIP_SRI = """
new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes) {
    if (n.tagName === "SCRIPT" && (n.getAttribute("src") || "").startsWith(%s)) n.removeAttribute("integrity");
  }
}).observe(document, {childList: true, subtree: true});
""" % json.dumps(PYSCRIPT_CDN)


def _local_file(path: Path):
    if not path.is_file():
        return None
    ctype = MIME.get(path.suffix) or mimetypes.guess_type(str(path))[0] or "application/octet-stream"
    return path.read_bytes(), ctype


def _router(server: Server, mode: str, guard: Guard):
    bootstrap = ROOT / "tests" / "browser" / "bootstrap.js"

    def fulfil_local(route, path: Path):
        found = _local_file(path)
        if found is None:
            route.fulfill(status=404, body="not in the local npm copy: %s" % path.name,
                          headers={"Access-Control-Allow-Origin": "*"})
            return
        body, ctype = found
        route.fulfill(status=200, body=body, content_type=ctype, headers={"Access-Control-Allow-Origin": "*"})

    def handle(route):
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or (parts.hostname == "127.0.0.1" and parts.port == server.port):
            route.continue_()
            return
        if url.startswith(PYSCRIPT_CDN):
            name = parts.path.rsplit("/", 1)[-1]
            if mode == "pyodide" and name == "core.js":
                fulfil_local(route, bootstrap)
            else:
                fulfil_local(route, ROOT / "node_modules" / "@pyscript" / "core" / "dist" / name)
            return
        if mode == "pyscript" and url.startswith(PYODIDE_CDN_PREFIX):
            # https://cdn.jsdelivr.net/pyodide/v<version>/full/<file> -> node_modules/pyodide/<file>
            name = parts.path.split("/full/", 1)[-1]
            fulfil_local(route, ROOT / "node_modules" / "pyodide" / name)
            return
        guard.offhost.append(url)
        route.abort()

    return handle


@pytest.fixture(scope="session")
def new_page(browser, server):
    """Factory for routed, guarded pages; each gets its own context (closed at session end)."""
    opened = []

    def make(mode: str = "pyodide", width: int = 1280, height: int = 800, scale: float = 1,
             service_workers: str = "allow", compute: Optional[str] = None):
        """``service_workers="block"``: no service worker (requests a service worker serves bypass routes).
        ``compute``: "main" runs the page's computations on the main thread (the fallback loop), "auto" the
        compute worker; None: the page's default (its coi.js tag: the worker), or ``MHSA_COMPUTE`` if set."""
        guard = Guard()
        # Pyodide 0.17's JS bridge evaluates strings (needs 'unsafe-eval', dropped by Pyodide >= 0.22); the page's
        # CSP is written for the modern runtime, so the 0.17 harness bypasses it. The PyScript smoke test keeps it.
        context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=scale,
                                      bypass_csp=(mode == "pyodide"), service_workers=service_workers)
        if mode == "pyodide":
            context.add_init_script(_STRIP_SRI)
        compute = compute or os.environ.get("MHSA_COMPUTE")   # MHSA_COMPUTE=main: every page on the main thread
        if compute:
            context.add_init_script("window.mhsaComputeDefault = %s;" % json.dumps(compute))
        context.route("**/*", _router(server, mode, guard))
        page = context.new_page()
        page.on("console", lambda m: guard.console.append("%s: %s" % (m.type, m.text)))
        page.on("pageerror", lambda e: guard.page_errors.append(str(e)))
        opened.append(context)
        return page, guard

    make.opened = opened
    yield make
    for c in opened:
        try:
            c.close()
        except Exception:
            pass


@pytest.fixture(autouse=True)
def _close_the_tests_own_pages(new_page):
    """The pages a test opens itself are closed when it ends (the session's and the module's shared pages,
    set up before this, stay): a page left open keeps its compute worker, which may still be working, and its
    load fell on the next tests (the long-task test saw 60-190 ms tasks in a full run, none alone)."""
    before = len(new_page.opened)
    yield
    for c in new_page.opened[before:]:
        try:
            c.close()
        except Exception:
            pass
    del new_page.opened[before:]


# ---- Pyodide 0.17.1 with the pyapp package --------------------------------------------------------------
def _with_result(code: str) -> str:
    """Rewrite `code` so the value of its last expression lands in `_harness_result`."""
    tree = ast.parse(code)
    lines = code.splitlines()
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1]
        head = lines[:last.lineno - 1]
        expr = "\n".join(lines[last.lineno - 1:last.end_lineno])
        return "\n".join(head + ["_harness_result = (", expr, ")"])
    return code + "\n_harness_result = None"


class PyodideSession:
    def __init__(self, page, guard: Guard):
        self.page = page
        self.guard = guard

    def run(self, code: str):
        """Run `code` (top-level await allowed) and return its last expression, JSON round-tripped."""
        src = _with_result(code)
        out = self.page.evaluate(
            """async (src) => {
                await pyodide.runPythonAsync(src);
                return pyodide.runPython("import json as _j; _j.dumps(_harness_result)");
            }""",
            src,
        )
        return json.loads(out)


def _browser_files() -> List[str]:
    files = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pyapp").rglob("*.py")
                   if "__pycache__" not in p.parts)
    if (ROOT / "models" / "index.json").exists():
        files.append("models/index.json")
    return files


@pytest.fixture(scope="session")
def pyodide(new_page, server):
    page, guard = new_page("pyodide")
    boot_blank_pyodide(page, server.origin)
    session = PyodideSession(page, guard)
    files = [[server.url("/" + f), f] for f in _browser_files()]
    session.run(WRITE_FILES % json.dumps(files) + 'len(os.listdir("pyapp"))\n')
    yield session
    guard.check()


# ---- the app ----------------------------------------------------------------------------------------------
def wait_ready(page, guard: Optional[Guard] = None, timeout: int = BOOT_TIMEOUT_MS):
    wait_js(page, "() => ['ready', 'error'].includes(document.body.dataset.state)", timeout=timeout)
    state = page.evaluate("document.body.dataset.state")
    if state != "ready":
        status = page.evaluate("document.getElementById('status-text').textContent")
        logs = "\n".join((guard.console + guard.page_errors)[-30:]) if guard else ""
        raise AssertionError("app failed to boot: %s\n%s" % (status, logs))


@pytest.fixture(scope="session")
def open_app(new_page, server):
    def make(width: int = 1280, height: int = 800, scale: float = 1, query: str = "", compute: Optional[str] = None,
             service_workers: str = "allow"):
        page, guard = new_page("pyodide", width=width, height=height, scale=scale, compute=compute,
                               service_workers=service_workers)
        page.goto(server.url("/web/index.html" + query))
        wait_ready(page, guard)
        return page, guard

    return make


@pytest.fixture(scope="session")
def app(open_app):
    """(page, guard) of one booted app shared by the tests that leave it as they found it."""
    page, guard = open_app()
    yield page, guard
    guard.check()


@pytest.fixture
def app_page(app):
    page, guard = app
    yield page
    guard.check()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.browser)


def js_state(page) -> Dict:
    """The app's own report of what it shows (set by pyapp.browser.app on <body>)."""
    return page.evaluate("JSON.parse(document.body.dataset.report || '{}')")
