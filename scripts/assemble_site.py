"""Assemble the static site that GitHub Pages serves (the Pages workflow runs exactly this).

    python scripts/assemble_site.py --out _site [--force]

The output folder mirrors the repository layout the page expects, and holds only what the browser
fetches:

    index.html          the root page (redirects to web/)
    web/                the page, its styles and scripts, web/main.py and web/pyscript.toml
    pyapp/...           the Python modules listed in web/pyscript.toml's [files] table
    models/index.json   the catalogue, and every file of every built model it lists
    .nojekyll           serve the files as they are (no Jekyll processing on GitHub Pages)

It fails (exit 1, one clear message) when a file that the page config or the catalogue names is missing
or does not match the catalogue's size and sha256, so a broken site is never deployed.
"""

from __future__ import annotations

import argparse
import hashlib
import posixpath
import shutil
import sys
from pathlib import Path
from typing import Dict, Iterable, List

ROOT = Path(__file__).resolve().parent.parent
SKIP_NAMES = {"__pycache__", ".DS_Store"}
SKIP_SUFFIXES = {".pyc", ".pyo"}

try:  # Python >= 3.11
    import tomllib as _toml
except ImportError:  # pragma: no cover - Python < 3.11
    import tomli as _toml  # type: ignore[no-redef]


class SiteError(Exception):
    """The site cannot be assembled: a referenced file is missing or corrupt."""


def pyscript_files(root: Path) -> Dict[str, str]:
    """[files] of web/pyscript.toml as {repository-relative source path: destination in Pyodide's FS}.

    Sources are URLs relative to the page (web/index.html); PyScript's ``{NAME}`` placeholders (keys
    that are exactly ``{NAME}``) are expanded. Remote sources (http/https) are not part of the site.
    """
    config = root / "web" / "pyscript.toml"
    with config.open("rb") as f:
        table = _toml.load(f).get("files", {})
    placeholders = {k: v for k, v in table.items() if k.startswith("{") and k.endswith("}")}

    def expand(s: str) -> str:
        for name, value in placeholders.items():
            s = s.replace(name, value)
        return s

    out = {}
    for src, dest in table.items():
        if src in placeholders:
            continue
        src = expand(src)
        if "://" in src:
            continue
        rel = posixpath.normpath(posixpath.join("web", src))
        if rel.startswith("../") or rel == "..":
            raise SiteError("web/pyscript.toml names %r, outside the site" % src)
        out[rel] = expand(dest)
    return out


def catalogue_files(root: Path) -> List[dict]:
    """Every file the catalogue lists for its built models: {path (repo-relative), size, sha256}."""
    sys.path.insert(0, str(root))
    try:
        from pyapp.core.catalogue import load_catalogue
    finally:
        sys.path.pop(0)
    index = root / "models" / "index.json"
    if not index.is_file():
        raise SiteError("models/index.json is missing: the site has no model catalogue")
    try:
        cat = load_catalogue(index.read_bytes())
    except ValueError as e:  # CatalogueError
        raise SiteError(str(e)) from None
    out = {}
    for model in cat:
        if not model.built:
            continue
        files = model.all_files()
        if model.tokenizer_path:
            files.append(model.tokenizer_file())
        for f in files:
            out["models/" + f.path] = {"path": "models/" + f.path, "size": f.size, "sha256": f.sha256,
                                       "model": model.id}
    return sorted(out.values(), key=lambda d: d["path"])


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _copy(root: Path, out: Path, rel: str) -> None:
    src = root / rel
    if not src.is_file():
        raise SiteError("%s is referenced by the site but does not exist" % rel)
    dest = out / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)


def _tree(root: Path, rel: str) -> Iterable[str]:
    for p in sorted((root / rel).rglob("*")):
        parts = set(p.relative_to(root).parts)
        if p.is_file() and not parts & SKIP_NAMES and p.suffix not in SKIP_SUFFIXES:
            yield p.relative_to(root).as_posix()


def assemble(out: Path, root: Path = ROOT, force: bool = False) -> List[str]:
    """Build the site into ``out``; return the repository-relative paths copied."""
    out = out.resolve()
    if out == root.resolve() or root.resolve().is_relative_to(out):
        raise SiteError("--out must not be the repository or one of its parents")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise SiteError("%s exists and is not empty (use --force to replace it)" % out)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)

    copied = ["index.html"]
    copied += list(_tree(root, "web"))
    copied += [rel for rel in pyscript_files(root) if not rel.startswith("web/")]
    copied.append("models/index.json")
    models = catalogue_files(root)
    for f in models:
        path = root / f["path"]
        if not path.is_file():
            raise SiteError("model %s: %s is listed in models/index.json but missing (build it with "
                            "scripts/extract_model_weights.py)" % (f["model"], f["path"]))
        if path.stat().st_size != f["size"] or sha256_of(path) != f["sha256"]:
            raise SiteError("model %s: %s does not match the size/sha256 in models/index.json"
                            % (f["model"], f["path"]))
        copied.append(f["path"])
    copied = sorted(set(copied))
    for rel in copied:
        _copy(root, out, rel)
    (out / ".nojekyll").write_text("", encoding="utf-8")
    return copied


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output folder (e.g. _site)")
    ap.add_argument("--force", action="store_true", help="replace the output folder if it is not empty")
    args = ap.parse_args(argv)
    try:
        copied = assemble(args.out, ROOT, force=args.force)
    except SiteError as e:
        print("assemble_site: %s" % e, file=sys.stderr)
        return 1
    total = sum((args.out / rel).stat().st_size for rel in copied)
    n_models = sum(1 for rel in copied if rel.startswith("models/"))
    print("assembled %d files (%d under models/, %.1f MB) into %s"
          % (len(copied), n_models, total / 1e6, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
