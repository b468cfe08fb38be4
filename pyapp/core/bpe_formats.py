"""The byte-level alphabet and the files a byte-level BPE tokenizer (``bpe.BPETokenizer``) is read from.

* ``read_json``: an HF ``tokenizer.json`` (BPE model, ByteLevel pre-tokenizer, optional template);
* ``read_gpt2``: GPT-2's ``encoder.json`` (token -> id) + ``vocab.bpe`` (one merge a line);
* ``write_compact`` / ``read_compact``: the small binary form the site ships (SmolLM2's 1.56 MB
  tokenizer.json is 222 KB so): ``MHSABPE1`` + zlib of a JSON header, every token's length and bytes in
  id order (spelled back into the alphabet on reading), each merge as the delta of its result id and its
  split point.

Each reader returns ``(tokens, merges, options)``: ``BPETokenizer(tokens, merges, **options)``.
"""

from __future__ import annotations

import json
import struct
import sys
import zlib
from array import array
from itertools import accumulate
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .tokenizer import AddedToken, TokenizerError, _template_from_json, json_object

COMPACT_MAGIC = b"MHSABPE1"
COMPACT_FORMAT = "mhsa-bpe/1"
#: the constructor options the compact header stores as they are
_COMPACT_OPTIONS = ("add_prefix_space", "use_regex", "trim_offsets", "trim_prefix_space", "prefix_tokens",
                    "suffix_tokens", "unk_token", "fuse_unk", "ignore_merges")
Args = Tuple[List[Optional[str]], List[Tuple[int, int]], Dict[str, Any]]  # (tokens, merges, options)


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
SPELL = [BYTE_TO_CHAR[b] for b in range(256)]
#: the inverse, for bytes(...) after str.translate (every byte-level character is below U+0144)
UNSPELL = {ord(c): b for c, b in CHAR_TO_BYTE.items()}


# --------------------------------------------------------------------------- files


def read_json(data: Any) -> Args:
    """An HF ``tokenizer.json`` (BPE model, ByteLevel pre-tokenizer): str, bytes or dict."""
    data = json_object(data, "tokenizer.json")
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
    return tokens, merges, dict(
        vocab=vocab, added_tokens=added, add_prefix_space=bool(pre.get("add_prefix_space")),
        use_regex=pre.get("use_regex", True), trim_offsets=trim, trim_prefix_space=trim_prefix,
        prefix_tokens=prefix, suffix_tokens=suffix, unk_token=model.get("unk_token"),
        fuse_unk=bool(model.get("fuse_unk")), ignore_merges=bool(model.get("ignore_merges")))

def read_gpt2(encoder_json: Any, vocab_bpe: Any, special_tokens: Sequence[str] = ("<|endoftext|>",)) -> Args:
    """GPT-2's ``encoder.json`` (token -> id) and ``vocab.bpe`` (one merge a line), with the
    pre-tokenizer and decoder of GPT-2's tokenizer.json; ``special_tokens`` found in the vocabulary
    become special added tokens (GPT-2 declares ``<|endoftext|>``)."""
    vocab_dict = json_object(encoder_json, "encoder.json")
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
    return tokens, merges, dict(vocab=vocab, added_tokens=added)

def write_compact(tokens: Sequence[Optional[str]], merges: Sequence[Tuple[int, int]], merged: Sequence[int],
                  options: Dict[str, Any]) -> bytes:
    """The compact form of a tokenizer (``BPETokenizer.options()`` gives ``options``): see the module
    docstring."""
    spelled = set(CHAR_TO_BYTE)
    odd = {}  # id -> token that the alphabet cannot spell as bytes, or longer than a length byte
    lengths = array("B")
    blob = []
    for i, t in enumerate(tokens):
        if t is not None and set(t) <= spelled and len(t) < 256:
            lengths.append(len(t))
            blob.append(t)
        else:
            lengths.append(0)
            if t is not None:
                odd[str(i)] = t
    deltas, split = array("i"), array("B")
    previous = 0
    for (a, b), new in zip(merges, merged):
        k = len(tokens[a])
        if k > 255 or tokens[new] != tokens[a] + tokens[b]:
            raise TokenizerError("merge %d cannot be stored compactly" % len(deltas))
        deltas.append(new - previous)  # deltas: mostly 1, which zlib folds away
        previous = new
        split.append(k)
    header = {
        "format": COMPACT_FORMAT, "n_tokens": len(tokens), "n_merges": len(merges), "odd_tokens": odd,
        "added_tokens": [[t.content, t.id, t.special] for t in options["added_tokens"]],
    }
    header.update((key, options[key]) for key in _COMPACT_OPTIONS)
    head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    body = b"".join([
        struct.pack("<I", len(head)), head, _le(lengths),
        "".join(blob).translate(UNSPELL).encode("latin-1"), _le(deltas), _le(split),
    ])
    return COMPACT_MAGIC + zlib.compress(body, 9)

def read_compact(data: bytes) -> Args:
    """``write_compact``'s bytes."""
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
    spelled = body[pos:pos + n_chars].decode("latin-1").translate(SPELL)
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
    options = {key: header[key] for key in _COMPACT_OPTIONS}
    options.update(merged=merged, vocab=vocab,
                   added_tokens=[AddedToken(c, int(i), bool(s)) for c, i, s in header["added_tokens"]],
                   prefix_tokens=[tuple(t) for t in header["prefix_tokens"]],
                   suffix_tokens=[tuple(t) for t in header["suffix_tokens"]])
    return tokens, merges, options


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
