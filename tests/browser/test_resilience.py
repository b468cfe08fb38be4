"""A hostile network and hostile input: no single file, slow or broken, stops anything that does not need it.

Each test opens its own page with Playwright routes that stall, fail or corrupt one file, and checks that
(a) every failure says what failed and offers Retry, (b) other layers, tabs and models keep working,
(c) the selects, the description, the canvas (the app's report of what it drew) and the URL always show the
same model and state. The fetch timeout (no progress for ``mhsaFetchTimeoutMs``; 20 s on the site) is set low
here through the page's test hook.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from helpers import canvas_colour_count, draws, hf_tokens, report, status, type_text, wait_draw, wait_js

from pyapp.app.state import DEFAULT_TEXT

pytestmark = pytest.mark.browser

TIMEOUT_MS = 4000           # the page's fetch timeout in these tests (test hook)
LAYER_FILE = "**/models/minilm-l6/layer%d.qk.json"


def _open(new_page, server, query: str = "", routes=(), timeout_ms: int = TIMEOUT_MS):
    page, guard = new_page("pyodide", service_workers="block")   # routes see every request
    page.add_init_script("window.mhsaFetchTimeoutMs = %d;" % timeout_ms)
    for pattern, handler in routes:
        page.route(pattern, handler)
    page.goto(server.url("/web/index.html" + query))
    wait_js(page, "() => ['ready', 'error'].includes(document.body.dataset.state)", timeout=180_000)
    return page, guard


def _query(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def _wait_url(page, **want):
    """The URL mirror is debounced: wait until the query has (or, for None, lacks) these keys."""
    deadline = time.monotonic() + 5
    while True:
        q = _query(page)
        if all(q.get(k) == (None if v is None else str(v)) for k, v in want.items()):
            return q
        if time.monotonic() > deadline:
            raise AssertionError("URL %s does not have %s" % (page.url, want))
        page.wait_for_timeout(50)


def _controls(page) -> dict:
    return page.evaluate("""() => ({
        model: document.getElementById('model').value,
        layer: document.getElementById('layer').value,
        layers: document.getElementById('layer').length,
        heads: document.getElementById('head').length,
        info: document.getElementById('model-info').textContent,
        loading: !document.getElementById('loading').hidden,
        retry: !document.getElementById('retry').hidden,
    })""")


def _pick(page, selector: str, value: str):
    """Select without waiting for a draw (the new state may need a file that never comes)."""
    page.select_option(selector, value)


def _wait_status(page, prefix: str, timeout: int = 20_000) -> str:
    wait_js(page, "(p) => document.getElementById('status-text').textContent.startsWith(p)", prefix, timeout)
    return status(page)


def _agrees(page, model: str, layer: int, n_layers: int, info: str):
    """Selects, description, canvas report and URL all show `model` at `layer`."""
    c = _controls(page)
    assert (c["model"], c["layer"], c["layers"]) == (model, str(layer), n_layers), c
    assert info in c["info"], c
    rep = report(page)
    assert (rep["model"], rep["layer"], rep["n_layers"]) == (model, layer, n_layers), rep
    _wait_url(page, model=None if model == "minilm-l6" else model, layer=layer or None)
    return rep


# ---- 1. a stalled file ---------------------------------------------------------------------------------------
def test_a_stalled_file_times_out_and_blocks_nothing_else(new_page, server):
    held = []
    page, guard = _open(new_page, server, routes=[(LAYER_FILE % 3, lambda route: held.append(route))], timeout_ms=8000)
    assert report(page)["model"] == "minilm-l6"
    _pick(page, "#layer", "3")
    wait_js(page, "() => document.getElementById('layer').value === '3'")
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "layer 3's Q/K was requested"
    # While it hangs: another model draws, with its own controls, description and URL.
    before = draws(page)
    _pick(page, "#model", "demo-tiny")
    rep = wait_draw(page, before, timeout=6000)
    assert rep["model"] == "demo-tiny" and rep["frame"] == "view" and canvas_colour_count(page) > 10
    _agrees(page, "demo-tiny", 1, 2, "64")
    before = draws(page)
    _pick(page, "#layer", "0")
    assert wait_draw(page, before, timeout=6000)["layer"] == 0
    rep = type_text(page, "Nothing waits for a stalled file.")
    assert rep["tokens"] == hf_tokens("Nothing waits for a stalled file.") and rep["model"] == "demo-tiny"
    assert not _controls(page)["loading"], "the loading bar is about files the shown view needs"
    assert status(page) == ""
    # Back to MiniLM, layer 3 again: the request hangs; within the bound the page says it timed out.
    before = draws(page)
    _pick(page, "#model", "minilm-l6")
    wait_draw(page, before, timeout=20_000)
    n_held = len(held)
    t0 = time.monotonic()
    _pick(page, "#layer", "3")
    msg = _wait_status(page, "Could not load minilm-l6/layer3.qk.json", timeout=8000 + 6000)
    waited = time.monotonic() - t0
    assert len(held) > n_held and "timed out" in msg and "8 s" in msg, msg
    assert 8.0 <= waited < 8.0 + 6.0, waited
    assert _controls(page)["retry"]
    rep = _agrees(page, "minilm-l6", 3, 6, "MiniLM")
    assert rep["frame"] == "error" and rep["heatmap"] is None
    # Other layers still work, and Retry fetches it again once the network answers.
    before = draws(page)
    _pick(page, "#layer", "1")
    rep = wait_draw(page, before, timeout=20_000)
    assert rep["layer"] == 1 and rep["frame"] == "view" and status(page) == ""
    page.unroute(LAYER_FILE % 3)
    before = draws(page)
    _pick(page, "#layer", "3")
    _wait_status(page, "Could not load minilm-l6/layer3.qk.json", timeout=5000)   # remembered until Retry
    page.click("#retry")
    rep = wait_draw(page, before, timeout=30_000)
    assert rep["layer"] == 3 and rep["frame"] == "view" and status(page) == "" and not _controls(page)["retry"]
    for route in held:
        try:
            route.abort()
        except Exception:   # noqa: BLE001 - already cancelled by the page
            pass
    guard.check()
    page.context.close()


# ---- 2. one failed file blocks only what needs it -------------------------------------------------------------
def _truncated(route):
    resp = route.fetch()
    body = resp.body()
    route.fulfill(response=resp, body=body[: len(body) // 2])


FAILURES = {
    "404": lambda route: route.fulfill(status=404, body="gone"),
    "500": lambda route: route.fulfill(status=500, body="oops"),
    "reset": lambda route: route.abort("connectionreset"),
    "truncated": _truncated,
}
WHY = {"404": "HTTP 404", "500": "HTTP 500", "reset": "could not be downloaded", "truncated": "bytes"}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_failed_layer_file_blocks_nothing_else(new_page, server, failure):
    page, guard = _open(new_page, server, "?layer=2", routes=[(LAYER_FILE % 2, FAILURES[failure])])
    msg = _wait_status(page, "Could not load minilm-l6/layer2.qk.json for minilm-l6:")
    assert WHY[failure] in msg, msg
    c = _controls(page)
    assert c["retry"] and c["layer"] == "2"
    # Layer 0 (its files are fine), another tab and new text all draw; no red bar left behind.
    before = draws(page)
    _pick(page, "#layer", "0")
    rep = wait_draw(page, before, timeout=20_000)
    assert rep["layer"] == 0 and rep["frame"] == "view" and status(page) == ""
    c = _controls(page)
    assert not c["retry"] and not c["loading"], c
    before = draws(page)
    page.click("#tab-heads")
    assert wait_draw(page, before, timeout=20_000)["tab"] == "heads"
    rep = type_text(page, "Other layers keep working.")
    assert rep["tokens"] == hf_tokens("Other layers keep working.") and rep["layer"] == 0
    _agrees(page, "minilm-l6", 0, 6, "MiniLM")
    # Another model too; back at layer 2 the failure is named again, with Retry.
    before = draws(page)
    _pick(page, "#model", "demo-tiny")
    assert wait_draw(page, before, timeout=20_000)["model"] == "demo-tiny"
    _pick(page, "#model", "minilm-l6")
    wait_js(page, "() => JSON.parse(document.body.dataset.report).model === 'minilm-l6'", timeout=20_000)
    _pick(page, "#layer", "2")
    _wait_status(page, "Could not load minilm-l6/layer2.qk.json")
    assert _controls(page)["retry"]
    rep = _agrees(page, "minilm-l6", 2, 6, "MiniLM")
    assert rep["frame"] == "error" and rep["heatmap"] is None
    guard.check()
    page.context.close()


# ---- 3. after a failed switch, everything shows the model the user picked ----------------------------------
def _corrupt(route):
    resp = route.fetch()
    body = bytearray(resp.body())
    body[len(body) // 2] ^= 0x55
    route.fulfill(response=resp, body=bytes(body))


def _word_chunk_dir() -> str:
    """The folder of MiniLM's word-embedding chunks, as the catalogue names them (e.g. "minilm-l6/word")."""
    from pyapp.core.files import default_models_dir, load_local_catalogue

    entry = load_local_catalogue(default_models_dir()).get("minilm-l6")
    return next(f.path for f in entry.files_for([2000], 0, ("qk",)) if f.part.startswith("embeddings.word")
                ).rsplit("/", 1)[0]


def test_a_failed_switch_shows_the_new_model_everywhere(new_page, server):
    page, guard = _open(new_page, server, "?model=demo-tiny&layer=1", routes=[(LAYER_FILE % 1, _corrupt)])
    rep = report(page)
    assert rep["model"] == "demo-tiny" and rep["layer"] == 1
    _pick(page, "#model", "minilm-l6")
    msg = _wait_status(page, "Could not load minilm-l6/layer1.qk.json for minilm-l6:")
    assert "corrupt" in msg
    c = _controls(page)
    assert c["heads"] == 12 and c["retry"], c
    rep = _agrees(page, "minilm-l6", 1, 6, "MiniLM")
    assert rep["frame"] == "error" and rep["heatmap"] is None and rep["n_heads"] == 12
    # Deterministic works; back to MiniLM with a text whose word-embedding rows are broken.
    word = _word_chunk_dir()
    page.route("**/models/%s/*" % word, _corrupt)
    before = draws(page)
    _pick(page, "#model", "deterministic")
    rep = wait_draw(page, before, timeout=20_000)
    assert rep["model"] == "deterministic" and rep["frame"] == "view"
    _wait_url(page, model="deterministic")
    type_text(page, "Zebras juggle quantum xylophones.")
    _pick(page, "#model", "minilm-l6")
    msg = _wait_status(page, "Could not load %s/" % word)
    c = _controls(page)
    assert c["heads"] == 12 and c["retry"] and page.is_hidden("#synthetic"), c
    rep = _agrees(page, "minilm-l6", 0, 6, "MiniLM")
    assert rep["frame"] == "error" and rep["heatmap"] is None
    assert "Could not load" in page.text_content("#alt")        # the canvas' text says it too
    guard.check()
    page.context.close()


# ---- 5. long text: the true number of dropped tokens, and a word when characters are cut -------------------
def test_long_text_reports_the_true_dropped_count(new_page, server):
    from pyapp.app.state import MAX_TEXT_CHARS

    page, guard = _open(new_page, server)
    text = " ".join([DEFAULT_TEXT] * 600)                     # 27,000 characters, ~7,800 tokens
    rep = type_text(page, text)
    dropped = len(hf_tokens(text)) - 512
    assert rep["n"] == 512 and rep["dropped"] == dropped
    assert 20_000 < len(text) < MAX_TEXT_CHARS
    msg = status(page)
    assert f"{dropped:,}" in msg and "characters" not in msg, msg
    # Beyond the page's character limit: the cut is named and the count is of the text that was read.
    long = "Attention is all you need. " * (MAX_TEXT_CHARS // 27 + 100)
    rep = type_text(page, long)
    assert rep["dropped"] == len(hf_tokens(long[:MAX_TEXT_CHARS])) - 512
    msg = status(page)
    assert f"{MAX_TEXT_CHARS:,} characters" in msg and "{:,}".format(rep["dropped"]) in msg, msg
    type_text(page, DEFAULT_TEXT)
    assert status(page) == ""
    guard.check()
    page.context.close()


# ---- 7. a corrupt catalogue ---------------------------------------------------------------------------------
def test_a_corrupt_catalogue_names_the_parse_error_and_retries(new_page, server):
    bad = "**/models/index.json"
    page, guard = _open(new_page, server, routes=[(bad, lambda r: r.fulfill(status=200, body="{not json"))])
    msg = _wait_status(page, "Could not read the model catalogue")
    assert "models/index.json" in msg and "Expecting property name" in msg and "no tokenizer" not in msg, msg
    assert _controls(page)["retry"]
    page.unroute(bad)
    page.click("#retry")
    wait_js(page, "() => JSON.parse(document.body.dataset.report || '{}').frame === 'view'", timeout=60_000)
    rep = report(page)
    assert rep["model"] == "minilm-l6" and rep["tokens"] == hf_tokens(DEFAULT_TEXT) and status(page) == ""
    assert _controls(page)["layers"] == 6 and not _controls(page)["retry"]
    guard.check()
    page.context.close()
