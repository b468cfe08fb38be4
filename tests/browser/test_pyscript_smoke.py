"""Smoke test of the real runtime path: the unmodified page with @pyscript/core 0.7.31 and Pyodide 314 from
npm, served locally under their CDN URLs (so the page's Subresource Integrity hashes are checked for real).

Offline there is no numpy wheel (the npm pyodide package is core only): PyScript parses pyscript.toml,
starts Python, fetches the [files], then fails to install packages -- and the page must say so clearly
instead of hanging.
"""

from __future__ import annotations

import pytest
from helpers import wait_js

pytestmark = pytest.mark.browser

RECORD_STAGES = """
window.__stages = [];
window.__csp = [];
addEventListener("py:progress", (e) => window.__stages.push(String(e.detail)));
document.addEventListener("securitypolicyviolation",
                          (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));
"""


def test_pyscript_boots_python_and_reports_missing_numpy(new_page, server):
    page, guard = new_page("pyscript")
    page.context.add_init_script(RECORD_STAGES)
    fetched = []
    page.on("requestfinished", lambda r: fetched.append(r.url))
    page.goto(server.url("/web/index.html"))
    wait_js(page, "() => document.body.dataset.state !== 'loading'", timeout=120_000)
    assert page.evaluate("document.body.dataset.state") == "error"
    stages = page.evaluate("window.__stages")
    assert "Loaded interpreter" in stages, stages        # Python started
    assert "Loaded files" in stages, stages              # pyscript.toml parsed, [files] fetched and written
    assert any(u.endswith("/pyapp/views/session.py") for u in fetched)
    assert any(u.endswith("/models/index.json") for u in fetched)
    msg = page.text_content("#status-text")
    assert msg.startswith("Python started, but its package numpy could not be loaded"), msg
    assert "reload" in msg
    assert "error" in page.get_attribute("#status", "class")
    assert "failed" in page.get_attribute("#loading", "class")
    items = page.eval_on_selector_all("#loading-items li", "els => els.map(e => e.textContent)")
    assert "Python runtime 100%" in items and any(i.startswith("numpy") and not i.endswith("100%") for i in items)
    # SRI held: the PyScript module and stylesheet were served from npm and accepted.
    assert any(u.endswith("@pyscript/core@0.7.31/dist/core.js") for u in fetched)
    hidden = page.evaluate("""() => { const e = document.createElement('mpy-config'); document.body.appendChild(e);
                                      const d = getComputedStyle(e).display; e.remove(); return d; }""")
    assert hidden == "none", "core.css (with its integrity hash) did not apply"
    # The page's Content-Security-Policy let PyScript and modern Pyodide do all of this.
    assert page.evaluate("window.__csp") == []
    assert not [m for m in guard.console if "Content Security Policy" in m]
    guard.check()
    page.context.close()
