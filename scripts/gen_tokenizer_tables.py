"""Generate pyapp/core/_unicode_tables.py by measuring Hugging Face `tokenizers` (CPython only).

The Rust `tokenizers` crate classifies characters with its own Unicode tables (the old
`unicode_categories` crate for control / punctuation / nonspacing marks, an old
`unicode-normalization-alignments` for NFD, Rust's std for whitespace and lowercase). They agree
neither with CPython 3.11's `unicodedata` (Unicode 14) nor with Pyodide 0.17's (Unicode 12.1), so
the browser tokenizer ships the tables measured here instead of asking `unicodedata` at run time.

Every code point is pushed through the reference one stage at a time:
  clean_text      BertNormalizer(clean_text only)      -> removed / mapped to ' ' / kept
  NFD             normalizers.NFD()                     -> canonical decomposition
  nonspacing mark BertNormalizer(strip_accents only)    -> removed when it does not decompose
  lowercase       BertNormalizer(lowercase only)        -> Rust char::to_lowercase
  punctuation     BertPreTokenizer on 'a' + c + 'a'     -> isolated
  whitespace      BertPreTokenizer on 'a' + c + 'a'     -> removed
  non-starters    NFD reordering probes against U+0334 (ccc 1) and U+0345 (ccc 240); the
                  combining class value itself comes from unicodedata (ccc values never change).

Usage:  python scripts/gen_tokenizer_tables.py [--check]
"""

from __future__ import annotations

import argparse
import os
import sys
import unicodedata

import tokenizers
from tokenizers import normalizers, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "pyapp", "core", "_unicode_tables.py")

CHINESE_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)  # fmt: skip


def code_points():
    return [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]


def hangul_nfd(cp: int) -> str:
    s = cp - 0xAC00
    lead, vowel, tail = 0x1100 + s // 588, 0x1161 + (s % 588) // 28, 0x11A7 + s % 28
    return chr(lead) + chr(vowel) + (chr(tail) if tail != 0x11A7 else "")


def measure():
    bert = normalizers.BertNormalizer
    clean = bert(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    strip = bert(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    lower = bert(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True)
    chinese = bert(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
    nfd = normalizers.NFD()
    pre = pre_tokenizers.BertPreTokenizer()

    t = {"remove": [], "space": [], "ws": [], "punct": [], "mn": [], "chinese": [],
         "decomp": {}, "lower": {}, "ccc": {}}  # fmt: skip
    for cp in code_points():
        ch = chr(cp)
        out = clean.normalize_str(ch)
        if out == "":
            t["remove"].append(cp)
        elif out == " " and ch != " ":
            t["space"].append(cp)
        elif out != ch:
            raise SystemExit("unexpected clean_text output for U+%04X: %r" % (cp, out))
        decomposed = nfd.normalize_str(ch)
        if decomposed != ch:
            if 0xAC00 <= cp <= 0xD7A3:
                if decomposed != hangul_nfd(cp):
                    raise SystemExit("Hangul U+%04X does not decompose algorithmically" % cp)
            else:
                t["decomp"][cp] = decomposed
        elif strip.normalize_str(ch) == "":
            t["mn"].append(cp)
        low = lower.normalize_str(ch)
        if low != ch:
            t["lower"][cp] = low
        if chinese.normalize_str(ch) != ch:
            t["chinese"].append(cp)
        splits = [s for s, _ in pre.pre_tokenize_str("a" + ch + "a")]
        if splits == ["a", "a"]:
            t["ws"].append(cp)
        elif splits == ["a", ch, "a"]:
            t["punct"].append(cp)
        elif splits != ["a" + ch + "a"]:
            raise SystemExit("unexpected pre-tokenization of U+%04X: %r" % (cp, splits))
        if decomposed == ch and (
            nfd.normalize_str("a" + ch + "\u0334") == "a\u0334" + ch
            or nfd.normalize_str("a\u0345" + ch) == "a" + ch + "\u0345"
        ):
            ccc = unicodedata.combining(ch)
            if ccc == 0:
                raise SystemExit("U+%04X reorders in the reference but has ccc 0 here" % cp)
            t["ccc"][cp] = ccc
    expected_chinese = [c for lo, hi in CHINESE_RANGES for c in range(lo, hi + 1)]
    if sorted(t["chinese"]) != sorted(expected_chinese):
        raise SystemExit("the reference's Chinese ranges differ from CHINESE_RANGES")
    # A nonspacing mark must be a non-starter or a starter on its own: checked by the tests.
    return t


def ranges(cps):
    """Sorted code points -> flat (start0, end0, start1, end1, ...) half-open ranges."""
    flat = []
    for cp in sorted(cps):
        if flat and flat[-1] == cp:
            flat[-1] = cp + 1
        else:
            flat.extend((cp, cp + 1))
    return flat


def fmt_ints(name, values, per_line=8):
    lines = ["%s = (" % name]
    for i in range(0, len(values), per_line):
        lines.append("    " + ", ".join("0x%X" % v for v in values[i : i + per_line]) + ",")
    lines.append(")")
    return "\n".join(lines)


def fmt_map(name, mapping, per_line=4):
    items = sorted(mapping.items())
    lines = ["%s = {" % name]
    for i in range(0, len(items), per_line):
        chunk = items[i : i + per_line]
        lines.append("    " + " ".join("0x%X: %s," % (k, ascii(v)) for k, v in chunk))
    lines.append("}")
    return "\n".join(lines)


def render(t) -> str:
    parts = [
        '"""Character tables of the Hugging Face `tokenizers` BERT pipeline. GENERATED, do not edit.',
        "",
        "Measured from tokenizers %s by scripts/gen_tokenizer_tables.py, so the tokenizer gives the"
        % tokenizers.__version__,
        "same answer whatever Unicode version the running Python's unicodedata has.",
        "Ranges are flat tuples of half-open [start, end) code point pairs, for bisect.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "TOKENIZERS_VERSION = %r" % tokenizers.__version__,
        "",
        "# BertNormalizer clean_text: removed (controls, format, private use, NUL, U+FFFD)",
        fmt_ints("CLEAN_REMOVE", ranges(t["remove"])),
        "# BertNormalizer clean_text: replaced by ' '",
        fmt_ints("CLEAN_SPACE", ranges(t["space"])),
        "# BertPreTokenizer: whitespace (split, removed)",
        fmt_ints("WHITESPACE", ranges(t["ws"])),
        "# BertPreTokenizer: punctuation (split, isolated)",
        fmt_ints("PUNCTUATION", ranges(t["punct"])),
        "# strip_accents: nonspacing marks removed after NFD",
        fmt_ints("NONSPACING_MARK", ranges(t["mn"])),
        "# handle_chinese_chars",
        fmt_ints("CHINESE", ranges(t["chinese"])),
        "# NFD: full canonical decomposition (Hangul syllables are decomposed algorithmically)",
        fmt_map("DECOMPOSITION", t["decomp"]),
        "# NFD canonical ordering: combining class of the non-starters",
        fmt_map("COMBINING_CLASS", t["ccc"], per_line=8),
        "# lowercase (Rust char::to_lowercase)",
        fmt_map("LOWERCASE", t["lower"]),
        "",
    ]
    return "\n".join(parts)


def _tables_only(text: str) -> str:
    """The module without the lines naming the tokenizers version (a new release may measure the same)."""
    return "\n".join(line for line in text.splitlines()
                     if not line.startswith(("TOKENIZERS_VERSION", "Measured from tokenizers")))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="fail if the committed tables differ from what the installed tokenizers gives")
    args = parser.parse_args(argv)
    return write_or_check(OUT, render(measure()), args.check)


def write_or_check(path: str, text: str, check: bool) -> int:
    """Write the generated module, or (``check``) say whether the committed one has the same tables."""
    if check:
        with open(path, encoding="utf-8") as f:
            same = _tables_only(f.read()) == _tables_only(text)
        print("tables up to date" if same else "tables differ from the reference: regenerate")
        return 0 if same else 1
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s (%d bytes)" % (os.path.relpath(path), len(text.encode("utf-8"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
