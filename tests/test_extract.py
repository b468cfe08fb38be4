"""The extraction scripts: DistilBERT (a checkpoint made here), head subsets, and reproducibility."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, SENTENCES, smollm2_gguf_path

from pyapp.core.catalogue import load_catalogue
from pyapp.core.files import LocalModel, fetch_into, load_local_catalogue
from pyapp.core.store import WeightStore

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SCRIPTS = os.path.join(ROOT, "scripts")


def run_script(*args):
    res = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module", params=["safetensors", "pytorch_model.bin"])
def distilbert(request, tmp_path_factory, minilm_dir):
    """A randomly initialised DistilBERT saved as a checkpoint, extracted (float32) into a models dir."""
    tmp = tmp_path_factory.mktemp("distilbert")
    ckpt, models = tmp / "ckpt", tmp / "models"
    config = transformers.DistilBertConfig(vocab_size=30522, dim=96, n_layers=3, n_heads=4, hidden_dim=192,
                                           max_position_embeddings=128, initializer_range=0.15,
                                           attn_implementation="eager")
    torch.manual_seed(0)
    if request.param == "safetensors":
        model = transformers.DistilBertModel(config).eval()
        model.save_pretrained(ckpt)
        shutil.copy(os.path.join(minilm_dir, "tokenizer.json"), ckpt / "tokenizer.json")
    else:  # the MLM head's "distilbert." prefix and extra keys; a vocab.txt-only tokenizer
        mlm = transformers.DistilBertForMaskedLM(config).eval()
        mlm.config.save_pretrained(ckpt)
        torch.save(mlm.state_dict(), ckpt / "pytorch_model.bin")
        model = mlm.distilbert
        shutil.copy(os.path.join(minilm_dir, "vocab.txt"), ckpt / "vocab.txt")
    assert (ckpt / ("model.safetensors" if request.param == "safetensors" else "pytorch_model.bin")).exists()
    run_script(os.path.join(SCRIPTS, "extract_model_weights.py"), str(ckpt), "--id", "distilbert",
               "--models-dir", str(models), "--float32")
    run_script(os.path.join(SCRIPTS, "create_compact_weights.py"), "subsets", "--parent", "distilbert",
               "--models-dir", str(models))
    return model, str(models)


@pytest.mark.parity
def test_distilbert_parity_every_layer(distilbert, hf_tokenizer):
    model, models = distilbert
    local = LocalModel("distilbert", models)
    entry = local.entry
    assert (entry.architecture, entry.n_layers, entry.n_heads, entry.d_k) == ("distilbert", 3, 4, 24)
    worst = 0.0
    for text in SENTENCES[:5]:
        ids = local.tokenizer.encode(text, max_length=128).ids
        assert ids == hf_tokenizer.encode(text).ids[:127] + ([102] if len(ids) == 128 else [])
        local.need(ids, 2, ("qk",))
        ours = local.encoder.attentions(ids, range(3))
        with torch.no_grad():
            ref = model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
        for layer in range(3):
            worst = max(worst, float(np.abs(ours[layer] - ref.attentions[layer][0].numpy()).max()))
            np.testing.assert_allclose(local.encoder.layer_input(ids, layer), ref.hidden_states[layer][0],
                                       atol=1e-4)
    assert worst <= 1e-5, worst
    assert float(np.abs(ref.attentions[0][0].numpy() - 1 / len(ids)).max()) > 0.05  # not uniform: a real test


def test_head_subsets_equal_slices_of_the_full_layer(distilbert):
    _, models = distilbert
    cat = load_local_catalogue(models)
    store = WeightStore(cat)
    full = cat.get("distilbert")
    fetch_into(store, [full.layer_file(0, "qk"), full.layer_file(0, "vo")], models)
    full_t = {**store.tensors(full.layer_file(0, "qk").path), **store.tensors(full.layer_file(0, "vo").path)}
    d_k = full.d_k
    for k in (4, 2, 1):
        sub = cat.get(f"distilbert-{k}head")
        assert sub.built and sub.n_heads == k and sub.n_layers == 1 and sub.shares == "distilbert"
        fetch_into(store, [sub.layer_file(0, "qk"), sub.layer_file(0, "vo")], models)
        sub_t = {**store.tensors(sub.layer_file(0, "qk").path), **store.tensors(sub.layer_file(0, "vo").path)}
        assert sorted(sub_t) == sorted(full_t)
        for name, a in sub_t.items():
            if name.endswith("output.dense.weight"):
                np.testing.assert_array_equal(a, full_t[name][:, : k * d_k])
            elif name.endswith("output.dense.bias"):
                np.testing.assert_array_equal(a, full_t[name])
            else:
                np.testing.assert_array_equal(a, full_t[name][: k * d_k])
    # and the subset model's attention is the full model's first k heads
    local_full = LocalModel("distilbert", models)
    ids = local_full.tokenizer.encode(SENTENCES[0]).ids
    local_full.need(ids, 0, ("qk", "vo"))
    probs = local_full.encoder.trace(ids, 0).probs
    for k in (4, 2, 1):
        sub = LocalModel(f"distilbert-{k}head", models, catalogue=local_full.catalogue, store=local_full.store)
        sub.need(ids, 0, ("qk", "vo"))
        # the weights are exact slices (above); the products may round differently in the last bit
        # (BLAS blocks a 4-head matrix differently from a 12-head one)
        np.testing.assert_allclose(sub.encoder.trace(ids, 0).probs, probs[:k], rtol=0, atol=1e-6)


def test_shipped_models_regenerate_byte_identically(tmp_path, minilm_dir, models_dir):
    """scripts/build_models.sh's steps into a fresh folder give exactly the shipped index.json (which holds
    the sha256 of every file)."""
    out = str(tmp_path / "models")
    run_script(os.path.join(SCRIPTS, "extract_model_weights.py"), minilm_dir, "--id", "minilm-l6",
               "--models-dir", out)
    run_script(os.path.join(SCRIPTS, "create_compact_weights.py"), "subsets", "--models-dir", out)
    run_script(os.path.join(SCRIPTS, "create_compact_weights.py"), "demo-tiny", "--models-dir", out)
    run_script(os.path.join(SCRIPTS, "extract_model_weights.py"), smollm2_gguf_path(), "--id", "smollm2-135m",
               "--models-dir", out)
    with open(os.path.join(out, "index.json"), "rb") as a, open(os.path.join(models_dir, "index.json"), "rb") as b:
        fresh, shipped = a.read(), b.read()
    assert fresh == shipped
    cat = load_catalogue(fresh)
    built = [m.id for m in cat if m.built]
    assert built == ["minilm-l6", "minilm-l6-4head", "minilm-l6-2head", "minilm-l6-1head", "demo-tiny",
                     "smollm2-135m"]
    not_built = [m.id for m in cat if not m.built]
    assert not_built == ["distilbert", "distilbert-4head", "distilbert-2head", "distilbert-1head", "gpt2",
                         "distilgpt2"]
    doc = json.loads(fresh)
    assert all(k in doc["models"][0] for k in ("id", "name", "description", "architecture", "d_model",
                                               "layers", "heads", "d_k", "max_positions", "files"))


@pytest.mark.parametrize("repo_files, weights", [
    (["config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json"], "model.safetensors"),
    (["config.json", "pytorch_model.bin", "vocab.txt"], "pytorch_model.bin"),
])
def test_hub_id_downloads_one_weights_file(monkeypatch, repo_files, weights):
    """A hub id (deploy time; the Hub is out of reach here, so its two calls are replaced) downloads the
    checkpoint's weights once: safetensors when the repo has it, else the PyTorch pickle."""
    import importlib.util

    import huggingface_hub

    spec = importlib.util.spec_from_file_location("extract_model_weights",
                                                  os.path.join(SCRIPTS, "extract_model_weights.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    asked = {}
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda repo: list(repo_files))

    def snapshot_download(repo, allow_patterns):
        asked.update(repo=repo, patterns=allow_patterns)
        return "/snapshot"

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    assert mod.resolve_checkpoint("distilbert-base-uncased") == "/snapshot"
    assert asked["repo"] == "distilbert-base-uncased"
    assert weights in asked["patterns"] and "config.json" in asked["patterns"]
    assert {"model.safetensors", "pytorch_model.bin"} - {weights} & set(asked["patterns"]) == set()
