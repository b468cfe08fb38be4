"""The one shim between Pyodide versions (0.17.1 in the tests, modern Pyodide under PyScript).

- ``create_proxy`` / ``to_js`` live in ``pyodide.ffi`` (>= 0.21) or in ``pyodide`` (0.17 - 0.20).
- ``emscripten_module()``: the running Pyodide's Emscripten Module (its heap views).
- ``to_uint8array(a)`` / ``from_uint8array(u8)``: a contiguous NumPy array's bytes -> a JS ``Uint8Array``, and
  back (one memcpy each, through the heap at the array's address).
- ``rgba_to_clamped(rgba)``: a NumPy (h, w, 4) uint8 array -> a JS ``Uint8ClampedArray`` for ``ImageData``,
  with one bulk copy. The fastest way differs between versions; ``_pick_copier`` probes once.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

try:  # modern Pyodide
    from pyodide.ffi import create_proxy, to_js  # type: ignore
except ImportError:  # Pyodide 0.17 - 0.20
    from pyodide import create_proxy, to_js  # type: ignore

import js  # type: ignore

__all__ = ["create_proxy", "to_js", "rgba_to_clamped", "copier_name", "emscripten_module", "js", "address",
           "to_uint8array", "from_uint8array"]

def emscripten_module():
    """Emscripten's Module of the running Pyodide (its HEAPF32 / HEAPU8 views of Python's memory)."""
    try:
        import pyodide_js  # type: ignore  # Pyodide >= 0.17

        return pyodide_js._module
    except ImportError:
        return js.pyodide._module


def address(a: np.ndarray) -> int:
    """Where a NumPy array's data starts in Python's heap (a byte offset into HEAPU8)."""
    return int(a.__array_interface__["data"][0])


def to_uint8array(a: np.ndarray, module=None):
    """A JS Uint8Array copy of a contiguous array's bytes (one memcpy out of Python's heap)."""
    start = address(a) if a.nbytes else 0
    return (module if module is not None else emscripten_module()).HEAPU8.slice(start, start + a.nbytes)


def from_uint8array(u8, module=None) -> np.ndarray:
    """A JS Uint8Array -> a uint8 numpy array (one memcpy into Python's heap)."""
    n = int(u8.length)
    out = np.empty(n, dtype=np.uint8)
    if n:
        (module if module is not None else emscripten_module()).HEAPU8.set(u8, address(out))
    return out


_copier: Optional[Callable] = None
_copier_name = ""


def _via_assign(buf: np.ndarray):
    """Modern Pyodide: allocate the JS array and copy the bytes in with JsBuffer.assign (one memcpy)."""
    out = js.Uint8ClampedArray.new(buf.size)
    out.assign(buf)
    return out


def _via_to_js(buf: np.ndarray):
    """Pyodide 0.17: to_js() of a buffer-protocol object gives a TypedArray copy; view it as clamped."""
    arr = to_js(memoryview(buf))
    return js.Uint8ClampedArray.new(arr.buffer, arr.byteOffset, arr.byteLength)


def _via_bytes(buf: np.ndarray):
    """Last resort: bytes -> JS (a copy), then a clamped view."""
    arr = to_js(buf.tobytes())
    if hasattr(arr, "buffer"):
        return js.Uint8ClampedArray.new(arr.buffer, arr.byteOffset, arr.byteLength)
    return js.Uint8ClampedArray.new(arr)


_CANDIDATES = (("assign", _via_assign), ("to_js", _via_to_js), ("bytes", _via_bytes))


def _pick_copier() -> Callable:
    global _copier, _copier_name
    probe = np.arange(8, dtype=np.uint8).reshape(1, 2, 4)
    for name, fn in _CANDIDATES:
        try:
            out = fn(np.ascontiguousarray(probe).reshape(-1))
            if int(out.length) == 8 and int(out[7]) == 7 and int(out[3]) == 3:
                _copier, _copier_name = fn, name
                return fn
        except Exception:  # noqa: BLE001 - try the next method
            continue
    raise RuntimeError("no way to copy NumPy bytes into a Uint8ClampedArray in this Pyodide")


def rgba_to_clamped(rgba: np.ndarray):
    """(h, w, 4) uint8 -> Uint8ClampedArray of h*w*4 bytes."""
    fn = _copier or _pick_copier()
    return fn(np.ascontiguousarray(rgba, dtype=np.uint8).reshape(-1))


def copier_name() -> str:
    if not _copier:
        _pick_copier()
    return _copier_name
