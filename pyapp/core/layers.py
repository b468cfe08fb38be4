"""The per-token functions of the blocks: norms and activations, float32, no scipy.

    LayerNorm(x) = (x - mean) / sqrt(var + eps) * w + b        # BERT, DistilBERT, GPT-2
    RMSNorm(x)   = x / sqrt(mean(x^2) + eps) * w               # Llama
    GELU(x)      = x Phi(x)   (exact erf form: BERT;  tanh form "gelu_new": GPT-2)
    SiLU(x)      = x sigmoid(x)                             # Llama's SwiGLU gate
"""

from __future__ import annotations

import numpy as np

from . import numerics


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis, float32 like torch: (x - mean) / sqrt(var + eps) * weight + bias."""
    x = np.asarray(x, dtype=np.float32)
    fast = numerics.layer_norm(x, weight, bias, eps)  # a backend's kernel (the browser's WebAssembly SIMD), same bits
    if fast is not None:
        return fast
    d = np.float32(x.shape[-1])
    # x.mean(axis=-1) without ndarray.mean's Python wrapper (~0.1 ms a call in Pyodide): the same float32
    # pairwise sum divided by d, the same bits
    centred = x - np.add.reduce(x, axis=-1, keepdims=True) / d  # (n, d)
    var = np.einsum("...i,...i->...", centred, centred)[..., None] / d  # (n, 1)
    centred *= 1.0 / np.sqrt(var + np.float32(eps))
    centred *= weight
    centred += bias
    return centred


_INV_SQRT2 = np.float32(1.0 / np.sqrt(2.0))
_ERFC_POLY = (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418,
              0.37409196, 1.00002368, -1.26551223)  # Numerical Recipes erfc Chebyshev fit, highest first


def erfc_abs(z: np.ndarray) -> np.ndarray:
    """erfc(|z|) by the Numerical Recipes Chebyshev fit (|error| < 1.2e-7), in z's float dtype.

    float64 in -> float64 (np.exp); float32 in -> float32 throughout (``numerics.exp``: the fast path).
    """
    z = np.asarray(z)
    dt = np.float32 if z.dtype == np.float32 else np.float64
    z = np.abs(z.astype(dt, copy=False))
    t = dt(1.0) / (dt(1.0) + dt(0.5) * z)
    acc = np.full_like(t, dt(_ERFC_POLY[0]))
    for c in _ERFC_POLY[1:]:  # Horner: acc = P(t)
        acc *= t
        acc += dt(c)
    acc -= z * z  # -z^2 + P(t)
    acc = numerics.exp(acc) if dt is np.float32 else np.exp(acc)
    acc *= t
    return acc


def erf(x: np.ndarray) -> np.ndarray:
    """erf without scipy (numpy has none): 1 - erfc(|x|), odd.  |error| < 1.2e-7 in float64."""
    x = np.asarray(x)
    e = erfc_abs(x)
    return np.where(x >= 0, 1.0 - e, e - 1.0).astype(e.dtype)


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), the exact form BERT uses, in float32.

    Phi(x) = 1 - erfc(|x| / sqrt 2) / 2 for x >= 0 and erfc(|x| / sqrt 2) / 2 for x < 0 (no cancellation).
    """
    x = np.asarray(x, dtype=np.float32)
    fast = numerics.elementwise("gelu", x)  # a backend's kernel (the browser's WebAssembly SIMD), same bits
    if fast is not None:
        return fast
    half = erfc_abs(x * _INV_SQRT2)
    half *= np.float32(0.5)  # erfc(|x| / sqrt 2) / 2
    phi = np.where(x >= 0, np.float32(1.0) - half, half)  # (n, d_ff)  Phi(x)
    phi *= x
    return phi


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    """RMSNorm over the last axis, float32 like HF Llama: x / sqrt(mean(x^2) + eps) * weight."""
    x = np.asarray(x, dtype=np.float32)
    ms = np.einsum("...i,...i->...", x, x)[..., None] / np.float32(x.shape[-1])  # (n, 1)  mean of squares
    return (x * (1.0 / np.sqrt(ms + np.float32(eps)))) * weight  # (n, d)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GPT-2's "gelu_new": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), float32."""
    x = np.asarray(x, dtype=np.float32)
    inner = np.float32(np.sqrt(2.0 / np.pi)) * (x + np.float32(0.044715) * x * x * x)  # (n, d_ff)
    return np.float32(0.5) * x * (np.float32(1.0) + np.tanh(inner))


def silu(x: np.ndarray) -> np.ndarray:
    """SiLU(x) = x sigmoid(x), float32.  sigmoid from e = e^-|x| <= 1 (no overflow): 1/(1+e) for x >= 0,
    e/(1+e) for x < 0."""
    x = np.asarray(x, dtype=np.float32)
    fast = numerics.elementwise("silu", x)
    if fast is not None:
        return fast
    e = numerics.exp(-np.abs(x))  # (n, d_ff)  in (0, 1]
    sig = np.where(x >= 0, np.float32(1.0), e) / (np.float32(1.0) + e)  # (n, d_ff)  sigmoid(x)
    return x * sig
