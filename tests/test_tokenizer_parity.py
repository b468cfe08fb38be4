"""Parity of pyapp.core.tokenizer with Hugging Face `tokenizers` on thousands of generated strings.

The reference is ``tokenizers.Tokenizer.from_file(<the shipped tokenizer.json>)`` with the file's
padding switched off (our Encoding never pads) and truncation set to what ``encode`` is asked for.
"""

from __future__ import annotations

import json
import random
import unicodedata

import pytest
from test_tokenizer import tokenizer_json_path

from pyapp.core.tokenizer import WordPieceTokenizer

tokenizers = pytest.importorskip("tokenizers")

pytestmark = pytest.mark.parity

SEED = 20260
N_STRINGS = 6000

ENGLISH = ("the quick brown fox jumps over lazy dog attention is all you need unaffable tokenization "
           "transformers self multi head query key value softmax temperature embedding students don't "
           "it's U.S.A. e-mail state-of-the-art 3.14159 1,000,000 2026-11-28 #hashtag @user http://x.y/z?a=1 "
           "Hello World PyScript Pyodide NumPy WordPiece CamelCase snake_case UPPERCASE").split()
PUNCT_SYMBOLS = list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + list(
    "¡¿«»“”‘’„‚‹›—–‐‑‒…·•§¶†‡‰′″€£¥₹¢©®™°±×÷∑√∞≈≠≤≥→←↔⇒∀∃∈∂∇♠♥★☆✓✗⌘⌥『』「」【】〈〉。、・！？（）：；")
ACCENTED = ("café naïve résumé façade jalapeño Ångström Zoë coöperate Dvořák Łódź Ærøskøbing crème brûlée "
            "São Paulo Düsseldorf İstanbul ığdır Şişli straße ẞ Ǆemal ǅ ǈ Ǳ ẛ ỹ Ỳ ḉ ṩ ǖ ǘ ǚ ǜ ŉ ſ").split()
GREEK = "Καλημέρα κόσμε ΣΟΦΙΑ σοφίας ΐ ΰ ᾳ ᾼ ῷ Ἀθῆναι ὁ λόγος ς Ω µ".split()
CYRILLIC = "Привет мир Ёлка ёж Україна Їжак Ђорђе Љубав ЎЎ Қазақстан Ӝ ӝ".split()
WORDS_RTL = "שָׁלוֹם עולם בְּרֵאשִׁית مرحبا العالم السَّلَامُ عَلَيْكُمْ ﷺ ﷽ ۝".split()
KOREAN = "한국어 텍스트 안녕하세요 세계 ㄱㄴㄷ 각 韓國".split()
KANA = "ひらがな カタカナ ﾊﾝｶｸ ゔ ヴ ー ゝゞ ヽヾ ㋐ ㌀".split()
EMOJI = ["👍", "👍🏽", "👋🏿", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇫🇷", "🇯🇵", "1️⃣", "🧑🏻‍💻", "😀", "🤖", "🫠",
         "👩🏾‍🔬", "🐈‍⬛", "☺", "✌🏼", "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"]
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u200f", "\u202a",
             "\u202e", "\u2066", "\u180e", "\ufe0f", "\u034f", "\x00", "\x01", "\x07", "\x1b", "\x7f",
             "\x85", "\x9f", "\ufffd", "\ufff9", "\U000e0001", "\U000f0000", "\ue000"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\u00a0", "\u1680", "\u2003", "\u2009",
          "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
LIGATURES = ["ﬁ", "ﬂ", "ﬀ", "ﬃ", "ﬄ", "ﬅ", "ﬆ", "Ĳ", "ĳ", "Œ", "œ", "æ", "Æ", "ŉ", "ǉ", "ﬓ", "ﬗ",
             "㎏", "№", "℡", "Ⅻ", "ⅻ", "①", "½", "²", "ｆｕｌｌ", "Ｗｉｄｔｈ"]
ADDED = ["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "[mask]", "[MAS", "[[MASK]]", "[CLS][SEP]"]
MARKS = ["\u0301", "\u0300", "\u0308", "\u0323", "\u0327", "\u0345", "\u0334", "\u05b0", "\u064b",
         "\u0e31", "\u093f", "\U0001d165", "\U0001d16d", "\U0001d16e", "\u302e", "\u1b44", "\u20dd",
         "\U0001d15e", "\U0001d160", "\u0f73", "\u0344", "\u1e08"]


def _random_char(rng: random.Random) -> str:
    """A code point from anywhere (no surrogates): unassigned, private use, astral planes too."""
    block = rng.choice([(0x20, 0x7F), (0xA0, 0x250), (0x250, 0x2000), (0x2000, 0x3000), (0x3000, 0xA000),
                        (0xA000, 0xD800), (0xE000, 0x10000), (0x10000, 0x20000), (0x20000, 0x32000),
                        (0xE0000, 0xE0080), (0x0, 0x110000)])
    while True:
        cp = rng.randrange(*block)
        if not 0xD800 <= cp < 0xE000:
            return chr(cp)


def _script_word(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(chr(rng.randrange(lo, hi)) for _ in range(rng.randint(1, 6)))


def _fragment(rng: random.Random) -> str:
    kind = rng.randrange(17)
    if kind == 0:
        return rng.choice(ENGLISH)
    if kind == 1:
        return rng.choice(PUNCT_SYMBOLS) * rng.randint(1, 3)
    if kind == 2:  # accented Latin, NFC or NFD (and NFKD now and then)
        word = rng.choice(ACCENTED)
        return unicodedata.normalize(rng.choice(["NFC", "NFD", "NFD", "NFKD"]), word)
    if kind == 3:
        return unicodedata.normalize(rng.choice(["NFC", "NFD"]), rng.choice(GREEK + CYRILLIC))
    if kind == 4:  # CJK: unified, extension A/B, compatibility ideographs
        lo, hi = rng.choice([(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0xF900, 0xFAFF),
                             (0x2F800, 0x2FA1F), (0x2B820, 0x2B930), (0x3000, 0x303F)])
        return _script_word(rng, lo, hi + 1)
    if kind == 5:
        return rng.choice(KANA) if rng.random() < 0.5 else _script_word(rng, 0x3041, 0x30FF)
    if kind == 6:
        word = rng.choice(KOREAN) if rng.random() < 0.5 else _script_word(rng, 0xAC00, 0xD7A4)
        return unicodedata.normalize(rng.choice(["NFC", "NFD"]), word)
    if kind == 7:
        return rng.choice(WORDS_RTL) if rng.random() < 0.6 else _script_word(rng, 0x0590, 0x0700)
    if kind == 8:
        return "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 3)))
    if kind == 9:
        return rng.choice(ENGLISH) + rng.choice(INVISIBLE) + rng.choice(ENGLISH)
    if kind == 10:
        return rng.choice(INVISIBLE) * rng.randint(1, 2)
    if kind == 11:  # soft hyphens and ligatures inside words
        return rng.choice(["hy\u00adphen\u00adated", "co\u00adop", "of" + rng.choice(LIGATURES) + "ce",
                           rng.choice(LIGATURES)])
    if kind == 12:  # long words around max_input_chars_per_word = 100
        n = rng.choice([99, 100, 101, 102, 150, rng.randint(20, 300)])
        unit = rng.choice(["a", "ab", "x", "é", "ü", "\u0301e", "ǅ", "İ", "tokenization", "日"])
        return (unit * n)[: n if len(unit) == 1 else n * 2]
    if kind == 13:
        return rng.choice(ADDED)
    if kind == 14:  # combining marks, including the few spacing non-starters NFD reorders
        base = rng.choice(["a", "e", "o", "ı", "", "字", "x"])
        return base + "".join(rng.choice(MARKS) for _ in range(rng.randint(1, 4)))
    if kind == 15:
        return "".join(_random_char(rng) for _ in range(rng.randint(1, 5)))
    return rng.choice(["İ", "ẞ", "ß", "Σ", "ΣΑΣ", "ǅ", "ﬁ", "Å", "Ω", "K", "ϴ", "ℌ", "ⓐ", "Ⓐ", "ꭰ", "Ꭰ",
                       "\U00010400", "\U0001e900", "Ⱟ", "ⱟ", "\ua7c0", "ᲀ", "ꙋ"])


def make_strings(n: int = N_STRINGS, seed: int = SEED):
    rng = random.Random(seed)
    out = ["", " ", "\t\n", "\u3000", "\u200b", "[CLS]", "unaffable", "x" * 100, "x" * 101]
    while len(out) < n:
        parts = [_fragment(rng) for _ in range(rng.choice([1, 1, 2, 3, 4, 6, 10, 20]))]
        joiners = [rng.choice(["", " ", " ", " ", rng.choice(SPACES), rng.choice(PUNCT_SYMBOLS)])
                   for _ in parts]
        out.append("".join(p + j for p, j in zip(parts, joiners)).rstrip(" ") if rng.random() < 0.7
                   else "".join(p + j for p, j in zip(parts, joiners)))
    return out


@pytest.fixture(scope="module")
def tokenizer_path():
    return tokenizer_json_path()


@pytest.fixture(scope="module")
def ours(tokenizer_path):
    with open(tokenizer_path, "rb") as f:
        return WordPieceTokenizer.from_json(f.read())


def _reference(path, max_length=None):
    ref = tokenizers.Tokenizer.from_file(str(path))
    ref.no_padding()
    if max_length is None:
        ref.no_truncation()
    else:
        ref.enable_truncation(max_length=max_length)
    return ref


def _as_tuple(enc):
    return list(enc.tokens), list(enc.ids), [tuple(o) for o in enc.offsets]


def _report(mismatches, total):
    lines = ["%d of %d strings differ from tokenizers:" % (len(mismatches), total)]
    for text, expected, got in mismatches[:20]:
        lines.append("  text %s\n    HF   %s\n    ours %s" % (ascii(text), expected, got))
    return "\n".join(lines)


def test_generated_strings_cover_the_issue_list():
    strings = make_strings()
    joined = "".join(strings)
    assert len(strings) >= 5000
    assert len(set(strings)) > 4900
    for needle in ["\u0301", "é", "Σ", "Ж", "日", "ひ", "한", "ש", "م", "🏽", "\u200d", "\u200b", "\x00",
                   "\u00ad", "ﬁ", "[MASK]", "\U0001d165"]:
        assert needle in joined, needle
    assert any(len(w) > 100 for s in strings for w in s.split())


def test_parity_with_hf_tokenizers(ours, tokenizer_path):
    ref = _reference(tokenizer_path)
    strings = make_strings()
    mismatches = []
    for text in strings:
        expected = _as_tuple(ref.encode(text))
        enc = ours.encode(text, max_length=None)
        got = (enc.tokens, enc.ids, enc.offsets)
        if got != expected or enc.dropped != 0:
            mismatches.append((text, expected, got))
    assert not mismatches, _report(mismatches, len(strings))


def test_parity_of_truncation(ours, tokenizer_path):
    """max_length cuts like enable_truncation(max_length); dropped counts the tokens cut."""
    rng = random.Random(SEED + 1)
    strings = make_strings(1500, seed=SEED + 2)
    lengths = [2, 3, 4, 7, 16, 31]
    refs = {m: _reference(tokenizer_path, m) for m in lengths}
    full = _reference(tokenizer_path)
    mismatches = []
    for text in strings:
        m = rng.choice(lengths)
        expected = _as_tuple(refs[m].encode(text))
        expected_dropped = len(full.encode(text).ids) - len(expected[1])
        enc = ours.encode(text, max_length=m)
        got = (enc.tokens, enc.ids, enc.offsets)
        if got != expected or enc.dropped != expected_dropped:
            mismatches.append((text, (m, expected_dropped) + expected, (m, enc.dropped) + got))
    assert not mismatches, _report(mismatches, len(strings))


def test_default_truncation_is_512_like_hf(ours, tokenizer_path):
    rng = random.Random(SEED + 3)
    ref = _reference(tokenizer_path, 512)
    text = " ".join(_fragment(rng) for _ in range(900))
    full = ours.encode(text, max_length=None)
    assert len(full.ids) > 600
    enc = ours.encode(text)
    assert _as_tuple(ref.encode(text)) == (enc.tokens, enc.ids, enc.offsets)
    assert len(enc.ids) == 512 and enc.dropped == len(full.ids) - 512


@pytest.mark.parametrize("flags", [
    {"lowercase": False, "strip_accents": None},  # cased BERT: null follows lowercase -> no stripping
    {"lowercase": False, "strip_accents": True},
    {"lowercase": True, "strip_accents": False},  # lowercase without NFD: U+0130 grows to two chars
    {"clean_text": False, "handle_chinese_chars": False},
])
def test_parity_follows_the_normalizer_flags(tokenizer_path, flags, tmp_path):
    with open(tokenizer_path, encoding="utf-8") as f:
        data = json.load(f)
    data["normalizer"].update(flags)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    ref = _reference(path)
    ours = WordPieceTokenizer.from_json(data)
    strings = make_strings(1000, seed=SEED + 4)
    mismatches = []
    for text in strings:
        expected = _as_tuple(ref.encode(text))
        enc = ours.encode(text, max_length=None)
        if (enc.tokens, enc.ids, enc.offsets) != expected:
            mismatches.append((text, expected, (enc.tokens, enc.ids, enc.offsets)))
    assert not mismatches, _report(mismatches, len(strings))
