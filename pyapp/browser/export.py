"""Export: the canvas as PNG, the shown layer's attention as CSV, its full trace as JSON (Blob downloads)."""

from __future__ import annotations

import json

from ..core.analysis import attention_csv, trace_json
from .compat import create_proxy, js, to_js
from .dom import el


class Exporter:
    def __init__(self, app):
        self.app = app
        self._download_url = None
        self._png_name = ""
        self._png_proxy = create_proxy(self._png_ready)

    def bind(self, listeners):
        listeners.on(el("export-png"), "click", lambda e: self.png())
        listeners.on(el("export-csv"), "click", lambda e: self.csv())
        listeners.on(el("export-json"), "click", lambda e: self.app.run_soon(self.json()))

    def _stem(self) -> str:
        st = self.app.shown
        model = "".join(c if c.isalnum() or c in "-_" else "_" for c in st.model)
        return "mhsa-%s-layer%d" % (model, st.layer)

    def _download(self, blob, name: str):
        """Save `blob` as `name`: an object URL on a temporary <a download> (the previous URL is released)."""
        if self._download_url is not None:
            js.URL.revokeObjectURL(self._download_url)
        url = js.URL.createObjectURL(blob)
        self._download_url = url
        a = js.document.createElement("a")
        a.href = url
        a.download = name
        a.hidden = True
        js.document.body.appendChild(a)
        a.click()
        a.remove()
        el("live").textContent = "Downloaded %s" % name

    def _download_text(self, text: str, name: str, mime: str):
        blob = js.Blob.new(to_js([text]), js.JSON.parse(json.dumps({"type": mime})))
        self._download(blob, name)

    def png(self):
        """The canvas as drawn (device resolution) as a PNG file."""
        if self.app.shown is None:
            return
        self._png_name = "%s-%s.png" % (self._stem(), self.app.shown.tab)
        el("view").toBlob(self._png_proxy, "image/png")

    def _png_ready(self, blob, *args):
        if blob is None:
            self.app.show_status("Could not make a PNG of this view (the canvas is too large).", "error")
            return
        self._download(blob, self._png_name)

    def csv(self):
        """The attention weights of the shown layer (every head, at the shown temperature) as CSV."""
        ctx = self.app.ctx
        if ctx is None:
            return
        self._download_text(attention_csv(ctx.trace.probs, ctx.tokens, layer=ctx.layer),
                            self._stem() + "-attention.csv", "text/csv")

    async def json(self):
        """The full trace of the shown layer as JSON: V/O are fetched first when missing, so every step's
        array is in it; the attention of the other layers computed so far is added."""
        app = self.app
        st = app.shown
        if st is None:
            return
        if not await app.fetch_now(app.session.plan(st.with_(tab="steps"))):     # V / W_O included
            return
        ctx = app.session.context(st, new_layers=0)
        meta = {"model": st.model, "model_name": ctx.model_name, "layer": ctx.layer, "head": ctx.head_index,
                "text": ctx.text, "ids": ctx.ids, "link": app.link}
        attentions = dict(app.session.layer_attentions(st, new_layers=0))     # computed so far, T = 1
        attentions[ctx.layer] = ctx.trace.probs                               # the shown layer, as shown
        self._download_text(trace_json(ctx.trace, ctx.tokens, meta=meta, attentions=attentions),
                            self._stem() + "-trace.json", "application/json")
