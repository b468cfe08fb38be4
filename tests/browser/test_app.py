"""End-to-end: the unmodified web/index.html booted in Pyodide 0.17.1 + numpy 1.17.5 in real Chromium.

Most tests share one booted page (``app_page``) and put back what they change; tests that need their own
viewport, routing or a broken network open a fresh one (``open_app`` / ``new_page``).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from helpers import (
    canvas_colour_count,
    canvas_pixels,
    draws,
    hf_tokens,
    report,
    select,
    status,
    type_text,
    wait_draw,
    wait_js,
)

from pyapp.views.colormap import VIRIDIS
from pyapp.views.state import DEFAULT_TEXT

pytestmark = pytest.mark.browser


def _strongest_cell_pixel(page, rep):
    heat = rep["heatmap"]
    m = np.array(heat["matrix"], dtype=float)
    if heat.get("mask") is not None:
        m[np.array(heat["mask"], dtype=bool)] = -1
    i, j = np.unravel_index(int(np.argmax(m)), m.shape)
    cw, ch = heat["w"] / heat["cols"], heat["h"] / heat["rows"]
    x, y = heat["x"] + (j + 0.5) * cw, heat["y"] + (i + 0.5) * ch
    return (i, j), canvas_pixels(page, x, y)[0]


def test_default_view_is_the_real_model_heatmap(app_page):
    page = app_page
    rep = report(page)
    assert rep["model"] == "minilm-l6" and rep["n_layers"] == 6 and rep["n_heads"] == 12
    assert rep["tab"] == "overview" and rep["layer"] == 0
    assert rep["tokens"] == hf_tokens(DEFAULT_TEXT)
    assert page.eval_on_selector("#text", "e => e.value") == DEFAULT_TEXT
    assert canvas_colour_count(page) > 20
    n = rep["n"]
    m = np.array(rep["heatmap"]["matrix"])
    assert m.shape == (n, n) and np.allclose(m.sum(axis=1), 1.0, atol=1e-4)
    _, px = _strongest_cell_pixel(page, rep)
    assert px == [int(v) for v in VIRIDIS[255]], "the strongest cell must have the legend's top colour"
    # One putImageData per heatmap image (main + one thumbnail per head), not one call per cell.
    assert rep["images"] <= 1 + rep["n_heads"] + 2
    chips = page.eval_on_selector_all("#chips .chip", "els => els.map(e => e.textContent)")
    assert chips == rep["tokens"]
    assert page.get_attribute("#loading", "hidden") is not None


def test_typing_changes_tokens_and_heatmap(app_page):
    page = app_page
    before = report(page)
    text = "Transformers attend to every token at once."
    rep = type_text(page, text)
    assert rep["tokens"] == hf_tokens(text) and rep["tokens"] != before["tokens"]
    m = np.array(rep["heatmap"]["matrix"])
    assert m.shape == (rep["n"], rep["n"]) and m.shape != np.array(before["heatmap"]["matrix"]).shape
    assert page.eval_on_selector_all("#chips .chip", "els => els.map(e => e.textContent)") == rep["tokens"]
    type_text(page, DEFAULT_TEXT)


def test_chip_highlights_its_source_span(app_page):
    page = app_page
    rep = report(page)
    i = rep["tokens"].index("cat")
    page.hover("#chips .chip[data-index='%d']" % i)
    assert page.text_content("#mirror mark") == "cat"
    assert page.text_content("#mirror") == DEFAULT_TEXT
    page.hover("header")
    assert page.query_selector("#mirror mark") is None


@pytest.mark.parametrize("model,heads,layers", [
    ("minilm-l6-4head", 4, 1), ("minilm-l6-2head", 2, 1), ("minilm-l6-1head", 1, 1), ("demo-tiny", 4, 2),
    ("deterministic", 4, 1), ("random", 4, 1), ("minilm-l6", 12, 6)])
def test_every_model_source_renders(app_page, model, heads, layers):
    page = app_page
    rep = select(page, "#model", model)
    assert rep["model"] == model and rep["n_heads"] == heads and rep["n_layers"] == layers
    assert rep["tokens"] == hf_tokens(DEFAULT_TEXT)
    assert canvas_colour_count(page) > 10
    _, px = _strongest_cell_pixel(page, rep)
    assert px == [int(v) for v in VIRIDIS[255]]
    assert status(page) == ""


def test_synthetic_size_and_heads(app_page):
    page = app_page
    select(page, "#model", "deterministic")
    assert page.is_visible("#synthetic")
    rep = select(page, "#n-heads", "8")
    assert rep["n_heads"] == 8
    rep = select(page, "#d-model", "32")
    assert rep["n_heads"] == 8 and rep["model_name"].startswith("Deterministic (d_model 32")
    select(page, "#n-heads", "4")
    select(page, "#d-model", "64")
    select(page, "#model", "minilm-l6")
    assert not page.is_visible("#synthetic")


def test_layer_and_head_selectors(app_page):
    page = app_page
    rep = select(page, "#layer", "5")
    assert rep["layer"] == 5
    m5 = np.array(rep["heatmap"]["matrix"])
    rep = select(page, "#head", "7")
    assert rep["head"] == 7 and rep["stats"]["tokenize"] >= 1
    select(page, "#head", "0")
    rep = select(page, "#layer", "0")
    assert rep["layer"] == 0 and not np.allclose(np.array(rep["heatmap"]["matrix"]), m5)


def _set_slider(page, pos: float):
    before = draws(page)
    page.eval_on_selector("#temperature", "(e, v) => { e.value = String(v); e.dispatchEvent(new Event('input', "
                                          "{bubbles: true})); }", pos)
    return wait_draw(page, before)


def test_temperature_flattens_or_sharpens_attention(app_page):
    """Higher T flattens every softmax row (higher entropy); lower T sharpens it. Only the softmax re-runs."""
    page = app_page
    base = report(page)
    hot = _set_slider(page, 1.0)
    assert hot["temperature"] == pytest.approx(10.0)
    assert page.text_content("#temperature-value") == "T = 10.00"
    assert hot["entropy"] > base["entropy"] + 0.1
    assert float(page.text_content("#entropy")) == pytest.approx(hot["entropy"], abs=1e-3)
    cold = _set_slider(page, -1.0)
    assert cold["temperature"] == pytest.approx(0.1) and cold["entropy"] < base["entropy"] - 0.1
    assert cold["stats"]["tokenize"] == base["stats"]["tokenize"], "temperature must not re-tokenize"
    assert cold["stats"]["retemper"] > base["stats"]["retemper"]
    back = _set_slider(page, 0.0)
    assert back["entropy"] == pytest.approx(base["entropy"], abs=1e-6)


def test_causal_mask_hides_the_future(app_page):
    page = app_page
    before = draws(page)
    page.check("#causal")
    rep = wait_draw(page, before)
    m = np.array(rep["heatmap"]["matrix"])
    assert rep["causal"] and np.allclose(np.triu(m, k=1), 0.0) and np.allclose(m.sum(axis=1), 1, atol=1e-4)
    before = draws(page)
    page.uncheck("#causal")
    rep = wait_draw(page, before)
    assert not rep["causal"] and np.triu(np.array(rep["heatmap"]["matrix"]), k=1).sum() > 0.1


def test_hover_tooltip_and_pin(app_page):
    page = app_page
    rep = report(page)
    heat = rep["heatmap"]
    i, j = 2, 3
    cw, ch = heat["w"] / heat["cols"], heat["h"] / heat["rows"]
    box = page.locator("#view").bounding_box()
    x, y = box["x"] + heat["x"] + (j + 0.5) * cw, box["y"] + heat["y"] + (i + 0.5) * ch
    page.mouse.move(x, y)
    page.wait_for_selector("#tooltip:not([hidden])")
    tip = page.text_content("#tooltip")
    assert "'%s'" % rep["tokens"][i] in tip and "'%s'" % rep["tokens"][j] in tip
    shown = re.search(r"(\d+\.\d{6})", tip)
    assert shown and float(shown.group(1)) == pytest.approx(heat["matrix"][i][j], abs=1.5e-6), tip
    before = draws(page)
    page.mouse.click(x, y)
    pinned = wait_draw(page, before)
    assert pinned["pinned_row"] == i
    before = draws(page)
    page.mouse.click(x, y)
    assert wait_draw(page, before)["pinned_row"] is None
    page.mouse.move(1, 1)
    page.wait_for_selector("#tooltip", state="hidden")


TABS = ["overview", "steps", "heads", "math", "architecture"]


def test_every_tab_renders(app_page):
    page = app_page
    for tab in TABS[1:] + TABS[:1]:
        before = draws(page)
        page.click("#tab-" + tab)
        rep = wait_draw(page, before)
        assert rep["tab"] == tab
        assert page.get_attribute("#tab-" + tab, "aria-selected") == "true"
        assert canvas_colour_count(page) > 5, tab
        assert page.get_attribute("#view", "aria-label")
        assert page.text_content("#alt").strip()
        assert "error" not in (page.get_attribute("#status", "class") or ""), status(page)


def test_step_by_step_keyboard_navigation(app_page):
    page = app_page
    before = draws(page)
    page.click("#tab-steps")
    rep = wait_draw(page, before)
    start = rep["step"]
    assert page.is_visible("#stepbar")
    page.focus("#stage")
    for _ in range(start - 1):
        b = draws(page)
        page.keyboard.press("ArrowLeft")
        wait_draw(page, b)
    assert report(page)["step"] == 1 and page.is_disabled("#prev")
    for k in range(2, 10):
        b = draws(page)
        page.keyboard.press("ArrowRight")
        rep = wait_draw(page, b)
        assert rep["step"] == k
        assert page.eval_on_selector("#step-progress", "e => e.value") == k
        assert page.text_content("#step-label").startswith("Step %d of 9" % k)
    assert page.is_disabled("#next")
    page.keyboard.press("ArrowRight")          # at the last step: nothing to do
    page.wait_for_timeout(100)
    assert report(page)["step"] == 9
    b = draws(page)
    page.click("#prev")
    assert wait_draw(page, b)["step"] == 8
    # The tab list itself is keyboard-driven: arrows move between tabs.
    page.focus("#tab-steps")
    b = draws(page)
    page.keyboard.press("ArrowRight")
    assert wait_draw(page, b)["tab"] == "heads"
    assert page.evaluate("document.activeElement.id") == "tab-heads"
    b = draws(page)
    page.keyboard.press("Home")
    assert wait_draw(page, b)["tab"] == "overview"


def test_empty_input_shows_cls_sep(app_page):
    page = app_page
    rep = type_text(page, "")
    assert rep["tokens"] == ["[CLS]", "[SEP]"] and status(page) == ""
    assert canvas_colour_count(page) > 5
    type_text(page, DEFAULT_TEXT)


def test_markup_and_unicode_stay_text(app_page):
    page = app_page
    text = ('<img src=x onerror="document.body.dataset.pwned=1"> <script>document.body.dataset.pwned=2'
            '</script> <b>bold</b> 😀 שלום עולם مرحبا \u0007\u202e tail')
    page.on("dialog", lambda d: (_ for _ in ()).throw(AssertionError("a dialog opened: " + d.message)))
    rep = type_text(page, text)
    assert page.evaluate("document.body.dataset.pwned") is None
    assert page.evaluate("document.querySelectorAll('img, b, .chips script, #mirror *').length") == 0
    assert page.text_content("#mirror") == text
    chips = page.eval_on_selector_all("#chips .chip", "els => els.map(e => e.textContent)")
    assert chips == rep["tokens"] == hf_tokens(text)
    assert "<" in chips and ">" in chips and "script" in chips
    page.mouse.move(1, 1)
    type_text(page, DEFAULT_TEXT)


def test_long_input_is_truncated_with_notice(app_page):
    page = app_page
    text = " ".join("word%d" % i for i in range(400))      # ~1200 word pieces
    rep = type_text(page, text)
    assert rep["n"] == 512 and rep["dropped"] > 0
    assert rep["tokens"] == hf_tokens(text, max_length=512)
    assert "truncated" in status(page) and "notice" in page.get_attribute("#status", "class")
    assert canvas_colour_count(page) > 5
    type_text(page, DEFAULT_TEXT)
    assert status(page) == ""


def test_accessibility_basics(app_page):
    page = app_page
    assert page.get_attribute("#view", "role") == "img"
    assert "attention" in page.get_attribute("#view", "aria-label").lower()
    alt = page.text_content("#alt")
    rep = report(page)
    for tok in rep["tokens"][1:4]:
        assert tok in alt
    assert page.get_attribute("#loading", "role") == "progressbar"
    assert page.get_attribute("#loading", "aria-valuenow") == "100"
    assert page.get_attribute(".tabs", "role") == "tablist"
    # Every control is reachable with the Tab key.
    page.focus("#text")
    seen = set()
    for _ in range(40):
        page.keyboard.press("Tab")
        seen.add(page.evaluate("document.activeElement.id || document.activeElement.className"))
    for id_ in ("model", "layer", "head", "temperature", "causal", "tab-overview", "stage"):
        assert id_ in seen, (id_, seen)


def _click_action(page, match):
    """Click the centre of the first canvas region whose action contains `match`; return the new report."""
    rep = report(page)
    region = next(r for r in rep["actions"] if all(r["action"].get(k) == v for k, v in match.items()))
    box = page.locator("#view").bounding_box()
    before = draws(page)
    page.mouse.click(box["x"] + region["x"] + region["w"] / 2, box["y"] + region["y"] + region["h"] / 2)
    return wait_draw(page, before)


def test_canvas_clicks_enlarge_a_head_and_jump_to_a_step(app_page):
    page = app_page
    before = draws(page)
    page.click("#tab-heads")
    wait_draw(page, before)
    rep = _click_action(page, {"head": 5})
    assert rep["head"] == 5 and rep["tab"] == "heads"
    assert page.eval_on_selector("#head", "e => e.value") == "5"
    rep = _click_action(page, {"head": 0})
    before = draws(page)
    page.click("#tab-architecture")
    wait_draw(page, before)
    rep = _click_action(page, {"tab": "steps", "step": 3})
    assert rep["tab"] == "steps" and rep["step"] == 3
    assert page.get_attribute("#tab-steps", "aria-selected") == "true"
    before = draws(page)
    page.click("#tab-overview")
    wait_draw(page, before)


def test_hidpi_canvas_is_device_resolution(open_app):
    page, guard = open_app(width=360, height=740, scale=2)
    size = page.evaluate("(() => { const c = document.getElementById('view'); const r = c.getBoundingClientRect();"
                         " return [c.width, c.height, r.width, r.height]; })()")
    assert size[0] == round(size[2] * 2) and size[1] == round(size[3] * 2)
    rep = report(page)
    _, px = _strongest_cell_pixel(page, rep)
    assert px == [int(v) for v in VIRIDIS[255]]
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert page.locator("#view").bounding_box()["width"] <= 360
    guard.check()
    page.context.close()


def _corrupt_route(route):
    resp = route.fetch()
    body = bytearray(resp.body())
    body[len(body) // 2] ^= 0x55
    route.fulfill(response=resp, body=bytes(body))


def test_corrupt_weight_file_message_retry_and_other_models(new_page, server):
    page, guard = new_page("pyodide")
    bad = "**/models/minilm-l6/layer0.qk.json"
    page.route(bad, _corrupt_route)
    page.goto(server.url("/web/index.html"))
    wait_js(page, "() => document.body.dataset.state === 'ready'", timeout=180_000)
    msg = status(page)
    assert msg.startswith("Could not load minilm-l6/layer0.qk.json for minilm-l6:"), msg
    assert "corrupt" in msg
    assert page.is_visible("#retry")
    # Another model still works.
    rep = select(page, "#model", "demo-tiny")
    assert rep["model"] == "demo-tiny" and status(page) == "" and canvas_colour_count(page) > 10
    # Back to the broken one: the message again; fix the network and Retry.
    page.select_option("#model", "minilm-l6")
    wait_js(page, "() => document.getElementById('status-text').textContent.startsWith('Could not load')")
    page.unroute(bad)
    before = draws(page)
    page.click("#retry")
    rep = wait_draw(page, before)
    assert rep["model"] == "minilm-l6" and status(page) == "" and not page.is_visible("#retry")
    guard.check()
    page.context.close()


def test_missing_weight_file_names_http_error(new_page, server):
    page, guard = new_page("pyodide")
    page.route("**/models/minilm-l6/embeddings.norm.json", lambda r: r.fulfill(status=404, body="gone"))
    page.goto(server.url("/web/index.html"))
    wait_js(page, "() => document.body.dataset.state === 'ready'", timeout=180_000)
    msg = status(page)
    assert msg.startswith("Could not load minilm-l6/embeddings.norm.json for minilm-l6:") and "404" in msg
    rep = select(page, "#model", "deterministic")
    assert rep["model"] == "deterministic" and status(page) == ""
    guard.check()
    page.context.close()


def test_progress_reports_every_weight_file(new_page, server):
    page, guard = new_page("pyodide")
    page.goto(server.url("/web/index.html"))
    wait_js(page, "() => document.body.dataset.state === 'ready'", timeout=180_000)
    items = page.eval_on_selector_all("#loading-items li", "els => els.map(e => e.textContent)")
    assert any(i.startswith("Python runtime") for i in items) and any(i.startswith("numpy") for i in items)
    files = [i for i in items if i.startswith("minilm-l6/")]
    assert any("layer0.qk.json" in f for f in files) and any("tokenizer.json" in f for f in files)
    assert all(f.endswith("100%") for f in files)
    guard.check()
    page.context.close()


def test_no_request_leaves_localhost(app_page):
    """The guard fails any test whose page tried another host; here: the booted page made none."""
    assert math.isfinite(report(app_page)["entropy"])


def test_state_from_the_url_query(open_app):
    page, guard = open_app(query="?model=demo-tiny&tab=heads&head=2&temperature=2&layer=1&causal=1")
    rep = report(page)
    assert (rep["model"], rep["tab"], rep["head"], rep["layer"], rep["causal"]) == ("demo-tiny", "heads", 2, 1, True)
    assert rep["temperature"] == pytest.approx(2.0)
    assert page.eval_on_selector("#model", "e => e.value") == "demo-tiny"
    assert page.eval_on_selector("#layer", "e => e.value") == "1"
    assert page.text_content("#temperature-value") == "T = 2.00"
    assert page.get_attribute("#tab-heads", "aria-selected") == "true"
    guard.check()
    page.context.close()


def test_heatmap_keyboard_exploration(app_page):
    page = app_page
    rep = report(page)
    assert rep["tab"] == "overview"
    page.focus("#stage")
    for key in ("ArrowDown", "ArrowRight", "ArrowRight", "ArrowDown"):   # first key puts the cursor on (0, 0)
        page.keyboard.press(key)
    tip = page.text_content("#tooltip")
    assert page.is_visible("#tooltip")
    assert tip.startswith("query '%s' (1) → key '%s' (2)" % (rep["tokens"][1], rep["tokens"][2])), tip
    assert page.text_content("#live") == tip
    before = draws(page)
    page.keyboard.press("Enter")
    assert wait_draw(page, before)["pinned_row"] == 1
    before = draws(page)
    page.keyboard.press("Enter")
    assert wait_draw(page, before)["pinned_row"] is None
    page.keyboard.press("Escape")
    assert not page.is_visible("#tooltip")
