"""Plain data with numpy arrays <-> (JSON text, [arrays]): how results cross ``postMessage``. Pure Python.

``pack(obj)`` returns the JSON text of ``obj`` with every ndarray replaced by a reference, and the arrays
(contiguous, each distinct one once) in order: the worker sends the text as a string and the arrays' bytes
``join``-ed in one transferred typed array, so nothing is pickled and no element-wise conversion crosses the JS
bridge. ``unpack(text, arrays)`` rebuilds the object. Handled: dict (any hashable keys), list, tuple, str,
int, float (NaN / +-inf too), bool, None, numpy scalars and arrays, ``draw.scene.Scene`` (rebuilt as a Scene)
and instances of ``pyapp``'s dataclasses (``app.frame.Frame``, ``app.state.AppState``, ...: rebuilt as the same
class; other dataclasses become dicts).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from ..draw.scene import Scene

_ND, _TUPLE, _MAP, _SCENE, _FLOAT, _DC = "__nd__", "__tuple__", "__map__", "__scene__", "__float__", "__dc__"
SCENE_FIELDS = ("width", "height", "background", "label", "alt_text", "ops", "regions")


class _Arrays(list):
    """The arrays of one ``pack``, each distinct array object once: one mask shared by a layer's nine
    thumbnails crosses once, and its nine references come back as views of that one array."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: Dict[int, Tuple[np.ndarray, int]] = {}  # id -> (the array, kept alive: no id reused, index)

    def index_of(self, o: np.ndarray) -> int:
        hit = self.seen.get(id(o))
        if hit is None:
            self.append(np.ascontiguousarray(o))
            hit = self.seen[id(o)] = (o, len(self) - 1)
        return hit[1]


def pack(obj: Any) -> Tuple[str, List[np.ndarray]]:
    """``obj`` -> (JSON text, contiguous arrays referenced by it; an array referenced twice is listed once)."""
    arrays = _Arrays()
    text = json.dumps(_enc(obj, arrays), separators=(",", ":"), allow_nan=False)
    return text, list(arrays)


ALIGN = 8  # each array of a joined buffer starts at a multiple of 8 bytes (float64 views stay aligned)


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def join(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """The bytes of ``arrays`` in one uint8 buffer (one transfer, one copy into the page's heap, whatever
    the number of arrays): a little-endian uint32 header (count, then each array's offset and length),
    then the arrays, each at a multiple of ``ALIGN``. ``split`` is its inverse."""
    head = 4 * (1 + 2 * len(arrays))
    offsets, pos = [], _aligned(head)
    for a in arrays:
        offsets.append(pos)
        pos = _aligned(pos + int(a.nbytes))
    out = np.zeros(pos, dtype=np.uint8)
    header = [len(arrays)] + [v for o, a in zip(offsets, arrays) for v in (o, int(a.nbytes))]
    out[:head] = np.array(header, dtype="<u4").view(np.uint8)
    for o, a in zip(offsets, arrays):
        out[o:o + a.nbytes] = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
    return out


def split(blob: Any) -> List[np.ndarray]:
    """``join``'s buffer -> the arrays' bytes, as uint8 views of it (no copy)."""
    b = blob if isinstance(blob, np.ndarray) and blob.dtype == np.uint8 else np.frombuffer(blob, dtype=np.uint8)
    count = int(b[:4].view("<u4")[0])
    spans = b[4:4 + 8 * count].view("<u4").reshape(count, 2).tolist()
    return [b[o:o + n] for o, n in spans]


def unpack(text: str, arrays: Sequence[np.ndarray] = ()) -> Any:
    """Inverse of ``pack``; ``arrays[i]`` may be any buffer (bytes, memoryview, uint8 array) of array i.

    Rebuilt while parsing (``json.loads``' object_hook, called bottom up for each JSON object): plain lists
    and dicts are never walked again in Python, which is most of a large frame (its hit regions)."""
    return json.loads(text, object_hook=lambda o: _obj(o, arrays))


def _enc(o: Any, arrays: _Arrays) -> Any:
    if o is None or isinstance(o, (bool, str)):
        return o
    if isinstance(o, (int, np.integer)) and not isinstance(o, np.bool_):
        return int(o)
    if isinstance(o, (float, np.floating)):
        f = float(o)
        return f if math.isfinite(f) else {_FLOAT: repr(f)}
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        if o.dtype == object:
            return [_enc(v, arrays) for v in o.tolist()]
        return {_ND: arrays.index_of(o), "dtype": o.dtype.str, "shape": list(o.shape)}
    if isinstance(o, Scene):
        return {_SCENE: {k: _enc(getattr(o, k), arrays) for k in SCENE_FIELDS}}
    if isinstance(o, dict):
        if all(isinstance(k, str) for k in o):
            if any(k.startswith("__") and k.endswith("__") for k in o):
                return {_MAP: [[k, _enc(v, arrays)] for k, v in o.items()]}
            return {k: _enc(v, arrays) for k, v in o.items()}
        return {_MAP: [[_enc(k, arrays), _enc(v, arrays)] for k, v in o.items()]}
    if isinstance(o, tuple):
        return {_TUPLE: [_enc(v, arrays) for v in o]}
    if isinstance(o, (list, set, frozenset)):
        return [_enc(v, arrays) for v in o]
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        fields = {f.name: _enc(getattr(o, f.name), arrays) for f in dataclasses.fields(o)}
        cls = type(o)
        if cls.__module__.startswith("pyapp."):
            return {_DC: [cls.__module__, cls.__qualname__, fields]}
        return fields
    raise TypeError("cannot send %s to the page" % type(o).__name__)


def _key(k: Any) -> Any:
    return tuple(_key(v) for v in k) if isinstance(k, list) else k


def _obj(o: dict, arrays: Sequence[Any]) -> Any:
    """One JSON object, its members already rebuilt."""
    if len(o) == 3 and _ND in o:
        dtype = np.dtype(o["dtype"])
        shape = tuple(o["shape"])
        buf = arrays[o[_ND]]
        a = buf if isinstance(buf, np.ndarray) and buf.dtype == dtype else np.frombuffer(buf, dtype=np.uint8)
        return a.view(dtype).reshape(shape) if a.dtype != dtype or a.shape != shape else a
    if len(o) == 1:
        if _FLOAT in o:
            return float(o[_FLOAT])
        if _TUPLE in o:
            return tuple(o[_TUPLE])
        if _MAP in o:
            return {_key(k): v for k, v in o[_MAP]}
        if _DC in o:
            module, name, fields = o[_DC]
            if not module.startswith("pyapp."):
                raise ValueError("refusing to rebuild %s.%s" % (module, name))
            cls = getattr(importlib.import_module(module), name)
            return cls(**fields)
        if _SCENE in o:
            d = o[_SCENE]
            s = Scene(d["width"], d["height"], d["background"], d["label"])
            s.alt_text = d["alt_text"]
            s.ops = d["ops"]
            s.regions = d["regions"]
            return s
    return o
