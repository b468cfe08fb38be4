"""BERT's text pipeline before WordPiece, as HF `tokenizers` runs it: ``BertNormalizer`` (clean text,
CJK spacing, accents stripped through NFD, lowercase; every normalized character keeps the index of the
original character it came from) and ``BertPreTokenizer`` (whitespace dropped, punctuation one character each).

Character classes come from ``_unicode_tables`` (measured from the reference by
scripts/gen_tokenizer_tables.py), never from ``unicodedata``: Pyodide 0.17's Unicode 12.1, CPython
3.11's Unicode 14 and the Rust crate's own tables all disagree somewhere.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Dict, List, Optional, Sequence, Tuple

from . import _unicode_tables as _tables


def _in_ranges(ranges: Sequence[int], cp: int) -> bool:
    """Is ``cp`` inside one of the flat half-open (start, end, start, end, ...) ranges?"""
    return bisect_right(ranges, cp) % 2 == 1


def char_class(ranges: Sequence[int]) -> str:
    """A regex character class body for flat half-open ranges."""
    parts = []
    for start, end in zip(ranges[::2], ranges[1::2]):
        parts.append(re.escape(chr(start)))
        if end - start > 1:
            parts.append("-" + re.escape(chr(end - 1)))
    return "".join(parts)


# --------------------------------------------------------------------------- normalizer


def _decompose(ch: str) -> str:
    """Canonical decomposition (NFD) of one character, before canonical ordering."""
    cp = ord(ch)
    if 0xAC00 <= cp <= 0xD7A3:  # Hangul syllable -> leading consonant, vowel, optional trailing
        s = cp - 0xAC00
        tail = s % 28
        return chr(0x1100 + s // 588) + chr(0x1161 + (s % 588) // 28) + (chr(0x11A7 + tail) if tail else "")
    return _tables.DECOMPOSITION.get(cp, ch)


def _ccc(ch: str) -> int:
    return _tables.COMBINING_CLASS.get(ord(ch), 0)


def _is_nonspacing_mark(ch: str) -> bool:
    return _in_ranges(_tables.NONSPACING_MARK, ord(ch))


def _lower(ch: str) -> str:
    return _tables.LOWERCASE.get(ord(ch), ch)


def _realign(sources: List[int], changes: Sequence[int]) -> List[int]:
    """Follow HF ``NormalizedString::transform``: the source of each new character.

    ``changes[k]`` is 1 for an inserted character (it takes the source of the character before the
    cursor, or none at the very start), 0 for a replacement and -n for a replacement followed by n
    removed characters.  -1 stands for "no source" (HF's (0, 0) alignment).
    """
    out = []
    cursor = 0
    for change in changes:
        if change > 0:
            out.append(sources[cursor - 1] if cursor > 0 else -1)
        else:
            out.append(sources[cursor])
            cursor += 1 - change
    return out


class BertNormalizer:
    """HF ``BertNormalizer`` with alignments: ``normalize(text) -> (normalized, sources)``."""

    def __init__(self, clean_text: bool = True, handle_chinese_chars: bool = True,
                 strip_accents: Optional[bool] = None, lowercase: bool = True) -> None:
        self.clean_text = bool(clean_text)
        self.handle_chinese_chars = bool(handle_chinese_chars)
        # HF: strip_accents = null follows lowercase
        self.strip_accents = bool(lowercase) if strip_accents is None else bool(strip_accents)
        self.lowercase = bool(lowercase)
        self._cache: Dict[str, Tuple[str, bool]] = {}
        self._ascii = {cp: self._char(chr(cp))[0] or None for cp in range(128)}

    def normalize(self, text: str) -> Tuple[str, Sequence[int]]:
        """The normalized text and, per normalized character, the index in ``text`` of its source."""
        if text.isascii():
            out = text.translate(self._ascii)
            if len(out) == len(text):  # nothing removed: an ASCII character maps to at most one
                return out, range(len(text))
        cache = self._cache
        parts = []
        sources: List[int] = []
        for i, ch in enumerate(text):
            entry = cache.get(ch)
            if entry is None:
                entry = self._char(ch)
            out, needs_reordering = entry
            if needs_reordering:
                return self._normalize_exact(text)
            if out:
                parts.append(out)
                if len(out) == 1:
                    sources.append(i)
                else:
                    sources.extend([i] * len(out))
        return "".join(parts), sources

    def _char(self, ch: str) -> Tuple[str, bool]:
        """All stages on one character: its output, and whether NFD canonical ordering could move it.

        Only non-starters that survive accent stripping (a few spacing marks such as U+1D165) can
        change the result when reordered; text holding one takes the exact path.
        """
        chars = [ch]
        if self.clean_text:
            cp = ord(ch)
            if _in_ranges(_tables.CLEAN_REMOVE, cp):
                chars = []
            elif _in_ranges(_tables.CLEAN_SPACE, cp):
                chars = [" "]
        if self.handle_chinese_chars and chars and _in_ranges(_tables.CHINESE, ord(chars[0])):
            chars = [" ", chars[0], " "]
        needs_reordering = False
        if self.strip_accents:
            decomposed = "".join(_decompose(c) for c in chars)
            needs_reordering = any(_ccc(c) and not _is_nonspacing_mark(c) for c in decomposed)
            chars = [c for c in decomposed if not _is_nonspacing_mark(c)]
        if self.lowercase:
            chars = [_lower(c) for c in chars]
        result = ("".join(chars), needs_reordering)
        self._cache[ch] = result
        return result

    def _normalize_exact(self, text: str) -> Tuple[str, List[int]]:
        """Stage by stage, with NFD canonical ordering and HF's alignment bookkeeping."""
        chars = list(text)
        sources = list(range(len(text)))
        if self.clean_text:
            kept = [(c, s) for c, s in zip(chars, sources)
                    if not _in_ranges(_tables.CLEAN_REMOVE, ord(c))]
            chars = [" " if _in_ranges(_tables.CLEAN_SPACE, ord(c)) else c for c, _ in kept]
            sources = [s for _, s in kept]
        if self.handle_chinese_chars:
            new_chars, changes = [], []
            for c in chars:
                if _in_ranges(_tables.CHINESE, ord(c)):
                    new_chars += [" ", c, " "]
                    changes += [1, 0, 1]
                else:
                    new_chars.append(c)
                    changes.append(0)
            sources = _realign(sources, changes)
            chars = new_chars
        if self.strip_accents:
            items = []  # (char, change) of the decomposition; changes travel with the characters
            for c in chars:
                d = _decompose(c)
                items.append((d[0], 0))
                items.extend((x, 1) for x in d[1:])
            items = _canonical_order(items)
            sources = _realign(sources, [change for _, change in items])
            kept = [(c, s) for (c, _), s in zip(items, sources) if not _is_nonspacing_mark(c)]
            chars = [c for c, _ in kept]
            sources = [s for _, s in kept]
        if self.lowercase:
            new_chars, new_sources = [], []
            for c, s in zip(chars, sources):
                low = _lower(c)
                new_chars.extend(low)
                new_sources.extend([s] * len(low))
            chars, sources = new_chars, new_sources
        return "".join(chars), sources


def _canonical_order(items: List[Tuple[str, int]]) -> List[Tuple[str, int]]:
    """Stable-sort every run of non-starters by canonical combining class (NFD step 2)."""
    out: List[Tuple[str, int]] = []
    run: List[Tuple[str, int]] = []
    for item in items:
        if _ccc(item[0]):
            run.append(item)
            continue
        if run:
            out.extend(sorted(run, key=lambda it: _ccc(it[0])))
            run = []
        out.append(item)
    if run:
        out.extend(sorted(run, key=lambda it: _ccc(it[0])))
    return out


# --------------------------------------------------------------------------- pre-tokenizer

_WORD_RE = None


def _word_re():
    """Words: one punctuation character, or a run of characters that are neither it nor whitespace."""
    global _WORD_RE
    if _WORD_RE is None:
        punct = char_class(_tables.PUNCTUATION)
        space = char_class(_tables.WHITESPACE)
        _WORD_RE = re.compile("[%s]|[^%s%s]+" % (punct, punct, space))
    return _WORD_RE


def pre_tokenize(normalized: str) -> List[Tuple[int, int]]:
    """HF ``BertPreTokenizer``: (start, end) of each word in the normalized text."""
    return [m.span() for m in _word_re().finditer(normalized)]
