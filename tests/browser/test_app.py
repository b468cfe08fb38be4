"""End-to-end: the unmodified web/index.html booted in Pyodide 0.17.1 + numpy 1.17.5 in real Chromium.

Most tests share one booted page (``app_page``) and put back what they change; tests that need their own
viewport, routing or a broken network open a fresh one (``open_app`` / ``new_page``).
"""

from __future__ import annotations

import math
import os
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

from pyapp.app.state import DEFAULT_TEXT
from pyapp.draw.colormap import VIRIDIS

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
    page, guard = new_page("pyodide", service_workers="block")   # routes see every request
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
    page, guard = new_page("pyodide", service_workers="block")   # routes see every request
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
    assert all(f.endswith("100%") for f in files), items
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


# ---- temperature: a log-scale lens, T = 1 marked; what a change recomputes -----------------------------------
def test_temperature_slider_is_log_scale_with_t1_marked(app_page):
    """The slider position is log10(T) in [-1, 1]; T = 1 sits in the middle, labelled as the trained model.

    Dividing the scores by T > 1 flattens every softmax row, so the reported mean row entropy RISES with T
    (and falls as T drops below 1): checked over the whole range, strictly monotone."""
    page = app_page
    slider = page.eval_on_selector("#temperature", "e => [e.min, e.max, e.value, e.step]")
    assert [float(v) for v in slider] == [-1.0, 1.0, 0.0, 0.01]
    marks = page.eval_on_selector_all("#temperature-marks option", "els => els.map(e => [e.value, e.label])")
    assert marks == [["-1", "0.1"], ["0", "1"], ["1", "10"]]
    mark = page.text_content(".scale .mark")
    assert "T = 1" in mark and "trained" in mark
    # The "T = 1" label sits under the middle of the track (the slider's value 0).
    track = page.locator("#temperature").bounding_box()
    label = page.locator(".scale .mark").bounding_box()
    assert abs((label["x"] + label["width"] / 2) - (track["x"] + track["width"] / 2)) < 12
    seen = []
    for pos, t, shown in ((-1.0, 0.1, "T = 0.10"), (-0.5, 0.3162, "T = 0.32"), (0.0, 1.0, "T = 1.00"),
                          (0.5, 3.1623, "T = 3.16"), (1.0, 10.0, "T = 10.00")):
        rep = _set_slider(page, pos)
        assert rep["temperature"] == pytest.approx(t, rel=1e-3)
        assert page.text_content("#temperature-value") == shown
        assert float(page.text_content("#entropy")) == pytest.approx(rep["entropy"], abs=1e-3)
        seen.append(rep["entropy"])
    assert all(a < b for a, b in zip(seen, seen[1:])), "entropy must rise with T: %s" % seen
    # Keyboard: one arrow step on the focused slider is one hundredth of a decade.
    _set_slider(page, 0.0)
    page.focus("#temperature")
    before = draws(page)
    page.keyboard.press("ArrowRight")
    rep = wait_draw(page, before)
    assert rep["temperature"] == pytest.approx(10 ** 0.01, rel=1e-3)
    assert page.text_content("#temperature-value") == "T = 1.02"
    _set_slider(page, 0.0)


# Counts the encoder's real work (embedding, the layers' blocks, attention) by wrapping the functions the
# Encoder calls, in the Python that computes the page: the compute worker's (the default page; reached through
# web/coi.js's mhsaCompute.call("python")), or the main thread's on the fallback loop. Layer changes must show
# up here, head and temperature must not.
_COUNT_WORK = """
import pyapp.core.encoder as _enc
if not hasattr(_enc, "_test_work"):
    _enc._test_work = {"embed": 0, "block": 0, "attention": 0}
    _enc._test_orig = (_enc.Encoder.embed, _enc.Encoder.block_output, _enc.multi_head_attention)
    def _counting(key, fn):
        def wrapped(*a, **k):
            _enc._test_work[key] += 1
            return fn(*a, **k)
        return wrapped
    _enc.Encoder.embed = _counting("embed", _enc._test_orig[0])
    _enc.Encoder.block_output = _counting("block", _enc._test_orig[1])
    _enc.multi_head_attention = _counting("attention", _enc._test_orig[2])
"""
_UNCOUNT_WORK = """
import pyapp.core.encoder as _enc
if hasattr(_enc, "_test_work"):
    _enc.Encoder.embed, _enc.Encoder.block_output, _enc.multi_head_attention = _enc._test_orig
    del _enc._test_work, _enc._test_orig
"""


def _in_compute_python(page, source: str, expr: str = ""):
    """Run ``source`` in the Python that computes the page, return ``expr``'s value (JSON round-tripped)."""
    if page.evaluate("() => window.mhsaApp.uses_worker()"):
        return page.evaluate("""([source, expr]) => window.mhsaCompute.call("python", {source, expr})
                                .then((r) => r.value)""", [source, expr])
    return page.evaluate("""([source, expr]) => { pyodide.runPython(source);
                            return expr ? JSON.parse(pyodide.runPython("import json as _j; _j.dumps(" + expr + ")"))
                                        : null; }""", [source, expr])


def _work(page):
    return _in_compute_python(page, "import pyapp.core.encoder as _enc", "dict(_enc._test_work)")


def test_temperature_and_head_do_not_recompute_the_encoder(app_page):
    page = app_page
    assert page.evaluate("() => window.mhsaApp.uses_worker()") == (os.environ.get("MHSA_COMPUTE") != "main")
    _in_compute_python(page, _COUNT_WORK)
    try:
        type_text(page, "A fresh sentence nobody has computed yet.")
        start, base = _work(page), report(page)
        assert start["embed"] >= 1 and start["attention"] >= 1      # the new text was really computed
        select(page, "#head", "3")
        _set_slider(page, 0.7)
        select(page, "#head", "0")
        rep = _set_slider(page, -0.4)
        assert _work(page) == start, "head / temperature changes must not re-run embeddings or attention"
        assert rep["stats"]["tokenize"] == base["stats"]["tokenize"]
        assert rep["stats"]["retemper"] == base["stats"]["retemper"] + 2      # one softmax per new T
        _set_slider(page, 0.0)
        assert _work(page) == start, "back to T = 1: the cached trace"
        # A layer change does real work (the instrumentation sees it): layer 0's block, layer 1's attention.
        select(page, "#layer", "1")
        moved = _work(page)
        assert moved["block"] == start["block"] + 1 and moved["attention"] > start["attention"]
        assert moved["embed"] == start["embed"], "layer 1 reuses the cached embeddings"
        select(page, "#layer", "0")
        assert _work(page) == moved, "layer 0 is cached"
    finally:
        _in_compute_python(page, _UNCOUNT_WORK)
        type_text(page, DEFAULT_TEXT)


# ---- text alternative: each query token's top-3 keys ---------------------------------------------------------
def test_text_alternative_lists_each_querys_top3_keys(app_page):
    page = app_page
    rep = report(page)
    assert rep["tab"] == "overview"
    m = np.array(rep["heatmap"]["matrix"])
    lines = page.text_content("#alt").strip().split("\n")
    assert "top 3" in lines[0]
    rows = lines[1:]
    assert len(rows) == rep["n"]
    for i, line in enumerate(rows):
        head, _, tail = line.partition(" → ")
        assert head == "%s (%d)" % (rep["tokens"][i], i)
        pairs = [p.rsplit(" ", 1) for p in tail.split(", ")]
        weights = [float(w) for _, w in pairs]
        assert len(pairs) == 3 and weights == sorted(weights, reverse=True)
        assert np.allclose(weights, np.sort(m[i])[::-1][:3], atol=0.006), (line, np.sort(m[i])[::-1][:3])
        for tok, w in pairs:
            assert any(rep["tokens"][j] == tok and abs(m[i, j] - float(w)) < 0.006 for j in range(rep["n"])), line


# ---- phone width ---------------------------------------------------------------------------------------------
def test_phone_width_never_scrolls_sideways(open_app):
    page, guard = open_app(width=360, height=740)
    assert page.evaluate("innerWidth") == 360

    def fits(what):
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, what
        for sel in ("#text", "#model", "#layer", "#head", "#temperature", "#causal", ".tabs", "#stage"):
            box = page.locator(sel).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, (what, sel, box)

    fits("boot")
    for tab in TABS[1:]:
        before = draws(page)
        page.click("#tab-" + tab)
        assert wait_draw(page, before)["tab"] == tab
        assert canvas_colour_count(page) > 5, tab
        fits(tab)
    before = draws(page)
    page.click("#tab-steps")
    wait_draw(page, before)
    for step in range(1, 10):
        while report(page)["step"] < step:
            b = draws(page)
            page.click("#next")
            wait_draw(page, b)
        fits("step %d" % step)
        assert page.locator("#next").bounding_box()["x"] + page.locator("#next").bounding_box()["width"] <= 360
    guard.check()
    page.context.close()


# ---- keyboard ---------------------------------------------------------------------------------------------
def _tab_walk(page, start: str, presses: int):
    page.focus(start)
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.id || document.activeElement.className"))
    return seen


def test_every_control_is_keyboard_operable(open_app):
    page, guard = open_app()
    # Synthetic controls appear with a synthetic model and are in the Tab order then.
    select(page, "#model", "deterministic")
    seen = _tab_walk(page, "#text", 12)
    for id_ in ("model", "d-model", "n-heads", "temperature", "causal"):
        assert id_ in seen, (id_, seen)
    select(page, "#model", "minilm-l6")
    seen = _tab_walk(page, "#text", 30)          # past the sidebar and the token chips
    for id_ in ("model", "layer", "head", "temperature", "causal", "tab-overview"):
        assert id_ in seen, (id_, seen)
    assert "d-model" not in seen            # hidden controls are skipped
    # The causal toggle works with Space.
    page.focus("#causal")
    before = draws(page)
    page.keyboard.press("Space")
    assert wait_draw(page, before)["causal"] is True
    before = draws(page)
    page.keyboard.press("Space")
    assert wait_draw(page, before)["causal"] is False
    # In Step by step, the previous / next buttons are in the Tab order and work with Enter.
    page.focus("#tab-overview")
    b = draws(page)
    page.keyboard.press("ArrowRight")
    assert wait_draw(page, b)["tab"] == "steps"
    seen = _tab_walk(page, "#tab-steps", 3)
    assert "next" in seen, seen
    page.focus("#next")
    b = draws(page)
    page.keyboard.press("Enter")
    assert wait_draw(page, b)["step"] == 2
    page.focus("#prev")
    b = draws(page)
    page.keyboard.press("Enter")
    assert wait_draw(page, b)["step"] == 1
    guard.check()
    page.context.close()


# ---- loading: only the shown layer's files, the first heatmap before the rest ------------------------------------
def _first_view_files():
    """Weight files the default first view needs, computed in CPython from the catalogue and the tokenizer."""
    from pyapp.core.files import default_models_dir, load_local_catalogue
    from pyapp.core.store import WeightStore
    from pyapp.core.tokenizer import WordPieceTokenizer

    cat = load_local_catalogue(default_models_dir())
    entry = cat.get("minilm-l6")
    tok_path = entry.tokenizer_file().path
    with open(default_models_dir() + "/" + tok_path, "rb") as fh:
        ids = WordPieceTokenizer.from_json(fh.read()).encode(DEFAULT_TEXT).ids
    return {f.path for f in WeightStore(cat).missing(entry.id, ids, 0, ("qk",), tokenizer=True)}


def test_progress_lists_exactly_the_first_views_files(new_page, server):
    page, guard = new_page("pyodide")
    fetched = []
    page.on("request", lambda r: fetched.append(r.url))
    page.goto(server.url("/web/index.html"))
    wait_js(page, "() => document.body.dataset.state === 'ready'", timeout=180_000)
    want = _first_view_files()
    items = page.eval_on_selector_all("#loading-items li", "els => els.map(e => e.textContent)")
    assert "Python runtime 100%" in items and "numpy 100%" in items
    listed = {re.match(r"(\S+) \(", i).group(1) for i in items if i.startswith("minilm-l6/")}
    assert listed == want
    assert all(re.search(r" \d+%$", i) for i in items), items
    # Nothing else was downloaded for the first heatmap: no other layer, no V/O, no feed-forward.
    weights = {u.split("/models/", 1)[1] for u in fetched if "/models/" in u and not u.endswith("index.json")}
    assert weights == want, sorted(weights ^ want)
    assert page.get_attribute("#loading", "aria-valuenow") == "100"
    guard.check()
    page.context.close()


def test_first_heatmap_does_not_wait_for_value_weights(new_page, server):
    """On Step by step the view draws from Q/K as soon as they are in; V/O arrive after and complete it."""
    page, guard = new_page("pyodide", service_workers="block")   # routes see every request
    held = []
    page.route("**/models/minilm-l6/layer0.vo.json", lambda route: held.append(route))
    page.goto(server.url("/web/index.html?tab=steps&step=7"))
    wait_js(page, "() => document.body.dataset.state === 'ready'", timeout=180_000)
    wait_js(page, "() => document.getElementById('status-text').textContent.startsWith('Loading')")
    for _ in range(200):                                       # the request goes out right after that draw
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the V/O file was requested"
    rep = report(page)
    assert rep["tab"] == "steps" and rep["step"] == 7 and rep["draws"] >= 1
    assert "V/O weights of layer 0" in status(page)
    assert canvas_colour_count(page) > 10                     # the weights heatmap is already there
    assert page.get_attribute("#loading", "hidden") is None    # the bar still shows the pending file
    waiting = page.eval_on_selector_all("#loading-items li", "els => els.map(e => e.textContent)")
    assert any(i.startswith("minilm-l6/layer0.vo.json") and not i.endswith("100%") for i in waiting), waiting
    before = draws(page)
    held[0].continue_()
    wait_draw(page, before)
    wait_js(page, "() => document.getElementById('status-text').textContent === ''")
    assert page.get_attribute("#loading", "hidden") is not None
    guard.check()
    page.context.close()


def test_typing_is_debounced_into_one_recompute(app_page):
    """Keystrokes 40 ms apart (faster than the 250 ms debounce) end in one tokenization and one draw."""
    page = app_page
    base = report(page)
    page.focus("#text")
    page.keyboard.press("End")
    page.keyboard.type(" Then it slept.", delay=40)
    rep = wait_draw(page, base["draws"])
    page.wait_for_timeout(600)                     # no later draw: the burst was one edit
    rep = report(page)
    assert rep["draws"] == base["draws"] + 1
    assert rep["stats"]["tokenize"] == base["stats"]["tokenize"] + 1
    assert rep["tokens"] == hf_tokens(DEFAULT_TEXT + " Then it slept.")
    type_text(page, DEFAULT_TEXT)
