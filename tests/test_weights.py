"""Catalogue, WeightStore verification and the first-view byte budget, on the shipped models/."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from pyapp.core.catalogue import CatalogueError, load_catalogue
from pyapp.core.encoder import WeightsMissing
from pyapp.core.files import LocalModel, fetch_into, load_local_catalogue
from pyapp.core.sources import load_tokenizer, make_source
from pyapp.core.store import WeightStore
from pyapp.core.weights import (
    WORD_TABLE,
    WeightFileError,
    decode_weight_file,
    encode_weight_file,
    part_layout,
    table_name,
)

FOX = "The quick brown fox jumps over the lazy dog."
FOX_IDS = [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 1012, 102]
BUDGET = 2_000_000


@pytest.fixture(scope="module")
def catalogue(models_dir):
    return load_local_catalogue(models_dir)


def test_catalogue_lists_every_shipped_file_with_size_and_sha256(catalogue, models_dir):
    listed = set()
    for f in catalogue.files():
        with open(os.path.join(models_dir, f.path), "rb") as fh:
            data = fh.read()
        assert len(data) == f.size and hashlib.sha256(data).hexdigest() == f.sha256, f.path
        listed.add(f.path)
    on_disk = {os.path.relpath(os.path.join(d, n), models_dir).replace(os.sep, "/")
               for d, _, names in os.walk(models_dir) for n in names} - {"index.json"}
    assert on_disk == listed  # nothing unlisted, nothing missing
    m = catalogue.get("minilm-l6")
    assert (m.architecture, m.d_model, m.n_layers, m.n_heads, m.d_k, m.max_positions) == ("bert", 384, 6, 12,
                                                                                          32, 512)
    tiny = catalogue.get("demo-tiny")
    assert (tiny.d_model, tiny.n_heads, tiny.n_layers, tiny.embeddings) == (64, 4, 2, "hash")


def test_first_view_budget(catalogue, models_dir):
    """Tokenizer + index.json + embedding rows/positions/LayerNorm + layer-0 Q/K, for the fox sentence."""
    store = WeightStore(catalogue)
    files = store.missing("minilm-l6", FOX_IDS, layer=0, parts=("qk",), tokenizer=True)
    parts = sorted(f.part for f in files)
    assert "tokenizer" in parts and "layer.0.qk" in parts and "embeddings.norm" in parts
    assert not any(p.startswith("layer.") and p != "layer.0.qk" for p in parts)
    index_bytes = os.path.getsize(os.path.join(models_dir, "index.json"))
    total = index_bytes + sum(f.size for f in files)
    print(f"first view of {FOX!r}: {len(files)} files + index.json = {total} bytes "
          f"(index.json {index_bytes}, tokenizer {catalogue.get('minilm-l6').tokenizer_file().size})")
    assert total <= BUDGET
    fetch_into(store, files, models_dir)
    source = make_source(catalogue.get("minilm-l6"), None, store)
    t = source.encoder.trace(FOX_IDS, 0, values=None)
    assert t.probs.shape == (12, 12, 12) and t.v is None  # V/O not fetched: Q/K-only trace
    assert store.missing("minilm-l6", FOX_IDS, 0, ("qk",)) == []
    with pytest.raises(WeightsMissing, match="layer0.vo.json"):
        source.encoder.trace(FOX_IDS, 0, values=True)
    with pytest.raises(WeightsMissing, match="layer0.vo.json"):  # layer 1 needs all of layer 0
        source.encoder.trace(FOX_IDS, 1)


def test_missing_lists_lower_layers_in_full(catalogue):
    store = WeightStore(catalogue)
    parts = {f.part for f in store.missing("minilm-l6", FOX_IDS, layer=2, parts=("qk", "vo"))}
    assert {"layer.0.qk", "layer.0.vo", "layer.0.ffn", "layer.1.qk", "layer.1.vo", "layer.1.ffn",
            "layer.2.qk", "layer.2.vo"} <= parts
    assert "layer.2.ffn" not in parts and "layer.3.qk" not in parts
    sub = {f.path for f in store.missing("minilm-l6-2head", FOX_IDS, layer=0, parts=("qk", "vo", "ffn"))}
    assert "minilm-l6-2head/layer0.qk.json" in sub and any(p.startswith("minilm-l6/word/") for p in sub)
    assert store.missing("demo-tiny", FOX_IDS, layer=0)[0].path == "demo-tiny/layer0.qk.json"
    with pytest.raises(CatalogueError, match="not built"):
        store.missing("distilbert", FOX_IDS, layer=0)
    with pytest.raises(CatalogueError, match="unknown model"):
        store.missing("gpt-5", FOX_IDS, layer=0)
    with pytest.raises(CatalogueError, match="out of range"):
        store.missing("minilm-l6", FOX_IDS, layer=6)


@pytest.fixture()
def damaged(tmp_path, models_dir):
    """A private copy of models/ (index, tokenizer, layer 0/1 and the fox's embedding files) to break."""
    cat = load_local_catalogue(models_dir)
    store = WeightStore(cat)
    need = store.missing("minilm-l6", FOX_IDS, layer=1, parts=("qk", "vo", "ffn"), tokenizer=True)
    need += store.missing("demo-tiny", FOX_IDS, layer=1, parts=("qk", "vo", "ffn"))
    for f in need:
        os.makedirs(os.path.dirname(str(tmp_path / f.path)), exist_ok=True)
        shutil.copy(os.path.join(models_dir, f.path), str(tmp_path / f.path))
    shutil.copy(os.path.join(models_dir, "index.json"), str(tmp_path / "index.json"))
    return str(tmp_path)


def first_view(models_dir, model_id="minilm-l6"):
    model = LocalModel(model_id, models_dir)
    model.need(FOX_IDS, 0, ("qk",))
    return model.encoder.attentions(FOX_IDS, [0])[0]


def corrupt(path, fn):
    with open(path, "rb") as fh:
        data = fh.read()
    with open(path, "wb") as fh:
        fh.write(fn(data))


def test_embedding_rows_are_gathered_per_chunk_file_in_the_ids_order(catalogue, models_dir):
    """StoreParams.rows gathers each chunk file's rows at once (MiniLM's float table, SmolLM2's Q8_0 blocks):
    the same rows, in the ids' order, repeats included, as one row at a time; a missing chunk names the first
    id that needs it."""
    for model, ids in (("minilm-l6", [2829, 101, 4419, 1996, 29000, 101, 1012, 1996]),
                       ("smollm2-135m", [48000, 504, 2644, 504, 1171, 30000, 2643])):
        store = WeightStore(catalogue)
        fetch_into(store, store.missing(model, ids, layer=None), models_dir)
        params = store.params(model)
        name = table_name(catalogue.get(model).config, WORD_TABLE)
        got = params.rows(name, ids)
        want = np.concatenate([params.rows(name, [i]) for i in ids])
        assert got.dtype == np.float32 and got.shape == (len(ids), catalogue.get(model).d_model)
        assert np.array_equal(got, want) and np.array_equal(got[1], got[ids.index(ids[1], 2)])   # a repeat
        rows = catalogue.get(model).config.vocab_size
        with pytest.raises(ValueError, match="row %d out of range" % rows):
            params.rows(name, ids[:3] + [rows] + [-1])
        fresh = WeightStore(catalogue)
        first = [f for f in fresh.missing(model, ids, layer=None) if "/word/" in f.path]
        fetch_into(fresh, [f for f in fresh.missing(model, ids, layer=None) if f not in first[:1]], models_dir)
        with pytest.raises(WeightsMissing, match="row %d needs %s" % (
                next(i for i in ids if fresh.missing(model, [i], layer=None)), first[0].path)):
            fresh.params(model).rows(name, ids)


@pytest.mark.parametrize("damage", ["corrupted", "truncated", "wrong hash", "missing"])
def test_damaged_file_gives_one_clear_error_and_other_models_work(damaged, damage):
    path = "minilm-l6/layer0.qk.json"
    full = os.path.join(damaged, path)
    if damage == "corrupted":  # same size, one byte flipped inside the base64 data
        corrupt(full, lambda d: d[:5000] + bytes([d[5000] ^ 0x01]) + d[5001:])
        match = "sha256"
    elif damage == "truncated":
        corrupt(full, lambda d: d[: len(d) // 2])
        match = "truncated"
    elif damage == "wrong hash":  # the catalogue's record is wrong
        index = os.path.join(damaged, "index.json")
        corrupt(index, lambda d: d.replace(hashlib.sha256(open(full, "rb").read()).hexdigest().encode(),
                                           b"0" * 64))
        match = "sha256"
    else:
        os.remove(full)
        match = "is missing"
    with pytest.raises(WeightFileError, match=match) as info:
        first_view(damaged)
    message = str(info.value)
    assert "\n" not in message and "'minilm-l6'" in message and path in message
    assert (info.value.model, info.value.path) == ("minilm-l6", path)
    assert first_view(damaged, "demo-tiny").shape == (4, 12, 12)  # other models keep working


def test_content_checks_dtype_shape_and_names(catalogue):
    cfg = catalogue.get("minilm-l6").config
    layout = part_layout(cfg, "layer.0.qk")
    good = [(n, np.zeros(s, np.float32), "float16") for n, s in layout.items()]
    assert set(decode_weight_file(encode_weight_file("m", "layer.0.qk", good), "m", "p", layout)) == set(layout)
    wrong_shape = [(n, np.zeros((s[0] - 1,) + s[1:], np.float32), "float16") for n, s in layout.items()]
    with pytest.raises(WeightFileError, match="shape"):
        decode_weight_file(encode_weight_file("m", "layer.0.qk", wrong_shape), "m", "p", layout)
    with pytest.raises(WeightFileError, match="holds tensors"):
        decode_weight_file(encode_weight_file("m", "layer.0.qk", good[:3]), "m", "p", layout)
    doc = json.loads(encode_weight_file("m", "layer.0.qk", good))
    name = next(iter(doc["tensors"]))
    doc["tensors"][name]["dtype"] = "int8"
    with pytest.raises(WeightFileError, match="dtype"):
        decode_weight_file(json.dumps(doc).encode(), "m", "p", layout)
    doc["tensors"][name]["dtype"] = "float32"  # float16 bytes declared float32: length mismatch
    with pytest.raises(WeightFileError, match="data bytes"):
        decode_weight_file(json.dumps(doc).encode(), "m", "p", layout)
    with pytest.raises(WeightFileError, match="not a valid weight file"):
        decode_weight_file(b"\x00garbage", "m", "p", layout)


def test_store_rejects_unlisted_paths_and_bad_catalogues(catalogue):
    store = WeightStore(catalogue)
    with pytest.raises(WeightFileError, match="not listed"):
        store.add("minilm-l6/../etc/passwd", b"x")
    with pytest.raises(CatalogueError):
        load_catalogue("{not json")
    with pytest.raises(CatalogueError, match="format"):
        load_catalogue('{"format": "other", "models": []}')


def test_float16_round_trip_is_exact():
    a = np.random.RandomState(0).standard_normal((5, 7)).astype(np.float16).astype(np.float32)
    layout = {"embeddings.word_embeddings.weight": (5, 7)}
    data = encode_weight_file("m", "embeddings.word.0", [("embeddings.word_embeddings.weight", a, "float16")])
    np.testing.assert_array_equal(decode_weight_file(data, "m", "p", layout)["embeddings.word_embeddings.weight"], a)


SMOLLM2 = "smollm2-135m"
SMOLLM2_BUDGET = 3_000_000
TWELVE = "The quick brown fox jumps over the lazy dog near the river"


def test_smollm2_first_heatmap_budget_and_next_token_files(catalogue, models_dir):
    """Model bytes before SmolLM2's first heatmap of a 12-token sentence: index.json + the compact BPE
    tokenizer + embedding rows + layer 0's Q/K (+ its input RMSNorm).  The LM head (every word chunk) and
    the blocks above are not among them; next-token prediction fetches them later."""
    store = WeightStore(catalogue)
    entry = catalogue.get(SMOLLM2)
    assert entry.tokenizer_kind == "bpe" and entry.tokenizer_file().path.endswith("tokenizer.bpe")
    fetch_into(store, store.missing(SMOLLM2, tokenizer=True), models_dir)
    tok = load_tokenizer(entry.tokenizer_kind, store.data(entry.tokenizer_file().path))
    ids = tok.encode(TWELVE).ids
    assert len(ids) == 12, len(ids)
    files = store.missing(SMOLLM2, ids, layer=0, parts=("qk",))
    index_bytes = os.path.getsize(os.path.join(models_dir, "index.json"))
    tok_bytes = entry.tokenizer_file().size
    total = index_bytes + tok_bytes + sum(f.size for f in files)
    print(f"SmolLM2 first heatmap of a 12-token sentence: {len(files) + 1} files + index.json = {total} bytes "
          f"(index.json {index_bytes}, tokenizer {tok_bytes}, layer0.qk {entry.layer_file(0, 'qk').size})")
    assert total <= SMOLLM2_BUDGET
    assert tok_bytes < 300_000  # the compact form, not the 1.56 MB tokenizer.json
    assert {f.part for f in files if f.part.startswith("layer.")} == {"layer.0.qk"}
    assert not any(f.part == "head" for f in files)
    local = LocalModel(SMOLLM2, models_dir, catalogue=catalogue, store=store)
    local.need(ids, 0, ("qk",))
    t = local.encoder.trace(ids, 0)
    assert t.probs.shape == (9, 12, 12) and t.v is None and t.causal and t.kv_heads == 3
    assert t.q_unrotated is not None and t.k_unrotated.shape == (9, 12, 64)
    assert [t.kv_head(h) for h in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    np.testing.assert_array_equal(t.k[0], t.k[2])  # query heads 0..2 share kv head 0
    with pytest.raises(WeightsMissing):
        local.encoder.next_token_logits(ids)
    head = store.missing(SMOLLM2, ids, next_token=True)
    head_bytes = sum(f.size for f in head if f.part == "head" or f.part.startswith("embeddings.word"))
    print(f"next-token prediction adds {len(head)} files, {sum(f.size for f in head)} bytes "
          f"(of which the final norm + the tied LM head = every word chunk: {head_bytes})")
    assert any(f.part == "head" for f in head)
