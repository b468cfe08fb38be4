"""What the user has chosen: one small, validated value object.

`AppState` holds every control of the page. `clamped()` returns a copy with each field forced into its valid
range (so a stale URL or a model switch can never leave the app in an impossible state), and
`to_query()` / `from_query()` round-trip it through a URL query string.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Dict, Optional
from urllib.parse import parse_qsl, urlencode

DEFAULT_TEXT = "The cat sat on the mat because it was tired."
DEFAULT_MODEL = "minilm-l6"

TABS = ("overview", "steps", "heads", "math", "architecture")
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
            if isinstance(v, bool):
                v = "1" if v else "0"
            elif isinstance(v, float):
                v = _short_float(v)
            out.append((f.name, str(v)))
        return urlencode(out)

    @classmethod
    def from_query(cls, query: str) -> "AppState":
        """Parse what `to_query` wrote; unknown keys are ignored and bad values fall back to defaults."""
        query = query[1:] if query.startswith("?") else query
        values: Dict[str, Any] = {}
        kinds = {f.name for f in fields(cls)}
        default = asdict(cls())
        for key, raw in parse_qsl(query, keep_blank_values=True):
            if key not in kinds:
                continue
            d = default[key]
            if key == "pinned_row":
                values[key] = None if raw in ("", "none", "None") else _int(raw, -1)
            elif isinstance(d, bool):
                values[key] = raw.lower() in ("1", "true", "yes", "on")
            elif isinstance(d, int):
                values[key] = _int(raw, d)
            elif isinstance(d, float):
                values[key] = _float(raw, d)
            else:
                values[key] = raw
        return cls(**values).clamped()


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


def _float(v: Any, default: float) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return default
    return f if math.isfinite(f) else default


def _nearest(v: int, choices) -> int:
    return min(choices, key=lambda c: (abs(c - v), c))
