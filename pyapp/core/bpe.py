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
web: token bytes in id order and each merge as its result id + split point, zlib-compressed).
"""

from __future__ import annotations

import json
import re
import struct
import sys
import zlib
from array import array
from heapq import heapify, heappop, heappush
from itertools import accumulate
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _bpe_tables
from .normalizer import char_class
from .tokenizer import AddedToken, Encoding, TemplateTokenizer, TokenizerError, _template_from_json

COMPACT_MAGIC = b"MHSABPE1"
COMPACT_FORMAT = "mhsa-bpe/1"
_CACHE_LIMIT = 50000


# --------------------------------------------------------------------------- byte-level alphabet


def bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's byte -> character map: printable Latin-1 bytes stand for themselves, the other 68
    bytes (controls, space, NBSP, soft hyphen...) become U+0100 onwards, in byte order."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + n)
            n += 1
    return {b: chars[b] for b in range(256)}


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}
#: str.translate table from a Latin-1 decoded byte string to the byte-level spelling
_SPELL = [BYTE_TO_CHAR[b] for b in range(256)]
#: the inverse, for bytes(...) after str.translate (every byte-level character is below U+0144)
_UNSPELL = {ord(c): b for c, b in CHAR_TO_BYTE.items()}


def byte_level(text: str) -> str:
    """The byte-level spelling of ``text``'s UTF-8 bytes (one character per byte)."""
    return text.encode("utf-8", "surrogatepass").decode("latin-1").translate(_SPELL)


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
        data = _json_object(data, "tokenizer.json")
        model = data.get("model") or {}
        if model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
            raise TokenizerError("tokenizer.json: only a BPE model with a vocab is supported, got %r"
                                 % model.get("type"))
        for key, neutral in (("dropout", None), ("continuing_subword_prefix", ""),
                             ("end_of_word_suffix", ""), ("byte_fallback", False)):
            if (model.get(key) or neutral) != neutral:
                raise TokenizerError("tokenizer.json: BPE %s=%r is not supported" % (key, model.get(key)))
        if data.get("normalizer") is not None:
            raise TokenizerError("tokenizer.json: a normalizer (%r) is not supported"
                                 % _kind(data.get("normalizer")))
        pre = data.get("pre_tokenizer")
        if not (isinstance(pre, dict) and pre.get("type") == "ByteLevel"):
            raise TokenizerError("tokenizer.json: only the ByteLevel pre-tokenizer is supported, got %r"
                                 % _kind(pre))
        decoder = data.get("decoder")
        if decoder is not None and _kind(decoder) != "ByteLevel":
            raise TokenizerError("tokenizer.json: only the ByteLevel decoder is supported, got %r" % _kind(decoder))
        trim, trim_prefix, prefix, suffix = _post_processor_from_json(data.get("post_processor"))
        tokens = _tokens_by_id(model["vocab"])
        vocab = {t: i for i, t in enumerate(tokens) if t is not None}
        merges = [_merge_ids(m, vocab) for m in model.get("merges") or []]
        added = []
        for t in data.get("added_tokens") or []:
            if t.get("lstrip") or t.get("rstrip") or t.get("single_word"):
                raise TokenizerError("tokenizer.json: added token %r uses lstrip/rstrip/single_word, "
                                     "which is not supported" % t.get("content"))
            if t.get("content"):
                added.append(AddedToken(t["content"], int(t["id"]), bool(t.get("special", False))))
        return cls(tokens, merges, vocab=vocab, added_tokens=added,
                   add_prefix_space=bool(pre.get("add_prefix_space")),
                   use_regex=pre.get("use_regex", True), trim_offsets=trim, trim_prefix_space=trim_prefix,
                   prefix_tokens=prefix, suffix_tokens=suffix, unk_token=model.get("unk_token"),
                   fuse_unk=bool(model.get("fuse_unk")), ignore_merges=bool(model.get("ignore_merges")))

    @classmethod
    def from_files(cls, encoder_json: Any, vocab_bpe: Any,
                   special_tokens: Sequence[str] = ("<|endoftext|>",)) -> "BPETokenizer":
        """From GPT-2's ``encoder.json`` (token -> id) and ``vocab.bpe`` (one merge a line), with the
        pre-tokenizer and decoder of GPT-2's tokenizer.json; ``special_tokens`` found in the vocabulary
        become special added tokens (GPT-2 declares ``<|endoftext|>``)."""
        vocab_dict = _json_object(encoder_json, "encoder.json")
        if isinstance(vocab_bpe, (bytes, bytearray)):
            vocab_bpe = bytes(vocab_bpe).decode("utf-8")
        tokens = _tokens_by_id(vocab_dict)
        vocab = {t: i for i, t in enumerate(tokens) if t is not None}
        merges = []
        for number, line in enumerate(vocab_bpe.split("\n"), 1):
            if line.startswith("#version") or not line:
                continue
            parts = line.split(" ")
            if len(parts) != 2:
                raise TokenizerError("vocab.bpe line %d is not two tokens: %r" % (number, line))
            merges.append(_merge_ids(parts, vocab))
        added = [AddedToken(t, vocab[t]) for t in special_tokens if t in vocab]
        return cls(tokens, merges, vocab=vocab, added_tokens=added)

    def to_compact(self) -> bytes:
        """The small binary form ``from_compact`` reads (see the module docstring)."""
        spelled = set(CHAR_TO_BYTE)
        odd = {}  # id -> token that the alphabet cannot spell as bytes, or longer than a length byte
        lengths = array("B")
        blob = []
        for i, t in enumerate(self.tokens):
            if t is not None and set(t) <= spelled and len(t) < 256:
                lengths.append(len(t))
                blob.append(t)
            else:
                lengths.append(0)
                if t is not None:
                    odd[str(i)] = t
        merged, split = array("i"), array("B")
        previous = 0
        for (a, b), new in zip(self.merges, self._merged):
            k = len(self.tokens[a])
            if k > 255 or self.tokens[new] != self.tokens[a] + self.tokens[b]:
                raise TokenizerError("merge %d cannot be stored compactly" % len(merged))
            merged.append(new - previous)  # deltas: mostly 1, which zlib folds away
            previous = new
            split.append(k)
        header = {
            "format": COMPACT_FORMAT, "n_tokens": len(self.tokens), "n_merges": len(self.merges),
            "odd_tokens": odd,
            "added_tokens": [[t.content, t.id, t.special] for t in self.added_tokens],
            "add_prefix_space": self.add_prefix_space, "use_regex": self.use_regex,
            "trim_offsets": self.trim_offsets, "trim_prefix_space": self.trim_prefix_space,
            "prefix_tokens": self.prefix_tokens, "suffix_tokens": self.suffix_tokens,
            "unk_token": self.unk_token, "fuse_unk": self.fuse_unk, "ignore_merges": self.ignore_merges,
        }
        head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        body = b"".join([
            struct.pack("<I", len(head)), head, _le(lengths),
            "".join(blob).translate(_UNSPELL).encode("latin-1"), _le(merged), _le(split),
        ])
        return COMPACT_MAGIC + zlib.compress(body, 9)

    @classmethod
    def from_compact(cls, data: bytes) -> "BPETokenizer":
        """From ``to_compact()``'s bytes."""
        data = bytes(data)
        if not data.startswith(COMPACT_MAGIC):
            raise TokenizerError("not a compact BPE tokenizer file (bad magic)")
        try:
            body = zlib.decompress(data[len(COMPACT_MAGIC):])
            (n_head,) = struct.unpack_from("<I", body)
            header = json.loads(body[4:4 + n_head].decode("utf-8"))
        except (zlib.error, struct.error, ValueError) as e:
            raise TokenizerError("compact BPE tokenizer file is corrupt: %s" % e) from None
        if header.get("format") != COMPACT_FORMAT:
            raise TokenizerError("compact BPE tokenizer format %r is not %r"
                                 % (header.get("format"), COMPACT_FORMAT))
        n, n_merges = header["n_tokens"], header["n_merges"]
        pos = 4 + n_head
        lengths = _from_le("B", body, pos, n)
        pos += n
        n_chars = sum(lengths)
        spelled = body[pos:pos + n_chars].decode("latin-1").translate(_SPELL)
        pos += n_chars
        merged = list(accumulate(_from_le("i", body, pos, n_merges)))
        pos += 4 * n_merges
        split = _from_le("B", body, pos, n_merges)
        if pos + n_merges != len(body):
            raise TokenizerError("compact BPE tokenizer file is corrupt: wrong length")
        ends = list(accumulate(lengths))
        tokens: List[Optional[str]] = [spelled[e - m:e] if m else None for e, m in zip(ends, lengths)]
        for i, t in header["odd_tokens"].items():
            tokens[int(i)] = t
        vocab = {t: i for i, t in enumerate(tokens) if t is not None}
        try:
            merges = [(vocab[tokens[m][:k]], vocab[tokens[m][k:]]) for m, k in zip(merged, split)]
        except (KeyError, TypeError, IndexError):
            raise TokenizerError("compact BPE tokenizer file is corrupt: a merge names no token") from None
        return cls(tokens, merges, merged=merged, vocab=vocab,
                   added_tokens=[AddedToken(c, int(i), bool(s)) for c, i, s in header["added_tokens"]],
                   add_prefix_space=header["add_prefix_space"], use_regex=header["use_regex"],
                   trim_offsets=header["trim_offsets"], trim_prefix_space=header["trim_prefix_space"],
                   prefix_tokens=[tuple(t) for t in header["prefix_tokens"]],
                   suffix_tokens=[tuple(t) for t in header["suffix_tokens"]],
                   unk_token=header["unk_token"], fuse_unk=header["fuse_unk"],
                   ignore_merges=header["ignore_merges"])

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
                spelled, char_of = word.translate(_SPELL), None
            else:
                raw = word.encode("utf-8", "surrogatepass")
                spelled = raw.decode("latin-1").translate(_SPELL)
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


def _le(values: array) -> bytes:
    """Little-endian bytes of an array (the compact form's byte order on every machine)."""
    if sys.byteorder != "little":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _from_le(typecode: str, data: bytes, pos: int, count: int) -> array:
    values = array(typecode)
    values.frombytes(data[pos:pos + count * values.itemsize])
    if len(values) != count:
        raise TokenizerError("compact BPE tokenizer file is corrupt: truncated")
    if sys.byteorder != "little":
        values.byteswap()
    return values


def _json_object(data: Any, what: str) -> Dict[str, Any]:
    if isinstance(data, (bytes, bytearray)):
        data = bytes(data).decode("utf-8")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError as e:
            raise TokenizerError("%s is not valid JSON: %s" % (what, e)) from None
    if not isinstance(data, dict):
        raise TokenizerError("%s must hold a JSON object" % what)
    return data


def _kind(spec: Any) -> Any:
    return spec.get("type") if isinstance(spec, dict) else spec


def _tokens_by_id(vocab: Dict[Any, Any]) -> List[Optional[str]]:
    """A token -> id map as a list indexed by id (None where no token has that id)."""
    try:
        pairs = [(int(i), str(t)) for t, i in vocab.items()]
    except (TypeError, ValueError):
        raise TokenizerError("the vocabulary must map tokens to integer ids") from None
    size = max((i for i, _ in pairs), default=-1) + 1
    if any(i < 0 for i, _ in pairs) or size > 4 * len(pairs) + 1024:
        raise TokenizerError("the vocabulary's ids are negative or far from dense")
    tokens: List[Optional[str]] = [None] * size
    for i, t in pairs:
        tokens[i] = t
    return tokens


def _merge_ids(merge: Any, vocab: Dict[str, int]) -> Tuple[int, int]:
    """A merge, "a b" (old tokenizer.json, vocab.bpe) or ["a", "b"], as a pair of ids."""
    parts = merge.split(" ") if isinstance(merge, str) else merge
    if len(parts) != 2:
        raise TokenizerError("merge %r is not two tokens" % (merge,))
    a, b = vocab.get(parts[0]), vocab.get(parts[1])
    if a is None or b is None:
        raise TokenizerError("merge %r names a token that is not in the vocabulary" % (merge,))
    return a, b


def _post_processor_from_json(spec: Any) -> Tuple[bool, bool, List[Any], List[Any]]:
    """(trim_offsets, trim keeps one prefix space, template prefix, template suffix)."""
    items = spec.get("processors", []) if _kind(spec) == "Sequence" else [spec]
    trim, trim_prefix, prefix, suffix = False, True, [], []
    for item in items:
        if item is None:
            continue
        if _kind(item) == "ByteLevel":
            trim = bool(item.get("trim_offsets", True))
            trim_prefix = bool(item.get("add_prefix_space", True))
        else:
            prefix, suffix = _template_from_json(item)
    return trim, trim_prefix, prefix, suffix
