"""Unit tests of pyapp.core.bpe: byte map, merges by rank, offsets, truncation, decode, compact form."""

from __future__ import annotations

import json
import zlib

import pytest
from bpe_sources import gpt2_files

from pyapp.core import bpe
from pyapp.core.bpe import BPETokenizer, byte_level, pre_tokenize
from pyapp.core.bpe_formats import BYTE_TO_CHAR, COMPACT_MAGIC, bytes_to_unicode
from pyapp.core.tokenizer import AddedToken, TokenizerError

ALPHABET = [BYTE_TO_CHAR[b] for b in range(256)]


def toy(extra, merges, drop=(), **kwargs):
    """Every byte-level character (minus ``drop``), then ``extra`` tokens; merges given as token pairs."""
    tokens = [c for c in ALPHABET if c not in drop] + list(extra)
    vocab = {t: i for i, t in enumerate(tokens)}
    return BPETokenizer(tokens, [(vocab[a], vocab[b]) for a, b in merges], **kwargs)


@pytest.fixture(scope="module")
def gpt2():
    encoder_json, vocab_bpe = gpt2_files()
    with open(encoder_json, "rb") as f, open(vocab_bpe, "rb") as g:
        return BPETokenizer.from_files(f.read(), g.read())


def test_byte_map_is_gpt2s():
    m = bytes_to_unicode()
    assert len(m) == 256 and len(set(m.values())) == 256
    assert all(m[b] == chr(b) for b in range(ord("!"), ord("~") + 1))
    assert m[ord(" ")] == "\u0120" and m[ord("\n")] == "\u010a" and m[0] == "\u0100"
    assert m[0xA0] == "\u0142" and m[0xAD] == "\u0143" and m[0xE9] == "\u00e9"
    assert byte_level("é €") == "Ã©ĠâĤ¬"
    assert bpe._token_bytes(byte_level("日本 👨\u200d👩")).decode("utf-8") == "日本 👨\u200d👩"


def test_pre_tokenizer_is_the_gpt2_regex():
    def words(text):
        return [text[a:b] for a, b in pre_tokenize(text)]

    assert words("I'll don't it's") == ["I", "'ll", " don", "'t", " it", "'s"]
    assert words("it\u2019s") == ["it", "\u2019", "s"]  # only the ASCII apostrophe makes a contraction
    assert words("  hi  there\n\n x") == [" ", " hi", " ", " there", "\n\n", " x"]
    assert words("abc123 ١٢٣ ½!?") == ["abc", "123", " ١٢٣", " ½", "!?"]
    assert words("\u00a0a\u3000b") == ["\u00a0", "a", "\u3000", "b"]  # NBSP / ideographic space are \s
    assert words("x\x1cy") == ["x", "\x1c", "y"]  # not \s for Oniguruma, though str.isspace() says so
    assert words("trailing   ") == ["trailing", "   "]


def test_merges_apply_by_rank_leftmost_first():
    t = toy(["ab", "bc", "abc", "aa"], [("b", "c"), ("a", "b"), ("a", "bc"), ("a", "a")])
    assert t.encode("abc").tokens == ["abc"]  # b+c (rank 0) first, then a+bc
    t2 = toy(["ab", "bc", "abc"], [("a", "b"), ("b", "c"), ("ab", "c")])
    assert t2.encode("abc").tokens == ["abc"]  # a+b first, then ab+c
    t3 = toy(["ab", "bc"], [("a", "b"), ("b", "c")])
    assert t3.encode("abc").tokens == ["ab", "c"]
    assert toy(["aa"], [("a", "a")]).encode("aaa").tokens == ["aa", "a"]
    assert toy(["aa", "aaaa"], [("a", "a"), ("aa", "aa")]).encode("aaaaa").tokens == ["aaaa", "a"]


def test_bpe_is_cached_per_word():
    t = toy(["ab"], [("a", "b")])
    first = t.bpe("abab")
    assert t.bpe("abab") is first and first == ((t.token_to_id("ab"), 0, 2), (t.token_to_id("ab"), 2, 4))


def test_merge_whose_result_is_missing_is_refused():
    with pytest.raises(TokenizerError, match="not in the vocabulary"):
        toy([], [("a", "b")])


def test_offsets_are_characters_of_the_original_text(gpt2):
    enc = gpt2.encode("héllo €uro 👍🏽!")
    # é is two byte-level characters but one character of the text; a token holding some of an
    # emoji's bytes covers that whole emoji; a leading space belongs to its word
    assert list(zip(enc.tokens, enc.offsets)) == [
        ("h", (0, 1)), ("Ã©", (1, 2)), ("llo", (2, 5)), ("ĠâĤ¬", (5, 7)), ("uro", (7, 10)),
        ("ĠðŁĳ", (10, 12)), ("į", (11, 12)), ("ðŁ", (12, 13)), ("ı", (12, 13)), ("½", (12, 13)), ("!", (13, 14))]


def test_added_tokens_are_matched_in_the_raw_text(gpt2):
    enc = gpt2.encode("a<|endoftext|> b<|endoftext")
    assert enc.tokens[:3] == ["a", "<|endoftext|>", "Ġb"]
    assert enc.ids[1] == 50256 and enc.offsets[1] == (1, 14)
    assert "<|endoftext|>" not in enc.tokens[3:]
    assert gpt2.special_tokens == ["<|endoftext|>"]


def test_missing_byte_is_dropped_and_later_offsets_shift_like_hf():
    t = toy(["!?"], [("!", "?")], drop=[BYTE_TO_CHAR[4]])
    # HF drops the character and adds the kept symbols' lengths from 0: '?' lands on (1, 2)
    assert t.encode("!\x04?").tokens == ["!?"]
    t2 = toy([], [], drop=[BYTE_TO_CHAR[4]])
    enc = t2.encode("!\x04?")
    assert enc.tokens == ["!", "?"] and enc.offsets == [(0, 1), (1, 2)]


def test_prefix_space_and_trim_offsets():
    t = toy(["Ġa"], [("Ġ", "a")], add_prefix_space=True)
    enc = t.encode("a b")
    assert enc.tokens == ["Ġa", "Ġ", "b"] and enc.offsets == [(0, 1), (1, 2), (2, 3)]
    trimmed = toy(["Ġa"], [("Ġ", "a")], trim_offsets=True)
    assert trimmed.encode("x a").offsets == [(0, 1), (2, 3)]
    assert trimmed.encode(" a").offsets == [(0, 2)]  # one leading space of the first token is kept


def test_truncation_keeps_the_first_tokens(gpt2):
    full = gpt2.encode("one two three four five")
    enc = gpt2.encode("one two three four five", max_length=3)
    assert enc.tokens == full.tokens[:3] and enc.offsets == full.offsets[:3]
    assert enc.dropped == len(full.ids) - 3 and full.dropped == 0
    assert gpt2.encode("one", max_length=0).ids == []
    framed = toy([], [], added_tokens=[AddedToken("<s>", 256)], prefix_tokens=["<s>"])
    assert framed.encode("ab", max_length=2).tokens == ["<s>", "a"]
    with pytest.raises(ValueError, match="no room"):
        framed.encode("ab", max_length=0)
    with pytest.raises(TypeError):
        gpt2.encode(b"bytes")


@pytest.mark.parametrize("text", ["", "Hello, world!", "  leading and trailing  ", "tabs\tand\r\nnewlines\n",
                                  "日本語 한국어 שָׁלוֹם", "👨\u200d👩\u200d👧\u200d👦 🏳️\u200d🌈", "\x00\x07\x1b\u2028",
                                  "<|endoftext|>x<|endoftext|>", "e\u0301\u0323 \U0001d165"])
def test_decode_round_trips(gpt2, text):
    assert gpt2.decode(gpt2.encode(text).ids) == text


def test_decode_replaces_invalid_utf8_and_skips_unknown_ids(gpt2):
    lone = gpt2.token_to_id(BYTE_TO_CHAR[0xE2])
    assert gpt2.decode([lone]) == "\ufffd"
    assert gpt2.decode([31373, 10 ** 9, -1]) == "hello"
    assert gpt2.decode([50256, 31373], skip_special_tokens=True) == "hello"
    assert gpt2.decode([50256, 31373]) == "<|endoftext|>hello"


def test_vocabulary_accessors(gpt2):
    assert gpt2.vocab_size == 50257
    assert gpt2.token_to_id("hello") == 31373 and gpt2.id_to_token(31373) == "hello"
    assert gpt2.token_to_id("<|endoftext|>") == 50256 and gpt2.id_to_token(50256) == "<|endoftext|>"
    assert gpt2.token_to_id("no such token") is None and gpt2.id_to_token(50257) is None
    assert gpt2.id_to_token(-1) is None


def test_compact_round_trip(gpt2):
    data = gpt2.to_compact()
    assert data.startswith(COMPACT_MAGIC) and len(data) < 300_000
    back = BPETokenizer.from_compact(data)
    assert back.tokens == gpt2.tokens and back.merges == gpt2.merges
    assert back.added_tokens == gpt2.added_tokens and back.vocab_size == gpt2.vocab_size
    text = "The compact form gives the same answer: café 日本 👍🏽 don't"
    assert back.encode(text) == gpt2.encode(text)


def test_compact_keeps_odd_tokens_and_settings():
    t = toy(["ab", "\u4e00x"], [("a", "b")], added_tokens=[AddedToken("<|x|>", 258, special=False)],
            add_prefix_space=True, trim_offsets=True, trim_prefix_space=False)
    back = BPETokenizer.from_compact(t.to_compact())
    assert back.tokens == t.tokens and back.id_to_token(257) == "\u4e00x"
    assert (back.add_prefix_space, back.trim_offsets, back.trim_prefix_space) == (True, True, False)
    assert back.special_tokens == [] and back.token_to_id("<|x|>") == 258
    assert back.encode("ab <|x|>") == t.encode("ab <|x|>")


@pytest.mark.parametrize("mangle", [
    lambda d: b"NOTMAGIC" + d[8:],
    lambda d: d[:-20],
    lambda d: COMPACT_MAGIC + zlib.compress(zlib.decompress(d[8:]) + b"x"),
    lambda d: COMPACT_MAGIC + zlib.compress(zlib.decompress(d[8:]).replace(b"mhsa-bpe/1", b"mhsa-bpe/9")),
])
def test_corrupt_compact_data_is_a_clear_error(mangle):
    data = toy(["ab"], [("a", "b")]).to_compact()
    with pytest.raises(TokenizerError):
        BPETokenizer.from_compact(mangle(data))


def test_from_json_refuses_what_it_cannot_do():
    good = {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]},
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False}, "decoder": {"type": "ByteLevel"}}
    assert BPETokenizer.from_json(json.dumps(good)).encode("ab").tokens == ["ab"]
    assert BPETokenizer.from_json(dict(good, model=dict(good["model"], merges=[["a", "b"]]))).merges == [(0, 1)]
    bad = [
        dict(good, model={"type": "WordPiece", "vocab": {}}),
        dict(good, normalizer={"type": "NFC"}),
        dict(good, pre_tokenizer={"type": "Whitespace"}),
        dict(good, decoder={"type": "WordPiece"}),
        dict(good, model=dict(good["model"], merges=["a c"])),
        dict(good, model=dict(good["model"], dropout=0.1)),
        dict(good, added_tokens=[{"id": 3, "content": "<x>", "lstrip": True}]),
    ]
    for data in bad:
        with pytest.raises(TokenizerError):
            BPETokenizer.from_json(data)
    with pytest.raises(TokenizerError, match="JSON"):
        BPETokenizer.from_json("{not json")


def test_from_files_reads_vocab_bpe(gpt2):
    assert len(gpt2.merges) == 50000 and gpt2.merges[0] == (gpt2.token_to_id("Ġ"), gpt2.token_to_id("t"))
    with pytest.raises(TokenizerError, match="line 2"):
        BPETokenizer.from_files({"a": 0, "b": 1, "ab": 2}, "#version: 0.2\na b c\n")


def test_tables_are_sorted_disjoint_ranges():
    from pyapp.core import _bpe_tables as tables

    for name in ["LETTER", "NUMBER", "WHITESPACE"]:
        ranges = getattr(tables, name)
        assert len(ranges) % 2 == 0 and list(ranges) == sorted(set(ranges)), name
    letters = {c for s, e in zip(tables.LETTER[::2], tables.LETTER[1::2]) for c in range(s, e)}
    numbers = {c for s, e in zip(tables.NUMBER[::2], tables.NUMBER[1::2]) for c in range(s, e)}
    assert not letters & numbers and ord("a") in letters and ord("7") in numbers
    assert 0x31350 in letters  # CJK Extension H (Unicode 15): the reference's tables are newer than 14
