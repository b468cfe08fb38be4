"""Figures for notebooks and the command line: any view of the page drawn to PNG in CPython.

    import pyapp
    fig = pyapp.figure("The cat sat on the mat.", view="overview", layer=0)
    fig                      # Jupyter shows it inline (``_repr_png_``)
    fig.save("overview.png")

``python -m pyapp render`` is this function. The figure is made by the page's own orchestration: an
``AppState``, a ``Session`` whose weight store is fed from ``models/`` on disk (``core/files.py`` instead of
``fetch``) through the same file plan (``Session.plan``, every batch of it), ``Session.context``, the view
module's ``render(ctx, width)`` and the Pillow backend (``pyapp/raster.py``). CPython only (needs Pillow).

Views (``VIEWS``, from the tab registry ``pyapp.app.tabs``): the tabs' ids, except ``step:K`` (K = 1..9) for
the Step-by-step tab: overview, step:K, heads, math, architecture, model (every layer x head), lines
(BertViz-style head view), neuron, rollout, stats (head statistics).
Bad arguments raise ``FigureError`` (a ValueError) with one line naming the problem; an unknown or unbuilt
model raises core's ``CatalogueError``, a missing or corrupt weight file ``WeightFileError``.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Dict, Optional, Tuple

from .app.context import ARCH_DIAGRAMS, ViewContext
from .app.session import SYNTHETIC, Session
from .app.state import DEFAULT_MODEL, AppState
from .app.tabs import FIGURES, Tab
from .core.attention import check_temperature
from .core.files import default_models_dir, fetch_into, load_local_catalogue
from .draw.scene import Scene

# figure name -> the page's tab (its view, and the weights the Session asks for)
VIEWS: Dict[str, Tab] = dict(FIGURES)
VIEW_NAMES = ", ".join("%s:K (K = 1..%d)" % (name, t.steps) if t.steps else name for name, t in VIEWS.items())
DEFAULT_WIDTH = 1000.0
MIN_WIDTH, MAX_WIDTH = 320.0, 8192.0
MAX_SCALE = 8.0
MAX_PIXELS = 200_000_000  # device pixels of one figure (an RGBA buffer of 800 MB)

_SESSIONS: Dict[str, Session] = {}  # models folder -> Session (keeps verified files and caches across calls)


class FigureError(ValueError):
    """A bad argument to ``figure`` (one line)."""


def parse_view(view: str) -> Tuple[str, int]:
    """"overview" -> ("overview", 1); "step:4" -> ("step", 4). Raises FigureError for an unknown view."""
    name, _, k = str(view).strip().lower().partition(":")
    if name not in VIEWS or (k and not VIEWS[name].steps):
        raise FigureError("unknown view %r (views: %s)" % (view, VIEW_NAMES))
    n_steps = VIEWS[name].steps
    step = 1
    if n_steps:
        try:
            step = int(k or "1")
        except ValueError:
            raise FigureError("bad view %r: the step must be a number 1..%d (e.g. %s:4)" % (view, n_steps, name)) \
                from None
        if not 1 <= step <= n_steps:
            raise FigureError("bad view %r: the step must be 1..%d" % (view, n_steps))
    return name, step


def session_for(models_dir: Optional[str] = None) -> Session:
    """The Session reading ``models_dir`` (default: models/ next to the package), made once per folder."""
    key = os.path.abspath(models_dir or default_models_dir())
    session = _SESSIONS.get(key)
    if session is None:
        session = _SESSIONS[key] = Session(load_local_catalogue(key))
    return session


def load_plan(session: Session, state: AppState, models_dir: Optional[str] = None) -> int:
    """Read from disk every file of the Session's plan for ``state``, every batch of it (tokenizer first,
    then the weights: the shown layer, its V/O, the other layers for the every-layer views). Returns the bytes
    read. A missing or corrupt file raises WeightFileError."""
    total = 0
    while True:
        files = session.plan(state).files()
        if not files:
            return total
        total += fetch_into(session.store, files, models_dir or default_models_dir())


class Figure:
    """One rendered view: ``scene`` (the drawing ops), ``context`` (the numbers it shows) and its pixels."""

    def __init__(self, scene: Scene, scale: float, view: str, context: ViewContext):
        self.scene = scene
        self.scale = float(scale)
        self.view = view
        self.context = context
        self._image = None

    @property
    def size(self) -> Tuple[int, int]:
        """(width, height) of the PNG in pixels."""
        return self.image().size

    @property
    def alt_text(self) -> str:
        """The view's text alternative (what the page gives screen readers)."""
        return self.scene.alt_text or self.scene.label

    def image(self):
        """The figure as a PIL RGBA image (drawn once)."""
        if self._image is None:
            from .raster import render

            self._image = render(self.scene, self.scale)
        return self._image

    def png(self) -> bytes:
        import io

        buf = io.BytesIO()
        self.image().save(buf, "PNG")
        return buf.getvalue()

    def _repr_png_(self) -> bytes:  # Jupyter / IPython inline display
        return self.png()

    def save(self, path: str) -> str:
        """Write the PNG to ``path`` (always PNG, whatever the extension); returns the path."""
        self.image().save(path, "PNG")
        return path

    def __repr__(self) -> str:
        w, h = self.size if self._image is not None else (
            int(math.ceil(self.scene.width * self.scale)), int(math.ceil(self.scene.height * self.scale)))
        return "<Figure %s %dx%d px: %s>" % (self.view, w, h, self.scene.label)


def _check_number(name: str, value: Any, lo: float, hi: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise FigureError("%s must be a number, got %r" % (name, value)) from None
    if not (math.isfinite(v) and lo <= v <= hi):
        raise FigureError("%s must be in %g..%g, got %r" % (name, lo, hi, value))
    return v


def _check_index(name: str, value: Any, count: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise FigureError("%s must be a whole number, got %r" % (name, value))
    try:
        i = int(value)
    except ValueError:
        raise FigureError("%s must be a whole number, got %r" % (name, value)) from None
    if not isinstance(value, (numbers.Integral, str)) and i != value:
        raise FigureError("%s must be a whole number, got %r" % (name, value))
    if not 0 <= i < count:
        raise FigureError("%s %d out of range: %s 0..%d" % (name, i, what, count - 1))
    return i


def figure(text: str, view: str = "overview", model: str = DEFAULT_MODEL, layer: int = 0, head: int = 0,
           temperature: float = 1.0, causal: bool = False, width: float = DEFAULT_WIDTH, scale: float = 1.0,
           pinned_row: Optional[int] = None, arch: str = "encoder", d_model: int = 64, heads: int = 4,
           seed: int = 0, heads_shown: Optional[Any] = None, sort_by: str = "layer", sort_desc: bool = False,
           models_dir: Optional[str] = None) -> Figure:
    """Draw one view of ``text`` as the page does.

    ``view``: see VIEWS (``"step:4"`` for step 4 of the Step-by-step tab). ``layer`` / ``head`` are 0-based;
    ``temperature`` (> 0) is the softmax lens on the shown layer; ``causal`` applies the decoder mask to every
    layer. ``width`` is the layout width in CSS pixels and ``scale`` the device-pixel ratio, so the PNG is
    ``width * scale`` pixels wide (a view may be wider when it needs: the head-statistics table is at least 480).
    ``pinned_row`` pins a query row (the neuron view's query token); ``arch`` picks the Architecture tab's
    diagram; ``d_model`` / ``heads`` / ``seed`` shape the synthetic models ``"deterministic"`` and
    ``"random"``; ``heads_shown`` (e.g. [0, 3]) ticks heads of the lines view; ``sort_by`` (a column of
    core.analysis.SORT_KEYS) / ``sort_desc`` sort the stats table.
    """
    name, step = parse_view(view)
    tab = VIEWS[name]
    width = _check_number("width", width, MIN_WIDTH, MAX_WIDTH)
    scale = _check_number("scale", scale, 0.1, MAX_SCALE)
    try:
        t = check_temperature(temperature)
    except (TypeError, ValueError):
        raise FigureError("temperature must be a positive number, got %r" % (temperature,)) from None
    if arch not in ARCH_DIAGRAMS:
        raise FigureError("unknown architecture %r (one of %s)" % (arch, ", ".join(ARCH_DIAGRAMS)))
    if not isinstance(text, str):
        raise FigureError("text must be a string, got %s" % type(text).__name__)
    session = session_for(models_dir)
    if model not in SYNTHETIC:
        session.store.entry(session.catalogue.get(model).id)  # CatalogueError: unknown or not built
    state = AppState(text=text, model=model, layer=0, head=0, temperature=t, causal=bool(causal), tab=tab.id,
                     step=step, pinned_row=None, arch=arch, d_model=int(d_model), heads=int(heads), seed=int(seed),
                     heads_shown=_head_list(heads_shown), sort_by=str(sort_by), sort_desc=bool(sort_desc))
    n_layers, n_heads = session.shape(state)  # ValueError for a bad synthetic shape
    label = "model %r" % model
    if tab.steps and step > session.n_steps(state):   # the model's own steps (a decoder has more)
        raise FigureError("bad view %r: %s has steps 1..%d" % (view, label, session.n_steps(state)))
    state = state.with_(layer=_check_index("layer", layer, n_layers, label + " has layers"),
                        head=_check_index("head", head, n_heads, label + " has heads"))
    load_plan(session, state, models_dir)  # every batch: the context then holds every layer a view reads
    if pinned_row is not None:
        n = len(session.encode(state).ids)
        state = state.with_(pinned_row=_check_index("pinned row", pinned_row, n, "the text has tokens"))
    ctx = session.context(state)
    scene = tab.view().render(ctx, width)
    pixels = math.ceil(scene.width * scale) * math.ceil(scene.height * scale)
    if pixels > MAX_PIXELS:
        raise FigureError("the %s figure would be %d megapixels: use a smaller --scale or a shorter text"
                          % (view, pixels // 1_000_000))
    return Figure(scene, scale, view, ctx)


def _head_list(heads: Any) -> Optional[Tuple[int, ...]]:
    if heads is None:
        return None
    try:
        return tuple(sorted({int(h) for h in heads}))
    except (TypeError, ValueError):
        raise FigureError("heads_shown must be a list of head numbers, got %r" % (heads,)) from None
