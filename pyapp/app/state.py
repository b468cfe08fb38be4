"""What the user has chosen: one small, validated value object.

`AppState` holds every control of the page. `clamped()` returns a copy with each field forced into its valid
range (so a stale URL or a model switch can never leave the app in an impossible state), and
`to_query()` / `from_query()` round-trip it through a URL query string; `parse_query()` also says which
values of a (shared, maybe hand-edited) link were malformed and fell back, so the page can show a notice.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode

from ..core.analysis import SORT_KEYS  # the head-statistics table's sortable columns

DEFAULT_TEXT = "The cat sat on the mat because it was tired."
DEFAULT_MODEL = "minilm-l6"

TABS = ("overview", "steps", "heads", "math", "architecture", "model", "lines", "neuron", "rollout", "stats")
# tab -> the pyapp.views module that draws it
TAB_VIEWS = {tab: tab for tab in TABS}
ARCHS = ("encoder", "decoder", "transformer")
N_STEPS = 9
T_MIN, T_MAX = 0.1, 10.0
D_MODEL_CHOICES = (8, 16, 32, 64, 128, 256, 384)
HEADS_CHOICES = (1, 2, 4, 8, 12)
MAX_TEXT_CHARS = 20000


@dataclass(frozen=True)
class AppState:
    text: str = DEFAULT_TEXT
    model: str = DEFAULT_MODEL
    layer: int = 0
    head: int = 0
    temperature: float = 1.0
    causal: bool = False
    tab: str = "overview"
    step: int = 1                 # 1..9 in the Step-by-step tab
    pinned_row: Optional[int] = None
    arch: str = "encoder"         # Architecture tab diagram
    d_model: int = 64             # synthetic sources only
    heads: int = 4                # synthetic sources only
    seed: int = 0                 # synthetic sources only
    heads_shown: Optional[Tuple[int, ...]] = None   # Head view: the ticked heads (None = every head)
    sort_by: str = "layer"        # Head statistics: the sorted column
    sort_desc: bool = False       # Head statistics: largest first

    def with_(self, **changes: Any) -> "AppState":
        return replace(self, **changes)

    def clamped(self, n_layers: Optional[int] = None, n_heads: Optional[int] = None,
                n_tokens: Optional[int] = None) -> "AppState":
        """A copy with every field in range; the limits that depend on the model are passed in."""
        text = self.text if isinstance(self.text, str) else str(self.text)
        text = text[:MAX_TEXT_CHARS]
        t = _float(self.temperature, 1.0)
        t = min(max(t, T_MIN), T_MAX)
        layer = max(_int(self.layer, 0), 0)
        if n_layers is not None:
            layer = min(layer, max(n_layers - 1, 0))
        head = max(_int(self.head, 0), 0)
        if n_heads is not None:
            head = min(head, max(n_heads - 1, 0))
        pinned = None if self.pinned_row is None else _int(self.pinned_row, -1)
        if pinned is not None and (pinned < 0 or (n_tokens is not None and pinned >= n_tokens)):
            pinned = None
        d_model = _nearest(_int(self.d_model, 64), D_MODEL_CHOICES)
        heads = _int(self.heads, 4)
        heads = heads if heads in HEADS_CHOICES else 4
        while d_model % heads:            # heads must divide d_model
            heads = HEADS_CHOICES[HEADS_CHOICES.index(heads) - 1]
        shown = _head_list(self.heads_shown)
        if shown is not None and n_heads is not None:
            shown = tuple(h for h in shown if h < n_heads)
        return AppState(
            text=text,
            model=str(self.model) if self.model else DEFAULT_MODEL,
            layer=layer,
            head=head,
            temperature=t,
            causal=bool(self.causal),
            tab=self.tab if self.tab in TABS else "overview",
            step=min(max(_int(self.step, 1), 1), N_STEPS),
            pinned_row=pinned,
            arch=self.arch if self.arch in ARCHS else "encoder",
            d_model=d_model,
            heads=heads,
            seed=min(max(_int(self.seed, 0), 0), 2 ** 31 - 1),
            heads_shown=shown,
            sort_by=self.sort_by if self.sort_by in SORT_KEYS else "layer",
            sort_desc=bool(self.sort_desc),
        )

    # ---- URL round trip ------------------------------------------------------------------------
    def to_query(self) -> str:
        """Only the fields that differ from the defaults, as `a=1&b=2`."""
        default = AppState()
        out = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v == getattr(default, f.name):
                continue
            if f.name == "heads_shown":
                v = _head_text(v)
            elif isinstance(v, bool):
                v = "1" if v else "0"
            elif isinstance(v, float):
                v = _short_float(v)
            out.append((f.name, str(v)))
        return urlencode(out)

    @classmethod
    def from_query(cls, query: str) -> "AppState":
        """Parse what `to_query` wrote; unknown keys are ignored and bad values fall back to defaults."""
        return parse_query(query)[0]


def parse_query(query: str) -> Tuple[AppState, List[str]]:
    """The state of a URL query, and one note per value that was malformed or out of range and so fell
    back to its default (or was clamped), e.g. ``["layer=abc", "temperature=50 (allowed 0.1..10)"]``.
    Unknown keys are ignored (links may carry other parameters). Never raises."""
    query = query[1:] if query.startswith("?") else query
    values: Dict[str, Any] = {}
    raws: Dict[str, str] = {}
    problems: List[str] = []
    kinds = {f.name for f in fields(AppState)}
    default = asdict(AppState())
    try:
        pairs = parse_qsl(query, keep_blank_values=True)
    except ValueError:
        return AppState(), ["the link's parameters could not be read"]
    for key, raw in pairs:
        if key not in kinds:
            continue
        d = default[key]
        if key == "pinned_row":
            v: Any = None if raw in ("", "none", "None") else _strict_int(raw)
        elif key == "heads_shown":
            v = _head_list(raw)
        elif isinstance(d, bool):
            v = {"1": True, "true": True, "yes": True, "on": True,
                 "0": False, "false": False, "no": False, "off": False}.get(raw.lower())
        elif isinstance(d, int):
            v = _strict_int(raw)
        elif isinstance(d, float):
            v = _float(raw, None)
        else:
            v = raw
        if v is None and not (key == "pinned_row" and raw in ("", "none", "None")):
            problems.append("%s=%s" % (key, _short(raw)))
            continue
        values[key], raws[key] = v, raw
    state = AppState(**values).clamped()
    for key, v in values.items():
        got = getattr(state, key)
        if got != v:
            problems.append("%s=%s (%s)" % (key, _short(raws[key]), _allowed(key)))
    return state, problems


def query_notice(problems: List[str]) -> str:
    """The page's notice for the notes of `parse_query` (empty when there are none)."""
    if not problems:
        return ""
    return ("This link had values the app cannot use; it shows the defaults or the nearest valid values instead: %s."
            % "; ".join(problems))


def fitted_problems(requested: AppState, shown: AppState, query: str) -> List[str]:
    """Notes for a link's values that only the model and text can check and that were changed to fit
    them (an unknown model, a layer or head beyond the model, a pinned token beyond the text): compares
    the state the link asked for with the one the page shows, for the keys the query has."""
    query = query[1:] if query.startswith("?") else query
    try:
        present = {k for k, _ in parse_qsl(query, keep_blank_values=True)}
    except ValueError:
        return []
    out = []
    for key, why in (("model", "not available here"), ("layer", "the model has fewer layers"),
                     ("head", "the model has fewer heads"), ("heads_shown", "the model has fewer heads"),
                     ("pinned_row", "the text has fewer tokens")):
        asked = getattr(requested, key)
        if key in present and asked != getattr(shown, key):
            text = _head_text(asked) if key == "heads_shown" else str(asked)
            out.append("%s=%s (%s)" % (key, _short(text), why))
    return out


def _allowed(key: str) -> str:
    return {"temperature": "allowed %g..%g" % (T_MIN, T_MAX), "tab": "one of " + ", ".join(TABS),
            "arch": "one of " + ", ".join(ARCHS), "step": "allowed 1..%d" % N_STEPS,
            "sort_by": "one of " + ", ".join(SORT_KEYS), "text": "longer than %d characters" % MAX_TEXT_CHARS,
            "d_model": "one of " + ", ".join(map(str, D_MODEL_CHOICES)),
            "heads": "one of " + ", ".join(map(str, HEADS_CHOICES)) + ", dividing d_model",
            }.get(key, "out of range")


def _short(raw: str, n: int = 40) -> str:
    return raw if len(raw) <= n else raw[:n - 1] + "…"


# ---- temperature slider: log scale ------------------------------------------------------------------
def temperature_from_slider(pos: float) -> float:
    """Slider position in [-1, 1] -> temperature 10**pos in [0.1, 10]; 0 is T = 1 (the model as trained)."""
    pos = min(max(_float(pos, 0.0), -1.0), 1.0)
    return float(round(10.0 ** pos, 4))


def slider_from_temperature(t: float) -> float:
    t = min(max(_float(t, 1.0), T_MIN), T_MAX)
    return round(math.log10(t), 4)


def _short_float(v: float) -> str:
    return ("%.4f" % v).rstrip("0").rstrip(".")


def _int(v: Any, default: int) -> int:
    try:
        return int(float(v))
    except (TypeError, ValueError, OverflowError):
        return default


def _strict_int(v: Any) -> Optional[int]:
    """An integer written as one ("3", "-1"); None for anything else ("abc", "2.5", "1e3")."""
    try:
        return int(str(v).strip())
    except ValueError:
        return None


def _head_text(heads) -> str:
    """Head indices as the URL writes them: (0, 3, 5) -> "0.3.5" (``_head_list`` reads it back)."""
    return ".".join(str(h) for h in heads)


def _head_list(v: Any) -> Optional[Tuple[int, ...]]:
    """Head indices as a sorted tuple without duplicates: from "0.3.5", "0,3,5", a list or a tuple; "" and
    () are "no head"; None stays None (every head); anything malformed -> None."""
    if v is None:
        return None
    if isinstance(v, str):
        parts = [p for p in v.replace(",", ".").split(".") if p.strip()] if v.strip() else []
    else:
        parts = list(v)
    out = set()
    for p in parts:
        i = _strict_int(p) if isinstance(p, str) else (int(p) if isinstance(p, int) and not isinstance(p, bool)
                                                       else None)
        if i is None or i < 0:
            return None
        out.add(i)
    return tuple(sorted(out))


def _float(v: Any, default: Optional[float]) -> Optional[float]:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


def _nearest(v: int, choices) -> int:
    return min(choices, key=lambda c: (abs(c - v), c))
