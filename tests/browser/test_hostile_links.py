"""Issue 10: links and input a hostile user found, in the real page (web/index.html in Pyodide 0.17.1 =
Python 3.8, where urllib's parse_qsl still split on ";").

* a text too long for a link: the page's URL stays under state.MAX_LINK_QUERY, reloads (the harness server
  is http.server, which answers 414 to the link the page used to write) and says the text was left out;
* a lone UTF-16 surrogate in an input event: no uncaught error, the canvas redraws, the URL follows;
* hand-written links (";", "1_0", Arabic-Indic digits, repeated keys): parsed like CPython does, and the
  notice names every value that fell back.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import quote_plus, unquote_plus

import pytest
from helpers import draws, report, type_text, wait_draw, wait_js

from pyapp.app.state import (
    DEFAULT_TEXT,
    LINK_TEXT_LEFT_OUT,
    MAX_LINK_QUERY,
    AppState,
    parse_query,
    query_notice,
)

pytestmark = pytest.mark.browser

CJK = "注意力机制让每个词看见其他的词。" * 488      # 7,808 CJK characters
NOTICE = "#link-notice-text"


def wait_search(page, predicate: str, timeout: int = 30_000):
    """Wait until location.search satisfies `predicate` (a JS expression of `s`); return it."""
    return wait_js(page, "() => { const s = location.search; return (%s) ? s || '?' : ''; }" % predicate,
                   timeout=timeout)


def notice(page) -> str:
    hidden = page.evaluate("document.getElementById('link-notice').hidden")
    return "" if hidden else page.text_content(NOTICE)


@pytest.fixture
def fresh(open_app):
    opened = []

    def make(query: str = ""):
        page, guard = open_app(query=query)
        opened.append(guard)
        return page, guard

    yield make
    for guard in opened:
        guard.check()
        assert not guard.page_errors, guard.page_errors


# ---- 4: a text too long for a link --------------------------------------------------------------------
def test_the_link_the_page_used_to_write_is_refused_by_http_server(server):
    """The premise: the full link of 7,808 CJK characters is a 70 KB request line, and http.server says 414."""
    url = server.url("/web/index.html?text=" + quote_plus(CJK))
    assert len(url) > 65536
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=30)
    assert e.value.code == 414


def test_a_text_too_long_for_a_link_leaves_a_link_that_reloads(fresh):
    page, guard = fresh()
    select_before = draws(page)
    page.click("#tab-heads")
    wait_draw(page, select_before)
    rep = type_text(page, CJK)
    assert rep["n"] > 100
    search = wait_search(page, "s.includes('text_left_out=1')")
    assert "text=" not in search and "tab=heads" in search
    assert len(search) <= MAX_LINK_QUERY + 1                           # "?" + at most MAX_LINK_QUERY characters
    url = page.evaluate("location.href")
    assert len(url) < 8000                                             # the whole request line stays under 8 KB
    response = page.goto(url)                                          # reload from that link: no 414
    assert response is not None and response.status == 200
    wait_js(page, "() => document.body.dataset.state === 'ready'", timeout=180_000)
    rep = report(page)
    assert rep["tab"] == "heads"                                       # the settings came back
    assert page.eval_on_selector("#text", "e => e.value") == DEFAULT_TEXT
    said = notice(page)
    assert "holds the settings but not the text" in said, said


def test_the_page_says_at_once_that_its_link_leaves_the_text_out(fresh):
    """Needs the shell's URL writer to use state.share_query and show LINK_TEXT_LEFT_OUT."""
    page, _ = fresh()
    type_text(page, CJK)
    wait_search(page, "s.includes('text_left_out=1')")
    wait_js(page, "(m) => !document.getElementById('link-notice').hidden && "
                  "document.getElementById('link-notice-text').textContent.includes(m)", LINK_TEXT_LEFT_OUT,
            timeout=20_000)
    type_text(page, "short again")                                     # a text that fits: the notice goes
    wait_search(page, "s.includes('text=short+again')")
    wait_js(page, "() => !document.getElementById('link-notice-text').textContent.includes('too long')")


# ---- 6: a lone surrogate in an input event --------------------------------------------------------------
def test_a_lone_surrogate_in_the_text_redraws_and_updates_the_url(fresh):
    page, guard = fresh()
    before = draws(page)
    page.evaluate("""() => {
        const t = document.getElementById('text');
        t.value = 'abc ' + String.fromCharCode(0xD800) + ' def';
        t.dispatchEvent(new Event('input', {bubbles: true}));
    }""")
    rep = wait_draw(page, before)
    assert rep["tokens"][0] == "[CLS]" and "abc" in rep["tokens"] and "def" in rep["tokens"]
    search = wait_search(page, "s.includes('text=')")
    assert unquote_plus(search.split("text=", 1)[1].split("&", 1)[0]) == "abc \ufffd def"
    page.wait_for_timeout(300)
    assert not guard.page_errors, guard.page_errors
    assert not [m for m in guard.console if m.startswith("error")], guard.console[-10:]
    again = draws(page)                                                # the page still works afterwards
    type_text(page, "The cat sat.")
    assert draws(page) > again
    wait_search(page, "s.includes('text=The+cat+sat.')")


# ---- 9: hand-written links ------------------------------------------------------------------------------
HAND_WRITTEN = ("?text=Hello;world&layer=1_0&head=%D9%A3&temperature=1_0&tab=heads&causal=1&tab=stats"
                "&layer=3&step=%EF%BC%93")


def test_hand_written_links_are_read_like_cpython_reads_them(fresh):
    want, problems = parse_query(HAND_WRITTEN)                         # CPython 3.11 here, 3.8 in the page
    assert want == AppState(text="Hello;world", tab="heads", causal=True)
    assert problems == ["layer=1_0", "head=\u0663", "temperature=1_0",
                        "tab=stats (repeated: the first tab= is used)",
                        "layer=3 (repeated: the first layer= is used)", "step=\uff13"]
    page, _ = fresh(HAND_WRITTEN)
    assert page.eval_on_selector("#text", "e => e.value") == "Hello;world"
    rep = report(page)
    assert (rep["tab"], rep["layer"], rep["head"], rep["temperature"], rep["causal"], rep["step"]) == \
        ("heads", 0, 0, 1.0, True, 1)
    said = notice(page)
    assert said == query_notice(problems), said
    for note in problems:
        assert note in said


def test_a_huge_layer_is_named_exactly(fresh):
    page, _ = fresh("?layer=9999999999&head=99999999999")
    rep = report(page)
    assert rep["layer"] == 5 and rep["head"] == 0
    said = notice(page)
    assert "layer=9999999999 (the model has fewer layers)" in said and "head=99999999999" in said
    assert "e+" not in said and "0000000000000" not in said
