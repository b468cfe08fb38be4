"""The cross-engine subset: the real page booted in Pyodide 0.17.1 in Firefox ESR and WebKitGTK (see conftest.py).

Chromium runs the full suite (tests/browser); here each engine boots the app once (module-scoped) and checks
what differs between engines: that the page boots with no console error and no request leaving 127.0.0.1,
the heatmap's pixels, every tab drawn (pixels against the same figure drawn by CPython), an edit, tabs by
keyboard, the WebAssembly SIMD kernel, the numbers against CPython's, a shared link, and the layout (the tab
bar on one row at 1280 px, the phone width) -- the layout in Chromium too, for the comparison.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import numpy as np
import pytest
from helpers import canvas_colour_count, canvas_pixels, draws, hf_tokens, report, status, wait_draw, wait_js
from test_research import same_figure_as_cpython
from test_wasm_gemm import _cpython_attentions

from pyapp.app.state import DEFAULT_TEXT, AppState
from pyapp.draw.colormap import VIRIDIS
from pyapp.figures import figure

pytestmark = [pytest.mark.engines,
              pytest.mark.filterwarnings("ignore:setting remote_server_addr:DeprecationWarning")]  # selenium's own

ENGINES = ("firefox", "webkit")                      # the cross-engine subset
LAYOUT_ENGINES = ("chromium", "firefox", "webkit")   # the layout checks compare all three
engines = pytest.mark.parametrize("engine_app", ENGINES, indirect=True)
layout_engines = pytest.mark.parametrize("engine_app", LAYOUT_ENGINES, indirect=True)
TEXT_VIEWS = ("math", "next")                        # text and rules only: compared op by op, not by pixels
ALL_LAYER_TABS = ("model", "rollout", "stats")       # views of every layer: wait until all six are computed
LAYERS_TIMEOUT = 300_000


def same_scene_as_cpython(page, view: str):
    """For a view of text and lines only (no flat boxes to compare pixels in): the same drawing ops."""
    rep = report(page)
    fig = figure(DEFAULT_TEXT, view=view, model=rep["model"], layer=rep["layer"], head=rep["head"],
                 temperature=rep["temperature"], causal=rep["causal"], width=rep["scene"]["w"],
                 pinned_row=rep["pinned_row"])
    assert fig.scene.height == pytest.approx(rep["scene"]["h"]) and len(fig.scene.ops) == rep["scene"]["ops"], view


def page_tabs(page):
    """The tab ids in the page's tab bar, in order."""
    return page.evaluate("[...document.querySelectorAll('.tabs [role=tab]')].map(b => b.dataset.tab)")


def open_tab(page, tab: str):
    if report(page)["tab"] == tab:
        return report(page)
    before = draws(page)
    page.click("#tab-" + tab)
    rep = wait_draw(page, before)
    if tab in ALL_LAYER_TABS:
        wait_js(page, "() => JSON.parse(document.body.dataset.report).layers_ready.length === 6",
                timeout=LAYERS_TIMEOUT)
        page.wait_for_timeout(50)
        rep = report(page)
    return rep


def select(page, selector: str, value: str):
    before = draws(page)
    page.evaluate("([s, v]) => { const e = document.querySelector(s); e.value = v;"
                  " e.dispatchEvent(new Event('change', {bubbles: true})); }", [selector, value])
    return wait_draw(page, before)


def fill_text(page, text: str):
    before = draws(page)
    page.fill("#text", text)
    return wait_draw(page, before)


def strongest_cell_pixel(page, rep):
    heat = rep["heatmap"]
    m = np.array(heat["matrix"], dtype=float)
    if heat.get("mask") is not None:
        m[np.array(heat["mask"], dtype=bool)] = -1
    i, j = np.unravel_index(int(np.argmax(m)), m.shape)
    cw, ch = heat["w"] / heat["cols"], heat["h"] / heat["rows"]
    return canvas_pixels(page, heat["x"] + (j + 0.5) * cw, heat["y"] + (i + 0.5) * ch)[0]


# ---- boot ---------------------------------------------------------------------------------------------------
@engines
def test_boots_to_ready_with_no_error_and_no_offhost_request(app):
    page = app
    assert page.evaluate("document.body.dataset.state") == "ready"
    assert page.evaluate("pyodide.runPython('import sys, numpy; f\"{sys.version_info[:2]} {numpy.__version__}\"')") \
        == "(3, 8) 1.17.5"                                       # Pyodide 0.17.1 from node_modules
    rep = report(page)
    assert rep["model"] == "minilm-l6" and rep["tab"] == "overview" and rep["layer"] == 0
    assert rep["tokens"] == hf_tokens(DEFAULT_TEXT)
    assert status(page) == ""
    assert page.errors() == [], page.errors()
    page.assert_local()
    assert page.boot_seconds < 120, page.boot_seconds
    mode = page.evaluate("() => [window.mhsaApp.uses_worker(), !!(window.mhsaCompute && window.mhsaCompute.transferred),"
                         " window.mhsaCoi.compute]")
    print("%s booted in %.1f s (attempt %d, %d lost polls); compute worker %s, canvas handed to it %s"
          % (page.engine, page.boot_seconds, page.boot_attempts, page.lost_polls, mode[0], mode[1]))
    # JavaScriptCore crashed with a second Pyodide runtime in a worker (web/coi.js): WebKit computes on the main
    # thread; the other engines use the compute worker and did not fall back from it
    want = "main" if page.engine == "webkit" else "worker"
    assert mode[2] == want and mode[0] is (want == "worker"), (page.engine, mode)


@engines
def test_default_heatmap_pixels(app):
    page = app
    rep = report(page)
    assert rep["tab"] == "overview" and rep["n"] == len(hf_tokens(DEFAULT_TEXT))
    m = np.array(rep["heatmap"]["matrix"])
    assert m.shape == (rep["n"], rep["n"]) and np.allclose(m.sum(axis=1), 1.0, atol=1e-4)
    assert canvas_colour_count(page) > 20
    assert strongest_cell_pixel(page, rep) == [int(v) for v in VIRIDIS[255]]
    same_figure_as_cpython(page, "overview")
    # the first draw fits the stage as laid out after it (a page scrollbar appearing must not clip it)
    fit = page.evaluate("(() => { const s = document.getElementById('stage'), c = document.getElementById('view');"
                        " return [s.clientWidth, c.getBoundingClientRect().width]; })()")
    assert fit[1] <= fit[0], "canvas %.0f px wide in a %d px stage" % (fit[1], fit[0])


@engines
def test_every_tab_is_drawn(app):
    """Each tab's canvas against the same view drawn by CPython (pyapp.figure), at flat points."""
    page = app
    tabs = page_tabs(page)
    for tab in tabs[1:] + tabs[:1]:
        rep = open_tab(page, tab)
        assert rep["tab"] == tab
        assert page.evaluate("document.getElementById('tab-%s').getAttribute('aria-selected')" % tab) == "true"
        assert canvas_colour_count(page) > (1 if tab in TEXT_VIEWS else 5), tab
        assert page.text_content("#alt").strip(), tab
        assert "error" not in page.evaluate("document.getElementById('status').className"), status(page)
        view = "step:%d" % rep["step"] if tab == "steps" else tab
        if tab in TEXT_VIEWS:
            same_scene_as_cpython(page, view)
        else:
            same_figure_as_cpython(page, view, min_points=4)
    assert page.errors() == []


@engines
def test_an_edit_recomputes_tokens_and_heatmap(app):
    page = app
    before = report(page)
    text = "Transformers attend to every token at once."
    rep = fill_text(page, text)
    assert page.evaluate("document.getElementById('text').value") == text
    assert rep["tokens"] == hf_tokens(text) and rep["tokens"] != before["tokens"]
    chips = page.evaluate("[...document.querySelectorAll('#chips .chip')].map(e => e.textContent)")
    assert chips == rep["tokens"]
    m = np.array(rep["heatmap"]["matrix"])
    assert m.shape == (rep["n"], rep["n"]) and np.allclose(m.sum(axis=1), 1.0, atol=1e-4)
    assert strongest_cell_pixel(page, rep) == [int(v) for v in VIRIDIS[255]]
    rep = fill_text(page, DEFAULT_TEXT)
    assert rep["tokens"] == before["tokens"] and rep["heatmap"]["matrix"] == before["heatmap"]["matrix"]


@engines
def test_tabs_switch_by_keyboard(app):
    page = app
    assert report(page)["tab"] == "overview"
    tabs = page_tabs(page)
    page.focus("#tab-overview")
    for key, tab in (("ARROW_RIGHT", tabs[1]), ("ARROW_RIGHT", tabs[2]), ("ARROW_LEFT", tabs[1]),
                     ("END", tabs[-1]), ("HOME", tabs[0])):
        before = draws(page)
        page.press(key)
        rep = wait_draw(page, before)
        assert rep["tab"] == tab, (key, rep["tab"])
        assert page.evaluate("document.activeElement.id") == "tab-" + tab
        assert page.evaluate("document.getElementById('tab-%s').getAttribute('aria-selected')" % tab) == "true"
        if tab in ALL_LAYER_TABS:
            wait_js(page, "() => JSON.parse(document.body.dataset.report).layers_ready.length === 6",
                    timeout=LAYERS_TIMEOUT)
    assert canvas_colour_count(page) > 20


# The engine's own answer (a module with one SIMD instruction), and what the app made of it.
_SIMD_JS = """WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1,
    0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]))"""
_KERNEL_PY = """
import json, sys
from pyapp.core import numerics
backend = numerics.matmul_backend()
shell = [m for name, m in sorted(sys.modules.items())
         if name.startswith("pyapp.browser.") and m is not None and hasattr(m, "install") and hasattr(m, "problem")]
_kernel = {"kernel": type(backend).__name__ if backend is not None else None,
           "calls": int(getattr(backend, "calls", 0)), "failures": int(getattr(backend, "failures", 0)),
           "problem": [str(m.problem) for m in shell]}
"""


def _kernel_state(page):
    """The kernel where the page computes: in the compute worker (the default page; web/coi.js's
    mhsaCompute.call runs Python there), or on the main thread when the page fell back to it."""
    if page.evaluate("() => window.mhsaApp.uses_worker()"):
        return page.evaluate("(src) => window.mhsaCompute.call('python', {source: src, expr: '_kernel'})"
                             ".then((r) => r.value)", _KERNEL_PY)
    return json.loads(page.evaluate("(src) => pyodide.runPython(src + '\\nimport json\\njson.dumps(_kernel)')",
                                    _KERNEL_PY))


@engines
def test_simd_kernel_runs_or_the_fallback_is_reported(app):
    page = app
    simd = page.evaluate(_SIMD_JS)
    got = _kernel_state(page)
    if simd:
        assert got["kernel"] == "WasmGemm", "%s runs WebAssembly SIMD but the app kept numpy: %s" % (
            page.engine, got["problem"])
        assert got["calls"] > 0 and got["failures"] == 0, got
    else:
        assert got["kernel"] is None and got["problem"] and all(got["problem"]), got
    print("%s: WebAssembly SIMD %s, kernel %s (%d calls)" % (page.engine, simd, got["kernel"], got["calls"]))


@engines
def test_attention_numbers_match_cpython(app):
    """Every layer's mean attention (the Overview heatmap) and the entropy read-out equal CPython's."""
    page = app
    assert report(page)["tab"] == "overview"
    ids, want = _cpython_attentions(DEFAULT_TEXT)
    try:
        for layer in range(6):
            rep = select(page, "#layer", str(layer)) if report(page)["layer"] != layer else report(page)
            got = np.array(rep["heatmap"]["matrix"])
            mean = want[layer].mean(axis=0)                    # (n, n) over the 12 heads
            assert got.shape == mean.shape == (len(ids), len(ids))
            assert np.max(np.abs(got - mean)) < 1e-5, (page.engine, layer, np.max(np.abs(got - mean)))
            p = np.clip(mean, 1e-12, 1.0)
            bits = float(np.mean(-(mean * np.log2(p)).sum(axis=1)))
            assert rep["entropy"] == pytest.approx(bits, abs=1e-5)
            assert float(page.text_content("#entropy")) == pytest.approx(bits, abs=1e-3)
    finally:
        select(page, "#layer", "0")


# ---- layout: the tab bar at 1280 px, the phone width (all three engines) ---------------------------------------
_TAB_ROWS = """() => {
    const bar = document.querySelector('.tabs');
    const tabs = [...bar.querySelectorAll('[role=tab]')];
    return {tops: tabs.map(b => b.offsetTop), right: Math.max(...tabs.map(b => b.getBoundingClientRect().right)),
            barRight: bar.getBoundingClientRect().right, scroll: bar.scrollWidth, client: bar.clientWidth,
            layout: document.documentElement.clientWidth};
}"""


@layout_engines
def test_tab_bar_is_one_row_at_1280px(app):
    page = app
    assert page.evaluate("innerWidth") == 1280
    got = page.evaluate(_TAB_ROWS)
    assert len(set(got["tops"])) == 1, "%s: the tab bar wraps at 1280 px: %s" % (page.engine, got)
    assert got["right"] <= got["barRight"] + 0.5 and got["scroll"] <= got["client"], got
    page.screenshot("engines-%s-1280.png" % page.engine)


def _fits(page, width: int, what: str):
    assert page.evaluate("document.scrollingElement.scrollWidth") <= page.evaluate("innerWidth") == width, what
    boxes = page.evaluate("""() => ['#text', '#model', '#layer', '#head', '#temperature', '#causal', '.tabs',
        '#stage'].map(s => { const r = document.querySelector(s).getBoundingClientRect(); return [s, r.left, r.right]; })""")
    for sel, left, right in boxes:
        assert left >= 0 and right <= width, (page.engine, what, sel, left, right)


@layout_engines
def test_phone_layout_holds(app):
    """At 360 x 740 (the page in a frame of that size) nothing scrolls sideways, on every tab."""
    page = app.boot_framed(360, 740)
    try:
        _fits(page, 360, "overview")
        for tab in page_tabs(page)[1:]:
            open_tab(page, tab)
            assert canvas_colour_count(page) > (1 if tab in TEXT_VIEWS else 5), tab
            _fits(page, 360, tab)
        open_tab(page, "overview")
        assert page.errors() == []
        page.assert_local()
    finally:
        page.unframe()
    page.screenshot("engines-%s-phone.png" % page.engine, size=(360, 740))


# ---- a shared link (last with the phone test: both open new pages in the module's browser) -------------------------------------------
@engines
def test_shared_link_restores_its_state(app):
    want = AppState(text="Links carry the whole state, ünïcode & all.", model="minilm-l6", layer=2, head=7,
                    temperature=2.5, causal=True, tab="heads", pinned_row=3)
    page = app.reopen("?" + want.to_query())
    rep = report(page)
    assert (rep["model"], rep["layer"], rep["head"], rep["tab"], rep["causal"], rep["pinned_row"]) == \
        ("minilm-l6", 2, 7, "heads", True, 3)
    assert rep["temperature"] == pytest.approx(2.5)
    assert rep["tokens"] == hf_tokens(want.text)
    assert page.evaluate("document.getElementById('text').value") == want.text
    assert page.evaluate("[document.getElementById('layer').value, document.getElementById('head').value,"
                         " document.getElementById('causal').checked]") == ["2", "7", True]
    assert page.text_content("#temperature-value") == "T = 2.50"
    assert page.evaluate("document.getElementById('tab-heads').getAttribute('aria-selected')") == "true"
    assert page.evaluate("document.getElementById('link-notice').hidden") is True
    assert canvas_colour_count(page) > 20
    page.wait_for_timeout(500)                          # past the URL debounce: the link stays the same
    assert dict(parse_qsl(page.evaluate("location.search")[1:], keep_blank_values=True)) == \
        dict(parse_qsl(want.to_query(), keep_blank_values=True))
    assert page.errors() == []
    page.assert_local()
