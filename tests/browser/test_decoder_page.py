"""End-to-end: the page on the real causal decoder SmolLM2-135M-Instruct in Pyodide 0.17.1 in real Chromium.

One page, reused: the default sentence's heatmap against the CPython figure, the causal checkbox (on, not
switchable, and why), the RoPE and grouped-query steps drawn with the real numbers, next-token prediction
(the list equal to the CPython answer, appending a token), every tab drawn, and the URL state.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import numpy as np
import pytest
from helpers import canvas_colour_count, draws, report, wait_draw, wait_js
from test_research import click_action, open_tab, same_figure_as_cpython

from pyapp.app.prediction import Sampler, candidates
from pyapp.app.state import DEFAULT_TEXT
from pyapp.app.tabs import TABS
from pyapp.core.files import LocalModel

pytestmark = pytest.mark.browser

MODEL = "smollm2-135m"
NEXT_TIMEOUT = 600_000


@pytest.fixture(scope="module")
def page(open_app):
    page, guard = open_app(width=1280, height=900, query="?model=" + MODEL)
    yield page
    guard.check()
    assert not guard.page_errors, guard.page_errors
    page.context.close()


@pytest.fixture(scope="module")
def local():
    return LocalModel(MODEL)


def test_default_sentence_heatmap_equals_the_cpython_figure(page):
    rep = report(page)
    assert rep["model"] == MODEL and rep["frame"] == "view" and rep["tab"] == "overview", rep.get("error")
    assert rep["n_layers"] == 30 and rep["n_heads"] == 9
    fig = same_figure_as_cpython(page, "overview")
    heat = np.array(rep["heatmap"]["matrix"])
    np.testing.assert_allclose(heat, fig.context.average_probs(), atol=2e-6)
    n = heat.shape[0]
    assert np.all(heat[np.triu_indices(n, 1)] == 0.0)          # causal: nothing above the diagonal
    assert np.array(rep["heatmap"]["mask"])[np.triu_indices(n, 1)].all()
    assert rep["tokens"][1].startswith("␣")                     # BPE tokens labelled by their text


def test_the_causal_mask_is_part_of_the_model(page):
    box = page.locator("#causal")
    assert box.is_checked() and box.is_disabled()
    why = page.evaluate("document.getElementById('causal-note').textContent")
    assert "part of" in why and "decoder" in why


def _tooltips(rep, kind_key, value=None):
    return [r for r in rep["actions"] if kind_key in r["action"] and (value is None or r["action"][kind_key] == value)]


def test_gqa_and_rope_steps_show_the_real_numbers(page, local):
    open_tab(page, "steps")
    rep = click_action(page, {"step": 3})
    assert rep["step"] == 3, {k: rep.get(k) for k in ("frame", "step", "tab", "error", "draws", "frames", "compute")}
    heads = [r for r in rep["actions"] if set(r["action"]) == {"head"} and "reads K/V head" in r["tooltip"]]
    assert [r["action"]["head"] for r in heads] == list(range(9))
    assert all("reads K/V head %d" % (h // 3) in r["tooltip"] for h, r in enumerate(heads))
    rep = click_action(page, {"step": 4})
    assert "RoPE" in rep["step_label"] or "Rotary" in page.evaluate("document.getElementById('step-label').textContent")
    ids = local.tokenizer.encode(DEFAULT_TEXT).ids
    local.need(ids, 0, ("qk",))
    t = local.encoder.trace(ids, 0)
    dials = [r for r in rep["actions"] if "turned by" in r["tooltip"]]
    assert len(dials) >= 8
    half = t.d_k // 2
    for r in dials:
        tip = r["tooltip"]
        p = int(re.search(r"position (\d+)", tip).group(1))
        i = int(re.search(r"coordinates (\d+)", tip).group(1))
        name = tip.split(" ")[0]
        before, after = (t.q_unrotated, t.q) if name == "Q" else (t.k_unrotated, t.k)
        nums = [float(v) for v in re.findall(r"-?\d+\.\d+", tip.split("coordinates")[1])]
        np.testing.assert_allclose(nums[:2], before[rep["head"], p, [i, i + half]], atol=2e-4)
        np.testing.assert_allclose(nums[-2:], after[rep["head"], p, [i, i + half]], atol=2e-4)


def test_next_token_list_equals_cpython_and_appends(page, local):
    rep = open_tab(page, "next")
    wait_js(page, "() => (JSON.parse(document.body.dataset.report || '{}').next || []).length > 0",
            timeout=NEXT_TIMEOUT)
    rep = report(page)
    ids = local.tokenizer.encode(DEFAULT_TEXT).ids
    local.need(ids, next_token=True)
    logits = local.encoder.next_token_logits(ids)
    want = candidates(logits, lambda i: local.tokenizer.decode([i]), local.tokenizer.id_to_token, Sampler())
    assert [c["id"] for c in rep["next"]] == [c.id for c in want.candidates]
    np.testing.assert_allclose([c["probability"] for c in rep["next"]],
                               [c.probability for c in want.candidates], atol=2e-4)
    # the sampler's controls: top-k 5 keeps five
    rep = click_action(page, {"top_k": 5})
    wait_js(page, "() => (JSON.parse(document.body.dataset.report || '{}').next || []).length === 5")
    # append the most probable token by keyboard: its hotspot button, Enter
    first = report(page)["next"][0]
    before = draws(page)
    page.focus("#hotspots button[data-index='%d']" % _action_index(report(page), {"text": DEFAULT_TEXT + first["text"]}))
    page.keyboard.press("Enter")
    rep = wait_draw(page, before)
    assert page.input_value("#text") == DEFAULT_TEXT + first["text"]
    wait_js(page, "(t) => { const r = JSON.parse(document.body.dataset.report || '{}');"
                  " return (r.next || []).length > 0 && r.n > t; }", len(ids), timeout=NEXT_TIMEOUT)


def _action_index(rep, action):
    for i, r in enumerate(rep["actions"]):
        if r["action"] == action:
            return i
    raise AssertionError((action, [r["action"] for r in rep["actions"]][:12]))


@pytest.mark.parametrize("tab", [t for t in TABS if t != "next"])
def test_every_tab_draws_on_the_decoder(page, tab):
    rep = open_tab(page, tab)
    if tab in ("model", "rollout", "stats"):
        wait_js(page, "() => (JSON.parse(document.body.dataset.report || '{}').layers_ready || []).length >= 30",
                timeout=NEXT_TIMEOUT)
        rep = report(page)
    assert rep["frame"] == "view" and rep["model"] == MODEL and not rep["error"], rep.get("error")
    assert canvas_colour_count(page) > 20


def test_url_state_round_trips_with_the_decoder(page, open_app):
    rep = open_tab(page, "heads")
    pairs = dict(parse_qsl(rep["query"]))
    assert pairs["model"] == MODEL and pairs["tab"] == "heads"
    other, guard = open_app(width=1280, height=900, query="?" + rep["query"])
    try:
        got = report(other)
        assert (got["model"], got["tab"], got["layer"], got["head"], got["tokens"]) == \
            (MODEL, "heads", rep["layer"], rep["head"], rep["tokens"])
        assert other.locator("#causal").is_disabled()
    finally:
        other.context.close()
