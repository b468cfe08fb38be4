"""Small helpers shared by the browser tests (reading what the app reports and what the canvas shows)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[2]
PYSCRIPT_CDN = "https://cdn.jsdelivr.net/npm/@pyscript/core@0.7.31/dist/"   # the page's pinned release
# Python for Pyodide (top-level await): fetch each [url, dest] of a JSON list (the %r) into its file system, and
# put the working folder on sys.path (so `pyapp` imports): the harness's page and the gemm-threads worker
WRITE_FILES = """
import json, os, sys
from js import fetch
for url, dest in json.loads(%r):
    resp = await fetch(url)
    text = await resp.text()
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "w", encoding="utf-8") as fh:
        fh.write(text)
if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())
"""


PYODIDE_017 = "/node_modules/@pyodide/pyodide/dist/"   # the harness's runtime: Pyodide 0.17.1 + numpy 1.17.5


def boot_blank_pyodide(page, origin: str, name: str = "blank.html") -> None:
    """Open a blank page at ``origin`` (a route answers it) and boot Pyodide 0.17.1 + numpy there as
    ``globalThis.pyodide``."""
    blank = origin + "/__harness__/" + name
    page.route(blank, lambda r: r.fulfill(status=200, content_type="text/html",
                                          body="<!doctype html><title>harness</title>"))
    page.goto(blank)
    page.evaluate(
        """async (indexURL) => {
            await new Promise((ok, bad) => {
                const s = document.createElement("script");
                s.src = indexURL + "pyodide.js"; s.onload = ok; s.onerror = bad;
                document.head.appendChild(s);
            });
            globalThis.pyodide = await loadPyodide({indexURL});
            await pyodide.loadPackage(["numpy"]);
        }""",
        origin + PYODIDE_017,
    )


def wait_js(page, expr: str, arg=None, timeout: int = 60_000, interval: int = 40):
    """Poll `expr` (a JS function source) until it returns a truthy value; return it.

    Playwright's wait_for_function evaluates its predicate with eval(), which the page's Content-Security-
    Policy (no 'unsafe-eval') forbids; page.evaluate goes through the DevTools protocol and is allowed.
    """
    deadline = time.monotonic() + timeout / 1000.0
    while True:
        value = page.evaluate(expr, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("timed out after %d ms waiting for %s" % (timeout, expr))
        page.wait_for_timeout(interval)



def report(page) -> Dict:
    return json.loads(page.evaluate("document.body.dataset.report || '{}'"))


def draws(page) -> int:
    return int(report(page).get("draws", 0))


def wait_draw(page, before: int, timeout: int = 60_000) -> Dict:
    """Wait until the app has drawn again after `before` draws; return the new report."""
    wait_js(page, "(n) => JSON.parse(document.body.dataset.report || '{}').draws > n", before, timeout)
    page.wait_for_timeout(30)
    return report(page)


def wait_idle(page, timeout: int = 60_000):
    """Until the page's loop has nothing in flight (its report and hit regions are its last frame's, not a
    partial one's): the compute worker has answered the newest pass, or the main-thread loop has stopped."""
    wait_js(page, """() => { const a = window.mhsaApp;
        return !!a && (a.uses_worker() ? a.idle() : !a.running); }""", timeout=timeout)


def status(page) -> str:
    return page.evaluate("document.getElementById('status-text').textContent")


# What the page's canvas shows, as a 2d context to read pixels from: a copy (drawImage) on a scratch canvas,
# after two animation frames. The page's canvas is usually handed to the compute worker
# (transferControlToOffscreen): it then has no context of its own here and the worker's drawing reaches it
# with the next frame; drawImage of it gives what it shows.
SHOWN = """async (c) => {
    await new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok)));
    const t = document.createElement('canvas');
    t.width = c.width; t.height = c.height;
    const g = t.getContext('2d');
    g.drawImage(c, 0, 0);
    return g;
}"""


def canvas_pixels(page, x: float, y: float, w: float = 1, h: float = 1) -> List[List[int]]:
    """RGBA of the canvas at CSS-pixel box (x, y, w, h), read at device resolution."""
    return page.evaluate(
        """async ([x, y, w, h]) => {
            const c = document.getElementById('view');
            const r = c.width / c.getBoundingClientRect().width;
            const d = (await (""" + SHOWN + """)(c)).getImageData(Math.floor(x * r), Math.floor(y * r),
                                                       Math.max(1, Math.floor(w * r)), Math.max(1, Math.floor(h * r))).data;
            const out = [];
            for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2], d[i + 3]]);
            return out;
        }""",
        [x, y, w, h],
    )


def canvas_colour_count(page) -> int:
    """Number of distinct colours on a 64x64 sample grid of the canvas (1 = blank)."""
    return page.evaluate(
        """async () => {
            const c = document.getElementById('view');
            const d = (await (""" + SHOWN + """)(c)).getImageData(0, 0, c.width, c.height).data;
            const seen = new Set();
            for (let gy = 0; gy < 64; gy++) for (let gx = 0; gx < 64; gx++) {
                const x = Math.floor(gx * c.width / 64), y = Math.floor(gy * c.height / 64);
                const i = 4 * (y * c.width + x);
                seen.add(d[i] + ',' + d[i + 1] + ',' + d[i + 2]);
            }
            return seen.size;
        }""")


def hf_tokens(text: str, max_length: Optional[int] = None) -> List[str]:
    """Reference tokens from Hugging Face `tokenizers` on the shipped MiniLM tokenizer.json."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(ROOT / "models" / "minilm-l6" / "tokenizer.json"))
    tok.no_padding()
    if max_length:
        tok.enable_truncation(max_length)
    else:
        tok.no_truncation()
    return tok.encode(text).tokens


def select(page, selector: str, value: str) -> Dict:
    before = draws(page)
    page.select_option(selector, value)
    return wait_draw(page, before)


def type_text(page, text: str) -> Dict:
    before = draws(page)
    page.fill("#text", text)
    return wait_draw(page, before)
