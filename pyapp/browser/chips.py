"""The token chips under the text box, and the mirror of the text that highlights a chip's source span."""

from __future__ import annotations

from typing import Optional

from ..app.frame import Chips
from .compat import js
from .dom import Listeners, clear, data_index, el

SPECIAL = ("[CLS]", "[SEP]", "[UNK]", "[PAD]")


class TokenChips:
    def __init__(self):
        self.chips: Optional[Chips] = None
        self._key = None

    def bind(self, listeners: Listeners):
        box = el("chips")
        listeners.on(box, "mouseover", self._on_chip)
        listeners.on(box, "focusin", self._on_chip)
        listeners.on(box, "mouseout", lambda e: self.highlight(None))
        listeners.on(box, "focusout", lambda e: self.highlight(None))

    def show(self, chips: Chips):
        self.chips = chips
        key = (tuple(chips.tokens), chips.text)
        if key == self._key:
            return
        self._key = key
        box = el("chips")
        clear(box)
        frag = js.document.createDocumentFragment()
        for i, tok in enumerate(chips.tokens):
            span = js.document.createElement("span")
            span.className = "chip special" if tok in SPECIAL else "chip"
            span.textContent = tok
            span.tabIndex = 0
            span.setAttribute("role", "listitem")
            span.dataset.index = str(i)
            s, e = chips.offsets[i] if i < len(chips.offsets) else (0, 0)
            span.title = "token %d, id %d%s" % (i, chips.ids[i] if i < len(chips.ids) else -1,
                                                  ", characters %d–%d" % (s, e) if e > s else "")
            frag.appendChild(span)
        box.appendChild(frag)
        el("mirror").textContent = chips.text

    def _on_chip(self, event):
        i = data_index(event)
        if i is not None:
            self.highlight(i)

    def highlight(self, i: Optional[int]):
        """Mark token ``i``'s characters in the mirror of the text (None: no mark)."""
        mirror = el("mirror")
        chips = self.chips
        if chips is None:
            return
        text = chips.text
        clear(mirror)
        if i is None or not 0 <= i < len(chips.offsets) or chips.offsets[i][1] <= chips.offsets[i][0]:
            mirror.textContent = text
            return
        s, e = chips.offsets[i]
        mirror.appendChild(js.document.createTextNode(text[:s]))
        mark = js.document.createElement("mark")
        mark.textContent = text[s:e]
        mirror.appendChild(mark)
        mirror.appendChild(js.document.createTextNode(text[e:]))
