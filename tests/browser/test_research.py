"""End-to-end: the research views (model grid, head lines, neuron, rollout, head statistics), the URL state,
shared links and the exports, on the real MiniLM-L6 model in Pyodide 0.17.1 in real Chromium.

Pixels are checked two ways: cells with a known answer (a heatmap's strongest cell has the legend's top
colour) and, for whole views, against the same figure drawn in CPython by ``pyapp.figure`` (the CLI's code
path: same Session, same view module, Pillow backend): wherever the Pillow image is flat (inside filled
boxes, away from text and lines), the canvas must have the same colour.
"""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import parse_qsl

import numpy as np
import pytest
from helpers import SHOWN, canvas_colour_count, draws, report, status, wait_draw, wait_idle, wait_js

from pyapp.app.state import DEFAULT_TEXT, AppState
from pyapp.core.analysis import rollout
from pyapp.draw.colormap import VIRIDIS
from pyapp.figures import figure
from pyapp.views.lines import HEAD_COLORS

pytestmark = pytest.mark.browser

LAYERS_TIMEOUT = 300_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def page(open_app):
    """A booted app of its own (these tests fetch every layer and leave research tabs open)."""
    page, guard = open_app(width=1280, height=900)
    yield page
    guard.check()
    assert not guard.page_errors, guard.page_errors
    page.context.close()


# ---- helpers --------------------------------------------------------------------------------------------
def open_tab(page, tab: str):
    if report(page)["tab"] == tab:
        return report(page)
    before = draws(page)
    page.click("#tab-" + tab)
    return wait_draw(page, before)


def wait_layers(page, n: int = 6):
    wait_js(page, "(n) => (JSON.parse(document.body.dataset.report || '{}').layers_ready || []).length >= n",
            n, timeout=LAYERS_TIMEOUT)
    page.wait_for_timeout(50)
    return report(page)


def canvas_at(page, points):
    """RGB of the canvas at each CSS point (x, y)."""
    return page.evaluate(
        """async (pts) => {
            const c = document.getElementById('view');
            const r = c.width / c.getBoundingClientRect().width;
            const d = (await (""" + SHOWN + """)(c)).getImageData(0, 0, c.width, c.height).data;
            return pts.map(([x, y]) => {
                const i = 4 * (Math.floor(y * r) * c.width + Math.floor(x * r));
                return [d[i], d[i + 1], d[i + 2]];
            });
        }""", [[float(x), float(y)] for x, y in points])


def click_action(page, match, nth: int = 0):
    """Click the centre of the nth canvas region whose action contains `match`; return the new report."""
    wait_idle(page)                 # the regions of the last frame, not of a partial one about to be replaced
    rep = report(page)
    regions = [r for r in rep["actions"] if all(r["action"].get(k) == v for k, v in match.items())]
    assert regions, (match, [r["action"] for r in rep["actions"]][:20])
    r = regions[nth]
    box = page.locator("#view").bounding_box()
    before = draws(page)
    page.mouse.click(box["x"] + r["x"] + r["w"] / 2, box["y"] + r["y"] + r["h"] / 2)
    return wait_draw(page, before)


def same_figure_as_cpython(page, view: str, min_points: int = 20, **extra):
    """The page's canvas against ``pyapp.figure`` of the same state: same height and ops, and the same
    colour at flat points inside filled boxes. Returns the CPython figure."""
    rep = report(page)
    fig = figure(DEFAULT_TEXT, view=view, model=rep["model"], layer=rep["layer"], head=rep["head"],
                 temperature=rep["temperature"], causal=rep["causal"], width=rep["scene"]["w"],
                 pinned_row=rep["pinned_row"], **extra)
    scene = fig.scene
    assert scene.height == pytest.approx(rep["scene"]["h"]) and len(scene.ops) == rep["scene"]["ops"], view
    ref = np.asarray(fig.image().convert("RGB")).astype(int)
    H, W = ref.shape[:2]
    ys, xs = np.mgrid[3:H - 3:4, 3:W - 3:4]
    ys, xs = ys.ravel(), xs.ravel()
    centre = ref[ys, xs]
    flat = np.ones(len(ys), dtype=bool)                 # the 5x5 patch around the point has one colour
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            flat &= (ref[ys + dy, xs + dx] == centre).all(axis=1)
    keep = np.nonzero(flat & (centre != 255).any(axis=1))[0]   # not the white background
    keep = keep[np.linspace(0, len(keep) - 1, min(len(keep), 400)).astype(int)] if len(keep) else keep
    points = [(xs[k] + 0.5, ys[k] + 0.5) for k in keep]
    assert len(points) >= min_points, (view, len(points))
    got = np.array(canvas_at(page, points))
    want = np.array([ref[int(y), int(x)] for x, y in points])
    close = (np.abs(got - want) <= 3).all(axis=1)
    # Fonts may differ slightly between Chromium and Pillow, so a text can reach a few points; the rest match.
    assert close.mean() >= 0.9, (view, close.mean(), [(p, g.tolist(), w.tolist()) for p, g, w, c in
                                                      zip(points, got, want, close) if not c][:8])
    return fig


def hex_rgb(c: str):
    return [int(c[i:i + 2], 16) for i in (1, 3, 5)]


# ---- the views ------------------------------------------------------------------------------------------
def test_model_view_fills_every_layer_one_per_frame(page):
    before = draws(page)
    rep = open_tab(page, "model")
    assert rep["tab"] == "model" and page.get_attribute("#tab-model", "aria-selected") == "true"
    rep = wait_layers(page)
    assert rep["layers_ready"] == [0, 1, 2, 3, 4, 5]
    # one draw when the tab opens and one more per computed layer (layers 1..5): progressive, not one block
    assert rep["draws"] - before >= 6
    assert page.get_attribute("#loading", "hidden") is not None and status(page) == ""
    thumbs = [r for r in rep["actions"] if r["action"].get("tab") == "heads"]
    assert len(thumbs) == 6 * 12
    assert canvas_colour_count(page) > 30
    fig = same_figure_as_cpython(page, "model")
    # Known cells: each thumbnail is scaled to its own maximum, so its strongest cell is the top colour.
    att = fig.context.attentions
    n = rep["n"]
    for layer, head in ((0, 0), (3, 5), (5, 11)):
        r = next(t for t in thumbs if t["action"]["layer"] == layer and t["action"]["head"] == head)
        m = att[layer][head]
        i, j = np.unravel_index(int(np.argmax(m)), m.shape)
        cell = r["w"] / n
        px = canvas_at(page, [(r["x"] + (j + 0.5) * cell, r["y"] + (i + 0.5) * cell)])[0]
        assert px == [int(v) for v in VIRIDIS[255][:3]], (layer, head)


def test_model_view_thumbnail_opens_that_layer_and_head(page):
    open_tab(page, "model")
    wait_layers(page)
    rep = click_action(page, {"layer": 3, "head": 5})
    assert (rep["tab"], rep["layer"], rep["head"]) == ("heads", 3, 5)
    assert page.eval_on_selector("#layer", "e => e.value") == "3"
    assert page.eval_on_selector("#head", "e => e.value") == "5"
    # The same with the keyboard: every canvas button has a focusable <button> over it.
    rep = open_tab(page, "model")
    label = next(r["tooltip"] for r in rep["actions"] if r["action"] == {"layer": 2, "head": 4, "tab": "heads"})
    page.focus("#hotspots button[aria-label='%s']" % label)
    before = draws(page)
    page.keyboard.press("Enter")
    rep = wait_draw(page, before)
    assert (rep["tab"], rep["layer"], rep["head"]) == ("heads", 2, 4)
    select_layer_head(page, 0, 0)


def select_layer_head(page, layer: int, head: int):
    for sel, v in (("#layer", layer), ("#head", head)):
        if page.eval_on_selector(sel, "e => e.value") != str(v):
            before = draws(page)
            page.select_option(sel, str(v))
            wait_draw(page, before)


def _line_band(rep):
    """(x0, x1, y0, y1) of the band between the query and key columns of the head view."""
    toks = [r for r in rep["actions"] if "hover_token" in r["action"] and r["action"].get("hover_side")]
    left = [r for r in toks if r["action"]["hover_side"] == "left"]
    right = [r for r in toks if r["action"]["hover_side"] == "right"]
    return (max(r["x"] + r["w"] for r in left) + 4, min(r["x"] for r in right) - 4,
            min(r["y"] for r in left), max(r["y"] + r["h"] for r in left))


def _band_ink(page, rep):
    """Coloured (non-white) sample points in the line band, and their colours."""
    x0, x1, y0, y1 = _line_band(rep)
    pts = [(x, y) for x in np.linspace(x0, x1, 40) for y in np.linspace(y0, y1, 60)]
    px = canvas_at(page, pts)
    return [p for p in px if min(p) < 250]


def test_head_view_hover_toggles_and_pixels(page):
    rep = open_tab(page, "lines")
    assert rep["view_state"]["heads_shown"] is None
    same_figure_as_cpython(page, "lines", min_points=12)
    all_ink = _band_ink(page, rep)
    assert len(all_ink) > 200
    # Hover a query token: only its lines remain.
    r = next(t for t in rep["actions"] if t["action"].get("hover_token") == 2 and t["action"]["hover_side"] == "left")
    box = page.locator("#view").bounding_box()
    before = draws(page)
    page.mouse.move(box["x"] + r["x"] + r["w"] / 2, box["y"] + r["y"] + r["h"] / 2)
    hov = wait_draw(page, before)
    assert hov["view_state"]["hover_token"] == 2 and hov["view_state"]["hover_side"] == "left"
    assert 0 < len(_band_ink(page, hov)) < len(all_ink) / 3
    before = draws(page)
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    assert wait_draw(page, before)["view_state"]["hover_token"] is None
    # Head checkboxes: none -> an empty band; head 3 alone -> only its colour; the URL keeps the choice.
    rep = click_action(page, {"heads_shown": []})
    assert rep["view_state"]["heads_shown"] == [] and _band_ink(page, rep) == []
    rep = click_action(page, {"heads_shown": [3]})
    assert rep["view_state"]["heads_shown"] == [3]
    ink = np.array(_band_ink(page, rep))
    assert len(ink) > 10
    colour = np.array(hex_rgb(HEAD_COLORS[3]))                 # #d62728: red dominates every blend with white
    white = np.array([255, 255, 255])
    # each ink pixel lies on the segment white -> head colour (alpha blends of that one colour)
    t = ((white - ink) @ (white - colour)) / float((white - colour) @ (white - colour))
    assert (np.abs(white - t[:, None] * (white - colour) - ink).max(axis=1) <= 12).mean() > 0.95
    same_figure_as_cpython(page, "lines", min_points=12, heads_shown=[3])
    wait_js(page, "() => location.search.includes('heads_shown=3')", timeout=5000)
    # Keyboard: the head toggles are buttons too.
    page.focus("#hotspots button[aria-label='show head 5']")
    before = draws(page)
    page.keyboard.press("Enter")
    assert wait_draw(page, before)["view_state"]["heads_shown"] == [3, 5]
    rep = click_action(page, {"heads_shown": list(range(12))})
    assert rep["view_state"]["heads_shown"] == list(range(12))


def test_neuron_view_query_by_click(page):
    rep = open_tab(page, "neuron")
    assert rep["pinned_row"] is None
    rep = click_action(page, {"pinned_row": 4})
    assert rep["pinned_row"] == 4 and rep["tokens"][4] == "on"
    assert "query 'on'" in page.get_attribute("#view", "aria-label")
    fig = same_figure_as_cpython(page, "neuron", min_points=4)
    # The softmax bar of the strongest key is drawn in the bar colour, as long as its weight.
    w = fig.context.trace.probs[rep["head"], 4]
    bars = [op for op in fig.scene.ops if op["op"] == "rect" and op.get("fill") == "#1f6feb" and op["h"] < 20
            and op["w"] > 4 and not op.get("radius")]
    top = max(bars, key=lambda op: op["w"])
    assert top["w"] == pytest.approx(110.0 * float(w.max()), rel=1e-4)
    px = canvas_at(page, [(top["x"] + top["w"] / 2, top["y"] + top["h"] / 2)])[0]
    assert px == hex_rgb("#1f6feb")
    rep = click_action(page, {"head": 7})
    assert rep["head"] == 7 and rep["pinned_row"] == 4
    select_layer_head(page, 0, 0)


def test_rollout_view_matches_numpy(page):
    rep = open_tab(page, "rollout")
    rep = wait_layers(page)
    heat = rep["heatmap"]
    r = np.array(heat["matrix"])
    fig = figure(DEFAULT_TEXT, view="rollout", width=rep["scene"]["w"])
    att = fig.context.layer_attentions()
    expected = rollout([att[k] for k in range(6)])[-1]
    assert np.allclose(r, expected, atol=2e-5)
    assert np.allclose(r.sum(axis=1), 1.0, atol=1e-4)
    i, j = np.unravel_index(int(np.argmax(r)), r.shape)
    cw, ch = heat["w"] / heat["cols"], heat["h"] / heat["rows"]
    px = canvas_at(page, [(heat["x"] + (j + 0.5) * cw, heat["y"] + (i + 0.5) * ch)])[0]
    assert px == [int(v) for v in VIRIDIS[255][:3]]
    same_figure_as_cpython(page, "rollout")


def test_head_statistics_sort_by_header_click(page):
    rep = open_tab(page, "stats")
    rep = wait_layers(page)
    assert rep["view_state"]["sort_by"] == "layer" and rep["view_state"]["sort_desc"] is False
    rows = [r for r in rep["actions"] if set(r["action"]) == {"layer", "head"}]
    assert rows
    rep = click_action(page, {"sort_by": "entropy"})
    assert rep["view_state"]["sort_by"] == "entropy" and rep["view_state"]["sort_desc"] is True
    fig = same_figure_as_cpython(page, "stats", sort_by="entropy", sort_desc=True)
    from pyapp.views.stats import table_rows

    order = table_rows(fig.context)
    ent = [r.values["entropy"] for r in order]
    assert ent == sorted(ent, reverse=True)
    # the first table row (highest entropy) is the head the page lists first: its row region opens it
    table = [r for r in rep["actions"] if set(r["action"]) == {"layer", "head"} and r["w"] > 300]  # not the grid
    first = sorted(table, key=lambda r: r["y"])[0]
    assert (first["action"]["layer"], first["action"]["head"]) == (order[0].layer, order[0].head)
    wait_js(page, "() => location.search.includes('sort_by=entropy') && location.search.includes('sort_desc=1')",
            timeout=5000)
    rep = click_action(page, {"sort_by": "entropy"})
    assert rep["view_state"]["sort_desc"] is False
    rep = click_action(page, {"sort_by": "layer"})
    assert rep["view_state"]["sort_by"] == "layer"


# ---- exports --------------------------------------------------------------------------------------------
def _download(page, button: str):
    with page.expect_download(timeout=120_000) as info:
        page.click(button)
    d = info.value
    return d.suggested_filename, open(d.path(), "rb").read()


def test_exports_png_csv_json(page):
    rep = open_tab(page, "overview")
    name, data = _download(page, "#export-png")
    assert name == "mhsa-minilm-l6-layer0-overview.png" and data.startswith(PNG_SIGNATURE)
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert [w, h] == page.evaluate("[document.getElementById('view').width, document.getElementById('view').height]")
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    heat = rep["heatmap"]
    m = np.array(heat["matrix"])
    i, j = np.unravel_index(int(np.argmax(m)), m.shape)
    cw, ch = heat["w"] / heat["cols"], heat["h"] / heat["rows"]
    assert img[int(heat["y"] + (i + 0.5) * ch), int(heat["x"] + (j + 0.5) * cw)].tolist() == \
        [int(v) for v in VIRIDIS[255][:3]]

    name, data = _download(page, "#export-csv")
    assert name == "mhsa-minilm-l6-layer0-attention.csv"
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    n, heads = rep["n"], rep["n_heads"]
    assert rows[0] == ["layer", "head", "query_index", "query_token"] + rep["tokens"]
    assert len(rows) == 1 + heads * n
    probs = np.array([[float(v) for v in r[4:]] for r in rows[1:]]).reshape(heads, n, n)
    assert np.allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    assert np.allclose(probs.mean(axis=0), m, atol=1e-6)      # the overview heatmap is the mean of the heads

    name, data = _download(page, "#export-json")
    assert name == "mhsa-minilm-l6-layer0-trace.json"
    doc = json.loads(data.decode("utf-8"))
    assert doc["format"] == "mhsa-trace/1" and doc["model"] == "minilm-l6" and doc["layer"] == 0
    assert doc["tokens"] == rep["tokens"] and doc["text"] == DEFAULT_TEXT
    arrays = doc["arrays"]
    assert arrays["q"]["shape"] == [12, n, 32] and arrays["probs"]["shape"] == [12, n, n]
    # the full trace: V, the head outputs and W_O's output were fetched for it
    assert arrays["v"]["shape"] == [12, n, 32] and arrays["output"]["shape"] == [n, 384]
    assert np.allclose(np.array(arrays["probs"]["data"]), probs, atol=1e-6)
    assert sorted(doc["attentions"], key=int) == [str(k) for k in range(6)]   # the layers computed so far
    assert status(page) == ""


# ---- shared links ---------------------------------------------------------------------------------------
def test_page_state_is_mirrored_into_the_url(page):
    open_tab(page, "neuron")
    select_layer_head(page, 1, 6)
    wait_js(page, "() => location.search.includes('layer=1') && location.search.includes('head=6')", timeout=5000)
    page.wait_for_timeout(400)
    q = page.evaluate("location.search")
    st = AppState.from_query(q)
    assert (st.tab, st.layer, st.head) == ("neuron", 1, 6)
    assert q == "?" + report(page)["query"]
    select_layer_head(page, 0, 0)
    open_tab(page, "overview")
    wait_js(page, "() => !location.search.includes('tab=') && !location.search.includes('layer=')", timeout=5000)


def test_shared_link_restores_its_state_exactly(open_app):
    want = AppState(text="Links carry the whole state, ünïcode & all.", model="minilm-l6", layer=2, head=7,
                    temperature=2.5, causal=True, tab="lines", heads_shown=(1, 7), pinned_row=3)
    q = want.to_query()
    page, guard = open_app(query="?" + q)
    rep = report(page)
    assert (rep["model"], rep["layer"], rep["head"], rep["tab"], rep["causal"], rep["pinned_row"]) == \
        ("minilm-l6", 2, 7, "lines", True, 3)
    assert rep["temperature"] == pytest.approx(2.5) and rep["view_state"]["heads_shown"] == [1, 7]
    assert page.eval_on_selector("#text", "e => e.value") == want.text
    assert page.eval_on_selector("#layer", "e => e.value") == "2"
    assert page.eval_on_selector("#head", "e => e.value") == "7"
    assert page.eval_on_selector("#causal", "e => e.checked") is True
    assert page.text_content("#temperature-value") == "T = 2.50"
    assert page.get_attribute("#tab-lines", "aria-selected") == "true"
    assert not page.is_visible("#link-notice")
    page.wait_for_timeout(500)                          # past the URL debounce: the link stays the same
    assert dict(parse_qsl(page.evaluate("location.search")[1:], keep_blank_values=True)) == \
        dict(parse_qsl(q, keep_blank_values=True))
    ink = _band_ink(page, rep)      # heads 1 (orange) and 7 (grey) only: no blue line of head 0 anywhere
    assert len(ink) > 20 and all(p[0] >= p[2] - 12 for p in ink)
    guard.check()
    page.context.close()


def test_malformed_link_falls_back_with_a_notice(open_app, artifacts):
    page, guard = open_app(width=360, height=740, scale=2,
                           query="?layer=abc&temperature=-3&tab=bogus&model=nope&head=99&causal=maybe&step=x")
    rep = report(page)
    assert (rep["model"], rep["tab"], rep["layer"], rep["causal"], rep["step"]) == ("minilm-l6", "overview", 0,
                                                                                 False, 1)
    assert rep["head"] == 11 and rep["temperature"] == pytest.approx(0.1)
    assert page.is_visible("#link-notice")
    note = page.text_content("#link-notice-text")
    for part in ("layer=abc", "temperature=-3", "tab=bogus", "model=nope", "head=99", "causal=maybe", "step=x"):
        assert part in note, (part, note)
    assert canvas_colour_count(page) > 20 and not guard.page_errors
    page.screenshot(path=str(artifacts / "phone-link-notice.png"))
    page.click("#link-notice-close")
    assert not page.is_visible("#link-notice")
    guard.check()
    page.context.close()


def test_the_pages_csp_lets_the_export_download_work(new_page, server):
    """The export is a Blob + object URL + <a download> click: under the page's real Content-Security-Policy
    (the PyScript runtime mode does not bypass it) the same sequence downloads, with no CSP violation."""
    page, guard = new_page("pyscript")
    page.context.add_init_script("""window.__csp = []; document.addEventListener("securitypolicyviolation",
                                    (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));""")
    page.goto(server.url("/web/index.html"))
    assert "blob:" in page.get_attribute("meta[http-equiv='Content-Security-Policy']", "content")
    with page.expect_download(timeout=30_000) as info:
        page.evaluate("""() => {
            const blob = new Blob(["layer,head\\r\\n0,0\\r\\n"], {type: "text/csv"});
            const a = document.createElement("a");
            a.href = URL.createObjectURL(blob); a.download = "check.csv"; a.hidden = true;
            document.body.appendChild(a); a.click(); a.remove();
        }""")
    d = info.value
    assert d.suggested_filename == "check.csv" and open(d.path(), "rb").read() == b"layer,head\r\n0,0\r\n"
    assert page.evaluate("window.__csp") == []
    guard.check()
    page.context.close()
