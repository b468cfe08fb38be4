"""The static site: every local file the page references exists, served exactly as the README says.

The README's serve command (``python -m http.server`` from the repository root) is started for real on
127.0.0.1, and a crawler follows the page from the root ``index.html``: every local href/src in the HTML,
``url(...)`` in CSS, relative imports in JS modules, the PyScript config and its ``[files]`` sources, the
model catalogue and every file of every built model (checked against the catalogue's size and sha256).
Any 404 or mismatch fails. External URLs (the PyScript CDN) are not fetched, only listed, and each must
be pinned to an exact version.

The same crawl then runs against the folder ``scripts/assemble_site.py`` builds for GitHub Pages.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 only, never a proxy

# An exact version in a CDN path: pkg@1.2.3, /v0.26.1/, /releases/2024.1.1/ ...
PINNED = re.compile(r"(?:@|/v?)\d+\.\d+\.\d+(?:[-.][0-9A-Za-z.]+)?(?:/|$)")
URL_ATTRS = {"href", "src", "config", "poster", "data", "action"}
SKIP_SCHEMES = ("data:", "blob:", "mailto:", "javascript:", "tel:", "about:")


# ---------------------------------------------------------------------------------------------------------
# Serving: the README's command
# ---------------------------------------------------------------------------------------------------------
class Server:
    """``python -m http.server`` on 127.0.0.1 with an ephemeral port, run from ``directory``."""

    def __init__(self, directory: Path):
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
            cwd=str(directory), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 40123 (http://...)"
        m = re.search(r"port (\d+)", line)
        if not m:
            self.close()
            raise RuntimeError("http.server did not start: %r" % line)
        self.base = "http://127.0.0.1:%s/" % m.group(1)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def fetch(url: str) -> Tuple[int, bytes]:
    try:
        with OPENER.open(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


# ---------------------------------------------------------------------------------------------------------
# Reference extraction
# ---------------------------------------------------------------------------------------------------------
class RefParser(HTMLParser):
    """Collects URL-valued attributes, meta-refresh targets and PyScript config references."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: List[Tuple[str, str]] = []  # (kind, url)

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        for name in URL_ATTRS & a.keys():
            if tag == "a" and name == "href" and a[name].startswith("#"):
                continue
            kind = "config" if name == "config" else ("html" if tag in ("a", "iframe") else tag)
            self.refs.append((kind, a[name]))
        if "srcset" in a:
            for part in a["srcset"].split(","):
                if part.strip():
                    self.refs.append((tag, part.split()[0]))
        if tag == "meta" and a.get("http-equiv", "").lower() == "refresh":
            m = re.search(r"url\s*=\s*['\"]?([^'\";]+)", a.get("content", ""), re.I)
            if m:
                self.refs.append(("html", m.group(1).strip()))
        if tag == "py-config" and "src" in a:
            self.refs.append(("config", a["src"]))


CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")
JS_IMPORT = re.compile(r"""(?:\bimport\s*(?:[\w*{}\s,]+from\s*)?|\bimport\s*\(\s*)['"](\.{1,2}/[^'"]+)['"]""")


def css_refs(text: str) -> Iterator[str]:
    for m in CSS_URL.finditer(text):
        yield m.group(1) or m.group(2)


# scripts a script starts by URL: workers, service workers (new URL("./x.js", base), new Worker("./x.js"))
JS_URL = re.compile(r"""\bnew\s+(?:URL|Worker)\s*\(\s*['"](\.{1,2}/[^'"]+)['"]""")


def js_refs(text: str) -> Iterator[str]:
    for m in JS_IMPORT.finditer(text):
        yield m.group(1)
    for m in JS_URL.finditer(text):
        yield m.group(1)


def config_refs(text: str) -> Iterator[Tuple[str, str]]:
    """(kind, url) of every file a PyScript TOML config makes the runtime fetch."""
    doc = tomllib.loads(text)
    files = doc.get("files", {})
    placeholders = {k: v for k, v in files.items() if k.startswith("{") and k.endswith("}")}
    for src in files:
        if src in placeholders:
            continue
        for name, value in placeholders.items():
            src = src.replace(name, value)
        yield "config-file", src
    for pkg in doc.get("packages", []):
        if "/" in pkg:  # a wheel URL rather than a package name
            yield "package", pkg
    for section in ("js_modules",):
        for table in doc.get(section, {}).values():
            for url in table:
                yield "js-module", url
    if isinstance(doc.get("interpreter"), str) and "/" in doc["interpreter"]:
        yield "interpreter", doc["interpreter"]


# ---------------------------------------------------------------------------------------------------------
# The crawl
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Crawl:
    base: str
    fetched: Dict[str, int] = field(default_factory=dict)  # site path -> HTTP status
    errors: List[str] = field(default_factory=list)
    external: Dict[str, str] = field(default_factory=dict)  # url -> where it was referenced
    catalogue_files: int = 0

    def path_of(self, url: str) -> str:
        """The site-relative path of a URL (the site may live under a sub-path, as on GitHub Pages)."""
        path, base = urlsplit(url).path, urlsplit(self.base).path
        path = path[len(base):] if path.startswith(base) else path  # outside the site: keeps its leading /
        return path + "index.html" if path == "" or path.endswith("/") else path

    def problems(self) -> List[str]:
        out = list(self.errors)
        out += ["external URL not pinned to an exact version: %s (in %s)" % (u, where)
                for u, where in sorted(self.external.items()) if not PINNED.search(urlsplit(u).path)]
        return out


def crawl(base: str, catalogue_path: str = "models/index.json") -> Crawl:
    c = Crawl(base)
    queue: List[Tuple[str, str, str, str]] = [("html", base, "(start)", base)]  # kind, url, referrer, its url
    seen: Set[str] = set()
    bodies: Dict[str, bytes] = {}
    while queue:
        kind, url, referrer, referrer_url = queue.pop(0)
        url = urldefrag(url)[0]
        if url.startswith(SKIP_SCHEMES) or not url:
            continue
        if urlsplit(url).netloc != urlsplit(base).netloc:
            c.external.setdefault(url, referrer)
            continue
        if url in seen:
            continue
        seen.add(url)
        status, body = fetch(url)
        c.fetched[c.path_of(url)] = status
        if status != 200:
            c.errors.append("HTTP %d for %s (referenced by %s)" % (status, c.path_of(url), referrer))
            continue
        bodies[url] = body
        here = c.path_of(url)
        text = body.decode("utf-8", "replace")
        path = urlsplit(url).path
        if kind == "html" or path.endswith((".html", "/")):
            p = RefParser()
            p.feed(text)
            for k, ref in p.refs:
                queue.append((k, urljoin(url, ref.strip()), here, url))
        elif path.endswith(".css"):
            queue.extend(("css", urljoin(url, r), here, url) for r in css_refs(text))
        elif path.endswith((".js", ".mjs")):
            queue.extend(("script", urljoin(url, r), here, url) for r in js_refs(text))
        elif kind == "config" or path.endswith(".toml"):
            try:
                refs = list(config_refs(text))
            except tomllib.TOMLDecodeError as e:
                c.errors.append("%s is not valid TOML: %s" % (here, e))
                continue
            # PyScript resolves config URLs against the page, not the config file.
            queue.extend((k, urljoin(referrer_url, r), here, url) for k, r in refs)
    _check_catalogue(c, urljoin(base, catalogue_path), seen)
    return c


def _check_catalogue(c: Crawl, index_url: str, seen: Set[str]) -> None:
    from pyapp.core.catalogue import CatalogueError, load_catalogue

    status, body = fetch(index_url)
    c.fetched[c.path_of(index_url)] = status
    if status != 200:
        c.errors.append("HTTP %d for the model catalogue %s" % (status, c.path_of(index_url)))
        return
    try:
        cat = load_catalogue(body)
    except CatalogueError as e:
        c.errors.append(str(e))
        return
    models_url = urljoin(index_url, ".")
    for model in cat:
        if not model.built:
            continue
        entries = model.all_files()
        if model.tokenizer_path:
            entries.append(model.tokenizer_file())
        for f in entries:
            url = urljoin(models_url, f.path)
            if url in seen:
                continue
            seen.add(url)
            status, data = fetch(url)
            c.fetched[c.path_of(url)] = status
            c.catalogue_files += 1
            if status != 200:
                c.errors.append("HTTP %d for %s (model %s, %s)" % (status, c.path_of(url), model.id, f.part))
            elif len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
                c.errors.append("%s does not match models/index.json (model %s: %d bytes, sha256 %s...)"
                                % (c.path_of(url), model.id, len(data), hashlib.sha256(data).hexdigest()[:12]))


def crawl_directory(directory: Path, subpath: str = "") -> Crawl:
    """Serve ``directory`` and crawl the site at ``subpath`` in it (e.g. "mhsa-visualizer/")."""
    server = Server(directory)
    try:
        return crawl(server.base + subpath)
    finally:
        server.close()


def report(c: Crawl) -> str:
    lines = ["fetched %d local files (%d catalogue files)" % (len(c.fetched), c.catalogue_files)]
    lines += ["external (not fetched): %s  <- %s" % (u, w) for u, w in sorted(c.external.items())]
    return "\n".join(lines)


def assert_serves_the_app(c: Crawl) -> None:
    problems = c.problems()
    assert not problems, "\n".join(problems)
    # The crawl reached the app itself, not just a page: the page, its Python entry, its config, the
    # package modules, the catalogue and the weight files of the built models.
    for path in ("index.html", "web/index.html", "web/main.py", "web/pyscript.toml", "models/index.json",
                 "pyapp/__init__.py"):
        assert c.fetched.get(path) == 200, "the crawl never reached %s:\n%s" % (path, report(c))
    assert c.catalogue_files > 0, "no model files were crawled: is any catalogue model built?"
    assert any(u.startswith("https://") for u in c.external), "the page loads no runtime from a CDN?"


# ---------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------
def test_repository_root_serves_every_referenced_file():
    c = crawl_directory(ROOT)
    print(report(c))
    assert_serves_the_app(c)
    # Every pyapp module the PyScript config lists was fetched from the served tree.
    listed = tomllib.loads((ROOT / "web" / "pyscript.toml").read_text(encoding="utf-8"))["files"]
    for src in listed:
        path = posixpath.normpath(posixpath.join("web", src))
        assert c.fetched.get(path) == 200, path


def test_assembled_site_serves_the_app_and_only_what_it_needs(tmp_path):
    """Served under a sub-path, as GitHub Pages serves a project site (https://user.github.io/repo/):
    a reference by absolute path (/web/..., /models/...) would miss the site and fail here."""
    out = tmp_path / "pages" / "mhsa-visualizer"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "assemble_site.py"), "--out", str(out)],
                       cwd=str(ROOT), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / ".nojekyll").is_file()
    c = crawl_directory(out.parent, "mhsa-visualizer/")
    print(report(c))
    assert_serves_the_app(c)
    shipped = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {".nojekyll"}
    unreferenced = sorted(shipped - {p for p, s in c.fetched.items() if s == 200})
    assert not unreferenced, "the site ships files nothing references: %s" % unreferenced
    for forbidden in ("tests", "scripts", "node_modules", "bench", "docs", ".venv"):
        assert not (out / forbidden).exists(), forbidden


def test_assemble_refuses_to_overwrite_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "assemble_site.py"), "--out", str(tmp_path)],
                       cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "not empty" in r.stderr
    assert (tmp_path / "keep.txt").exists()


def _broken_site(root: Path) -> None:
    """A small site with one of each fault the crawler must catch."""
    from pyapp.core.catalogue import catalogue_json

    (root / "web").mkdir()
    (root / "models" / "m").mkdir(parents=True)
    (root / "index.html").write_text('<meta http-equiv="refresh" content="0; url=web/">')
    (root / "web" / "index.html").write_text(
        '<link rel="stylesheet" href="style.css">'
        '<script src="https://cdn.jsdelivr.net/npm/@pyscript/core/dist/core.js" type="module"></script>'
        '<script type="py" src="./main.py" config="./pyscript.toml"></script>')
    (root / "web" / "style.css").write_text("body { background: url('img/missing.png'); }")
    (root / "web" / "main.py").write_text("print('hi')\n")
    (root / "web" / "pyscript.toml").write_text('[files]\n"../pyapp/gone.py" = "pyapp/gone.py"\n')
    good, bad = b'{"ok": 1}', b'{"tampered": 1}'
    (root / "models" / "m" / "tokenizer.json").write_bytes(good)
    (root / "models" / "m" / "layer0.json").write_bytes(bad)
    model = {"id": "m", "architecture": "bert", "d_model": 4, "layers": 1, "heads": 1, "d_k": 4,
             "max_positions": 8, "built": True, "tokenizer": "m/tokenizer.json",
             "files": {"tokenizer": ["m/tokenizer.json", len(good), hashlib.sha256(good).hexdigest()],
                       "layer.0.qk": ["m/layer0.json", len(good), hashlib.sha256(good).hexdigest()],
                       "layer.0.vo": ["m/absent.json", 10, "0" * 64]}}
    (root / "models" / "index.json").write_text(catalogue_json([model]))


def test_crawler_catches_missing_files_corrupt_weights_and_unpinned_cdn(tmp_path):
    _broken_site(tmp_path)
    problems = crawl_directory(tmp_path).problems()
    text = "\n".join(problems)
    assert "HTTP 404 for web/img/missing.png" in text
    assert "HTTP 404 for pyapp/gone.py" in text
    assert "HTTP 404 for models/m/absent.json" in text
    assert "models/m/layer0.json does not match" in text
    assert "not pinned to an exact version: https://cdn.jsdelivr.net/npm/@pyscript/core/dist/core.js" in text
    assert len(problems) == 5, text


def test_crawler_under_a_sub_path_catches_absolute_references(tmp_path):
    site = tmp_path / "repo-name"
    site.mkdir()
    (site / "index.html").write_text('<link rel="stylesheet" href="/style.css"><script src="ok.js"></script>')
    (site / "style.css").write_text("body {}")
    (site / "ok.js").write_text("")
    c = crawl_directory(tmp_path, "repo-name/")
    assert c.fetched.get("ok.js") == 200
    assert "HTTP 404 for /style.css (referenced by index.html)" in c.errors, c.errors


@pytest.mark.parametrize("url, pinned", [
    ("https://cdn.jsdelivr.net/npm/@pyscript/core@0.7.31/dist/core.js", True),
    ("https://cdn.jsdelivr.net/pyodide/v0.26.1/full/pyodide.js", True),
    ("https://pyscript.net/releases/2024.1.1/core.js", True),
    ("https://cdn.jsdelivr.net/npm/@pyscript/core@0/dist/core.js", False),
    ("https://cdn.jsdelivr.net/npm/@pyscript/core@latest/dist/core.js", False),
    ("https://pyscript.net/latest/pyscript.js", False),
])
def test_version_pin_pattern(url, pinned):
    assert bool(PINNED.search(urlsplit(url).path)) is pinned


# ---------------------------------------------------------------------------------------------------------
# The README: its two set-up commands, and the files and models it names
# ---------------------------------------------------------------------------------------------------------
README = ROOT / "README.md"


def _section(text: str, title: str) -> str:
    m = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(title), text, re.S | re.M)
    assert m, "README has no '## %s' section" % title
    return m.group(1)


def test_readme_has_exactly_the_two_setup_commands():
    setup = _section(README.read_text(encoding="utf-8"), "Set-up: two commands")
    blocks = [b.strip() for b in re.findall(r"```\w*\n(.*?)```", setup, re.S)]
    assert blocks == ["python -m http.server 8000", "bash scripts/test.sh"], blocks
    assert "http://localhost:8000/" in setup
    assert (ROOT / "scripts" / "test.sh").is_file() and (ROOT / "index.html").is_file()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/test.sh" in ci


def test_readme_names_only_files_that_exist():
    text = README.read_text(encoding="utf-8")
    named = set(re.findall(r"(?<![\w/.-])((?:scripts|tests|web|pyapp|docs|models|\.github|\.ci)/[\w./-]*\w)", text))
    named |= {m for m in re.findall(r"\]\(([^)#:]+)\)", text)}  # markdown links and images
    missing = sorted(p for p in named if not (ROOT / p).exists() and "<" not in p)
    assert not missing, "README names files that do not exist: %s" % missing


def test_readme_catalogue_table_lists_every_model():
    from pyapp.core.catalogue import load_catalogue

    table = _section(README.read_text(encoding="utf-8"), "Model catalogue")
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([\w.-]+)` \|.*$", table, re.M)}
    cat = load_catalogue((ROOT / "models" / "index.json").read_bytes())
    assert sorted(rows) == sorted(cat.ids())
    for model in cat:
        assert "| %d × %d | %d |" % (model.n_layers, model.n_heads, model.d_model) in rows[model.id], model.id
