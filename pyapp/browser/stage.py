"""The stage: the canvas and what lies on it -- pointer, keyboard cursor, tooltip, keyboard hotspots.

It draws a Frame's scene (``show``) and turns the user's pointing into the app's actions: hover (transient
view state), clicks (``interact.action``), the heatmap's keyboard cursor and one transparent <button> over
each action region so every canvas button is reachable with Tab.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..app import interact
from ..app.interact import action_regions
from . import canvas as canvas_backend
from .compat import js
from .dom import Listeners, clear, data_index, el

CURSOR_KEYS = ("ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Enter", " ", "Escape")
MOVES = {"ArrowUp": (-1, 0), "ArrowDown": (1, 0), "ArrowLeft": (0, -1), "ArrowRight": (0, 1)}


class Stage:
    def __init__(self, on_action: Callable[[Dict[str, Any]], None], on_hover: Callable[[Dict[str, Any]], None]):
        self.on_action = on_action      # a click's action (state and view changes)
        self.on_hover = on_hover        # transient view state under the pointer ({} when it leaves)
        self.scene = None
        self.cursor: Optional[Tuple[int, int]] = None       # (row, col) of the keyboard cursor on the heatmap
        self._hotspot_key = None
        self._hotspot_actions: List[Dict[str, Any]] = []
        self.painter: Optional[Callable[[Any, Any], None]] = None   # paint(scene, canvas) instead of drawing it

    def bind(self, listeners: Listeners):
        self.bind_canvas(listeners)
        listeners.on(el("hotspots"), "click", self._on_hotspot)

    def bind_canvas(self, listeners: Listeners):
        """The canvas' own listeners (again when a fresh canvas replaced the one handed to the worker)."""
        cv = el("view")
        listeners.on(cv, "mousemove", self._on_pointer)
        listeners.on(cv, "mouseleave", self._on_leave)
        listeners.on(cv, "click", self._on_click)

    def width(self) -> int:
        return max(int(el("stage").clientWidth) - 2, 300)

    # ---- drawing ----------------------------------------------------------------------------------
    def show(self, scene):
        cv = el("view")
        if self.painter is not None:            # the compute worker drew it (browser/remote.py)
            self.painter(scene, cv)
        else:
            canvas_backend.draw(scene, cv, self.dpr())
        self.scene = scene
        grid = self._grid()
        if self.cursor is not None and (grid is None or self.cursor[0] >= grid["rows"]
                                        or self.cursor[1] >= grid["cols"]):
            self.cursor = None
        cv.setAttribute("aria-label", scene.label or "Attention visualization")
        el("alt").textContent = scene.alt_text or scene.label
        self._update_hotspots(scene)

    @staticmethod
    def dpr() -> float:
        return float(js.window.devicePixelRatio or 1)

    # ---- pointer ----------------------------------------------------------------------------------
    def _on_pointer(self, event):
        if self.scene is None:
            return
        x, y = float(event.offsetX), float(event.offsetY)
        hit = self.scene.hit_test(x, y)
        self.on_hover(interact.hover(hit) or {})
        tip = interact.tooltip(hit)
        if not tip:
            self.hide_tooltip()
            return
        self._show_tooltip(tip, x, y)
        el("view").style.cursor = "pointer" if interact.action(hit) else "crosshair"

    def _on_leave(self, event):
        self.hide_tooltip()
        self.on_hover({})

    def _on_click(self, event):
        if self.scene is None:
            return
        self._on_pointer(event)                # touch screens have no hover: a tap shows the tooltip too
        act = interact.action(self.scene.hit_test(float(event.offsetX), float(event.offsetY)))
        if act:
            self.on_action(act)

    def _show_tooltip(self, tip: str, x: float, y: float):
        t = el("tooltip")
        t.textContent = tip
        t.hidden = False
        stage = el("stage")
        cv = el("view")
        left = float(cv.offsetLeft) + x + 14 - float(stage.scrollLeft)
        top = float(cv.offsetTop) + y + 16 - float(stage.scrollTop)
        tw = float(t.offsetWidth)
        if left + tw > float(stage.clientWidth) - 4:
            left = max(4.0, float(cv.offsetLeft) + x - tw - 10 - float(stage.scrollLeft))
        t.style.left = "%dpx" % left
        t.style.top = "%dpx" % top

    def hide_tooltip(self):
        el("tooltip").hidden = True

    # ---- keyboard exploration of the heatmap (stage focused) ----------------------------------------
    def _grid(self):
        if self.scene is None:
            return None
        return next((r for r in self.scene.regions if r["kind"] == "attn_cell"), None)

    def on_key(self, event) -> bool:
        """Arrows move a cell cursor over the heatmap, Enter pins its row, Escape leaves. True if handled."""
        grid = self._grid()
        key = str(event.key)
        if grid is None or key not in CURSOR_KEYS:
            return False
        if key == "Escape":
            self.cursor = None
            self.hide_tooltip()
            return True
        rows, cols = grid["rows"], grid["cols"]
        r, c = self.cursor if self.cursor is not None else (0, 0)
        if self.cursor is not None:
            dr, dc = MOVES.get(key, (0, 0))
            r, c = min(max(r + dr, 0), rows - 1), min(max(c + dc, 0), cols - 1)
        self.cursor = (r, c)
        x = grid["x"] + (c + 0.5) * grid["w"] / cols
        y = grid["y"] + (r + 0.5) * grid["h"] / rows
        hit = self.scene.hit_test(x, y)
        if key in ("Enter", " "):
            act = interact.action(hit)
            if act and "pinned_row" in act:
                self.on_action({"pinned_row": act["pinned_row"]})
            return True
        tip = interact.tooltip(hit) or ""
        self._show_tooltip(tip, x, y)
        el("live").textContent = tip
        return True

    # ---- keyboard access to the canvas' buttons: one transparent <button> over each action region ------
    def _update_hotspots(self, scene):
        regions = action_regions(scene)
        key = tuple((round(r["x"], 1), round(r["y"], 1), round(r["w"], 1), round(r["h"], 1),
                     str(r["data"].get("tooltip") or "")) for r in regions)
        self._hotspot_actions = [dict(r["data"]["action"]) for r in regions]
        if key == self._hotspot_key:
            return
        self._hotspot_key = key
        box = el("hotspots")
        build = getattr(js, "mhsaHotspots", None)          # web/coi.js: the same buttons in one call
        if build is not None:
            labels = [str(r["data"].get("tooltip") or ("button %d" % (i + 1))) for i, r in enumerate(regions)]
            build(box, json.dumps({"w": int(scene.width), "h": int(scene.height),
                                   "buttons": [[float(r["x"]), float(r["y"]), float(r["w"]), float(r["h"]), label]
                                               for r, label in zip(regions, labels)]}))
            return
        focused = js.document.activeElement
        refocus = None
        if focused is not None and focused.parentNode == box:
            refocus = str(focused.dataset.index)
        clear(box)
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
        i = data_index(event)
        if i is not None and 0 <= i < len(self._hotspot_actions):
            self.on_action(self._hotspot_actions[i])
