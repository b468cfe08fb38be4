"""What the user has chosen: one small, validated value object.

`AppState` holds every control of the page. `clamped()` returns a copy with each field forced into its valid
range (so a stale URL or a model switch can never leave the app in an impossible state), and
`to_query()` / `from_query()` round-trip it through a URL query string; `parse_query()` also says which
values of a (shared, maybe hand-edited) link were malformed and fell back, so the page can show a notice.

Links (`share_query`, which `to_query` uses):

* A link always reloads: its query is at most ``MAX_LINK_QUERY`` characters (see there). A text too long for
  that is left out and the link says so (``text_left_out=1``); the page then tells the user that the link
  holds the settings but not the text (`LINK_TEXT_LEFT_OUT`, and `parse_query`'s note on reload).
* Writing a link never raises: a lone UTF-16 surrogate in the text (a browser can hand one over in an
  input event) cannot be UTF-8 encoded, so the link carries U+FFFD in its place (the state keeps the text
  as typed; like the browser's own TextEncoder).

Reading a link (`parse_query`) is the same on every Python (Pyodide 0.17's 3.8 split on ``;`` too): the
query is split on ``&`` only, ``+`` is a space, percent escapes are decoded as UTF-8 with bad bytes replaced
by U+FFFD; the FIRST occurrence of a key wins (later ones are ignored and named in the notice); whole
numbers are ASCII digits only (``-?[0-9]{1,10}``: no ``1_0``, no ``٣``, no exponent), the temperature is
an ASCII decimal (``1.5``, ``.5``, ``2e-1``) that must be finite; unknown keys are ignored.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote_plus, unquote

from ..core.analysis import SORT_KEYS  # the head-statistics table's sortable columns
from .context import ARCH_DIAGRAMS
from .tabs import N_STEPS, TAB_VIEWS, TABS  # noqa: F401 - TAB_VIEWS re-exported for older imports

DEFAULT_TEXT = "The cat sat on the mat because it was tired."
DEFAULT_MODEL = "minilm-l6"

# The tabs (TABS, TAB_VIEWS, N_STEPS) are defined by the tab registry, the diagrams by the view context.
ARCHS = ARCH_DIAGRAMS
T_MIN, T_MAX = 0.1, 10.0              # the page's temperature slider (log scale)
# The widest temperatures the CLI accepts. The softmax of float32 logits / T stays finite while
# max|logit| / T < 3.4e38 and float32(T) is finite (causal rows hold -inf, and -inf / inf is NaN). Measured
# on the shipped models (every layer, causal and not): finite for T in [3e-37, 3e38] (MiniLM), [3e-38, 3e38]
# (demo-tiny); NaN at 1e-37 and at 1e39 with --causal. 1e-30 leaves room for logits up to 3e8.
T_FINITE_MIN, T_FINITE_MAX = 1e-30, 1e30
D_MODEL_CHOICES = (8, 16, 32, 64, 128, 256, 384)
HEADS_CHOICES = (1, 2, 4, 8, 12)
SAMPLE_T_MIN, SAMPLE_T_MAX = 0.05, 10.0    # the next-token sampler's temperature
TOP_K_MAX = 1000
TOP_P_MIN = 0.01
MAX_TEXT_CHARS = 200_000           # the page reads at most this much text (tokenizing it takes < 1 s)


@dataclass(frozen=True)
class AppState:
    text: str = DEFAULT_TEXT
    model: str = DEFAULT_MODEL
    layer: int = 0
    head: int = 0
    temperature: float = 1.0
    causal: bool = False
    tab: str = "overview"
    step: int = 1                 # 1..N_STEPS in the Step-by-step tab (the model's own count: app/stepping.py)
    pinned_row: Optional[int] = None
    arch: str = "encoder"         # Architecture tab diagram
    d_model: int = 64             # synthetic sources only
    heads: int = 4                # synthetic sources only
    seed: int = 0                 # synthetic sources only
    heads_shown: Optional[Tuple[int, ...]] = None   # Head view: the ticked heads (None = every head)
    sort_by: str = "layer"        # Head statistics: the sorted column
    sort_desc: bool = False       # Head statistics: largest first
    sample_t: float = 1.0         # Next token: the sampler's temperature (divides the LM head's logits)
    top_k: int = 0                # Next token: keep the k most probable tokens (0: off)
    top_p: float = 1.0            # Next token: keep the fewest tokens whose probability reaches p (1: off)

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
            sample_t=min(max(_float(self.sample_t, 1.0), SAMPLE_T_MIN), SAMPLE_T_MAX),
            top_k=min(max(_int(self.top_k, 0), 0), TOP_K_MAX),
            top_p=min(max(_float(self.top_p, 1.0), TOP_P_MIN), 1.0),
        )

    # ---- URL round trip ------------------------------------------------------------------------
    def to_query(self) -> str:
        """Only the fields that differ from the defaults, as `a=1&b=2`: the link of `share_query` (a text too
        long for a link is left out of it). Never raises."""
        return share_query(self)[0]

    @classmethod
    def from_query(cls, query: str) -> "AppState":
        """Parse what `to_query` wrote; unknown keys are ignored and bad values fall back to defaults."""
        return parse_query(query)[0]


# ---- links ------------------------------------------------------------------------------------------
# The longest query a link may have, in characters (ASCII once percent-encoded). `python -m http.server`
# refuses a request line over 64 KB (414) and common servers and proxies stop at 8 KB (Apache 8190, nginx's
# 8k header buffers): 6000 keeps the whole request line ("GET /path/web/index.html?... HTTP/1.1") under
# 8 KB with room for a long path. That holds about 6000 ASCII or 660 CJK characters of text.
MAX_LINK_QUERY = 6000
TEXT_LEFT_OUT = "text_left_out"     # a link's marker key: its text was too long and is not in it
LINK_TEXT_LEFT_OUT = ("Your text is too long for a link: the page's address (the link to share) holds the "
                      "settings but not the text.")
TEXT_LEFT_OUT_NOTE = ("text (this link holds the settings but not the text, which was too long for a link; "
                      "the default sentence is shown)")


def share_query(state: AppState) -> Tuple[str, bool]:
    """The query string of a link to ``state`` (no "?"; "" for the defaults) and whether its text was left
    out because the link would be longer than ``MAX_LINK_QUERY`` characters. Only fields that differ from
    the defaults are written; lone surrogates become U+FFFD. Never raises."""
    default = AppState()
    pairs: List[Tuple[str, str]] = []
    for f in fields(AppState):
        v = getattr(state, f.name, None)
        try:
            if v == getattr(default, f.name):
                continue
        except Exception:  # noqa: BLE001 - a value of a foreign type that cannot be compared is written
            pass
        pairs.append((f.name, _link_value(f.name, v)))
    text = [p for p in pairs if p[0] == "text"]
    rest = [p for p in pairs if p[0] != "text"]
    marker = [(TEXT_LEFT_OUT, "1")] if text else []
    while len(_encode(rest + marker)) > MAX_LINK_QUERY:   # only a hostile state (e.g. a huge model name)
        rest.remove(max(rest, key=lambda p: len(_encode([p]))))
    query = _encode(text + rest)
    if len(query) <= MAX_LINK_QUERY:
        return query, False
    return _encode(rest + marker), bool(text)


def _link_value(name: str, v: Any) -> str:
    try:
        if name == "heads_shown":
            out = _head_text(v)
        elif isinstance(v, bool):
            out = "1" if v else "0"
        elif isinstance(v, float):
            out = _short_float(v)
        else:
            out = str(v)
    except Exception:  # noqa: BLE001 - never raise for a link; a malformed value falls back on reload
        out = ""
    return _well_formed(out)


def _well_formed(s: str) -> str:
    """``s`` with every lone UTF-16 surrogate replaced by U+FFFD (surrogate pairs are joined), so it can be
    UTF-8 encoded."""
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _encode(pairs: List[Tuple[str, str]]) -> str:
    return "&".join(quote_plus(k) + "=" + quote_plus(v) for k, v in pairs)


def query_pairs(query: str) -> List[Tuple[str, str]]:
    """The (key, value) pairs of a query string, in order and with repeats, the same on every Python:
    split on "&" only (never ";"), a missing "=" means an empty value, "+" is a space, percent escapes are
    UTF-8 with bad bytes replaced by U+FFFD (a stray "%" stays as it is). Never raises."""
    query = query[1:] if query.startswith("?") else query
    out = []
    for piece in query.split("&"):
        if not piece:
            continue
        key, _, value = piece.partition("=")
        out.append((_unescape(key), _unescape(value)))
    return out


def _unescape(s: str) -> str:
    return unquote(s.replace("+", " "), encoding="utf-8", errors="replace")


def parse_query(query: str) -> Tuple[AppState, List[str]]:
    """The state of a URL query, and one note per value that was malformed or out of range and so fell
    back to its default (or was clamped), e.g. ``["layer=abc", "temperature=50 (allowed 0.1..10)"]``, or
    that was repeated (the first occurrence of a key wins). Unknown keys are ignored (links may carry other
    parameters). A link whose text was left out (``share_query``) gets ``TEXT_LEFT_OUT_NOTE``. Never raises."""
    values: Dict[str, Any] = {}
    raws: Dict[str, str] = {}
    problems: List[str] = []
    kinds = {f.name for f in fields(AppState)}
    default = asdict(AppState())
    pairs = query_pairs(query)
    seen = set()
    for key, raw in pairs:
        if key not in kinds:
            continue
        if key in seen:
            problems.append("%s=%s (repeated: the first %s= is used)" % (key, _short(raw), key))
            continue
        seen.add(key)
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
            v = _strict_float(raw)
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
    if "text" not in values and any(k == TEXT_LEFT_OUT for k, _ in pairs):
        problems.insert(0, TEXT_LEFT_OUT_NOTE)
    return state, problems


def query_notice(problems: List[str]) -> str:
    """The page's notice for the notes of `parse_query` (empty when there are none)."""
    left_out = TEXT_LEFT_OUT_NOTE in problems
    problems = [p for p in problems if p != TEXT_LEFT_OUT_NOTE]
    parts = []
    if left_out:
        parts.append("This link holds the settings but not the text, which was too long for a link: "
                     "the default sentence is shown.")
    if problems:
        parts.append("This link had values the app cannot use; it shows the defaults or the nearest valid "
                     "values instead: %s." % "; ".join(problems))
    return " ".join(parts)


def fitted_problems(requested: AppState, shown: AppState, query: str) -> List[str]:
    """Notes for a link's values that only the model and text can check and that were changed to fit
    them (an unknown model, a layer or head beyond the model, a pinned token beyond the text): compares
    the state the link asked for with the one the page shows, for the keys the query has."""
    present = {k for k, _ in query_pairs(query)}
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
            "sample_t": "allowed %g..%g" % (SAMPLE_T_MIN, SAMPLE_T_MAX), "top_k": "allowed 0..%d" % TOP_K_MAX,
            "top_p": "allowed %g..1" % TOP_P_MIN,
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


_INT_RE = re.compile(r"-?[0-9]{1,10}")        # ASCII digits only: int() would also take "1_0" and "٣"
_FLOAT_RE = re.compile(r"[-+]?(?:[0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})(?:[eE][-+]?[0-9]{1,3})?")


def _strict_int(v: Any) -> Optional[int]:
    """An integer written as one in ASCII digits, at most 10 of them ("3", "-1"); None for anything else
    ("abc", "2.5", "1e3", "1_0", "٣", " 3", "99999999999")."""
    s = str(v)
    return int(s) if _INT_RE.fullmatch(s) else None


def _strict_float(v: Any) -> Optional[float]:
    """A finite number written as an ASCII decimal ("2.5", ".5", "-1", "3e-1"); None for anything else
    ("inf", "nan", "1_0", "١.٥", " 2", "0x1p3", "1e999")."""
    s = str(v)
    return _float(s, None) if _FLOAT_RE.fullmatch(s) else None


def _head_text(heads) -> str:
    """Head indices as the URL writes them: (0, 3, 5) -> "0.3.5" (``_head_list`` reads it back)."""
    return ".".join(str(h) for h in heads)


def _head_list(v: Any) -> Optional[Tuple[int, ...]]:
    """Head indices as a sorted tuple without duplicates: from "0.3.5", "0,3,5", a list or a tuple; "" and
    () are "no head"; None stays None (every head); anything malformed -> None."""
    if v is None:
        return None
    if isinstance(v, str):
        parts = [p.strip(" ") for p in v.replace(",", ".").split(".") if p.strip(" ")] if v.strip(" ") else []
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
