"""Fast float32 kernels for the browser runtime (Pyodide 0.17.1: numpy 1.17.5 built without BLAS).

Measured there (``bench/pyodide_micro.py``, ``bench/README.md``), two things dominate a forward pass:

* ``np.exp`` costs ~70 ns per element: each element is a call out of WebAssembly into JavaScript's
  ``Math.exp``, while ``+``/``*`` stay in WebAssembly at well under 1 ns.  ``exp`` below computes e**x with
  ~25 whole-array ``+``/``*`` passes instead (Cody-Waite range reduction, Cephes' ``expf`` polynomial, the
  power of two built from its exponent bits): about 5x faster, relative error below 2e-7.
* Without BLAS, ``x @ W.T`` is a naive dot loop (about 1.8 GFLOP/s there); ``np.einsum("ij,jk->ik", x, W^T)``
  with ``W^T`` contiguous runs numpy's unrolled multiply-add loop (about 3.6 GFLOP/s).  ``matmul_t``
  keeps one contiguous ``W^T`` per weight matrix, made on first use.  A runtime with something faster plugs it
  in with ``set_matmul_backend`` / ``set_batched_matmul_backend`` (the browser shell installs a WebAssembly
  SIMD kernel there: ``pyapp/browser/wasm_gemm.py``); the core itself never imports anything of the browser.
* The same goes for the elementwise hot spots (softmax, GELU, SiLU, exp): ``set_elementwise_backend``, and for
  LayerNorm (a dozen numpy passes, each a few microseconds of call overhead there): ``set_layer_norm_backend``;
  the browser's kernels compute exactly what the numpy code here computes, in the same order (same bits).

Weights are treated as read-only once they are used (the store decodes them once and never writes them).
"""

from __future__ import annotations

import weakref
from typing import Callable, Dict, Optional, Tuple

import numpy as np

# ---------------------------------------------------------------------------------------------- exp

_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)  # ln 2 = _LN2_HI + _LN2_LO, _LN2_HI exact in 9 bits (Cody-Waite)
_LN2_LO = np.float32(-2.12194440e-4)
_EXP_POLY = tuple(np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                          4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))  # Cephes expf
_EXP_MIN = np.array(-103.0, dtype=np.float32)  # below ~ -87.3 the result flushes to exactly 0
_EXP_MAX = np.array(88.0, dtype=np.float32)  # e**88 < float32 max  (0-d arrays: np.maximum with a numpy
#                                               scalar takes a slow path in numpy 1.17, 5x slower)
SMALL = 8192  # below this many elements np.exp is faster (each whole-array pass has a fixed cost)


def exp(x: np.ndarray) -> np.ndarray:
    """e**x elementwise, float32 (a new array).  -inf -> 0 exactly; x < -87.3 -> 0; meant for x <= 88.

    e**x = 2**k * e**r with k = round(x / ln 2) and |r| <= ln(2)/2;  e**r = 1 + r + r^2 P(r).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.size < SMALL:  # (the callers' arguments are <= 0: softmax shifted logits, erfc's exponent)
        return np.exp(x)
    if _elementwise is not None:
        y = _elementwise("exp", x)
        if y is not None:
            return y
    x = np.maximum(x, _EXP_MIN)  # new array; -inf -> -103
    np.minimum(x, _EXP_MAX, out=x)
    k = x * _LOG2E
    np.rint(k, out=k)  # k = round(x / ln 2), a float
    r = k * _LN2_HI
    np.subtract(x, r, out=r)
    x = k * _LN2_LO  # reuse: x no longer needed
    r -= x  # r = x - k ln 2,  |r| <= 0.35
    p = r * _EXP_POLY[0]
    for c in _EXP_POLY[1:]:  # Horner: after the loop p = r P(r)
        p += c
        p *= r
    p *= r  # r^2 P(r)
    p += r
    p += np.float32(1.0)  # e**r
    with np.errstate(invalid="ignore"):  # NaN in, NaN out (p is NaN already)
        e = k.astype(np.int32)  # 2**k from its exponent bits: ((k + 127) << 23) as float32; 0 when k < -126
    e += 127
    np.maximum(e, 0, out=e)
    e <<= 23
    p *= e.view(np.float32)
    return p


# ------------------------------------------------------------------------- elementwise backends

ElementwiseBackend = Callable[[str, np.ndarray], Optional[np.ndarray]]
_elementwise: Optional[ElementwiseBackend] = None
ELEMENTWISE_OPS = ("exp", "softmax", "gelu", "silu")


def set_elementwise_backend(fn: Optional[ElementwiseBackend]) -> Optional[ElementwiseBackend]:
    """Route the elementwise hot spots through ``fn(op, x)``; ``None`` restores numpy.  Returns the previous one.

    ``op`` is one of ``ELEMENTWISE_OPS``: ``"exp"`` (this module's ``exp``), ``"softmax"`` (``attention.softmax``
    over the last axis), ``"gelu"`` / ``"silu"`` (``layers.gelu`` / ``layers.silu``); ``x`` is a float32 array
    of at least ``SMALL`` elements, except for ``"softmax"`` (any size).  ``fn`` returns a new float32 array of x's
    shape holding exactly what the numpy code computes, or ``None`` to leave that call to numpy.  From ``SMALL``
    elements on, the numpy code's exp is the polynomial path above (the same operations in the same order give
    the same bits); below, it is ``np.exp`` (the C library's ``expf``): a backend that cannot give its bits
    returns ``None`` for a small softmax.
    """
    global _elementwise
    previous, _elementwise = _elementwise, fn
    return previous


def elementwise_backend() -> Optional[ElementwiseBackend]:
    return _elementwise


def elementwise(op: str, x: np.ndarray) -> Optional[np.ndarray]:
    """The backend's ``op`` of the float32 array ``x``, or ``None``: no backend, fewer than SMALL elements (where
    ``exp`` is ``np.exp``; only the softmax, a short sentence's attention, is offered to the backend there: it
    gives np.exp's bits or declines), or the backend declined."""
    if _elementwise is None or (x.size < SMALL and op != "softmax"):
        return None
    return _elementwise(op, x)


NormBackend = Callable[[np.ndarray, np.ndarray, np.ndarray, float], Optional[np.ndarray]]
_norm: Optional[NormBackend] = None


def set_layer_norm_backend(fn: Optional[NormBackend]) -> Optional[NormBackend]:
    """Route ``layers.layer_norm`` through ``fn(x, weight, bias, eps)`` (x float32 (..., d), weight and bias float32
    (d,)); ``None`` restores numpy.  ``fn`` returns a new float32 array holding exactly what the numpy code computes
    (the same passes in the same order: the same bits), or ``None`` to leave that call to numpy.  Returns the
    previous one.  (No size threshold, unlike ``elementwise``: a LayerNorm has no exp.)"""
    global _norm
    previous, _norm = _norm, fn
    return previous


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> Optional[np.ndarray]:
    """The backend's LayerNorm of the float32 array ``x``, or ``None`` (no backend, or it declined)."""
    return None if _norm is None else _norm(x, weight, bias, eps)


# ------------------------------------------------------------------------------------- x @ W^T

_TRANSPOSED: Dict[int, Tuple["weakref.ref", np.ndarray]] = {}


def transposed(weight: np.ndarray) -> np.ndarray:
    """A contiguous float32 copy of ``weight.T``, made once per weight array (forgotten with the array)."""
    key = id(weight)
    hit = _TRANSPOSED.get(key)
    if hit is not None and hit[0]() is weight:
        return hit[1]
    wt = np.ascontiguousarray(weight.T, dtype=np.float32)
    try:
        ref = weakref.ref(weight, lambda _r, key=key: _TRANSPOSED.pop(key, None))
    except TypeError:  # not weak-referenceable: do not cache
        return wt
    _TRANSPOSED[key] = (ref, wt)
    return wt


MatmulBackend = Callable[[np.ndarray, np.ndarray], Optional[np.ndarray]]
_backend: Optional[MatmulBackend] = None


def set_matmul_backend(fn: Optional[MatmulBackend]) -> Optional[MatmulBackend]:
    """Route ``matmul_t`` through ``fn(x, weight)`` (x float32 (n, in), weight (out, in)); ``None`` restores numpy.

    ``fn`` returns the (n, out) float32 product, or ``None`` to leave that call to numpy (e.g. a shape it does not
    handle, or too small to be worth it).  Returns the previous backend.
    """
    global _backend
    previous, _backend = _backend, fn
    return previous


def matmul_backend() -> Optional[MatmulBackend]:
    return _backend


def matmul_t(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x @ weight.T for x (n, in) and weight (out, in) in float32: (n, out)."""
    x = np.asarray(x, dtype=np.float32)
    if _backend is not None:
        y = _backend(x, weight)
        if y is not None:
            return y
    return np.einsum("ij,jk->ik", x, transposed(weight))


# ------------------------------------------------------------------------ stacks of products (per head)

LONG = 192  # from this many tokens on, the einsum forms below beat np.matmul (~1.4x at 256-512 tokens)


BatchedBackend = Callable[[np.ndarray, np.ndarray], Optional[np.ndarray]]
_batched_backend: Optional[BatchedBackend] = None


def set_batched_matmul_backend(fn: Optional[BatchedBackend]) -> Optional[BatchedBackend]:
    """Route ``batched_matmul`` through ``fn(a, b)`` (float32 stacks); ``None`` from it, or no backend: numpy.
    Returns the previous backend."""
    global _batched_backend
    previous, _batched_backend = _batched_backend, fn
    return previous


def batched_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for stacks: (h, n, m) @ (h, m, p) -> (h, n, p), float32.

    np.matmul's loop (no BLAS) accumulates through memory; for long sentences einsum's multiply-add loop
    over a long contiguous output row is faster: along p when p is long (Q K^T), else along n on the
    transposed product (b^T a^T)^T (probs @ V, whose p = d_k is short).  The result may be a transposed view.
    """
    if _batched_backend is not None:
        y = _batched_backend(a, b)
        if y is not None:
            return y
    h, n, _ = a.shape
    p = b.shape[2]
    if p >= LONG:
        return np.einsum("hnm,hmp->hnp", a, np.ascontiguousarray(b))  # (h, n, p)
    if n >= LONG:
        bt = np.ascontiguousarray(b.transpose(0, 2, 1))  # (h, p, m)
        at = np.ascontiguousarray(a.transpose(0, 2, 1))  # (h, m, n)
        return np.einsum("hpm,hmn->hpn", bt, at).transpose(0, 2, 1)  # (h, n, p)
    return np.matmul(a, b)
