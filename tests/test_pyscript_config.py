"""web/pyscript.toml, web/index.html and the npm packages they pin stay in sync."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import sync_pyscript_files  # noqa: E402

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

HTML = (ROOT / "web" / "index.html").read_text(encoding="utf-8")
TOML = (ROOT / "web" / "pyscript.toml").read_text(encoding="utf-8")


def _sri(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def test_files_table_lists_every_browser_module():
    assert TOML == sync_pyscript_files.render(), "run: python scripts/sync_pyscript_files.py"
    listed = set(re.findall(r'^"\.\./([^"]+)" = "([^"]+)"$', TOML, re.M))
    for p in (ROOT / "pyapp").rglob("*.py"):
        rel = p.relative_to(ROOT).as_posix()
        if "__pycache__" in rel or rel in sync_pyscript_files.CPYTHON_ONLY:
            continue
        assert (rel, rel) in listed, rel
    assert ("models/index.json", "models/index.json") in listed
    for src, _ in listed:
        assert (ROOT / src).is_file(), src
    for cpython_only in sync_pyscript_files.CPYTHON_ONLY:
        assert cpython_only not in TOML


def test_toml_parses_and_asks_for_numpy():
    if tomllib is None:
        return
    cfg = tomllib.loads(TOML)
    assert cfg["packages"] == ["numpy"]
    assert all(k.startswith("../") and v == k[3:] for k, v in cfg["files"].items())


def test_sync_script_check_mode():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "sync_pyscript_files.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_pyscript_is_pinned_with_integrity_from_the_npm_package():
    pkg = ROOT / "node_modules" / "@pyscript" / "core"
    version = re.search(r'"version":\s*"([^"]+)"', (pkg / "package.json").read_text()).group(1)
    base = "https://cdn.jsdelivr.net/npm/@pyscript/core@%s/dist/" % version
    js = re.search(r'<script type="module" src="%score\.js" integrity="([^"]+)" crossorigin="anonymous">'
                   % re.escape(base), HTML)
    css = re.search(r'<link rel="stylesheet" href="%score\.css" integrity="([^"]+)" crossorigin="anonymous">'
                    % re.escape(base), HTML)
    assert js and css, "index.html must load @pyscript/core@%s from jsDelivr with SRI" % version
    assert js.group(1) == _sri(pkg / "dist" / "core.js")
    assert css.group(1) == _sri(pkg / "dist" / "core.css")


def test_page_entry_and_security_policy():
    assert '<script type="py" src="./main.py" config="./pyscript.toml"></script>' in HTML
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', HTML).group(1)
    rules = dict((d.split()[0], d.split()[1:]) for d in csp.split(";") if d.strip())
    assert rules["default-src"] == ["'self'"] and rules["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in csp
    for name, sources in rules.items():
        for s in sources:
            assert s in ("'self'", "'none'", "'wasm-unsafe-eval'", "data:", "blob:",
                         "https://cdn.jsdelivr.net"), (name, s)
    assert "innerHTML" not in (ROOT / "web" / "boot.js").read_text()
    main = (ROOT / "web" / "main.py").read_text()
    # the entry starts pyapp's app.main, after importing the shell's modules a few at a time (startup.py)
    assert "from pyapp.browser.startup import start" in main and "asyncio.ensure_future(start())" in main
    startup = (ROOT / "pyapp" / "browser" / "startup.py").read_text()
    assert "from .app import main" in startup and "await main()" in startup
    root = (ROOT / "index.html").read_text()
    assert 'url=web/' in root


def test_no_inline_scripts_or_handlers():
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", HTML), "inline scripts would need CSP exceptions"
    assert not re.search(r"\son[a-z]+=", HTML)
