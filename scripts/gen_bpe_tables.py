"""Generate pyapp/core/_bpe_tables.py by measuring Hugging Face `tokenizers` (CPython only).

The byte-level BPE pre-tokenizer of GPT-2 splits text with the regex

    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+

which `tokenizers` runs with Oniguruma and its own Unicode tables. Python 3.8's `re` has no
``\\p{..}`` and its ``\\s`` is ``str.isspace`` (a different set), and ``unicodedata`` differs between
runtimes (Pyodide 0.17: Unicode 12.1, CPython 3.11: 14.0), so the three classes are measured here,
one code point at a time, and shipped as ranges:

  letter      ``'a' + c``  is one piece   (\\p{L}+)
  number      ``'1' + c``  is one piece   (\\p{N}+)
  other       ``'!' + c``  is one piece   ([^\\s\\p{L}\\p{N}]+)
  whitespace  ``'\\t' + c`` is one piece   (\\s+)

Every code point must fall in exactly one class. The whitespace class is not written out when it
equals the BERT pre-tokenizer's (``_unicode_tables.WHITESPACE``), which the module then reuses.

Usage:  python scripts/gen_bpe_tables.py [--check]
"""

from __future__ import annotations

import argparse
import os
import sys
import unicodedata

import tokenizers
from tokenizers import pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
OUT = os.path.join(ROOT, "pyapp", "core", "_bpe_tables.py")
sys.path.insert(0, ROOT)

from gen_tokenizer_tables import code_points, fmt_ints, ranges, write_or_check  # noqa: E402

from pyapp.core import _unicode_tables  # noqa: E402

PROBES = (("letter", "a"), ("number", "1"), ("other", "!"), ("whitespace", "\t"))


def measure():
    pre = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    classes = {name: [] for name, _ in PROBES}
    for cp in code_points():
        ch = chr(cp)
        hits = [name for name, probe in PROBES if len(pre.pre_tokenize_str(probe + ch)) == 1]
        if len(hits) != 1:
            raise SystemExit("U+%04X falls in %r, not in exactly one class" % (cp, hits))
        classes[hits[0]].append(cp)
    return classes


def unicode_agreement(classes):
    """How many code points this Python's unicodedata classifies differently (for the docstring)."""
    wrong = 0
    for name in ("letter", "number"):
        want = set(classes[name])
        for cp in code_points():
            cat = unicodedata.category(chr(cp))[0]
            if (cat == name[0].upper()) != (cp in want):
                wrong += 1
    return wrong


def render(classes) -> str:
    whitespace = ranges(classes["whitespace"])
    shared = tuple(whitespace) == tuple(_unicode_tables.WHITESPACE)
    parts = [
        'r"""Character classes of the GPT-2 byte-level pre-tokenizer regex. GENERATED, do not edit.',
        "",
        "Measured from tokenizers %s (Oniguruma's \\p{L}, \\p{N}, \\s) by scripts/gen_bpe_tables.py,"
        % tokenizers.__version__,
        "so the BPE tokenizer splits text the same way whatever Unicode version the running Python has.",
        "Ranges are flat tuples of half-open [start, end) code point pairs, for bisect.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "TOKENIZERS_VERSION = %r" % tokenizers.__version__,
        "",
        "# \\p{L}",
        fmt_ints("LETTER", ranges(classes["letter"])),
        "# \\p{N}",
        fmt_ints("NUMBER", ranges(classes["number"])),
    ]
    if shared:
        parts += ["# \\s: the same code points as _unicode_tables.WHITESPACE",
                  "from ._unicode_tables import WHITESPACE  # noqa: E402,F401"]
    else:
        parts += ["# \\s", fmt_ints("WHITESPACE", whitespace)]
    parts.append("")
    return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="fail if the committed tables differ from what the installed tokenizers gives")
    args = parser.parse_args(argv)
    classes = measure()
    text = render(classes)
    print("letters/numbers differing from this Python's unicodedata (Unicode %s): %d code points"
          % (unicodedata.unidata_version, unicode_agreement(classes)))
    return write_or_check(OUT, text, args.check)


if __name__ == "__main__":
    sys.exit(main())
