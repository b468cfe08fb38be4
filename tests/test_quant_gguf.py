"""core/quant.py and core/gguf.py against the `gguf` package; the binary weight-file format."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import smollm2_gguf_path

from pyapp.core import quant
from pyapp.core.gguf import GGUFError, read_gguf
from pyapp.core.weights import Blocks, WeightFileError, decode_weight_file, encode_weight_file

gguf = pytest.importorskip("gguf")
TYPES = {"q4_0": gguf.GGMLQuantizationType.Q4_0, "q4_1": gguf.GGMLQuantizationType.Q4_1,
         "q8_0": gguf.GGMLQuantizationType.Q8_0}


@pytest.mark.parametrize("fmt", sorted(TYPES))
def test_dequantize_is_bit_identical_to_gguf(fmt):
    rng = np.random.RandomState(0)
    values = (rng.standard_normal((6, 96)) * rng.uniform(0.01, 3, size=(6, 1))).astype(np.float32)
    values[0, :32] = 0.0  # an all-zero block (scale 0)
    blocks = gguf.quants.quantize(values, TYPES[fmt])  # (6, bytes per row) uint8
    assert blocks.nbytes == quant.quantized_size(fmt, values.shape)
    ours = quant.dequantize(fmt, blocks.tobytes(), values.shape)
    ref = gguf.quants.dequantize(blocks, TYPES[fmt])
    assert ours.dtype == np.float32 and ours.shape == values.shape
    np.testing.assert_array_equal(ours, ref)
    assert np.abs(ours - values).max() < np.abs(values).max() / (5 if fmt != "q8_0" else 100)  # it is the data
    rows = Blocks(fmt, values.shape, blocks.tobytes()).rows([4, 1])
    np.testing.assert_array_equal(rows, ref[[4, 1]])


def test_nibble_order_low_then_high():
    """One q4_1 block written by hand: d = 1, m = -8; byte j = (element j) | (element j + 16) << 4."""
    q = np.arange(32) % 16
    packed = (q[:16] | (q[16:] << 4)).astype(np.uint8)
    block = np.float16(1.0).tobytes() + np.float16(-8.0).tobytes() + packed.tobytes()
    np.testing.assert_array_equal(quant.dequantize("q4_1", block, (1, 32))[0], q - 8.0)
    with pytest.raises(ValueError):
        quant.dequantize("q4_1", block[:-1], (1, 32))


def test_reader_matches_gguf_on_the_smollm2_file():
    path = smollm2_gguf_path()
    with open(path, "rb") as fh:
        meta, tensors = read_gguf(fh.read())
    ref = gguf.GGUFReader(path)
    assert meta["general.architecture"] == "llama" and meta["llama.attention.head_count_kv"] == 3
    assert meta["tokenizer.ggml.tokens"][:3] == [str(t) for t in ref.fields["tokenizer.ggml.tokens"].contents()[:3]]
    assert len(meta["tokenizer.ggml.merges"]) == 48900 and len(tensors) == len(ref.tensors) == 272
    for t in ref.tensors:
        ours = tensors[t.name]
        if t.name in ("token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_norm.weight", "blk.29.ffn_down.weight"):
            np.testing.assert_array_equal(ours.numpy(), gguf.quants.dequantize(t.data, t.tensor_type))
        assert ours.shape == tuple(int(s) for s in reversed(t.shape)) and ours.dtype == \
            {"F32": "float32", "F16": "float16"}.get(t.tensor_type.name, t.tensor_type.name.lower())


def test_reader_on_a_file_written_by_gguf(tmp_path):
    path = str(tmp_path / "tiny.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_uint32("llama.block_count", 2)
    w.add_array("names", ["a", "bb"])
    a16 = np.arange(12, dtype=np.float16).reshape(3, 4)
    w.add_tensor("half", a16)
    q8 = gguf.quants.quantize(np.linspace(-1, 1, 128, dtype=np.float32).reshape(2, 64), TYPES["q8_0"])
    w.add_tensor("q", q8, raw_dtype=TYPES["q8_0"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(path, "rb") as fh:
        data = fh.read()
    meta, tensors = read_gguf(data)
    assert meta["llama.block_count"] == 2 and meta["names"] == ["a", "bb"]
    np.testing.assert_array_equal(tensors["half"].numpy(), a16.astype(np.float32))
    assert tensors["q"].shape == (2, 64)
    np.testing.assert_array_equal(tensors["q"].numpy(), gguf.quants.dequantize(q8, TYPES["q8_0"]))
    with pytest.raises(GGUFError):
        read_gguf(b"GGML" + data[4:])
    with pytest.raises(GGUFError):
        read_gguf(data[:-40])  # into the last tensor (the writer pads the file to 32 bytes)


def test_binary_weight_file_round_trip_and_errors():
    rng = np.random.RandomState(1)
    w = rng.standard_normal((4, 64)).astype(np.float32)
    blocks = Blocks("q4_1", (4, 64), gguf.quants.quantize(w, TYPES["q4_1"]).tobytes())
    norm = rng.standard_normal(7).astype(np.float32)
    expected = {"m": (4, 64), "n": (7,)}
    data = encode_weight_file("x", "layer.0.qk", [("m", blocks, "q4_1"), ("n", norm, "float32")], binary=True)
    assert data == encode_weight_file("x", "layer.0.qk", [("m", blocks, "q4_1"), ("n", norm, "float32")],
                                      binary=True)  # reproducible
    out = decode_weight_file(data, "x", "p", expected)
    assert isinstance(out["m"], Blocks) and out["m"].data == blocks.data
    np.testing.assert_array_equal(out["n"], norm)
    with pytest.raises(WeightFileError, match="shape"):
        decode_weight_file(data, "x", "p", {"m": (4, 32), "n": (7,)})
    with pytest.raises(WeightFileError, match="not a valid weight file"):
        decode_weight_file(data[:20], "x", "p", expected)
    with pytest.raises(WeightFileError, match="data"):
        decode_weight_file(data[:-40], "x", "p", expected)
