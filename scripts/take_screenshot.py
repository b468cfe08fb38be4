"""Take the README's screenshot (docs/screenshot.png) of the real app in headless Chromium.

    .venv/bin/python scripts/take_screenshot.py [--out docs/screenshot.png] [--query "?tab=steps&step=4"]
                                                [--width 1280] [--height 800] [--scale 2]

It uses the browser tests' harness (tests/browser/conftest.py): the repository served on 127.0.0.1, Debian's
Chromium driven by Playwright, and the PyScript CDN module replaced by tests/browser/bootstrap.js, which
boots the page's own web/main.py in Pyodide 0.17.1 from node_modules; no request leaves 127.0.0.1 (the
script fails if one tries). It waits for the app's ready state, takes a full-page screenshot and, when
`pngquant` is on PATH (Debian: apt-get install pngquant), stores it as a 256-colour PNG (about 130 KB
instead of 320 KB at scale 2). Needs the environment `bash scripts/test.sh` sets up.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "browser" / "conftest.py"


def _harness():
    """tests/browser/conftest.py (Server, router, readiness) loaded as a plain module."""
    sys.path.insert(0, str(HARNESS.parent))  # its `from helpers import ...`
    spec = importlib.util.spec_from_file_location("browser_harness", HARNESS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def screenshot(out: Path, query: str, width: int, height: int, scale: float) -> None:
    from playwright.sync_api import sync_playwright

    h = _harness()
    server = h.Server(ROOT)
    guard = h.Guard()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=h.CHROMIUM, args=h.CHROMIUM_ARGS, headless=True)
            # As the harness's new_page("pyodide"): Pyodide 0.17's JS bridge needs 'unsafe-eval', which the
            # page's CSP (written for the modern runtime) forbids.
            context = browser.new_context(viewport={"width": width, "height": height},
                                          device_scale_factor=scale, bypass_csp=True)
            context.add_init_script(h._STRIP_SRI)
            context.route("**/*", h._router(server, "pyodide", guard))
            page = context.new_page()
            page.on("console", lambda m: guard.console.append("%s: %s" % (m.type, m.text)))
            page.on("pageerror", lambda e: guard.page_errors.append(str(e)))
            page.goto(server.url("/web/index.html" + query))
            h.wait_ready(page, guard)
            page.wait_for_timeout(500)  # the first draw after "ready", and web fonts
            page.screenshot(path=str(out), full_page=True)
            browser.close()
        guard.check()
        if guard.page_errors:
            raise SystemExit("the page reported errors: %s" % guard.page_errors)
    finally:
        server.close()


def compress(png: Path) -> bool:
    """Palette-compress `png` in place with pngquant; False when pngquant is not installed."""
    exe = shutil.which("pngquant")
    if not exe:
        return False
    subprocess.run([exe, "--quality", "85-98", "--speed", "1", "--strip", "--force", "--output", str(png),
                    str(png)], check=True)
    return True


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png", help="PNG to write")
    ap.add_argument("--query", default="", help='page state as a URL query, e.g. "?tab=heads&layer=2"')
    ap.add_argument("--width", type=int, default=1280, help="viewport width in CSS pixels")
    ap.add_argument("--height", type=int, default=800, help="viewport height in CSS pixels")
    ap.add_argument("--scale", type=float, default=2, help="device pixels per CSS pixel")
    args = ap.parse_args(argv)
    if args.query and not args.query.startswith("?"):
        args.query = "?" + args.query
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "shot.png"
        screenshot(shot, args.query, args.width, args.height, args.scale)
        packed = compress(shot)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, args.out)
    print("wrote %s (%d KB%s)" % (args.out, args.out.stat().st_size // 1024,
                                  "" if packed else "; install pngquant for a smaller file"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
