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
addEventListener("py:progress", (e) => window.__stages.push(String(e.detail)));
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
    # SRI held: the PyScript module and stylesheet were served from npm and accepted.
    assert any(u.endswith("@pyscript/core@0.7.31/dist/core.js") for u in fetched)
    hidden = page.evaluate("""() => { const e = document.createElement('mpy-config'); document.body.appendChild(e);
                                      const d = getComputedStyle(e).display; e.remove(); return d; }""")
    assert hidden == "none", "core.css (with its integrity hash) did not apply"
    guard.check()
    page.context.close()
