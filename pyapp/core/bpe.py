"""A pure-Python byte-level BPE tokenizer (GPT-2, SmolLM2) that gives what Hugging Face `tokenizers` gives.

Pipeline (what a GPT-2 style ``tokenizer.json`` declares), for each piece of text between added
(special) tokens such as ``<|endoftext|>`` typed by the user:

    ByteLevel pre-tokenizer   optional prefix space, then the GPT-2 regex
                              's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
                              splits the text into words; each word's UTF-8 bytes are spelled with
                              GPT-2's byte-to-unicode alphabet (a space is ``Ġ``, a newline ``Ċ``)
    BPE                       the lowest-ranked adjacent pair is merged first (leftmost on ties),
                              exactly as HF's priority-queue ``Word::merge_all``; results are cached
    post-processor            optional ByteLevel offset trimming and template special tokens,
                              after truncation to ``max_length``

The regex classes ``\\p{L}``, ``\\p{N}`` and ``\\s`` come from ``_bpe_tables`` (measured from the
reference by scripts/gen_bpe_tables.py: Oniguruma's Unicode 16 tables), never from ``unicodedata``.

Offsets are Python string indices (code points) into the original text, as the Python
``tokenizers`` binding reports them: a token holding part of a character's bytes (an emoji cut into
byte tokens) covers that whole character.

Three ways to build one: ``from_json`` (an HF ``tokenizer.json``), ``from_files`` (GPT-2's
``encoder.json`` + ``vocab.bpe``) and ``from_compact`` (``to_compact()``'s small binary form for the
web); the byte alphabet and those file formats live in ``bpe_formats``.
"""

from __future__ import annotations

import re
from heapq import heapify, heappop, heappush
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _bpe_tables
from . import bpe_formats as formats
from .bpe_formats import CHAR_TO_BYTE, SPELL
from .normalizer import char_class
from .tokenizer import AddedToken, Encoding, TemplateTokenizer, TokenizerError

_CACHE_LIMIT = 50000


def byte_level(text: str) -> str:
    """The byte-level spelling of ``text``'s UTF-8 bytes (one character per byte)."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1").translate(SPELL)


def _token_bytes(token: str) -> bytes:
    """The bytes a token stands for; a token with a character outside the alphabet is its own UTF-8
    (HF's ByteLevel decoder does the same)."""
    try:
        return bytes(CHAR_TO_BYTE[c] for c in token)
    except KeyError:
        return token.encode("utf-8")


# --------------------------------------------------------------------------- pre-tokenizer

_SPLIT_RE = None


def _split_re():
    """The GPT-2 pre-tokenizer regex with Oniguruma's classes written out for Python's ``re``."""
    global _SPLIT_RE
    if _SPLIT_RE is None:
        letter = char_class(_bpe_tables.LETTER)
        number = char_class(_bpe_tables.NUMBER)
        space = char_class(_bpe_tables.WHITESPACE)
        _SPLIT_RE = re.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?[%(L)s]+| ?[%(N)s]+| ?[^%(S)s%(L)s%(N)s]+|[%(S)s]+(?![^%(S)s])|[%(S)s]+"
            % {"L": letter, "N": number, "S": space})
    return _SPLIT_RE


def pre_tokenize(text: str) -> List[Tuple[int, int]]:
    """HF ``ByteLevel(use_regex=True)`` split: (start, end) of each word of ``text``."""
    return [m.span() for m in _split_re().finditer(text)]


# --------------------------------------------------------------------------- tokenizer


class BPETokenizer(TemplateTokenizer):
    """Byte-level BPE: ``encode(text)`` gives the tokens, ids and offsets HF gives.

    ``tokens`` lists the token string of every id (None for an id the vocabulary skips), spelled
    in the byte-level alphabet; ``merges`` lists (left id, right id) pairs, best (rank 0) first;
    ``merged`` (the id each merge makes) and ``vocab`` (token -> id) may be passed when the caller
    has them already; else they are worked out.
    """

    def __init__(self, tokens: Sequence[Optional[str]], merges: Sequence[Tuple[int, int]], *,
                 added_tokens: Sequence[AddedToken] = (), add_prefix_space: bool = False,
                 use_regex: bool = True, trim_offsets: bool = False, trim_prefix_space: bool = True,
                 prefix_tokens: Sequence[Any] = (), suffix_tokens: Sequence[Any] = (),
                 unk_token: Optional[str] = None, fuse_unk: bool = False,
                 ignore_merges: bool = False, merged: Optional[Sequence[int]] = None,
                 vocab: Optional[Dict[str, int]] = None) -> None:
        self.tokens: List[Optional[str]] = list(tokens)
        self.vocab: Dict[str, int] = (vocab if vocab is not None
                                      else {t: i for i, t in enumerate(self.tokens) if t is not None})
        self._set_added_tokens(added_tokens)
        self.add_prefix_space = bool(add_prefix_space)
        self.use_regex = bool(use_regex)
        #: ByteLevel post-processor: trim the spaces a token starts or ends with off its offsets,
        #: except one leading space of the first token when that processor adds prefix spaces
        self.trim_offsets = bool(trim_offsets)
        self.trim_prefix_space = bool(trim_prefix_space)
        self.unk_token = unk_token
        self.unk_id = None if unk_token is None else self.vocab.get(unk_token)
        if unk_token is not None and self.unk_id is None:
            raise TokenizerError("the unknown token %r is not in the vocabulary" % unk_token)
        self.fuse_unk = bool(fuse_unk)
        self.ignore_merges = bool(ignore_merges)
        self._id_to_token: List[Optional[str]] = list(self.tokens)
        for t in self.added_tokens:
            if t.id >= len(self._id_to_token):
                self._id_to_token.extend([None] * (t.id + 1 - len(self._id_to_token)))
            self._id_to_token[t.id] = t.content  # HF looks an id up in the added tokens first
        self._special_ids = {t.id for t in self.added_tokens if t.special}
        self.prefix_tokens = [self._special(t) for t in prefix_tokens]
        self.suffix_tokens = [self._special(t) for t in suffix_tokens]
        self.merges: List[Tuple[int, int]] = list(merges)
        self._k = max(len(self._id_to_token), 1)  # pair key: left * _k + right
        #: rank -> id of the merged token
        self._merged: List[int] = list(merged) if merged is not None else self._merge_results()
        if len(self._merged) != len(self.merges):
            raise TokenizerError("%d merges but %d merge results" % (len(self.merges), len(self._merged)))
        k = self._k
        #: pair key -> rank (a repeated pair keeps its last rank, as HF)
        self._ranks: Dict[int, int] = {a * k + b: r for r, (a, b) in enumerate(self.merges)}
        self._words: Dict[str, Tuple[Tuple[int, int, int], ...]] = {}

    def _merge_results(self) -> List[int]:
        """The id of ``left + right`` for every merge (HF refuses a merge whose result is not a token)."""
        tokens, get = self.tokens, self.vocab.get
        try:
            if self.merges and min(map(min, self.merges)) < 0:
                raise IndexError
            merged = [get(tokens[a] + tokens[b]) for a, b in self.merges]  # type: ignore[operator]
        except (IndexError, TypeError):
            raise TokenizerError("a merge names an id that is not in the vocabulary") from None
        if None in merged:
            a, b = self.merges[merged.index(None)]
            raise TokenizerError("merge %r + %r: its result is not in the vocabulary" % (tokens[a], tokens[b]))
        return merged  # type: ignore[return-value]

    # ---- loading

    @classmethod
    def from_json(cls, data: Any) -> "BPETokenizer":
        """From an HF ``tokenizer.json`` (BPE model, ByteLevel pre-tokenizer): str, bytes or dict."""
        tokens, merges, options = formats.read_json(data)
        return cls(tokens, merges, **options)

    @classmethod
    def from_files(cls, encoder_json: Any, vocab_bpe: Any,
                   special_tokens: Sequence[str] = ("<|endoftext|>",)) -> "BPETokenizer":
        """From GPT-2's ``encoder.json`` and ``vocab.bpe``; ``special_tokens`` found in the vocabulary become
        special added tokens (GPT-2 declares ``<|endoftext|>``)."""
        tokens, merges, options = formats.read_gpt2(encoder_json, vocab_bpe, special_tokens)
        return cls(tokens, merges, **options)

    @classmethod
    def from_compact(cls, data: bytes) -> "BPETokenizer":
        """From ``to_compact()``'s bytes."""
        tokens, merges, options = formats.read_compact(data)
        return cls(tokens, merges, **options)

    def to_compact(self) -> bytes:
        """The small binary form ``from_compact`` reads (``bpe_formats``)."""
        return formats.write_compact(self.tokens, self.merges, self._merged, self.options())

    def options(self) -> Dict[str, Any]:
        """The constructor's keyword options that rebuild this tokenizer with ``tokens`` and ``merges``."""
        return dict(added_tokens=list(self.added_tokens), add_prefix_space=self.add_prefix_space,
                    use_regex=self.use_regex, trim_offsets=self.trim_offsets,
                    trim_prefix_space=self.trim_prefix_space, prefix_tokens=self.prefix_tokens,
                    suffix_tokens=self.suffix_tokens, unk_token=self.unk_token, fuse_unk=self.fuse_unk,
                    ignore_merges=self.ignore_merges)

    # ---- vocabulary

    def _special_id(self, token: str) -> int:
        return self._known_id(token, "special token")

    def _known_id(self, token: str, what: str) -> int:
        token_id = self.token_to_id(token)
        if token_id is None:
            raise TokenizerError("the %s %r has no id" % (what, token))
        return token_id

    @property
    def vocab_size(self) -> int:
        return len(self._id_to_token)

    @property
    def special_tokens(self) -> List[str]:
        """The added tokens marked special, in id order (``<|endoftext|>``, ``<|im_start|>``...)."""
        return [t.content for t in sorted(self.added_tokens, key=lambda t: t.id) if t.special]

    def token_to_id(self, token: str) -> Optional[int]:
        added = self._added_by_content.get(token)
        if added is not None:
            return added.id
        return self.vocab.get(token)

    def id_to_token(self, token_id: int) -> Optional[str]:
        token_id = int(token_id)
        return self._id_to_token[token_id] if 0 <= token_id < len(self._id_to_token) else None

    # ---- encoding

    def encode(self, text: str, max_length: Optional[int] = None) -> Encoding:
        """Tokens, ids and original-text offsets of ``text`` (no BOS: neither GPT-2 nor SmolLM2 adds one).

        With ``max_length`` (None: no limit) the tokens are cut to ``max_length`` minus the template's
        special tokens, keeping the first, like HF ``enable_truncation(max_length)``; ``dropped`` says
        how many went.
        """
        return self._encode_text(text, max_length)

    def _encode_piece(self, text: str, start: int, end: int, tokens: List[str], ids: List[int],
                      offsets: List[Tuple[int, int]]) -> None:
        piece = text[start:end]
        shift = 0
        if self.add_prefix_space and not piece.startswith(" "):
            # HF prepends the space aligned with the piece's first character
            piece = " " + piece
            shift = 1
        spans = pre_tokenize(piece) if self.use_regex else [(0, len(piece))]
        model_tokens = self.tokens
        for w_start, w_end in spans:
            word = piece[w_start:w_end]
            if word.isascii():
                spelled, char_of = word.translate(SPELL), None
            else:
                raw = word.encode("utf-8", "surrogatepass")
                spelled = raw.decode("latin-1").translate(SPELL)
                char_of = []  # byte index in the word -> character index in the word
                for i, ch in enumerate(word):
                    char_of.extend([i] * len(ch.encode("utf-8", "surrogatepass")))
            pieces = self.bpe(spelled)
            base = start + w_start - shift
            for token_id, a, b in pieces:
                if char_of is not None:
                    a, b = char_of[a], char_of[b - 1] + 1
                tokens.append(model_tokens[token_id])
                ids.append(token_id)
                offsets.append((base + a if w_start + a >= shift else start,
                                base + b if w_start + b > shift else start + 1))

    def bpe(self, word: str) -> Tuple[Tuple[int, int, int], ...]:
        """HF ``BPE`` on one byte-level word: (id, start, end) of each token, positions in ``word``.

        A character missing from the vocabulary (SmolLM2 has no token for bytes such as 0x04 or the
        UTF-8 lead byte 0xF1) is dropped, as HF drops it when there is no unknown token; the positions
        are then HF's (see ``_positions_after_drop``).
        """
        cached = self._words.get(word)
        if cached is not None:
            return cached
        whole = self.vocab.get(word) if self.ignore_merges else None
        if whole is not None:
            result: Tuple[Tuple[int, int, int], ...] = ((whole, 0, len(word)),)
        else:
            ids, starts, dropped = self._symbols(word)
            live = self._merge(ids)
            if dropped:
                result = _positions_after_drop(word, ids, starts, live)
            else:
                bounds = [starts[i] for i in live] + [len(word)]
                result = tuple((ids[i], bounds[t], bounds[t + 1]) for t, i in enumerate(live))
        if len(self._words) > _CACHE_LIMIT:
            self._words.clear()
        self._words[word] = result
        return result

    def _symbols(self, word: str) -> Tuple[List[int], List[int], bool]:
        """The word's characters as ids, their positions, and whether any was dropped."""
        vocab = self.vocab
        ids = [vocab.get(ch) for ch in word]
        if None not in ids:
            return ids, list(range(len(word))), False
        kept, starts = [], []
        for i, token_id in enumerate(ids):
            if token_id is None:
                if self.unk_id is None:
                    continue
                if self.fuse_unk and kept and kept[-1] == self.unk_id:
                    continue
                token_id = self.unk_id
            kept.append(token_id)
            starts.append(i)
        return kept, starts, self.unk_id is None

    def _merge(self, ids: List[int]) -> List[int]:
        """Merge ``ids`` in place, HF ``Word::merge_all``; returns the indices of the symbols left
        (``ids[i]`` is then the token starting at symbol ``i``).

        A heap of (rank, position); an entry is stale when its left symbol is gone or the pair there
        now merges into another token.
        """
        n = len(ids)
        if n < 2:
            return list(range(n))
        nxt = list(range(1, n + 1))
        ranks, merged, k = self._ranks, self._merged, self._k
        prv = list(range(-1, n - 1))
        heap = []
        for i in range(n - 1):
            r = ranks.get(ids[i] * k + ids[i + 1])
            if r is not None:
                heap.append((r, i))
        heapify(heap)
        while heap:
            r, i = heappop(heap)
            j = nxt[i]
            if ids[i] < 0 or j >= n:
                continue
            now = ranks.get(ids[i] * k + ids[j])
            new = merged[r]
            if now is None or merged[now] != new:
                continue
            ids[i] = new
            ids[j] = -1
            after = nxt[j]
            nxt[i] = after
            if after < n:
                prv[after] = i
                r2 = ranks.get(new * k + ids[after])
                if r2 is not None:
                    heappush(heap, (r2, i))
            before = prv[i]
            if before >= 0:
                r2 = ranks.get(ids[before] * k + new)
                if r2 is not None:
                    heappush(heap, (r2, before))
        return [i for i in range(n) if ids[i] >= 0]

    def _final_offsets(self, tokens: List[str], offsets: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
        return self._trimmed(tokens, offsets) if self.trim_offsets else offsets

    def _trimmed(self, tokens: List[str], offsets: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
        """HF ``ByteLevel`` post-processor ``trim_offsets``: a token's leading and trailing spaces
        leave its offsets (in characters, as the binding converts them before post-processing)."""
        out = []
        for index, (token, (a, b)) in enumerate(zip(tokens, offsets)):
            lead = len(token) - len(token.lstrip(_SPACES))
            trail = len(token) - len(token.rstrip(_SPACES))
            if lead:
                if (index == 0 or a == 0) and self.trim_prefix_space and lead == 1:
                    lead = 0  # the prefix space the processor would have added
                a = min(a + lead, b)
            if trail and b >= trail:
                b = max(b - trail, a)
            out.append((a, b))
        return out

    # ---- decoding

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """HF ``decode`` with the ByteLevel decoder: the tokens' bytes as UTF-8, invalid sequences
        replaced by U+FFFD; ids without a token are skipped."""
        parts = []
        for token_id in ids:
            token = self.id_to_token(token_id)
            if token is None or (skip_special_tokens and int(token_id) in self._special_ids):
                continue
            parts.append(_token_bytes(token))
        return b"".join(parts).decode("utf-8", "replace")


#: what the ByteLevel post-processor trims: the byte-level space and Rust's char::is_whitespace
_SPACES = "\u0120" + "".join(chr(c) for s, e in zip(_bpe_tables.WHITESPACE[::2], _bpe_tables.WHITESPACE[1::2])
                             for c in range(s, e))


def _positions_after_drop(word: str, ids: List[int], starts: List[int],
                          live: List[int]) -> Tuple[Tuple[int, int, int], ...]:
    """Where HF puts the tokens of a word that lost characters: it adds up the kept symbols' lengths
    in the byte-level word's UTF-8 from 0, so every token after a dropped character moves left;
    those byte positions go back to characters of ``word`` (= bytes of the original word)."""
    widths = [1 if ord(c) < 0x80 else 2 for c in word]  # every byte-level character is below U+0800
    char_at = []  # UTF-8 byte of the byte-level word -> its character
    for i, w in enumerate(widths):
        char_at.extend([i] * w)
    out = []
    cursor = 0
    bounds = live + [len(starts)]
    for t, i in enumerate(live):
        width = sum(widths[starts[s]] for s in range(i, bounds[t + 1]))
        out.append((ids[i], char_at[cursor], char_at[cursor + width - 1] + 1))
        cursor += width
    return tuple(out)

