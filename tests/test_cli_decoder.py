"""python -m pyapp with the causal decoder SmolLM2-135M-Instruct: tokenize, attention, next.

``next`` is checked against transformers' top-5 on the same GGUF (the reference model of
tests/test_parity_smollm2.py, reused), and against core/sampling.py for temperature, top-k and top-p.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from bpe_sources import smollm2_backend
from conftest import run_cli as run

from pyapp.core.files import LocalModel
from pyapp.core.sampling import next_token_probs

MODEL = "smollm2-135m"
TEXT = "The capital of France is"


@pytest.fixture(scope="module")
def smollm2(models_dir):
    return LocalModel(MODEL, models_dir)


def test_tokenize_uses_the_shipped_bpe_tokenizer():
    text = "Café naïve 🙂 tokens, the BPE way"
    code, out, err = run(["tokenize", "--model", MODEL, text])
    assert code == 0, err
    doc = json.loads(out)
    ref = smollm2_backend().encode(text, add_special_tokens=False)
    assert doc["ids"] == ref.ids and doc["tokens"] == ref.tokens
    assert [tuple(o) for o in doc["offsets"]] == ref.offsets


def test_attention_is_causal_whatever_the_flag(smollm2):
    code, out, err = run(["attention", "--model", MODEL, "--layer", "29", TEXT])
    assert code == 0, err
    att = np.array(json.loads(out)["layers"][0]["attention"])
    n = len(json.loads(out)["tokens"])
    assert att.shape == (9, n, n)
    assert np.all(att[:, np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]] == 0.0)  # never looks ahead
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)
    _, again, _ = run(["attention", "--model", MODEL, "--layer", "29", "--causal", TEXT])
    assert json.loads(again)["layers"] == json.loads(out)["layers"]  # the mask is part of the model
    ids = smollm2.tokenizer.encode(TEXT).ids
    smollm2.need(ids, 29)
    np.testing.assert_allclose(att, smollm2.encoder.attentions(ids, [29])[29], atol=1e-7)


@pytest.mark.parity
def test_next_equals_transformers_top5(models_dir):
    from test_parity_smollm2 import load_reference, torch  # skips without torch / transformers / gguf

    model = load_reference()
    code, out, err = run(["next", "--model", MODEL, TEXT])
    assert code == 0, err
    doc = json.loads(out)
    ids = smollm2_backend().encode(TEXT, add_special_tokens=False).ids
    with torch.no_grad():
        ref = model(torch.tensor([ids])).logits[0, -1].double()
    ref_probs = torch.softmax(ref, -1)
    top = torch.argsort(-ref, stable=True)[:5]
    assert [e["id"] for e in doc["next"]] == [int(i) for i in top]
    assert doc["next"][0]["text"] == " Paris"
    # top-k = 5 renormalises the five kept tokens
    kept = ref_probs[top] / ref_probs[top].sum()
    np.testing.assert_allclose([e["probability"] for e in doc["next"]], kept.numpy(), atol=2e-3)


def test_next_follows_core_sampling(smollm2):
    ids = smollm2.tokenizer.encode(TEXT).ids
    smollm2.need(ids, next_token=True)
    logits = smollm2.encoder.next_token_logits(ids)
    for t, k, p in ((1.0, 5, 1.0), (0.7, 20, 0.9), (2.0, 3, 1.0), (1e-30, 5, 1.0), (1e30, 4, 1.0)):
        code, out, err = run(["next", "--model", MODEL, "--temperature", repr(t), "--top-k", str(k),
                              "--top-p", repr(p), TEXT])
        assert code == 0, err
        doc = json.loads(out)
        probs = next_token_probs(logits, t, k, p)
        kept = np.flatnonzero(probs)
        assert sorted(e["id"] for e in doc["next"]) == sorted(int(i) for i in kept)
        got = [e["probability"] for e in doc["next"]]
        assert got == sorted(got, reverse=True) and all(np.isfinite(got))
        np.testing.assert_allclose(got, [probs[e["id"]] for e in doc["next"]], rtol=0, atol=0)
        assert all(e["text"] == smollm2.tokenizer.decode([e["id"]]) for e in doc["next"])
        assert (doc["temperature"], doc["top_k"], doc["top_p"]) == (t, k, p)
    one = json.loads(run(["next", "--model", MODEL, "--temperature", "1e-30", TEXT])[1])["next"]
    assert len(one) == 1 and one[0]["probability"] == 1.0  # T -> 0: greedy, and no NaN


def test_next_reads_stdin_lines_and_jsonl():
    code, out, err = run(["next", "--model", MODEL, "--top-k", "2", "-"], stdin="Hello\nOne, two,\n")
    assert code == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    assert [d["text"] for d in docs] == ["Hello", "One, two,"] and all(len(d["next"]) == 2 for d in docs)
    code, out, _ = run(["next", "--model", MODEL, "--jsonl", "-"], stdin='"two\\nlines"\n')
    assert code == 0 and json.loads(out)["text"] == "two\nlines"


@pytest.mark.parametrize("argv, says", [
    (["next", TEXT], "encoder"),                                       # the default model is MiniLM
    (["next", "--model", "demo-tiny", TEXT], "no next-token head"),
    (["next", "--model", MODEL, ""], "no tokens"),
    (["next", "--model", MODEL, "--top-k", "0", TEXT], "--top-k"),
    (["next", "--model", MODEL, "--top-k", "49153", TEXT], "--top-k"),
    (["next", "--model", MODEL, "--top-p", "0", TEXT], "--top-p"),
    (["next", "--model", MODEL, "--top-p", "nan", TEXT], "--top-p"),
    (["next", "--model", MODEL, "--top-p", "1.5", TEXT], "--top-p"),
    (["next", "--model", MODEL, "--temperature", "0", TEXT], "--temperature"),
    (["next", "--model", MODEL, "--temperature", "nan", TEXT], "--temperature"),
    (["next", "--model", "gpt2", TEXT], "not built"),
    (["next", "--model", "nope", TEXT], "unknown model"),
])
def test_next_user_errors_exit_2_with_one_line(argv, says):
    code, out, err = run(argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and says in err, err
