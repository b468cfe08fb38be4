"""Frame: everything the page shows for one state, as plain data. ``build_frame`` is a pure function.

The page's shell fetches files and presents Frames; it computes nothing itself. A Frame holds the Scene for
the canvas, the token chips, what every control shows (ranges included), the status line, the readout, the
link (URL query) and a report of numbers for tests and the benchmark. Nothing here touches the DOM, so the
same call can run in a Web Worker or in CPython (``tests/test_frame.py``).

Three kinds of frame, so the canvas always shows the model and state the controls show:

* "view":    the tab's view of the state (its files are in);
* "loading": a placeholder naming the files still on their way;
* "error":   what failed (a file, the catalogue, the view itself) for THIS state, with Retry.

``build_frame`` is the only place in ``pyapp.app`` that calls the views (through the tab registry).
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..core.catalogue import CatalogueError, FileEntry
from ..core.weights import WeightFileError
from ..draw.scene import Scene, header, notice, wrap_text
from .interact import action_regions
from .session import SYNTHETIC, Session, SessionError
from .state import MAX_TEXT_CHARS, AppState, share_query
from .stepping import step_titles
from .tabs import row_entropy_bits, shown_matrix, tab

MARGIN = 12.0
REPORT_MATRIX_MAX = 64   # the report carries the heatmap's numbers up to 64 x 64 (tests read them)


@dataclass
class Controls:
    """What every control of the page shows."""
    model: str
    model_info: str           # the model's description under the select
    synthetic: bool           # the synthetic size / heads selects are shown
    d_model: int
    heads: int
    n_layers: int             # the Layer select offers 0..n_layers-1
    n_heads: int              # the Head select offers 0..n_heads-1
    layer: int
    head: int
    temperature: float
    causal: bool
    tab: str
    step: int
    n_steps: int              # 0: the tab has no step bar
    step_label: str           # "Step 3 of 9 · Linear projections Q, K, V"
    causal_only: bool = False # a causal decoder: the causal box is on and cannot be switched off


@dataclass
class Chips:
    """The token chips and the text they point into."""
    tokens: List[str]
    ids: List[int]
    offsets: List[Tuple[int, int]]
    text: str


@dataclass
class Frame:
    kind: str                           # "view" | "loading" | "error"
    state: AppState                     # the state shown (normalised to its model)
    controls: Controls
    scene: Scene
    chips: Optional[Chips] = None       # None while the tokenizer is not in
    status: str = ""
    status_kind: str = ""               # "" | "info" | "notice" | "error"
    retry: bool = False                 # offer Retry (an error frame)
    entropy: float = float("nan")       # mean row entropy (bits) of the shown matrix
    entropy_of: str = "–"
    link: str = ""                      # the URL query of the state (share_query)
    link_text_left_out: bool = False    # the text was too long for the link
    report: Dict[str, Any] = field(default_factory=dict)
    timing: Dict[str, float] = field(default_factory=dict)   # context_ms, view_ms of a view frame
    detail: str = ""                    # a traceback for the console when the view itself failed


def build_frame(session: Session, wanted: AppState, width: float, *, error: Optional[BaseException] = None,
                waiting: Sequence[FileEntry] = (), loading: str = "", new_layers: Optional[int] = 0,
                hover_token: Optional[int] = None, hover_side: str = "left") -> Frame:
    """Everything the page shows for ``wanted`` (the state as the user set it) at layout ``width``.

    ``error``: a failure of this state (a file it needs, the catalogue) -> an error frame; ``waiting``: files
    it needs before it can be drawn -> a loading frame; else the view, with ``loading`` naming what arrives
    after it (e.g. "V/O weights of layer 0") and ``new_layers`` more layers computed for the every-layer tabs.
    ``hover_token`` / ``hover_side``: the page-only view state. Never raises: a failing view is an error frame.
    """
    try:
        st = session.normalise(wanted)
    except (SessionError, CatalogueError) as e:
        st = wanted.clamped()
        return _message_frame("error", session, st, width, describe(e), retry=True)
    if error is not None:
        return _message_frame("error", session, st, width, describe(error), retry=True)
    if waiting:
        return _message_frame("loading", session, st, width, "Loading %s…" % _file_list(waiting))
    try:
        return _view_frame(session, wanted, st, width, loading, new_layers, hover_token, hover_side)
    except Exception as e:  # noqa: BLE001 - the page shows it for this state and keeps working
        frame = _message_frame("error", session, st, width, describe(e), retry=True)
        frame.detail = traceback.format_exc()
        return frame


def describe(e: BaseException) -> str:
    """One line for the status: what failed and why."""
    if isinstance(e, WeightFileError) and getattr(e, "path", None):
        return "Could not load %s for %s: %s" % (e.path, e.model, e.problem)
    if isinstance(e, (SessionError, CatalogueError)):
        return str(e)
    return "Something went wrong: %s: %s" % (type(e).__name__, e)


def truncation_notice(dropped: int, kept: int, chars: int) -> str:
    """What was cut from a long text: characters beyond MAX_TEXT_CHARS, tokens beyond the model's length."""
    out = []
    if chars > MAX_TEXT_CHARS:
        out.append(f"Your text has {chars:,} characters: only the first {MAX_TEXT_CHARS:,} characters were read.")
    if dropped:
        who = "Of them, the text is" if out else "Your text is"
        plural = " was" if dropped == 1 else "s were"
        out.append(f"{who} longer than {kept:,} tokens: it was truncated, the last {dropped:,} token{plural} dropped.")
    return " ".join(out)


def format_bits(h: float) -> str:
    return "%.3f" % h if math.isfinite(h) else "–"


# ---- the parts ------------------------------------------------------------------------------------------
def controls(session: Session, st: AppState) -> Controls:
    try:
        n_layers, n_heads = session.shape(st)
    except (SessionError, CatalogueError, ValueError):
        n_layers, n_heads = 1, 1
    info = next((m.description for m in session.model_options() if m.id == st.model), "")
    the_tab = tab(st.tab)
    label = ""
    n_steps = session.n_steps(st) if the_tab.steps else 0
    if n_steps:
        title = step_titles(*_arch_of(session, st))[min(st.step, n_steps) - 1]
        label = "Step %d of %d · %s" % (st.step, n_steps, title)
    causal_only = st.model in session.catalogue and session.catalogue.get(st.model).config.causal_only
    return Controls(model=st.model, model_info=info, synthetic=st.model in SYNTHETIC, d_model=st.d_model,
                    heads=st.heads, n_layers=n_layers, n_heads=n_heads, layer=st.layer, head=st.head,
                    temperature=st.temperature, causal=st.causal, tab=st.tab, step=st.step,
                    n_steps=n_steps, step_label=label, causal_only=causal_only)


def _arch_of(session: Session, st: AppState):
    """(arch, rope) of the state's model for its step titles."""
    if st.model in SYNTHETIC or st.model not in session.catalogue:
        return "", False
    cfg = session.catalogue.get(st.model).config
    return cfg.arch, bool(cfg.rope_theta)


def _chips(session: Session, st: AppState) -> Optional[Chips]:
    enc = session.cached_encoding(st)
    if enc is None:
        return None
    return Chips(list(enc.tokens), [int(i) for i in enc.ids], [tuple(o) for o in enc.offsets], st.text)


def _model_name(session: Session, st: AppState) -> str:
    return next((m.label for m in session.model_options() if m.id == st.model), st.model)


def _file_list(files: Sequence[FileEntry]) -> str:
    names = [f.path for f in files[:3]]
    more = len(files) - len(names)
    return ", ".join(names) + (" and %d more file%s" % (more, "s" if more > 1 else "") if more > 0 else "")


def _message_frame(kind: str, session: Session, st: AppState, width: float, message: str,
                   retry: bool = False) -> Frame:
    """A loading or error frame: the controls and chips of ``st``, and the message on the canvas."""
    width = max(float(width), 300.0)
    name = _model_name(session, st)
    title = "%s · layer %d · %s" % (name, st.layer, tab(st.tab).title)
    scene = Scene(width, 100, label=("Error: " if kind == "error" else "Loading: ") + title)
    y = header(scene, MARGIN, MARGIN, width - 2 * MARGIN, title,
               "Nothing to show for this model and layer yet." if kind == "loading" else
               "This view cannot be shown: %s" % ("press Retry to try again." if retry else "see below."))
    lines = wrap_text(message, width - 4 * MARGIN, 13)
    h = max(80.0, 22.0 * len(lines) + 24)
    if kind == "error":
        scene.rect(MARGIN, y, width - 2 * MARGIN, h, fill="#fdecea", stroke="#d93025", radius=6)
        for i, line in enumerate(lines):
            scene.text(2 * MARGIN, y + 26 + 22 * i, line, size=13, color="#a50e0e")
    else:
        notice(scene, MARGIN, y, width - 2 * MARGIN, h, message)
    scene.height = y + h + MARGIN
    scene.alt_text = "%s. %s" % (title, message)
    link, left_out = share_query(st)
    c = controls(session, st)
    report = _base_report(kind, st, c, name)
    report.update(error=message if kind == "error" else "", tokens=[], n=0, dropped=0, heatmap=None,
                  actions=[], layers_ready=[], query=link, scene={"w": scene.width, "h": scene.height,
                                                                  "ops": len(scene.ops)})
    chips = _chips(session, st)
    if chips is not None:
        report.update(tokens=chips.tokens, n=len(chips.tokens))
    return Frame(kind, st, c, scene, chips, status=message,
                 status_kind="error" if kind == "error" else "info", retry=retry, link=link,
                 link_text_left_out=left_out, report=report)


def _view_frame(session: Session, wanted: AppState, st: AppState, width: float, loading: str,
                new_layers: Optional[int], hover_token: Optional[int], hover_side: str) -> Frame:
    t0 = time.time()
    ctx = session.context(st, loading=loading, new_layers=new_layers, hover_token=hover_token,
                          hover_side=hover_side)
    t1 = time.time()
    scene = tab(st.tab).view().render(ctx, width)
    timing = {"context_ms": (t1 - t0) * 1000, "view_ms": (time.time() - t1) * 1000}
    matrix, what = shown_matrix(ctx, st.tab)
    h = row_entropy_bits(matrix)
    cut = truncation_notice(ctx.dropped, len(ctx.tokens), len(wanted.text))
    if cut:
        status, kind = cut, "notice"
    elif loading:
        status, kind = "Loading %s…" % loading, "info"
    else:
        status, kind = "", ""
    link, left_out = share_query(st)
    c = controls(session, st)
    report = _base_report("view", st, c, ctx.model_name)
    report.update(layer=ctx.layer, head=ctx.head_index, n_layers=ctx.n_layers, n_heads=ctx.n_heads,
                  pinned_row=ctx.pinned_row, tokens=ctx.tokens, n=ctx.n, dropped=ctx.dropped, entropy=h,
                  heatmap=_heatmap(scene), actions=_actions(scene), error="",
                  scene={"w": scene.width, "h": scene.height, "ops": len(scene.ops)},
                  layers_ready=ctx.known_layers(), query=link,
                  view_state={"heads_shown": ctx.heads_shown, "sort_by": ctx.sort_by, "sort_desc": ctx.sort_desc,
                              "hover_token": ctx.hover_token, "hover_side": ctx.hover_side},
                  step_label=c.step_label, next=_next_report(ctx.prediction))
    chips = Chips(list(ctx.tokens), list(ctx.ids or []), [tuple(o) for o in ctx.offsets or []], ctx.text)
    return Frame("view", st, c, scene, chips, status=status, status_kind=kind, entropy=h, entropy_of=what,
                 link=link, link_text_left_out=left_out, report=report, timing=timing)


def _next_report(pred) -> List[Dict[str, Any]]:
    """The next-token candidates shown (tests read them): id, token, text, probability."""
    if pred is None:
        return []
    return [{"id": c.id, "token": c.token, "text": c.text, "probability": round(c.probability, 7)}
            for c in pred.candidates]


def _base_report(kind: str, st: AppState, c: Controls, model_name: str) -> Dict[str, Any]:
    return {"frame": kind, "model": st.model, "model_name": model_name, "layer": st.layer, "head": st.head,
            "n_layers": c.n_layers, "n_heads": c.n_heads, "tab": st.tab, "step": st.step,
            "temperature": st.temperature, "causal": st.causal, "pinned_row": st.pinned_row,
            "entropy": None, "view_state": {}}


def _heatmap(scene: Scene) -> Optional[Dict[str, Any]]:
    grid = next((r for r in scene.regions if r["kind"] == "attn_cell"), None)
    if grid is None:
        return None
    heat: Dict[str, Any] = {"x": grid["x"], "y": grid["y"], "w": grid["w"], "h": grid["h"],
                            "rows": grid["rows"], "cols": grid["cols"]}
    m = grid["data"].get("matrix")
    if m is not None and m.size <= REPORT_MATRIX_MAX * REPORT_MATRIX_MAX:
        heat["matrix"] = [[round(float(v), 7) for v in row] for row in m]
        mask = grid["data"].get("mask")
        heat["mask"] = mask.tolist() if mask is not None else None
    return heat


def _actions(scene: Scene) -> List[Dict[str, Any]]:
    return [{"x": r["x"], "y": r["y"], "w": r["w"], "h": r["h"], "action": r["data"]["action"],
             "tooltip": str(r["data"].get("tooltip") or "")} for r in action_regions(scene)]
