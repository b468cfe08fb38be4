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
