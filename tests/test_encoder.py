"""The lazy encoder, temperature as a lens, the causal mask, and the file-free sources."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

from pyapp.core.embeddings import hash_embeddings, random_embeddings, sinusoidal_positions
from pyapp.core.encoder import DictParams, Encoder, ModelConfig
from pyapp.core.files import LocalModel
from pyapp.core.sources import SyntheticSpec, make_source, synthetic_weights

IDS = [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102]


class RecordingParams(DictParams):
    """DictParams that remembers which tensors the encoder read."""

    def __init__(self, tensors):
        super().__init__(tensors)
        self.read = set()

    def tensor(self, name):
        self.read.add(name)
        return super().tensor(name)


def config(n_layers=4):
    return ModelConfig(d_model=32, n_layers=n_layers, n_heads=4, d_k=8, d_ff=64, arch="synthetic",
                       embeddings="hash")


def test_showing_layer_k_computes_nothing_after_k():
    params = RecordingParams(synthetic_weights(config(), seed=1))
    enc = Encoder(config(), params)
    enc.trace(IDS, 2, values=False)
    layers_read = {int(n.split(".")[2]) for n in params.read}
    assert layers_read == {0, 1, 2}
    assert not any(n.startswith("encoder.layer.2.") and "query" not in n and "key" not in n for n in params.read)
    params.read.clear()
    enc.trace(IDS, 2, temperature=3.0, values=False)  # cached logits: a new T reads no weights at all
    assert params.read == set()


def test_temperature_is_a_lens_on_the_inspected_layer_only():
    enc = make_source(SyntheticSpec("random", 32, 4, seed=3, n_layers=3), None).encoder
    base = {layer: enc.trace(IDS, layer).probs for layer in range(3)}
    x2 = enc.layer_input(IDS, 2).copy()
    hot = enc.trace(IDS, 2, temperature=4.0)
    np.testing.assert_array_equal(hot.x, x2)  # layers below ran at T = 1
    np.testing.assert_array_equal(hot.scaled, enc.trace(IDS, 2).scaled)
    np.testing.assert_allclose(hot.logits, hot.scaled / 4.0, rtol=1e-6)
    assert not np.allclose(hot.probs, base[2])
    att = enc.attentions(IDS, [0, 1, 2], temperature=4.0)
    for layer in range(3):
        np.testing.assert_allclose(att[layer], enc.trace(IDS, layer, temperature=4.0).probs, atol=1e-7)
    np.testing.assert_array_equal(enc.attentions(IDS, [1])[1], base[1])


def test_causal_mask_applies_to_every_layer():
    enc = make_source(SyntheticSpec("deterministic", 32, 4, n_layers=3), None).encoder
    upper = np.triu(np.ones((len(IDS), len(IDS)), dtype=bool), 1)
    for layer in range(3):
        p = enc.trace(IDS, layer, causal=True).probs
        assert np.all(p[:, upper] == 0)
        np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-6)
    # causal hidden states of a prefix do not depend on later tokens (decoder property, every layer)
    prefix = IDS[:5]
    np.testing.assert_allclose(enc.layer_input(IDS, 2, causal=True)[:5], enc.layer_input(prefix, 2, causal=True),
                               atol=1e-5)
    assert not np.allclose(enc.layer_input(IDS, 2)[:5], enc.layer_input(prefix, 2), atol=1e-3)


def test_trace_has_all_nine_steps_and_layer_range():
    enc = make_source(SyntheticSpec("deterministic", 64, 4), None).encoder
    t = enc.trace(IDS, 0)
    n = len(IDS)
    assert t.x.shape == (n, 64) and t.q.shape == (4, n, 16) and t.v.shape == (4, n, 16)
    assert t.scores.shape == (4, n, n) and t.probs.shape == (4, n, n)
    assert t.head_outputs.shape == (4, n, 16) and t.concat.shape == (n, 64) and t.output.shape == (n, 64)
    with pytest.raises(ValueError, match="out of range"):
        enc.trace(IDS, 1)
    with pytest.raises(ValueError, match="temperature"):
        enc.trace(IDS, 0, temperature=0)
    with pytest.raises(ValueError):
        SyntheticSpec("deterministic", 30, 4).config()


HASH_SCRIPT = """
import sys
sys.path.insert(0, %r)
from pyapp.core.embeddings import hash_embeddings
from pyapp.core.sources import SyntheticSpec, make_source
enc = make_source(SyntheticSpec("deterministic", 48, 4), None).encoder
sys.stdout.write(hash_embeddings([101, 7592, 2088, 102], 48).tobytes().hex())
sys.stdout.write(enc.trace([101, 7592, 2088, 102], 0).probs.tobytes().hex())
""" % ROOT


def test_deterministic_source_is_byte_identical_across_processes():
    outs = []
    for seed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        res = subprocess.run([sys.executable, "-c", HASH_SCRIPT], env=env, capture_output=True, text=True,
                             check=True, timeout=120)
        outs.append(res.stdout)
    assert outs[0] == outs[1] and len(outs[0]) > 1000
    here = hash_embeddings([101, 7592, 2088, 102], 48).tobytes().hex()
    assert outs[0].startswith(here)


def test_embedding_sources():
    a = hash_embeddings([5, 6, 5], 40)
    np.testing.assert_array_equal(a[0], a[2])
    assert not np.allclose(a[0], a[1]) and abs(float(a.std()) - 1.0) < 0.2
    r1, r2 = random_embeddings([5, 6], 40, seed=1), random_embeddings([6, 5], 40, seed=1)
    np.testing.assert_array_equal(r1[0], r2[1])  # a row depends on (seed, id) only
    assert not np.allclose(random_embeddings([5], 40, seed=2), r1[:1])
    pe = sinusoidal_positions(10, 16)
    np.testing.assert_allclose(pe[3, 0], np.sin(3.0), rtol=1e-6)
    np.testing.assert_allclose(pe[3, 1], np.cos(3.0), rtol=1e-6)


def test_random_source_is_reproducible_from_its_seed():
    t1 = make_source(SyntheticSpec("random", 32, 2, seed=7), None).encoder.trace(IDS, 0)
    t2 = make_source(SyntheticSpec("random", 32, 2, seed=7), None).encoder.trace(IDS, 0)
    t3 = make_source(SyntheticSpec("random", 32, 2, seed=8), None).encoder.trace(IDS, 0)
    np.testing.assert_array_equal(t1.output, t2.output)
    assert not np.allclose(t1.probs, t3.probs)


def test_demo_tiny_file_model_equals_the_deterministic_source(models_dir):
    tiny = LocalModel("demo-tiny", models_dir)
    tiny.need(IDS, 1, ("qk", "vo", "ffn"))
    synth = make_source(SyntheticSpec("deterministic", 64, 4, n_layers=2), None).encoder
    for layer in (0, 1):
        a, b = tiny.encoder.trace(IDS, layer), synth.trace(IDS, layer)
        np.testing.assert_array_equal(a.probs, b.probs)
        np.testing.assert_array_equal(a.output, b.output)


def test_a_layer_shown_qk_only_is_completed_not_recomputed():
    params = RecordingParams(synthetic_weights(config(), seed=2))
    enc = Encoder(config(), params)
    qk = [enc.trace(IDS, layer, values=False) for layer in range(3)]  # bottom up, as the app asks
    full = enc.trace(IDS, 2, values=True)
    for layer in range(2):  # layers 0 and 1 were completed for layer 2's input: same Q, K and softmax
        t = enc.trace(IDS, layer, values=True)
        assert t.q is qk[layer].q and t.probs is qk[layer].probs and t.output is not None
    assert full.probs is qk[2].probs
    fresh = Encoder(config(), DictParams(synthetic_weights(config(), seed=2)))
    for layer in range(3):
        ref = fresh.trace(IDS, layer, values=True)
        np.testing.assert_array_equal(enc.trace(IDS, layer).output, ref.output)
        np.testing.assert_array_equal(enc.trace(IDS, layer).probs, ref.probs)
