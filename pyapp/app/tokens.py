"""How the page labels tokens: WordPiece tokens as they are; byte-level BPE tokens (GPT-2, SmolLM2) as the
text they stand for, with a leading space or a line break made visible.

    "Ġcat" -> "␣cat"      "Ċ" -> "↵"      "ĠParis" -> "␣Paris"      a piece of a character -> "‹f0 9f›"

The CLI keeps the vocabulary's spelling (Hugging Face's); only labels on the canvas and chips change.
"""

from __future__ import annotations

from typing import List, Sequence

VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def visible(text: str) -> str:
    """``text`` with whitespace made visible; the empty string as "∅"."""
    return "".join(VISIBLE.get(c, c) for c in text) or "∅"


def bpe_label(token: str) -> str:
    """The label of one byte-level BPE token: its bytes decoded as UTF-8 (a partial character: hex bytes)."""
    from ..core.bpe_formats import CHAR_TO_BYTE  # noqa: PLC0415 - only models with a BPE tokenizer need it

    if token.startswith("<|") or (token.startswith("<") and token.endswith(">") and len(token) > 2):
        return token  # special tokens such as <|im_start|> stay as written
    try:
        raw = bytes(CHAR_TO_BYTE[c] for c in token)
    except KeyError:
        return token
    try:
        return visible(raw.decode("utf-8"))
    except UnicodeDecodeError:  # a piece of a character (an emoji cut into byte tokens): its bytes in hex
        return "‹%s›" % " ".join("%02x" % b for b in raw)


def labels(tokens: Sequence[str], kind: str) -> List[str]:
    """Page labels of a tokenizer's tokens (``kind``: the catalogue's tokenizer kind)."""
    return [bpe_label(t) for t in tokens] if kind == "bpe" else list(tokens)
