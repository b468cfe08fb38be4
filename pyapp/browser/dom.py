"""Small DOM helpers for the page's shell, and its one debouncer. Text reaches the DOM only as textContent."""

from __future__ import annotations

from typing import Any, Callable, List

from .compat import create_proxy, js


def el(id_: str):
    return js.document.getElementById(id_)


def clear(node):
    while node.firstChild:
        node.removeChild(node.firstChild)


def option(select, value: str, label: str, selected: bool = False, disabled: bool = False):
    opt = js.document.createElement("option")
    opt.value = value
    opt.textContent = label
    opt.selected = selected
    opt.disabled = disabled
    select.appendChild(opt)


def size_label(n: int) -> str:
    if n >= 1 << 20:
        return "%.1f MB" % (n / float(1 << 20))
    return "%d kB" % max(1, round(n / 1024.0))


def data_index(event):
    """The integer ``data-index`` of an event's target, or None."""
    idx = getattr(getattr(event.target, "dataset", None), "index", None)
    if idx is None or str(idx) in ("undefined", ""):
        return None
    return int(str(idx))


class Listeners:
    """Event listeners bound from Python (their proxies are kept alive here)."""

    def __init__(self):
        self._proxies: List[Any] = []

    def on(self, target, event: str, fn: Callable):
        proxy = create_proxy(fn)
        self._proxies.append(proxy)
        target.addEventListener(event, proxy)
        return proxy


class Debouncer:
    """Call ``fn()`` once, ``ms`` milliseconds after the last ``poke()`` (one browser timer)."""

    def __init__(self, ms: int, fn: Callable[[], Any]):
        self.ms = ms
        self.fn = fn
        self._timer = None
        self._proxy = create_proxy(self._fire)

    def poke(self, *args):
        self.cancel()
        self._timer = js.setTimeout(self._proxy, self.ms)

    def cancel(self):
        if self._timer is not None:
            js.clearTimeout(self._timer)
            self._timer = None

    def _fire(self, *args):
        self._timer = None
        self.fn()
