"""A pure-Python WordPiece tokenizer that gives what Hugging Face `tokenizers` gives.

Pipeline (what a BERT-style ``tokenizer.json`` declares), for each piece of text between added
(special) tokens such as ``[MASK]`` typed by the user:

    BertNormalizer    clean_text -> handle_chinese_chars -> strip_accents (NFD, drop nonspacing marks)
                      -> lowercase, keeping for every normalized character the index of the
                      original character it came from
    BertPreTokenizer  split on whitespace (dropped) and punctuation (kept, one character each)
    WordPiece         greedy longest-match-first with the ``##`` continuation prefix; a word longer
                      than ``max_input_chars_per_word`` or with an unmatched rest is one [UNK]
    template          [CLS] ... [SEP], after truncation to ``max_length``

The first two stages live in ``normalizer.py``; this module holds the template shared with the
byte-level BPE (``TemplateTokenizer``), WordPiece and the ``tokenizer.json`` loader.

Offsets are Python string indices (code points) into the original text, as the Python
``tokenizers`` binding reports them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .normalizer import BertNormalizer, pre_tokenize

DEFAULT_MAX_LENGTH = 512


class TokenizerError(ValueError):
    """A tokenizer file this module cannot load (malformed, or declaring an unsupported pipeline)."""


@dataclass
class Encoding:
    tokens: List[str]
    ids: List[int]
    offsets: List[Tuple[int, int]]  # character offsets into the ORIGINAL text, as HF reports them
    dropped: int = 0  # tokens removed by truncation to max_length

    def __len__(self) -> int:
        return len(self.ids)


# --------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class AddedToken:
    content: str
    id: int
    special: bool = True


class TemplateTokenizer:
    """What the WordPiece and the byte-level BPE tokenizers share: added tokens are matched first in
    the raw text, the other pieces go to ``_encode_piece`` (the subclass's model), the word tokens are
    truncated as HF ``enable_truncation(max_length)`` does, and the template's special tokens go around
    them."""

    prefix_tokens: List[Tuple[str, int]]
    suffix_tokens: List[Tuple[str, int]]

    def _set_added_tokens(self, added_tokens: Sequence[AddedToken]) -> None:
        self.added_tokens = list(added_tokens)
        self._added_by_content = {t.content: t for t in self.added_tokens}
        self._added_re = None
        if self.added_tokens:
            alternatives = sorted((t.content for t in self.added_tokens), key=len, reverse=True)
            # leftmost-longest, like the Aho-Corasick matcher of HF's AddedVocabulary
            self._added_re = re.compile("|".join(re.escape(a) for a in alternatives))

    def _special(self, item: Any) -> Tuple[str, int]:
        """A template token given as a bare token (its id looked up) or as (token, id)."""
        if isinstance(item, str):
            return item, self._special_id(item)
        token, token_id = item
        return str(token), int(token_id)

    def _special_id(self, token: str) -> int:
        raise NotImplementedError

    @property
    def num_special_tokens(self) -> int:
        return len(self.prefix_tokens) + len(self.suffix_tokens)

    def _encode_text(self, text: str, max_length: Optional[int]) -> Encoding:
        if not isinstance(text, str):
            raise TypeError("encode() needs a str, got %s" % type(text).__name__)
        tokens: List[str] = []
        ids: List[int] = []
        offsets: List[Tuple[int, int]] = []
        for start, end, added in self._split_added(text):
            if added is not None:
                tokens.append(added.content)
                ids.append(added.id)
                offsets.append((start, end))
            else:
                self._encode_piece(text, start, end, tokens, ids, offsets)
        dropped = 0
        if max_length is not None:
            room = max_length - self.num_special_tokens
            if room < 0:
                raise ValueError("max_length %d leaves no room for the %d special tokens"
                                 % (max_length, self.num_special_tokens))
            if len(ids) > room:
                dropped = len(ids) - room
                del tokens[room:], ids[room:], offsets[room:]
        offsets = self._final_offsets(tokens, offsets)
        return Encoding(
            [t for t, _ in self.prefix_tokens] + tokens + [t for t, _ in self.suffix_tokens],
            [i for _, i in self.prefix_tokens] + ids + [i for _, i in self.suffix_tokens],
            [(0, 0)] * len(self.prefix_tokens) + offsets + [(0, 0)] * len(self.suffix_tokens),
            dropped,
        )

    def _encode_piece(self, text: str, start: int, end: int, tokens: List[str], ids: List[int],
                      offsets: List[Tuple[int, int]]) -> None:
        raise NotImplementedError

    def _final_offsets(self, tokens: List[str], offsets: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
        return offsets

    def _split_added(self, text: str):
        """(start, end, AddedToken or None) pieces of the raw text, added tokens matched first."""
        pos = 0
        if self._added_re is not None:
            for m in self._added_re.finditer(text):
                if m.start() > pos:
                    yield pos, m.start(), None
                yield m.start(), m.end(), self._added_by_content[m.group()]
                pos = m.end()
        if pos < len(text):
            yield pos, len(text), None


class WordPieceTokenizer(TemplateTokenizer):
    """BERT-style tokenizer: ``encode(text)`` gives the tokens, ids and offsets HF gives."""

    def __init__(self, vocab: Dict[str, int], *, unk_token: str = "[UNK]",
                 continuing_subword_prefix: str = "##", max_input_chars_per_word: int = 100,
                 normalizer: Optional[BertNormalizer] = None,
                 prefix_tokens: Sequence[Any] = ("[CLS]",), suffix_tokens: Sequence[Any] = ("[SEP]",),
                 added_tokens: Sequence[AddedToken] = (),
                 truncation_max_length: Optional[int] = None) -> None:
        if unk_token not in vocab:
            raise TokenizerError("the unknown token %r is not in the vocabulary" % unk_token)
        self.vocab = vocab
        self.unk_token = unk_token
        self.unk_id = vocab[unk_token]
        self.prefix = continuing_subword_prefix
        self.max_input_chars_per_word = max_input_chars_per_word
        self.normalizer = normalizer
        self._set_added_tokens(added_tokens)
        self._added_ids = {t.content: t.id for t in self.added_tokens}
        self._id_to_token: Optional[Dict[int, str]] = None  # built on first use
        #: template special tokens as (token, id); items given as a bare token take its id
        self.prefix_tokens = [self._special(t) for t in prefix_tokens]
        self.suffix_tokens = [self._special(t) for t in suffix_tokens]
        #: the file's own truncation length (all-MiniLM-L6-v2 says 128); encode() keeps its
        #: max_length argument (default 512, the model's positions) and only reports this one.
        self.truncation_max_length = truncation_max_length
        self._max_word_piece = max(map(len, vocab), default=0)
        self._max_continuation = max(
            (len(t) - len(self.prefix) for t in vocab if t.startswith(self.prefix)), default=0)
        self._words: Dict[str, Tuple[Tuple[str, int, int, int], ...]] = {}

    # ---- loading

    @classmethod
    def from_json(cls, data: Any) -> "WordPieceTokenizer":
        """From an HF ``tokenizer.json``: its text (str or bytes) or the parsed dict."""
        data = json_object(data, "tokenizer.json")
        model = data.get("model") or {}
        if model.get("type", "WordPiece") != "WordPiece" or not isinstance(model.get("vocab"), dict):
            raise TokenizerError("tokenizer.json: only a WordPiece model with a vocab is supported, got %r"
                                 % model.get("type"))
        normalizer = _normalizer_from_json(data.get("normalizer"))
        pre = data.get("pre_tokenizer")
        if not (isinstance(pre, dict) and pre.get("type") == "BertPreTokenizer"):
            raise TokenizerError("tokenizer.json: only the BertPreTokenizer is supported, got %r"
                                 % (pre.get("type") if isinstance(pre, dict) else pre))
        prefix, suffix = _template_from_json(data.get("post_processor"))
        added = []
        for t in data.get("added_tokens") or []:
            if t.get("lstrip") or t.get("rstrip") or t.get("single_word") or t.get("normalized"):
                raise TokenizerError("tokenizer.json: added token %r uses lstrip/rstrip/single_word/"
                                     "normalized, which is not supported" % t.get("content"))
            if t.get("content"):
                added.append(AddedToken(t["content"], int(t["id"]), bool(t.get("special", False))))
        truncation = data.get("truncation") or {}
        return cls(
            _checked_vocab(model["vocab"]),
            unk_token=model.get("unk_token", "[UNK]"),
            continuing_subword_prefix=model.get("continuing_subword_prefix", "##"),
            max_input_chars_per_word=int(model.get("max_input_chars_per_word", 100)),
            normalizer=normalizer, prefix_tokens=prefix, suffix_tokens=suffix, added_tokens=added,
            truncation_max_length=truncation.get("max_length"),
        )

    @classmethod
    def from_vocab(cls, text: str, lowercase: bool = True) -> "WordPieceTokenizer":
        """From a BERT ``vocab.txt`` (one token per line, id = line number), BERT's defaults."""
        tokens = text.split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        vocab: Dict[str, int] = {}
        for i, token in enumerate(tokens):
            vocab.setdefault(token.rstrip("\r"), i)
        specials = [AddedToken(t, vocab[t]) for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
                    if t in vocab]
        for needed in ("[UNK]", "[CLS]", "[SEP]"):
            if needed not in vocab:
                raise TokenizerError("vocab.txt has no %s token" % needed)
        return cls(vocab, normalizer=BertNormalizer(lowercase=lowercase), added_tokens=specials)

    def _special_id(self, token: str) -> int:
        if token in self._added_ids:
            return self._added_ids[token]
        if token in self.vocab:
            return self.vocab[token]
        raise TokenizerError("the special token %r has no id" % token)

    # ---- vocabulary

    def _ids(self) -> Dict[int, str]:
        if self._id_to_token is None:
            ids = {i: t for t, i in self.vocab.items()}
            for t in self.added_tokens:
                ids.setdefault(t.id, t.content)
            self._id_to_token = ids
        return self._id_to_token

    @property
    def vocab_size(self) -> int:
        return len(self._ids())

    def token_to_id(self, token: str) -> Optional[int]:
        if token in self._added_ids:
            return self._added_ids[token]
        return self.vocab.get(token)

    def id_to_token(self, token_id: int) -> Optional[str]:
        return self._ids().get(int(token_id))

    @property
    def cls_id(self) -> int:
        return self._special_id("[CLS]")

    @property
    def sep_id(self) -> int:
        return self._special_id("[SEP]")

    # ---- encoding

    def encode(self, text: str, max_length: Optional[int] = DEFAULT_MAX_LENGTH) -> Encoding:
        """Tokens, ids and original-text offsets of ``text`` with [CLS] ... [SEP].

        With ``max_length`` (None: no limit) the word tokens are cut to ``max_length`` minus the
        special tokens, like HF ``enable_truncation(max_length)``; ``dropped`` says how many went.
        """
        return self._encode_text(text, max_length)

    def _encode_piece(self, text: str, base: int, end: int, tokens: List[str], ids: List[int],
                      offsets: List[Tuple[int, int]]) -> None:
        piece = text[base:end]
        if self.normalizer is not None:
            normalized, sources = self.normalizer.normalize(piece)
        else:
            normalized, sources = piece, range(len(piece))
        for w_start, w_end in pre_tokenize(normalized):
            for token, token_id, a, b in self.wordpiece(normalized[w_start:w_end]):
                first, last = sources[w_start + a], sources[w_start + b - 1]
                tokens.append(token)
                ids.append(token_id)
                offsets.append((base + (first if first >= 0 else 0), base + (last + 1 if last >= 0 else 0)))

    def wordpiece(self, word: str) -> Tuple[Tuple[str, int, int, int], ...]:
        """HF ``WordPiece``: (token, id, start, end) of each sub-token, positions in ``word``."""
        cached = self._words.get(word)
        if cached is not None:
            return cached
        n = len(word)
        unk = ((self.unk_token, self.unk_id, 0, n),)
        if n > self.max_input_chars_per_word:
            result = unk
        else:
            pieces = []
            start = 0
            vocab = self.vocab
            while start < n:
                if start == 0:
                    end = min(n, self._max_word_piece)
                else:
                    end = min(n, start + self._max_continuation)
                while end > start:
                    sub = word[start:end] if start == 0 else self.prefix + word[start:end]
                    token_id = vocab.get(sub)
                    if token_id is not None:
                        pieces.append((sub, token_id, start, end))
                        break
                    end -= 1
                else:
                    pieces = None
                    break
                start = end
            result = unk if pieces is None else tuple(pieces)
        if len(self._words) > 50000:
            self._words.clear()
        self._words[word] = result
        return result


def _checked_vocab(vocab: Dict[Any, Any]) -> Dict[str, int]:
    """The file's vocab as is when it maps str -> int (the usual case, no copy), else converted."""
    if all(type(v) is int for v in vocab.values()):
        return vocab
    try:
        return {str(k): int(v) for k, v in vocab.items()}
    except (TypeError, ValueError):
        raise TokenizerError("tokenizer.json: the vocab must map tokens to integer ids") from None


def _normalizer_from_json(spec: Any) -> Optional[BertNormalizer]:
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("type") != "BertNormalizer":
        raise TokenizerError("tokenizer.json: only the BertNormalizer is supported, got %r"
                             % (spec.get("type") if isinstance(spec, dict) else spec))
    return BertNormalizer(
        clean_text=spec.get("clean_text", True),
        handle_chinese_chars=spec.get("handle_chinese_chars", True),
        strip_accents=spec.get("strip_accents"),
        lowercase=spec.get("lowercase", True),
    )


def _template_from_json(spec: Any) -> Tuple[List[Any], List[Any]]:
    """Special tokens, as (token, id) or bare tokens, before and after the sequence in the template."""
    if spec is None:
        return [], []
    kind = spec.get("type")
    if kind == "BertProcessing":
        return [tuple(spec["cls"])], [tuple(spec["sep"])]
    if kind == "TemplateProcessing":
        prefix: List[Any] = []
        suffix: List[Any] = []
        seen_sequence = False
        for item in spec.get("single", []):
            if "Sequence" in item:
                seen_sequence = True
            elif "SpecialToken" in item:
                name = item["SpecialToken"]["id"]
                declared = spec.get("special_tokens", {}).get(name)
                tokens = list(zip(declared["tokens"], declared["ids"])) if declared else [name]
                (suffix if seen_sequence else prefix).extend(tokens)
        if not seen_sequence:
            raise TokenizerError("tokenizer.json: the single template has no sequence")
        return prefix, suffix
    raise TokenizerError("tokenizer.json: unsupported post_processor %r" % kind)


def json_object(data: Any, what: str) -> Dict[str, Any]:
    """A JSON object given as text (str or bytes) or already parsed; TokenizerError if it is not one."""
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
