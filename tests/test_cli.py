"""python -m pyapp: models, tokenize, attention; stdin / --jsonl; exit code 2 with one stderr line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, run_cli

FOX = "The quick brown fox jumps over the lazy dog."


run = run_cli


def test_models_lists_the_catalogue():
    code, out, _ = run(["models"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[0] == "minilm-l6" and "6 x 12" in lines[0] and lines[0].endswith(" built")
    assert any(line.startswith("distilbert ") and line.endswith("not built") for line in lines)
    assert any(line.startswith("demo-tiny") and "2 x 4" in line for line in lines)


def test_tokenize(hf_tokenizer):
    code, out, _ = run(["tokenize", FOX])
    doc = json.loads(out)
    ref = hf_tokenizer.encode(FOX)
    assert code == 0 and set(doc) == {"text", "tokens", "ids", "offsets"}
    assert doc["ids"] == ref.ids and doc["tokens"] == ref.tokens and doc["text"] == FOX
    assert [tuple(o) for o in doc["offsets"]] == ref.offsets


def test_stdin_and_jsonl():
    code, out, _ = run(["tokenize", "-"], stdin="a b\n\nc\n")
    docs = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [d["text"] for d in docs] == ["a b", "", "c"]
    assert docs[1]["tokens"] == ["[CLS]", "[SEP]"]
    code, out, _ = run(["attention", "--jsonl", "-"], stdin='"two\\nlines"\n"x"\n')
    docs = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [d["text"] for d in docs] == ["two\nlines", "x"]
    assert docs[0]["tokens"] == ["[CLS]", "two", "lines", "[SEP]"]


def test_attention_all_layers_matches_the_encoder(models_dir):
    code, out, _ = run(["attention", "--all-layers", FOX])
    doc = json.loads(out)
    assert code == 0 and set(doc) == {"text", "tokens", "layers"}
    assert [entry["layer"] for entry in doc["layers"]] == list(range(6))
    att = np.array([entry["attention"] for entry in doc["layers"]])
    assert att.shape == (6, 12, 12, 12)
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)
    code, out, _ = run(["attention", "--layer", "3", FOX])
    np.testing.assert_allclose(np.array(json.loads(out)["layers"][0]["attention"]), att[3], atol=0)


def test_temperature_and_causal():
    _, base, _ = run(["attention", "--layer", "1", FOX])
    _, hot, _ = run(["attention", "--layer", "1", "--temperature", "5", FOX])
    _, causal, _ = run(["attention", "--layer", "1", "--causal", FOX])
    base, hot, causal = (np.array(json.loads(x)["layers"][0]["attention"]) for x in (base, hot, causal))
    assert hot.max() < base.max()  # flatter
    assert np.all(np.triu(causal, 1) == 0) and not np.allclose(causal, base)


def test_empty_text_and_other_models():
    code, out, _ = run(["attention", ""])
    doc = json.loads(out)
    assert code == 0 and doc["tokens"] == ["[CLS]", "[SEP]"]
    assert np.array(doc["layers"][0]["attention"]).shape == (12, 2, 2)
    code, out, _ = run(["attention", "--model", "minilm-l6-2head", FOX])
    assert code == 0 and np.array(json.loads(out)["layers"][0]["attention"]).shape == (2, 12, 12)
    code, out, _ = run(["attention", "--model", "demo-tiny", "--all-layers", "hi"])
    assert code == 0 and len(json.loads(out)["layers"]) == 2


@pytest.mark.parametrize("argv, stdin, says", [
    (["attention", "--model", "nope", "x"], "", "unknown model"),
    (["attention", "--layer", "6", "x"], "", "out of range"),
    (["attention", "--layer", "-1", "x"], "", "out of range"),
    (["attention", "--temperature", "0", "x"], "", "temperature"),
    (["attention", "--temperature", "-2", "x"], "", "temperature"),
    (["attention", "--model", "distilbert", "x"], "", "not built"),
    (["tokenize", "--jsonl", "-"], "not json\n", "JSON string"),
    (["tokenize", "--jsonl", "-"], "[1]\n", "JSON string"),
    (["attention", "--models-dir", "/nonexistent", "x"], "", "catalogue"),
    (["bogus"], "", "invalid choice"),
    (["attention", "--layer", "x", "y"], "", "invalid int"),
])
def test_bad_input_exits_2_with_one_line(argv, stdin, says):
    code, _, err = run(argv, stdin)
    assert code == 2 and err.count("\n") == 1 and says in err and "Traceback" not in err


def test_unreadable_weight_file_exits_2(tmp_path, models_dir):
    import shutil

    shutil.copy(f"{models_dir}/index.json", tmp_path / "index.json")
    (tmp_path / "minilm-l6").mkdir()
    shutil.copy(f"{models_dir}/minilm-l6/tokenizer.json", tmp_path / "minilm-l6" / "tokenizer.json")
    code, _, err = run(["attention", "--models-dir", str(tmp_path), FOX])
    assert code == 2 and err.count("\n") == 1 and "'minilm-l6'" in err and "is missing" in err


def test_python_dash_m_from_the_repo_root():
    res = subprocess.run([sys.executable, "-m", "pyapp", "attention", "--all-layers", "-"], cwd=ROOT,
                         input=FOX + "\n" + "second line\n", capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    docs = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(docs) == 2 and len(docs[1]["layers"]) == 6
    bad = subprocess.run([sys.executable, "-m", "pyapp", "attention", "--layer", "99", "x"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stdout == ""


# ---- issue 10: bad input never gives a traceback or a NaN -------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["attention", "--temperature", "1e-40", FOX], ["attention", "--temperature", "1e39", "--causal", FOX],
    ["attention", "--temperature", "nan", FOX], ["attention", "--temperature", "inf", FOX],
    ["attention", "--temperature", "1e-31", FOX], ["attention", "--temperature", "2e30", FOX],
    ["render", "--temperature", "1e-40", "--out", "{out}", FOX],
    ["render", "--temperature", "1e39", "--causal", "--out", "{out}", FOX],
    ["render", "--temperature", "nan", "--out", "{out}", FOX]])
def test_a_temperature_that_would_make_the_softmax_nan_exits_2(argv, tmp_path):
    from pyapp.app.state import T_FINITE_MAX, T_FINITE_MIN

    argv = [a.replace("{out}", str(tmp_path / "x.png")) for a in argv]
    code, out, err = run(argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert "--temperature must be between %g and %g" % (T_FINITE_MIN, T_FINITE_MAX) in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("model", ["minilm-l6", "demo-tiny", "minilm-l6-2head"])
def test_the_temperature_bounds_keep_every_softmax_finite(model):
    """The CLI's T range was chosen from this measurement: at both ends every layer's softmax is finite
    (1e-37 and, with the causal mask, 1e39 give NaN: see state.T_FINITE_MIN)."""
    from pyapp.app.state import T_FINITE_MAX, T_FINITE_MIN

    text = "The animal didn't cross the street because it was too tired. " * 3
    for t in (T_FINITE_MIN, T_FINITE_MAX):
        for causal in ([], ["--causal"]):
            code, out, err = run(["attention", "--all-layers", "--model", model, "--temperature", repr(t), text]
                                 + causal)
            assert code == 0, err
            att = np.array([entry["attention"] for entry in json.loads(out)["layers"]])
            assert np.all(np.isfinite(att)) and "NaN" not in out
            np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)
            if t == T_FINITE_MAX and not causal:                          # flat: every row is uniform
                np.testing.assert_allclose(att, 1.0 / att.shape[-1], atol=1e-5)
            if t == T_FINITE_MIN:                                         # sharp: every row is one-hot
                assert np.all(att.max(-1) > 0.49)


def test_render_at_the_temperature_bounds(tmp_path):
    pytest.importorskip("PIL")
    from pyapp.app.state import T_FINITE_MAX, T_FINITE_MIN

    for t in (T_FINITE_MIN, T_FINITE_MAX):
        out_png = tmp_path / ("t%g.png" % t)
        code, out, err = run(["render", "--view", "step:7", "--causal", "--temperature", repr(t), "--out",
                              str(out_png), FOX])
        assert code == 0 and out.startswith("wrote ") and out_png.stat().st_size > 0, err


def test_a_non_finite_softmax_is_never_printed():
    from pyapp.cli import UsageError, check_finite

    check_finite(np.full((2, 3, 3), 1 / 3, dtype=np.float32), 1.0)
    for bad in (np.nan, np.inf):
        with pytest.raises(UsageError, match="overflows at --temperature"):
            check_finite(np.array([[0.5, bad]], dtype=np.float32), 1e-20)


@pytest.mark.parametrize("d_model", ["100000000", "4096", "0", "-8"])
def test_a_synthetic_model_too_large_to_allocate_exits_2(d_model, tmp_path):
    code, out, err = run(["render", "--model", "random", "--d-model", d_model, "--heads", "1", "--out",
                          str(tmp_path / "x.png"), "hi"])
    assert code == 2 and out == "" and err.count("\n") == 1 and "--d-model must be 1..2048" in err


def test_the_largest_synthetic_model_renders(tmp_path):
    pytest.importorskip("PIL")
    code, out, err = run(["render", "--model", "random", "--d-model", "2048", "--heads", "8", "--out",
                          str(tmp_path / "x.png"), "hi"])
    assert code == 0, err


@pytest.mark.parametrize("argv, stdin, says", [
    (["tokenize", "--jsonl", "-"], '"a\\ud800b"\n', "input 1 holds a lone UTF-16 surrogate U+D800 at character 1"),
    (["tokenize", "--jsonl", '"\\udfff"'], "", "TEXT holds a lone UTF-16 surrogate U+DFFF"),
    (["attention", "-"], "ok\nab\udcffcd\n", "input 2 is not valid UTF-8 text: byte 0xff at character 2"),
    (["tokenize", "x\udce9"], "", "TEXT is not valid UTF-8 text: byte 0xe9 at character 1")])
def test_text_that_is_not_unicode_exits_2(argv, stdin, says):
    code, _, err = run(argv, stdin)
    assert code == 2 and err.count("\n") == 1 and says in err and "Traceback" not in err


@pytest.mark.parametrize("env", [{"LC_ALL": "C.UTF-8"}, {"PYTHONIOENCODING": "utf-8:strict"}])
@pytest.mark.parametrize("argv", [["tokenize", "-"], ["attention", "-"], ["render", "--out", "{out}", "-"]])
def test_invalid_utf8_on_stdin_exits_2(argv, env, tmp_path):
    """C.UTF-8 hands undecodable bytes over as surrogates; a strict UTF-8 stdin raises: both are one line."""
    import os

    argv = [a.replace("{out}", str(tmp_path / "x.png")) for a in argv]
    res = subprocess.run([sys.executable, "-m", "pyapp"] + argv, cwd=ROOT, input=b"ab\xffcd\n",
                         capture_output=True, timeout=120, env=dict(os.environ, **env))
    err = res.stderr.decode("utf-8")
    assert res.returncode == 2 and res.stdout == b"" and err.count("\n") == 1, err
    assert err.startswith("python -m pyapp: error: ") and "is not valid UTF-8 text: byte 0xff" in err
    assert not (tmp_path / "x.png").exists()


def test_invalid_utf8_in_argv_exits_2():
    import os

    res = subprocess.run([os.fsencode(sys.executable), b"-m", b"pyapp", b"attention", b"caf\xe9"], cwd=ROOT,
                         capture_output=True, timeout=120)
    err = res.stderr.decode("utf-8")
    assert res.returncode == 2 and res.stdout == b"" and err.count("\n") == 1
    assert "TEXT is not valid UTF-8 text: byte 0xe9 at character 3" in err


BLOCK_PIL = """
import runpy, sys

class NoPillow:
    def find_spec(self, name, path=None, target=None):
        if name == "PIL" or name.startswith("PIL."):
            raise ModuleNotFoundError("No module named %r" % name, name=name)
        return None

sys.meta_path.insert(0, NoPillow())
sys.argv = ["pyapp"] + sys.argv[1:]
runpy.run_module("pyapp", run_name="__main__", alter_sys=True)
"""


def test_render_without_pillow_says_how_to_get_it(tmp_path):
    res = subprocess.run([sys.executable, "-c", BLOCK_PIL, "render", "--out", str(tmp_path / "x.png"), FOX],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and res.stdout == "" and res.stderr.count("\n") == 1, res.stderr
    assert 'needs Pillow' in res.stderr and 'pip install "mhsa-visualizer[render]"' in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "x.png").exists()
    ok = subprocess.run([sys.executable, "-c", BLOCK_PIL, "attention", "x"], cwd=ROOT, capture_output=True,
                        text=True, timeout=120)
    assert ok.returncode == 0 and json.loads(ok.stdout)["tokens"] == ["[CLS]", "x", "[SEP]"]  # needs no Pillow


def test_the_distribution_is_named_for_the_project():
    import re
    from pathlib import Path

    from pyapp.raster import DIST_NAME, PILLOW_HINT

    toml = (Path(ROOT) / "pyproject.toml").read_text(encoding="utf-8")
    project = toml.split("[project]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^name = "mhsa-visualizer"', project, re.M) and DIST_NAME == "mhsa-visualizer"
    assert re.search(r'^render = \["pillow>=9"\]', toml, re.M)
    assert PILLOW_HINT == 'pip install "mhsa-visualizer[render]"'
    for path in ["README.md", "DEVELOPERS.md", "scripts/test.sh", ".github/workflows/pages.yml"]:
        text = (Path(ROOT) / path).read_text(encoding="utf-8")
        assert not re.search(r"pip install (-e )?pyapp\b|pyapp==", text), path
