"""Benchmark the page in the browser test harness (Pyodide 0.17.1 + numpy 1.17.5, headless Chromium).

Prints numbers, asserts nothing:
- time from opening web/index.html to the first heatmap on screen;
- one edit (tokenize + forward up to the shown layer + redraw) for 12 and 128 tokens on MiniLM at layer 0
  and layer 5, and 512 tokens at layer 0 (files already fetched; the 250 ms typing debounce is not counted);
  with ``--model smollm2-135m``: SmolLM2 at layer 0 and layer 29 (the forward through all 30 layers).

    .venv/bin/python scripts/bench_browser.py [--repeat 5] [--model smollm2-135m]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("the cat sat on a mat and it was very happy with all of its new toys so we went out to play in "
         "the park near our house where many kids run around every day").split()


def _harness():
    sys.path.insert(0, str(ROOT / "tests" / "browser"))
    spec = importlib.util.spec_from_file_location("browser_harness", ROOT / "tests" / "browser" / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MODEL = "minilm-l6"


def sentence(n_tokens: int, shift: int = 0) -> str:
    """A text of exactly n_tokens tokens of MODEL (MiniLM: every word is one token, plus [CLS]/[SEP])."""
    if MODEL == "minilm-l6":
        k = n_tokens - 2
        return " ".join(WORDS[(i + shift) % len(WORDS)] for i in range(k))
    return _exact(n_tokens, shift)


def _exact(n_tokens: int, shift: int) -> str:
    sys.path.insert(0, str(ROOT))
    from pyapp.core.files import LocalModel

    tok = LocalModel(MODEL).tokenizer
    words, k = [], 0
    while len(tok.encode(" ".join(words)).ids) < n_tokens:
        words.append(WORDS[(k + shift) % len(WORDS)])
        k += 1
    text = " ".join(words)
    while len(tok.encode(text).ids) > n_tokens:
        text = text[:-1]
    return text


def report(page):
    return json.loads(page.evaluate("document.body.dataset.report || '{}'"))


def edit(h, page, text: str):
    before = report(page)["draws"]
    t0 = time.perf_counter()
    page.fill("#text", text)
    h.wait_js(page, "(n) => JSON.parse(document.body.dataset.report || '{}').draws > n", before, 120_000,
              interval=5)
    wall = (time.perf_counter() - t0) * 1000
    return report(page), wall


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--model", default="minilm-l6", help="minilm-l6 (layers 0 and 5) or smollm2-135m (0 and 29)")
    args = ap.parse_args(argv)
    global MODEL
    MODEL = args.model
    top = 29 if MODEL == "smollm2-135m" else 5
    h = _harness()
    from playwright.sync_api import sync_playwright

    server = h.Server(ROOT)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=h.CHROMIUM, args=h.CHROMIUM_ARGS)
        guard = h.Guard()
        ctx = browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
        ctx.add_init_script(h._STRIP_SRI)
        ctx.route("**/*", h._router(server, "pyodide", guard))
        page = ctx.new_page()
        t0 = time.perf_counter()
        page.goto(server.url("/web/index.html" + ("" if MODEL == "minilm-l6" else "?model=" + MODEL)))
        h.wait_ready(page, guard)
        wall = (time.perf_counter() - t0) * 1000
        first = report(page)
        print("Pyodide 0.17.1 + numpy 1.17.5, headless Chromium, %s, default sentence (%d tokens)"
              % (MODEL, first["n"]))
        print("  page open -> first heatmap: %.0f ms (page clock %.0f ms; first update %.0f ms)"
              % (wall, first["timing"]["page_ms"], first["timing"]["update_ms"]))
        print()
        print("  one edit = tokenize + forward up to the shown layer + redraw (files already fetched)")
        print("  %-8s %-6s %12s %12s %12s %12s %14s" % ("tokens", "layer", "update ms", "context ms",
                                                     "view ms", "draw ms", "wall-250ms"))
        for layer in (0, top):
            if report(page)["layer"] != layer:
                before = report(page)["draws"]
                page.select_option("#layer", str(layer))
                h.wait_js(page, "(n) => JSON.parse(document.body.dataset.report || '{}').draws > n", before,
                          120_000)
            for n in ((12, 128, 512) if layer == 0 and MODEL == "minilm-l6" else (12, 128)):
                edit(h, page, sentence(n, 1))          # fetch whatever embedding chunks these words need
                edit(h, page, sentence(n, 0))
                rows = []
                for r in range(args.repeat):
                    rep, w = edit(h, page, sentence(n, (r + 1) % 2))
                    assert rep["n"] == n and rep["layer"] == layer, (rep["n"], rep["layer"])
                    t = rep["timing"]
                    rows.append((t["update_ms"], t["context_ms"], t["view_ms"], t["draw_ms"], w - 250))
                med = [statistics.median(c) for c in zip(*rows)]
                print("  %-8d %-6d %12.1f %12.1f %12.1f %12.1f %14.1f" % (n, layer, *med))
        print()
        t = report(page)
        print("  canvas: %d ops, %d putImageData per draw; RGBA copy via compat.%s" % (
            t["scene"]["ops"], t["images"],
            page.evaluate("pyodide.runPython('from pyapp.browser import compat; compat.copier_name()')")))
        copy = page.evaluate("""pyodide.runPython(`
import time, numpy as np
from pyapp.browser import compat
from js import ImageData
img = np.zeros((1024, 1024, 4), dtype=np.uint8)
compat.rgba_to_clamped(img)
t = time.perf_counter()
for _ in range(5):
    ImageData.new(compat.rgba_to_clamped(img), 1024, 1024)
(time.perf_counter() - t) / 5 * 1000
`)""")
        print("  numpy RGBA 1024x1024 -> ImageData: %.1f ms" % copy)
        guard.check()
        browser.close()
    server.close()


if __name__ == "__main__":
    main()
