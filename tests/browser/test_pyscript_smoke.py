"""Smoke test of the real runtime path: the unmodified page with @pyscript/core 0.7.31 and Pyodide 314 from
npm, served locally under their CDN URLs (so the page's Subresource Integrity hashes are checked for real).

Offline there is no numpy wheel (the npm pyodide package is core only): PyScript parses pyscript.toml,
starts Python, fetches the [files], then fails to install packages -- and the page must say so clearly
instead of hanging.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from helpers import PYSCRIPT_CDN, ROOT, wait_js

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
    assert any(u.endswith("/pyapp/app/session.py") for u in fetched)
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
    # ... and nothing more: injected inline script and a request to another host are refused by the CSP itself
    # (an off-host request that got past it would also land in guard.offhost and fail the test).
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';
                             document.body.appendChild(s); }""")
    page.evaluate("() => fetch('https://example.org/x.json').catch(() => null)")
    wait_js(page, "() => window.__csp.length >= 2")
    violations = page.evaluate("window.__csp")
    assert page.evaluate("window.__inline") is None
    assert any(v.startswith("script-src") and v.endswith("inline") for v in violations), violations
    assert any(v.startswith("connect-src") and "example.org" in v for v in violations), violations
    guard.check()
    page.context.close()


def test_content_security_policy_allows_only_what_the_page_needs():
    html = (ROOT / "web" / "index.html").read_text(encoding="utf-8")
    metas = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert len(metas) == 1
    policy = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in metas[0].split(";")) if d}
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["form-action"] == ["'none'"]
    for directive in ("script-src", "connect-src", "style-src"):
        sources = policy[directive]
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources and "*" not in sources
        assert set(sources) <= {"'self'", "https://cdn.jsdelivr.net", "'wasm-unsafe-eval'"}, (directive, sources)


def test_pyscript_cdn_tags_are_pinned_with_integrity():
    """Every CDN tag names an exact @pyscript/core version and carries the sha384 of that release's file (the
    npm copy the smoke test serves is the same release, so the browser checks the hash for real)."""
    html = (ROOT / "web" / "index.html").read_text(encoding="utf-8")
    tags = re.findall(r'<(?:script|link)[^>]*https://cdn\.jsdelivr\.net[^>]*>', html)
    assert len(tags) == 2, tags
    for tag in tags:
        url = re.search(r'(?:src|href)="([^"]+)"', tag).group(1)
        assert url.startswith(PYSCRIPT_CDN), url
        local = ROOT / "node_modules" / "@pyscript" / "core" / "dist" / url.rsplit("/", 1)[1]
        digest = base64.b64encode(hashlib.sha384(local.read_bytes()).digest()).decode()
        assert 'integrity="sha384-%s"' % digest in tag and 'crossorigin="anonymous"' in tag, tag


def test_tampered_pyscript_module_is_refused(new_page, server):
    """Subresource Integrity is enforced: a modified core.js never runs, and the page says Python did not load."""
    page, guard = new_page("pyscript")
    ran = []

    def tampered(route):
        body = (ROOT / "node_modules" / "@pyscript" / "core" / "dist" / "core.js").read_bytes()
        ran.append(1)
        route.fulfill(status=200, content_type="text/javascript", headers={"Access-Control-Allow-Origin": "*"},
                      body=body + b"\n// tampered\n")

    page.route(PYSCRIPT_CDN + "core.js", tampered)
    page.goto(server.url("/web/index.html"))
    wait_js(page, "() => document.body.dataset.state !== 'loading'", timeout=60_000)
    assert ran and page.evaluate("document.body.dataset.state") == "error"
    msg = page.text_content("#status-text")
    assert msg.startswith("Could not load the Python runtime") and "reload" in msg, msg
    assert not [m for m in guard.console if "Loading" in m and "interpreter" in m]
    guard.check()
    page.context.close()
