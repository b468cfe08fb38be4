"""GPT-2 architecture: a randomly initialised GPT2LMHeadModel made here (no GPT-2 weights are reachable),
extracted by the script (float32) and computed from its files: every layer's attention within 1e-5,
hidden states, next-token logits and top-5."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from pyapp.core.files import LocalModel
from pyapp.core.sampling import next_token_probs, top_tokens

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

LAYERS = 3


def tiny_gpt2(ckpt, n_layer: int = LAYERS):
    """A small random GPT-2 checkpoint with a byte-level BPE tokenizer (the model's own vocab size)."""
    config = transformers.GPT2Config(vocab_size=320, n_positions=96, n_embd=64, n_layer=n_layer, n_head=4,
                                     bos_token_id=0, eos_token_id=0, initializer_range=0.2,
                                     attn_implementation="eager")
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(ckpt)
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.ByteLevelBPETokenizer()
    tok.train_from_iterator(["the cat sat on the mat because it was tired " * 20], vocab_size=320,
                            special_tokens=["<|endoftext|>"])
    tok.save(str(ckpt / "tokenizer.json"))
    return model


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpt2")
    ckpt, models = tmp / "ckpt", tmp / "models"
    model = tiny_gpt2(ckpt)
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "extract_model_weights.py"), str(ckpt),
                        "--id", "gpt2", "--models-dir", str(models), "--float32"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return model, str(models)


@pytest.mark.parity
def test_gpt2_every_layer_hidden_states_and_next_token(gpt2):
    model, models = gpt2
    local = LocalModel("gpt2", models)
    e = local.entry
    assert (e.architecture, e.n_layers, e.n_heads, e.d_k, e.tokenizer_kind, e.tied_embeddings) == \
        ("gpt2", LAYERS, 4, 16, "bpe", True)
    rng = np.random.RandomState(0)
    worst = worst_logit = 0.0
    for n in (1, 5, 17, 96):
        ids = [int(i) for i in rng.randint(0, 320, size=n)]
        local.need(ids, next_token=True)
        ours = local.encoder.attentions(ids, range(LAYERS))
        with torch.no_grad():
            ref = model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
        for layer in range(LAYERS):
            worst = max(worst, float(np.abs(ours[layer] - ref.attentions[layer][0].numpy()).max()))
            np.testing.assert_allclose(local.encoder.layer_input(ids, layer), ref.hidden_states[layer][0],
                                       atol=1e-4)
        logits = local.encoder.next_token_logits(ids)
        ref_logits = ref.logits[0, -1].numpy()
        worst_logit = max(worst_logit, float(np.abs(logits - ref_logits).max()))
        assert [i for i, _ in top_tokens(next_token_probs(logits), 5)] == \
            [int(i) for i in np.argsort(-ref_logits, kind="stable")[:5]]
        trace = local.encoder.trace(ids, LAYERS - 1)
        assert trace.causal and trace.q_unrotated is None and trace.kv_heads == 4
        assert np.all(np.triu(trace.probs, 1) == 0)  # the causal mask is part of the model
    print(f"random GPT-2: max |attention diff| {worst:.1e}, max |logit diff| {worst_logit:.1e}")
    assert worst <= 1e-5 and worst_logit <= 1e-4
    assert float(np.abs(ref.attentions[0][0, :, -1].numpy() - 1 / 96).max()) > 0.01  # not uniform: a real test


def test_causal_false_is_ignored_by_decoders(gpt2):
    _, models = gpt2
    local = LocalModel("gpt2", models)
    ids = [5, 6, 7, 8]
    local.need(ids, 1, ("qk", "vo"))
    assert local.entry.config.causal_only
    np.testing.assert_array_equal(local.encoder.trace(ids, 1, causal=False).probs,
                                  local.encoder.trace(ids, 1, causal=True).probs)
    t = local.encoder.trace(ids, 1, temperature=2.0)
    assert t.temperature == 2.0 and t.output is not None and np.all(np.triu(t.probs, 1) == 0)


def test_next_token_sampling_helpers():
    logits = np.array([2.0, 1.0, 0.5, 0.0, -1.0], dtype=np.float32)
    p = next_token_probs(logits)
    np.testing.assert_allclose(p, np.exp(logits) / np.exp(logits).sum(), rtol=1e-6)
    assert top_tokens(p, 2)[0][0] == 0 and [i for i, _ in top_tokens(p, 3)] == [0, 1, 2]
    k2 = next_token_probs(logits, top_k=2)
    assert np.count_nonzero(k2) == 2 and abs(float(k2.sum()) - 1) < 1e-6
    np.testing.assert_allclose(k2[:2], np.exp([2.0, 1.0]) / np.exp([2.0, 1.0]).sum(), rtol=1e-6)
    nucleus = next_token_probs(logits, top_p=0.7)  # p = .53 .19 .12 .07 .03: .53 < .7 -> keep 2
    assert np.count_nonzero(nucleus) == 2
    cold = next_token_probs(logits, temperature=0.01)
    assert cold[0] > 0.999
    with pytest.raises(ValueError):
        next_token_probs(logits, top_p=0.0)
