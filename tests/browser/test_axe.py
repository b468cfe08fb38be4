"""axe-core (npm, node_modules/axe-core) on the running page, on every tab: no serious or critical violation.

The page is the unmodified web/index.html booted in Pyodide 0.17.1; axe is injected as a script tag and run
on the whole document once the tab has drawn (and finished loading what it needs). Every violation axe
reports (any impact) is printed in the failure message; the test fails on the serious and critical ones.
"""

from __future__ import annotations

import json

import pytest
from helpers import ROOT, draws, report, status, wait_draw, wait_js

pytestmark = pytest.mark.browser

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
FAIL_ON = ("serious", "critical")


def tab_ids():
    """Every tab of the page: the tab registry when it exists, else the state's tuple."""
    try:
        from pyapp.app.tabs import TABS  # noqa: F401 - the registry split out of state.py
    except ImportError:
        from pyapp.app.state import TABS
    return [str(getattr(t, "id", t)) for t in TABS]


@pytest.fixture(scope="module")
def page(open_app):
    if not AXE.exists():
        pytest.skip("npm axe-core is not installed (npm ci)")
    page, guard = open_app()
    yield page
    guard.check()
    assert not guard.page_errors, guard.page_errors


def run_axe(page):
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ["violations"]});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary,
                                      html: n.html.slice(0, 200)}))}));
    }""")


def show_tab(page, tab: str):
    if page.get_attribute("#tab-" + tab, "aria-selected") != "true":
        page.click("#tab-" + tab)
    wait_js(page, "(tab) => JSON.parse(document.body.dataset.report || '{}').tab === tab", tab)
    # tabs that need every layer draw again once those files are in: wait for the loading to end
    wait_js(page, """() => !/Loading/.test(document.getElementById('status-text').textContent)
                          && document.getElementById('loading').hidden""", timeout=120_000)
    before = draws(page)
    page.mouse.move(1, 1)                     # no hover state: axe sees the page as it rests
    page.wait_for_timeout(100)
    if draws(page) > before:
        wait_draw(page, before)
    assert report(page)["tab"] == tab
    assert "error" not in (page.get_attribute("#status", "class") or ""), status(page)


def test_the_tab_list_is_the_page_tab_bar(page):
    assert page.eval_on_selector_all("[role=tab]", "els => els.map(e => e.dataset.tab)") == tab_ids()


@pytest.mark.parametrize("tab", tab_ids())
def test_axe_finds_no_serious_violation(page, tab):
    show_tab(page, tab)
    violations = run_axe(page)
    bad = [v for v in violations if v["impact"] in FAIL_ON]
    assert not bad, "axe on the %r tab: %d serious/critical of %d violations:\n%s" % (
        tab, len(bad), len(violations), json.dumps(violations, indent=1, ensure_ascii=False))
