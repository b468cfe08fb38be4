"""Parity with HF transformers on long inputs, where the attention takes numerics' long-sentence forms
(``numerics.batched_matmul`` switches to einsum from ``numerics.LONG`` tokens on)."""

from __future__ import annotations

import numpy as np
import pytest

from pyapp.core import numerics
from pyapp.core.encoder import DictParams, Encoder

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.parity


def test_float32_attention_of_a_long_sentence(minilm_float32, hf_minilm, hf_tokenizer):
    words = ("attention lets every token look at every other token and the heads learn which words to "
             "follow in a sentence").split()
    text = " ".join(words[i % len(words)] for i in range(numerics.LONG + 60))
    ids = hf_tokenizer.encode(text).ids
    assert len(ids) > numerics.LONG
    with torch.no_grad():
        ref = hf_minilm(torch.tensor([ids]), output_attentions=True).attentions
    config, tensors = minilm_float32
    att = Encoder(config, DictParams(tensors)).attentions(ids, range(6))
    worst = max(float(np.abs(att[layer] - ref[layer][0].numpy()).max()) for layer in range(6))
    print(f"{len(ids)} tokens, float32 weights: max |attention - transformers| = {worst:.2e}")
    assert worst <= 1e-5
