"""ruff over everything Python in the repository, with the project's configuration (target py38)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINTED = ["pyapp", "web", "scripts", "tests"]


def ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                           *args], cwd=str(cwd), capture_output=True, text=True, timeout=300)


def test_ruff_passes_on_the_repository():
    r = ruff(*[p for p in LINTED if (ROOT / p).exists()])
    assert r.returncode == 0, "ruff found problems (fix them or run `ruff check --fix`):\n" + r.stdout + r.stderr


def test_ruff_config_rejects_python_39_plus_code_in_the_package(tmp_path):
    """The same configuration, on a package module using 3.10 syntax without the future import, fails."""
    pkg = tmp_path / "pyapp"
    pkg.mkdir()
    (pkg / "bad.py").write_text("import os\n\n\ndef f(x):\n    match x:\n        case 1:\n            return 2\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    r = ruff("pyapp", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Cannot use `match` statement on Python 3.8" in r.stdout
    assert "F401" in r.stdout  # unused import
    assert "I002" in r.stdout  # missing `from __future__ import annotations`
