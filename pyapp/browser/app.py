"""The page: wires web/index.html's controls to the Session and draws the chosen view on the canvas.

Everything the user typed reaches the DOM through ``textContent`` (or the canvas' ``fillText``), never as
markup. The work itself lives below: ``views.session`` (what to compute and what to fetch), the view modules
(what to draw) and ``browser.canvas`` (how to draw it).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import time
import traceback
from typing import Any, Dict, List, Optional

from ..app import interact, research_data
from ..app.session import Session, SessionError, format_bits, row_entropy_bits, shown_matrix
from ..app.state import (
    D_MODEL_CHOICES,
    HEADS_CHOICES,
    TAB_VIEWS,
    TABS,
    AppState,
    fitted_problems,
    parse_query,
    query_notice,
    slider_from_temperature,
    temperature_from_slider,
)
from ..core.analysis import attention_csv, trace_json
from ..core.catalogue import CatalogueError, load_catalogue
from ..core.weights import WeightFileError
from ..views.steps import STEP_TITLES
from . import canvas as canvas_backend
from . import wasm_gemm
from .compat import create_proxy, js, to_js
from .fetch import FetchError, fetch_bytes

CATALOGUE_PATH = "models/index.json"   # written into the file system by PyScript's [files]
MODELS_URL = "../models/"              # weight files: fetched on demand, relative to web/index.html
TEXT_DEBOUNCE_MS = 250
URL_DEBOUNCE_MS = 300
STATE_ACTIONS = ("pinned_row", "head", "tab", "step", "arch", "layer", "heads_shown", "sort_by", "sort_desc")
VIEW_ACTIONS = ("hover_token", "hover_side")   # the head view's pinned token: page state, not in the URL
MAX_HOTSPOTS = 240
STEP_NAMES = list(STEP_TITLES)   # the step bar says what the Step-by-step view's own title says


def _doc():
    return js.document



def _action_regions(scene) -> List[Dict[str, Any]]:
    """The scene's clickable regions (those with an action), at most MAX_HOTSPOTS."""
    return [r for r in scene.regions if isinstance(r["data"].get("action"), dict)][:MAX_HOTSPOTS]

def _el(id_: str):
    return js.document.getElementById(id_)


def _clear(node):
    while node.firstChild:
        node.removeChild(node.firstChild)


def _option(select, value: str, label: str, selected: bool = False, disabled: bool = False):
    opt = js.document.createElement("option")
    opt.value = value
    opt.textContent = label
    opt.selected = selected
    opt.disabled = disabled
    select.appendChild(opt)


def _size_label(n: int) -> str:
    if n >= 1 << 20:
        return "%.1f MB" % (n / float(1 << 20))
    return "%d kB" % max(1, round(n / 1024.0))


class App:
    def __init__(self, session: Session, state: AppState):
        self.session = session
        self.state = session.normalise(state) if session.catalogue.models else state
        self.scene = None
        self.ctx = None
        self.dirty = True
        self.running = False
        self.error: Optional[WeightFileError] = None
        self.draws = 0
        self.timing: Dict[str, float] = {}
        self._proxies: List[Any] = []
        self._text_timer = None
        self._resize_timer = None
        self._last_width = 0
        self._chip_key = None
        self._update_started = 0.0
        self._fetching = 0
        self.cursor = None          # (row, col) of the keyboard cursor on the heatmap
        self.view_extra: Dict[str, Any] = {}   # VIEW_ACTIONS set by clicks (e.g. the head view's pinned token)
        self.hover: Dict[str, Any] = {}        # transient view state while the pointer is over a region
        self._url_timer = None
        self._hotspot_key = None
        self._hotspot_actions: List[Dict[str, Any]] = []
        self._download_url = None
        self._png_name = ""
        self.link_check = None      # (state asked for by the URL, its query, problems so far) until drawn

    # ---- wiring ----------------------------------------------------------------------------------
    def _on(self, target, event: str, fn):
        proxy = create_proxy(fn)
        self._proxies.append(proxy)
        target.addEventListener(event, proxy)
        return proxy

    def bind(self):
        self._populate_models()
        text = _el("text")
        text.value = self.state.text
        text.disabled = False
        _el("model").disabled = False
        self._on(text, "input", self._on_text_input)
        self._on(_el("model"), "change", self._on_model)
        self._on(_el("d-model"), "change", lambda e: self.set(d_model=int(e.target.value)))
        self._on(_el("n-heads"), "change", lambda e: self.set(heads=int(e.target.value)))
        self._on(_el("layer"), "change", lambda e: self.set(layer=int(e.target.value), pinned_row=None))
        self._on(_el("head"), "change", lambda e: self.set(head=int(e.target.value)))
        self._on(_el("temperature"), "input", self._on_temperature)
        self._on(_el("causal"), "change", lambda e: self.set(causal=bool(e.target.checked)))
        for tab in TABS:
            b = _el("tab-" + tab)
            self._on(b, "click", self._tab_clicker(tab))
            self._on(b, "keydown", self._on_tab_key)
        self._on(_el("prev"), "click", lambda e: self.step_by(-1))
        self._on(_el("next"), "click", lambda e: self.step_by(1))
        self._on(js.document, "keydown", self._on_key)
        cv = _el("view")
        self._on(cv, "mousemove", self._on_hover)
        self._on(cv, "mouseleave", self._on_leave)
        self._on(cv, "click", self._on_click)
        self._on(_el("retry"), "click", lambda e: self._retry())
        self._on(_el("link-notice-close"), "click", lambda e: self.show_link_notice(""))
        self._on(_el("export-png"), "click", lambda e: self.export_png())
        self._on(_el("export-csv"), "click", lambda e: self.export_csv())
        self._on(_el("export-json"), "click", lambda e: asyncio.ensure_future(self.export_json()))
        self._on(_el("hotspots"), "click", self._on_hotspot)
        chips = _el("chips")
        self._on(chips, "mouseover", self._on_chip)
        self._on(chips, "focusin", self._on_chip)
        self._on(chips, "mouseout", lambda e: self._highlight(None))
        self._on(chips, "focusout", lambda e: self._highlight(None))
        self._on(js.window, "resize", self._on_resize)
        self._text_proxy = create_proxy(self._text_settled)
        self._url_proxy = create_proxy(self._write_url)
        self._png_proxy = create_proxy(self._png_ready)
        self._resize_proxy = create_proxy(self._resized)
        self._tick_proxy = create_proxy(lambda *a: self._tick())
        self._sync_controls()

    def _populate_models(self):
        sel = _el("model")
        _clear(sel)
        real = js.document.createElement("optgroup")
        real.label = "Pretrained"
        synth = js.document.createElement("optgroup")
        synth.label = "Synthetic (no download)"
        for m in self.session.model_options():
            if not m.available and not m.synthetic:
                continue        # catalogue entries whose weights are not shipped (e.g. DistilBERT unbuilt)
            _option(synth if m.synthetic else real, m.id, m.label, m.id == self.state.model, not m.available)
        if real.childElementCount:
            sel.appendChild(real)
        sel.appendChild(synth)
        for select, choices, value in ((_el("d-model"), D_MODEL_CHOICES, self.state.d_model),
                                       (_el("n-heads"), HEADS_CHOICES, self.state.heads)):
            _clear(select)
            for c in choices:
                _option(select, str(c), str(c), c == value)

    # ---- state changes ----------------------------------------------------------------------------
    def set(self, **changes):
        new = self.state.with_(**changes)
        if new == self.state:
            return
        self.state = new
        self.schedule()

    def schedule(self):
        self.dirty = True
        if not self.running:
            js.setTimeout(self._tick_proxy, 0)

    def _tick(self):
        if not self.running and self.dirty:
            asyncio.ensure_future(self.update())

    def _on_text_input(self, event):
        if self._text_timer is not None:
            js.clearTimeout(self._text_timer)
        self._text_timer = js.setTimeout(self._text_proxy, TEXT_DEBOUNCE_MS)

    def _text_settled(self, *args):
        self._text_timer = None
        self.view_extra = {}
        self.set(text=str(_el("text").value), pinned_row=None)

    def _on_model(self, event):
        self.error = None
        self.view_extra = {}
        self.set(model=str(event.target.value), pinned_row=None, layer=min(self.state.layer, 0)
                 if str(event.target.value) in ("deterministic", "random") else self.state.layer)

    def _on_temperature(self, event):
        t = temperature_from_slider(float(event.target.value))
        _el("temperature-value").textContent = "T = %.2f" % t
        self.set(temperature=t)

    def _tab_clicker(self, tab):
        return lambda e: self.set(tab=tab)

    def _on_tab_key(self, event):
        key = str(event.key)
        i = TABS.index(self.state.tab)
        j = {"ArrowRight": i + 1, "ArrowLeft": i - 1, "Home": 0, "End": len(TABS) - 1}.get(key)
        if j is None:
            return
        event.preventDefault()
        tab = TABS[j % len(TABS)]
        self.set(tab=tab)
        _el("tab-" + tab).focus()

    def _on_key(self, event):
        if event.defaultPrevented:
            return
        target = event.target
        if self.state.tab != "steps":
            if str(getattr(target, "id", "")) == "stage" and self._on_stage_key(event):
                event.preventDefault()
            return
        tag = str(getattr(target, "tagName", "") or "").upper()
        role = str(target.getAttribute("role") or "") if hasattr(target, "getAttribute") else ""
        if tag in ("TEXTAREA", "INPUT", "SELECT") or role == "tab":
            return                                      # those keys belong to the focused control
        key = str(event.key)
        if key in ("ArrowRight", "ArrowDown", "PageDown"):
            event.preventDefault()
            self.step_by(1)
        elif key in ("ArrowLeft", "ArrowUp", "PageUp"):
            event.preventDefault()
            self.step_by(-1)

    def step_by(self, d: int):
        step = min(max(self.state.step + d, 1), len(STEP_NAMES))
        if self.state.tab != "steps":
            self.set(tab="steps", step=step)
        else:
            self.set(step=step)

    def _retry(self):
        self.error = None
        self._status("")
        self.schedule()

    def _on_resize(self, event):
        if self._resize_timer is not None:
            js.clearTimeout(self._resize_timer)
        self._resize_timer = js.setTimeout(self._resize_proxy, 120)

    def _resized(self, *args):
        self._resize_timer = None
        if self._stage_width() != self._last_width:
            self.schedule()

    # ---- canvas interaction -------------------------------------------------------------------------
    def _on_hover(self, event):
        if self.scene is None:
            return
        x, y = float(event.offsetX), float(event.offsetY)
        hit = self.scene.hit_test(x, y)
        self._set_hover(interact.hover(hit) or {})
        tip = interact.tooltip(hit)
        if not tip:
            self._hide_tooltip()
            return
        self._show_tooltip(tip, x, y)
        _el("view").style.cursor = "pointer" if interact.action(hit) else "crosshair"

    def _set_hover(self, hover: Dict[str, Any]):
        """Transient view state under the pointer (the head view's hovered token); redraws when it changes."""
        if hover != self.hover:
            self.hover = hover
            self.schedule()

    def _on_leave(self, event):
        self._hide_tooltip()
        self._set_hover({})

    def _show_tooltip(self, tip: str, x: float, y: float):
        t = _el("tooltip")
        t.textContent = tip
        t.hidden = False
        stage = _el("stage")
        cv = _el("view")
        left = float(cv.offsetLeft) + x + 14 - float(stage.scrollLeft)
        top = float(cv.offsetTop) + y + 16 - float(stage.scrollTop)
        width = float(stage.clientWidth)
        tw = float(t.offsetWidth)
        if left + tw > width - 4:
            left = max(4.0, float(cv.offsetLeft) + x - tw - 10 - float(stage.scrollLeft))
        t.style.left = "%dpx" % left
        t.style.top = "%dpx" % top

    # ---- keyboard exploration of the heatmap (stage focused) ------------------------------------------
    def _grid(self):
        if self.scene is None:
            return None
        return next((r for r in self.scene.regions if r["kind"] == "attn_cell"), None)

    def _on_stage_key(self, event) -> bool:
        """Arrows move a cell cursor over the heatmap, Enter pins its row, Escape leaves. True if handled."""
        grid = self._grid()
        key = str(event.key)
        if grid is None or key not in ("ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Enter", " ", "Escape"):
            return False
        rows, cols = grid["rows"], grid["cols"]
        if key == "Escape":
            self.cursor = None
            self._hide_tooltip()
            return True
        r, c = self.cursor if self.cursor is not None else (0, 0)
        if self.cursor is not None:
            dr, dc = {"ArrowUp": (-1, 0), "ArrowDown": (1, 0), "ArrowLeft": (0, -1),
                      "ArrowRight": (0, 1)}.get(key, (0, 0))
            r, c = min(max(r + dr, 0), rows - 1), min(max(c + dc, 0), cols - 1)
        self.cursor = (r, c)
        x = grid["x"] + (c + 0.5) * grid["w"] / cols
        y = grid["y"] + (r + 0.5) * grid["h"] / rows
        hit = self.scene.hit_test(x, y)
        if key in ("Enter", " "):
            act = interact.action(hit)
            if act and "pinned_row" in act:
                self.set(pinned_row=act["pinned_row"])
            return True
        tip = interact.tooltip(hit) or ""
        self._show_tooltip(tip, x, y)
        _el("live").textContent = tip
        return True

    def _hide_tooltip(self):
        _el("tooltip").hidden = True

    def _on_click(self, event):
        if self.scene is None:
            return
        self._on_hover(event)                  # touch screens have no hover: a tap shows the tooltip too
        act = interact.action(self.scene.hit_test(float(event.offsetX), float(event.offsetY)))
        if act:
            self.apply_action(act)

    def apply_action(self, act: Dict[str, Any]):
        """A view's click action: state changes (in the URL) and view-only ones (VIEW_ACTIONS)."""
        view = {k: v for k, v in act.items() if k in VIEW_ACTIONS}
        if view and any(self.view_extra.get(k) != v for k, v in view.items()):
            self.view_extra.update(view)
            self.schedule()
        changes = {k: (tuple(v) if k == "heads_shown" and v is not None else v)
                   for k, v in act.items() if k in STATE_ACTIONS}
        if changes:
            self.set(**changes)

    # ---- keyboard access to the canvas' buttons: one transparent <button> over each action region ------
    def _update_hotspots(self, scene):
        regions = _action_regions(scene)
        key = tuple((round(r["x"], 1), round(r["y"], 1), round(r["w"], 1), round(r["h"], 1),
                     str(r["data"].get("tooltip") or "")) for r in regions)
        self._hotspot_actions = [dict(r["data"]["action"]) for r in regions]
        if key == self._hotspot_key:
            return
        self._hotspot_key = key
        box = _el("hotspots")
        focused = js.document.activeElement
        refocus = None
        if focused is not None and focused.parentNode == box:
            refocus = str(focused.dataset.index)
        _clear(box)
        box.style.width = "%dpx" % int(scene.width)
        box.style.height = "%dpx" % int(scene.height)
        frag = js.document.createDocumentFragment()
        for i, r in enumerate(regions):
            b = js.document.createElement("button")
            b.type = "button"
            b.dataset.index = str(i)
            b.setAttribute("aria-label", str(r["data"].get("tooltip") or ("button %d" % (i + 1))))
            b.style.cssText = "left:%.1fpx;top:%.1fpx;width:%.1fpx;height:%.1fpx" % (r["x"], r["y"], r["w"], r["h"])
            frag.appendChild(b)
        box.appendChild(frag)
        if refocus is not None:
            again = box.querySelector("button[data-index='%s']" % refocus)
            if again is not None:
                again.focus()

    def _on_hotspot(self, event):
        idx = getattr(getattr(event.target, "dataset", None), "index", None)
        if idx is None or str(idx) in ("undefined", ""):
            return
        i = int(str(idx))
        if 0 <= i < len(self._hotspot_actions):
            self.apply_action(self._hotspot_actions[i])

    # ---- the URL mirrors the state ------------------------------------------------------------------
    def _schedule_url(self):
        if self._url_timer is not None:
            js.clearTimeout(self._url_timer)
        self._url_timer = js.setTimeout(self._url_proxy, URL_DEBOUNCE_MS)

    def _write_url(self, *args):
        self._url_timer = None
        q = self.state.to_query()
        search = ("?" + q) if q else ""
        if str(js.location.search or "") != search:
            js.history.replaceState(js.history.state, "", str(js.location.pathname) + search
                                    + str(js.location.hash or ""))

    def show_link_notice(self, message: str):
        _el("link-notice-text").textContent = message
        _el("link-notice").hidden = not message

    # ---- export ------------------------------------------------------------------------------------------
    def _file_stem(self) -> str:
        ctx = self.ctx
        model = "".join(c if c.isalnum() or c in "-_" else "_" for c in self.state.model)
        return "mhsa-%s-layer%d" % (model, ctx.layer if ctx is not None else self.state.layer)

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
        _el("live").textContent = "Downloaded %s" % name

    def _download_text(self, text: str, name: str, mime: str):
        blob = js.Blob.new(to_js([text]), js.JSON.parse(json.dumps({"type": mime})))
        self._download(blob, name)

    def export_png(self):
        """The canvas as drawn (device resolution) as a PNG file."""
        if self.scene is None:
            return
        self._png_name = "%s-%s.png" % (self._file_stem(), self.state.tab)
        _el("view").toBlob(self._png_proxy, "image/png")

    def _png_ready(self, blob, *args):
        if blob is None:
            self._status("Could not make a PNG of this view (the canvas is too large).", kind="error")
            return
        self._download(blob, self._png_name)

    def export_csv(self):
        """The attention weights of the shown layer (every head, at the shown temperature) as CSV."""
        ctx = self.ctx
        if ctx is None:
            return
        self._download_text(attention_csv(ctx.trace.probs, ctx.tokens, layer=ctx.layer),
                            self._file_stem() + "-attention.csv", "text/csv")

    async def export_json(self):
        """The full trace of the shown layer as JSON: V/O are fetched first when missing, so every step's
        array is in it; the attention of the other layers computed so far is added."""
        if self.ctx is None:
            return
        st = self.state
        needs = self.session.needs(st.with_(tab="steps"))       # that tab's needs include V / W_O
        files = needs.required + needs.later
        if files:
            if not await self._fetch_all(files):
                return
            self._loading_done()
        ctx = self.session.context(st, new_layers=0)
        meta = {"model": st.model, "model_name": ctx.model_name, "layer": ctx.layer, "head": ctx.head_index,
                "text": ctx.text, "ids": ctx.ids, "link": st.to_query()}
        attentions = dict(self.session.layer_attentions(st, new_layers=0))    # computed so far, T = 1
        attentions[ctx.layer] = ctx.trace.probs                                # the shown layer, as shown
        self._download_text(trace_json(ctx.trace, ctx.tokens, meta=meta, attentions=attentions),
                            self._file_stem() + "-trace.json", "application/json")

    # ---- chips and the source-span mirror -----------------------------------------------------------
    def _on_chip(self, event):
        target = event.target
        idx = getattr(getattr(target, "dataset", None), "index", None)
        if idx is None or str(idx) in ("undefined", ""):
            return
        self._highlight(int(str(idx)))

    def _highlight(self, i: Optional[int]):
        mirror = _el("mirror")
        ctx = self.ctx
        text = ctx.text if ctx is not None else self.state.text
        _clear(mirror)
        if ctx is None or i is None or ctx.offsets is None or not 0 <= i < len(ctx.offsets):
            mirror.textContent = text
            return
        s, e = ctx.offsets[i]
        if e <= s:
            mirror.textContent = text
            return
        mirror.appendChild(js.document.createTextNode(text[:s]))
        mark = js.document.createElement("mark")
        mark.textContent = text[s:e]
        mirror.appendChild(mark)
        mirror.appendChild(js.document.createTextNode(text[e:]))

    def _render_chips(self, ctx):
        key = (tuple(ctx.tokens), ctx.text)
        if key == self._chip_key:
            return
        self._chip_key = key
        box = _el("chips")
        _clear(box)
        frag = js.document.createDocumentFragment()
        for i, tok in enumerate(ctx.tokens):
            span = js.document.createElement("span")
            span.className = "chip special" if tok in ("[CLS]", "[SEP]", "[UNK]", "[PAD]") else "chip"
            span.textContent = tok
            span.tabIndex = 0
            span.setAttribute("role", "listitem")
            span.dataset.index = str(i)
            s, e = ctx.offsets[i] if ctx.offsets else (0, 0)
            span.title = "token %d, id %d%s" % (i, ctx.ids[i] if ctx.ids else -1,
                                                  ", characters %d–%d" % (s, e) if e > s else "")
            frag.appendChild(span)
        box.appendChild(frag)
        _el("mirror").textContent = ctx.text

    # ---- the update loop ------------------------------------------------------------------------------
    async def update(self):
        if self.running:
            self.dirty = True
            return
        self.running = True
        try:
            while self.dirty:
                self.dirty = False
                self._update_started = time.time()
                try:
                    await self._update_once()
                except (SessionError, CatalogueError) as e:
                    self._status(str(e), kind="error")
                except Exception as e:  # noqa: BLE001 - show it, keep the page alive
                    traceback.print_exc()
                    self._status("Something went wrong: %s: %s" % (type(e).__name__, e), kind="error")
        finally:
            self.running = False

    async def _update_once(self):
        if self.error is not None and self.error.model == self._model_id():
            return                                              # stays until Retry or another model
        self.error = None
        st = self.session.normalise(self.state)
        needs = self.session.needs(st)
        while needs.required:
            if not await self._fetch_all(needs.required):
                return
            if self.dirty:
                return                                          # the user moved on: start over
            _el("loading-text").textContent = "Preparing %s…" % ", ".join(
                f.path.rsplit("/", 1)[-1] for f in needs.required[:3])
            await asyncio.sleep(0.02)                           # let the browser paint the note
            st = self.session.normalise(self.state)
            needs = self.session.needs(st)
        self.state = st
        self._sync_controls()
        later = needs.later
        if not later:
            self._loading_done()
        self._draw(st, loading=("V/O weights of layer %d" % st.layer) if later else "", new_layers=0)
        if later and await self._fetch_all(later):
            self._loading_done()
            if not self.dirty:
                self._draw(self.session.normalise(self.state))
        await self._fill_layers(st)

    async def _fill_layers(self, st: AppState):
        """Views that read every layer (model grid, rollout, head statistics): fetch and compute the missing
        layers bottom up, ONE per frame, redrawing after each, so the page stays responsive. Stops as soon
        as the user changes something (the update loop starts over and continues from what is computed)."""
        if not self.session.all_layers(st):
            return
        while not self.dirty and self.ctx is not None:
            pending = research_data.pending_layers(self.session, st, self.ctx)
            if not pending:
                break
            files = research_data.layer_files(self.session, st, pending[0])
            if files and not await self._fetch_all(files):
                return
            await asyncio.sleep(0.005)                      # a frame for the browser: paint, input
            if self.dirty:
                return
            have = len(self.ctx.layer_attentions())
            self._draw(st, new_layers=1)
            if len(self.ctx.layer_attentions()) <= have:
                break                                       # nothing new: do not spin
        self._loading_done()

    def _model_id(self) -> str:
        return self.state.model

    async def _fetch_all(self, files) -> bool:
        bar = _el("loading")
        if self._fetching == 0 and bar.hidden:                 # a new download episode: fresh list
            js.mhsaBoot.clear()
            js.mhsaBoot.progress("runtime", "Python runtime", 1)
            js.mhsaBoot.progress("numpy", "numpy", 1)
        bar.hidden = False
        bar.classList.remove("failed")
        self._fetching += 1
        try:
            results = await asyncio.gather(*[self._fetch_one(f) for f in files])
        finally:
            self._fetching -= 1
        errors = [r for r in results if r is not None]
        if errors:
            e = errors[0]
            self.error = e
            self._status("Could not load %s for %s: %s" % (e.path, e.model, e.problem), kind="error", retry=True)
            js.document.body.dataset.error = str(e)
            bar.classList.add("failed")
            return False
        return True

    def _loading_done(self):
        if self._fetching == 0 and self.error is None:
            _el("loading").hidden = True

    async def _fetch_one(self, f) -> Optional[WeightFileError]:
        key = "file:" + f.path
        label = "%s (%s)" % (f.path, _size_label(f.size))
        js.mhsaBoot.progress(key, label, 0)
        try:
            data = await fetch_bytes(MODELS_URL + f.path,
                                     lambda done, total: js.mhsaBoot.progress(key, label, done / float(total or 1)),
                                     expected=f.size)
        except FetchError as e:
            return self.session.fetch_error(f.path, "could not be downloaded (%s)" % e)
        try:
            self.session.add_file(f.path, data)
        except WeightFileError as e:
            return e
        js.mhsaBoot.progress(key, label, 1)
        return None

    # ---- drawing ----------------------------------------------------------------------------------------
    def _stage_width(self) -> int:
        stage = _el("stage")
        return max(int(stage.clientWidth) - 2, 300)

    def _draw(self, st: AppState, loading: str = "", new_layers: Optional[int] = 0):
        t0 = time.time()
        ctx = self.session.context(st, loading=loading, new_layers=new_layers)
        ctx.extra.update(self.view_extra)
        ctx.extra.update(self.hover)
        t1 = time.time()
        width = self._stage_width()
        self._last_width = width
        try:
            module = importlib.import_module("pyapp.views." + TAB_VIEWS[st.tab])
            scene = module.render(ctx, width)
        except ImportError as e:
            self._status("The %s view is not available: %s" % (st.tab, e), kind="error")
            return
        t2 = time.time()
        cv = _el("view")
        canvas_backend.draw(scene, cv, float(js.window.devicePixelRatio or 1))
        t3 = time.time()
        self.scene, self.ctx = scene, ctx
        grid = self._grid()
        if self.cursor is not None and (grid is None or self.cursor[0] >= grid["rows"] or self.cursor[1] >= grid["cols"]):
            self.cursor = None
        cv.setAttribute("aria-label", scene.label or "Attention visualization")
        _el("alt").textContent = scene.alt_text or scene.label
        self._render_chips(ctx)
        self._update_hotspots(scene)
        if self.link_check is not None:     # the model and the text are known: finish checking the link
            requested, query, problems = self.link_check
            self.link_check = None
            self.show_link_notice(query_notice(problems + fitted_problems(requested, st, query)))
        self._schedule_url()
        matrix, what = shown_matrix(ctx, st.tab)
        h = row_entropy_bits(matrix)
        _el("entropy").textContent = format_bits(h)
        _el("entropy-of").textContent = what
        dropped = int(ctx.extra.get("dropped", 0))
        if dropped:
            self._status("Your text is longer than %d tokens: it was truncated, the last %d token%s dropped."
                         % (len(ctx.tokens), dropped, " was" if dropped == 1 else "s were"), kind="notice")
        elif loading:
            self._status("Loading %s…" % loading, kind="info")
        else:
            self._status("")
        self.draws += 1
        self.timing = {"context_ms": (t1 - t0) * 1000, "view_ms": (t2 - t1) * 1000,
                       "draw_ms": (t3 - t2) * 1000, "update_ms": (t3 - self._update_started) * 1000,
                       "page_ms": float(js.performance.now())}
        self._report(st, ctx, scene, h)
        body = js.document.body
        if str(body.dataset.state) != "ready":
            body.dataset.state = "ready"
            js.mhsaBoot.ready()

    def _report(self, st: AppState, ctx, scene, entropy: float):
        """A JSON summary on <body data-report> for tests and the benchmark (read-only, no markup)."""
        grid = next((r for r in scene.regions if r["kind"] == "attn_cell"), None)
        heat = None
        if grid is not None:
            m = grid["data"].get("matrix")
            heat = {"x": grid["x"], "y": grid["y"], "w": grid["w"], "h": grid["h"],
                    "rows": grid["rows"], "cols": grid["cols"]}
            if m is not None and m.size <= 64 * 64:
                heat["matrix"] = [[round(float(v), 7) for v in row] for row in m]
                mask = grid["data"].get("mask")
                heat["mask"] = mask.tolist() if mask is not None else None
        actions = [{"x": r["x"], "y": r["y"], "w": r["w"], "h": r["h"], "action": r["data"]["action"],
                    "tooltip": str(r["data"].get("tooltip") or "")}
                   for r in _action_regions(scene)]
        report = {"actions": actions, "model": st.model, "model_name": ctx.model_name, "layer": ctx.layer, "head": ctx.head_index,
                  "n_layers": ctx.n_layers, "n_heads": ctx.n_heads, "tab": st.tab, "step": st.step,
                  "temperature": st.temperature, "causal": st.causal, "pinned_row": ctx.pinned_row, "tokens": ctx.tokens, "n": ctx.n,
                  "dropped": int(ctx.extra.get("dropped", 0)), "entropy": entropy, "draws": self.draws,
                  "heatmap": heat, "scene": {"w": scene.width, "h": scene.height, "ops": len(scene.ops)},
                  "dpr": float(js.window.devicePixelRatio or 1), "timing": self.timing,
                  "stats": dict(self.session.stats), "images": canvas_backend.stats["images"],
                  "layers_ready": sorted(ctx.layer_attentions()), "query": st.to_query(),
                  "extra": {k: ctx.extra.get(k) for k in ("heads_shown", "sort_by", "sort_desc", "hover_token",
                                                          "hover_side")}}
        js.document.body.dataset.report = json.dumps(report)

    def _status(self, message: str, kind: str = "", retry: bool = False):
        box = _el("status")
        _el("status-text").textContent = message
        box.className = "status " + kind if message else "status"
        _el("retry").hidden = not retry

    def _sync_controls(self):
        st = self.state
        synthetic = st.model in ("deterministic", "random")
        try:
            n_layers, n_heads = self.session.shape(st)
        except SessionError:
            n_layers, n_heads = 1, 1
        sel = _el("model")
        if str(sel.value) != st.model:
            sel.value = st.model
        _el("synthetic").hidden = not synthetic
        _el("d-model").value = str(st.d_model)
        _el("n-heads").value = str(st.heads)
        for id_, n, value, fmt in (("layer", n_layers, st.layer, "Layer %d"), ("head", n_heads, st.head, "Head %d")):
            select = _el(id_)
            if int(select.length) != n:
                _clear(select)
                for i in range(n):
                    _option(select, str(i), fmt % i)
            select.value = str(value)
            select.disabled = n <= 1
        temp = _el("temperature")
        pos = slider_from_temperature(st.temperature)
        if abs(float(temp.value) - pos) > 0.006:
            temp.value = str(pos)
        _el("temperature-value").textContent = "T = %.2f" % st.temperature
        _el("causal").checked = st.causal
        info = next((m.description for m in self.session.model_options() if m.id == st.model), "")
        _el("model-info").textContent = info
        for tab in TABS:
            b = _el("tab-" + tab)
            on = tab == st.tab
            b.setAttribute("aria-selected", "true" if on else "false")
            b.tabIndex = 0 if on else -1
        _el("stage").setAttribute("aria-labelledby", "tab-" + st.tab)
        steps = st.tab == "steps"
        _el("stepbar").hidden = not steps
        if steps:
            _el("step-progress").value = st.step
            _el("step-label").textContent = "Step %d of %d · %s" % (st.step, len(STEP_NAMES),
                                                                   STEP_NAMES[st.step - 1])
            _el("prev").disabled = st.step <= 1
            _el("next").disabled = st.step >= len(STEP_NAMES)


# ---- entry point ------------------------------------------------------------------------------------------
def _load_catalogue():
    try:
        with open(CATALOGUE_PATH, "rb") as fh:
            return load_catalogue(fh.read()), ""
    except OSError:
        return None, "The model catalogue (models/index.json) is missing: only synthetic sources are available."
    except CatalogueError as e:
        return None, str(e)


async def main():
    """Start the app (called by web/main.py)."""
    boot = js.mhsaBoot
    boot.progress("runtime", "Python runtime", 1)
    boot.progress("numpy", "numpy", 1)
    wasm_gemm.install()  # x @ W^T on a WebAssembly SIMD kernel when the browser has it; numpy otherwise
    try:
        catalogue, problem = _load_catalogue()
        session = Session(catalogue)
        query = str(js.location.search or "")
        state, problems = parse_query(query) if query else (AppState(), [])
        app = App(session, state)
        js.window.mhsaApp = create_proxy(app)        # handle for the benchmark / debugging
        app.bind()
        if problem:
            app._status(problem, kind="error")
        app.show_link_notice(query_notice(problems))
        app.link_check = (state, query, problems)            # finished by the first draw (see _draw)
        await app.update()
        if str(js.document.body.dataset.state) != "ready":
            js.document.body.dataset.state = "ready"     # controls work even if the first model failed
            boot.ready()
            if app.error is not None:
                _el("loading").hidden = False
    except Exception as e:  # noqa: BLE001 - the page must say what happened
        traceback.print_exc()
        boot.fail("The app could not start: %s: %s" % (type(e).__name__, e))
