"""Screenshots of every tab at desktop and phone width (test-artifacts/), checked for layout overflow."""

from __future__ import annotations

import pytest
from helpers import canvas_colour_count, draws, report, wait_draw, wait_js

from pyapp.app.state import TABS

pytestmark = pytest.mark.browser

SIZES = {"desktop": (1280, 800), "phone": (360, 740)}
ALL_LAYER_TABS = ("model", "rollout", "stats")   # wait until every layer is computed


@pytest.mark.parametrize("size", sorted(SIZES))
def test_screenshot_every_tab(open_app, artifacts, size):
    w, h = SIZES[size]
    page, guard = open_app(width=w, height=h, scale=2)
    page.screenshot(path=str(artifacts / ("%s-boot.png" % size)))
    for tab in TABS:
        if report(page)["tab"] != tab:
            before = draws(page)
            page.click("#tab-" + tab)
            wait_draw(page, before)
        if tab in ALL_LAYER_TABS:
            wait_js(page, "() => JSON.parse(document.body.dataset.report).layers_ready.length === 6", timeout=300_000)
        page.wait_for_timeout(50)
        assert canvas_colour_count(page) > 5, tab
        # The page never scrolls sideways; a wide canvas scrolls inside its own stage.
        assert page.evaluate("document.documentElement.scrollWidth") <= w, tab
        # Every tab button stays on screen (the tab bar wraps on a phone).
        assert page.evaluate("Math.max(...[...document.querySelectorAll('[role=tab]')]"
                             ".map(b => b.getBoundingClientRect().right))") <= w, tab
        page.screenshot(path=str(artifacts / ("%s-%s.png" % (size, tab))), full_page=True)
    before = draws(page)
    page.click("#tab-steps")
    wait_draw(page, before)
    for step in (4, 6, 9):
        before = draws(page)
        while report(page)["step"] < step:
            b = draws(page)
            page.click("#next")
            wait_draw(page, b)
        page.screenshot(path=str(artifacts / ("%s-steps-%d.png" % (size, step))), full_page=True)
    guard.check()
    page.context.close()
