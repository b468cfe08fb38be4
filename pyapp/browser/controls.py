"""The page's controls: the text box, the model / synthetic / layer / head selects, the temperature slider,
the causal toggle, the tab bar and the step bar. They report changes to the app (``app.set``) and show what
a Frame's ``Controls`` say (``sync``), so they always agree with the canvas."""

from __future__ import annotations

from ..app.frame import Controls
from ..app.state import D_MODEL_CHOICES, HEADS_CHOICES, slider_from_temperature, temperature_from_slider
from ..app.tabs import TAB_LIST, TABS, tab
from .compat import js
from .dom import Debouncer, Listeners, clear, el, option

TEXT_DEBOUNCE_MS = 250
CAUSAL_ONLY_NOTE = ("Always on for this model: a causal decoder is trained to predict each next token from the "
                    "ones before it, so the mask is part of the model, not a lens. For an encoder it is optional.")
STEPPED_TAB = next(t.id for t in TAB_LIST if t.steps)      # where the step keys and buttons lead
TEXT_FIELDS = ("TEXTAREA", "INPUT", "SELECT")


class ControlPanel:
    def __init__(self, app):
        self.app = app
        self.text_settled = Debouncer(TEXT_DEBOUNCE_MS, self._text_settled)

    def bind(self, listeners: Listeners):
        app = self.app
        self.populate_models()
        text = el("text")
        text.value = app.state.text
        text.disabled = False
        el("model").disabled = False
        on = listeners.on
        on(text, "input", self.text_settled.poke)
        on(el("model"), "change", self._on_model)
        on(el("d-model"), "change", lambda e: app.set(d_model=int(e.target.value)))
        on(el("n-heads"), "change", lambda e: app.set(heads=int(e.target.value)))
        on(el("layer"), "change", lambda e: app.set(layer=int(e.target.value), pinned_row=None))
        on(el("head"), "change", lambda e: app.set(head=int(e.target.value)))
        on(el("temperature"), "input", self._on_temperature)
        on(el("causal"), "change", lambda e: app.set(causal=bool(e.target.checked)))
        for t in TABS:
            on(el("tab-" + t), "click", self._tab_clicker(t))
            on(el("tab-" + t), "keydown", self._on_tab_key)
        on(el("prev"), "click", lambda e: self.step_by(-1))
        on(el("next"), "click", lambda e: self.step_by(1))
        on(js.document, "keydown", self._on_key)

    def populate_models(self):
        """The model list (from the session's catalogue) and the synthetic size and heads choices."""
        app = self.app
        sel = el("model")
        clear(sel)
        real = js.document.createElement("optgroup")
        real.label = "Pretrained"
        synth = js.document.createElement("optgroup")
        synth.label = "Synthetic (no download)"
        for m in app.session.model_options():
            if not m.available and not m.synthetic:
                continue        # catalogue entries whose weights are not shipped (e.g. DistilBERT unbuilt)
            option(synth if m.synthetic else real, m.id, m.label, m.id == app.state.model, not m.available)
        if real.childElementCount:
            sel.appendChild(real)
        sel.appendChild(synth)
        for select, choices, value in ((el("d-model"), D_MODEL_CHOICES, app.state.d_model),
                                       (el("n-heads"), HEADS_CHOICES, app.state.heads)):
            clear(select)
            for c in choices:
                option(select, str(c), str(c), c == value)

    # ---- events -------------------------------------------------------------------------------------
    def _text_settled(self):
        self.app.view_state_reset()
        self.app.set(text=str(el("text").value), pinned_row=None)

    def _on_model(self, event):
        self.app.view_state_reset()
        self.app.set(model=str(event.target.value), pinned_row=None)

    def _on_temperature(self, event):
        t = temperature_from_slider(float(event.target.value))
        el("temperature-value").textContent = "T = %.2f" % t
        self.app.set(temperature=t)

    def _tab_clicker(self, tab_id: str):
        return lambda e: self.app.set(tab=tab_id)

    def _on_tab_key(self, event):
        i = TABS.index(self.app.state.tab) if self.app.state.tab in TABS else 0
        j = {"ArrowRight": i + 1, "ArrowLeft": i - 1, "Home": 0, "End": len(TABS) - 1}.get(str(event.key))
        if j is None:
            return
        event.preventDefault()
        t = TABS[j % len(TABS)]
        self.app.set(tab=t)
        el("tab-" + t).focus()

    def _on_key(self, event):
        """Page keys: in a stepped tab the arrows change the step; elsewhere the focused stage's cursor."""
        if event.defaultPrevented:
            return
        target = event.target
        if not tab(self.app.state.tab).steps:
            if str(getattr(target, "id", "")) == "stage" and self.app.stage.on_key(event):
                event.preventDefault()
            return
        tag = str(getattr(target, "tagName", "") or "").upper()
        role = str(target.getAttribute("role") or "") if hasattr(target, "getAttribute") else ""
        if tag in TEXT_FIELDS or role == "tab":
            return                                      # those keys belong to the focused control
        key = str(event.key)
        if key in ("ArrowRight", "ArrowDown", "PageDown"):
            event.preventDefault()
            self.step_by(1)
        elif key in ("ArrowLeft", "ArrowUp", "PageUp"):
            event.preventDefault()
            self.step_by(-1)

    def step_by(self, d: int):
        st = self.app.state
        t = tab(st.tab) if tab(st.tab).steps else tab(STEPPED_TAB)
        self.app.set(tab=t.id, step=min(max(st.step + d, 1), self.app.session.n_steps(st)))

    # ---- showing a frame's controls -------------------------------------------------------------------
    def sync(self, c: Controls):
        sel = el("model")
        if str(sel.value) != c.model:
            sel.value = c.model
        el("synthetic").hidden = not c.synthetic
        el("d-model").value = str(c.d_model)
        el("n-heads").value = str(c.heads)
        for id_, n, value, fmt in (("layer", c.n_layers, c.layer, "Layer %d"), ("head", c.n_heads, c.head, "Head %d")):
            select = el(id_)
            if int(select.length) != n:
                clear(select)
                for i in range(n):
                    option(select, str(i), fmt % i)
            select.value = str(value)
            select.disabled = n <= 1
        temp = el("temperature")
        pos = slider_from_temperature(c.temperature)
        if abs(float(temp.value) - pos) > 0.006:
            temp.value = str(pos)
        el("temperature-value").textContent = "T = %.2f" % c.temperature
        box = el("causal")
        box.checked = c.causal or c.causal_only      # a decoder's mask is part of the model: on, not switchable
        box.disabled = c.causal_only
        note = el("causal-note")
        note.textContent = CAUSAL_ONLY_NOTE if c.causal_only else ""
        note.hidden = not c.causal_only
        el("model-info").textContent = c.model_info
        for t in TABS:
            b = el("tab-" + t)
            on = t == c.tab
            b.setAttribute("aria-selected", "true" if on else "false")
            b.tabIndex = 0 if on else -1
        el("stage").setAttribute("aria-labelledby", "tab-" + c.tab)
        el("stepbar").hidden = not c.n_steps
        if c.n_steps:
            progress = el("step-progress")
            progress.max = c.n_steps
            progress.value = c.step
            el("step-label").textContent = c.step_label
            el("prev").disabled = c.step <= 1
            el("next").disabled = c.step >= c.n_steps
