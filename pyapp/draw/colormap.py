"""Colour maps as 256-entry RGBA lookup tables, and value -> colour mapping by one LUT gather.

* ``VIRIDIS`` (perceptually uniform, sequential) colours attention weights. It is computed from the
  published 6th-order polynomial fit of matplotlib's viridis (error below 1 % per channel), so no
  matplotlib is needed at run time.
* ``DIVERGING`` (ColorBrewer RdBu, reversed: blue < 0 < red, white at 0) colours signed numbers
  (embeddings, Q, K, V, raw scores).
* ``MASKED_RGBA`` is the flat light grey of causally masked cells: not a viridis colour (viridis has no
  greys), so "masked" never looks like "weight 0" (dark purple).

Colour mapping is ``np.take(lut, index, axis=0)`` on a uint8 index image: no per-cell Python.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

_VIRIDIS_POLY = np.array([
    [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
    [0.1050930431085774, 1.404613529898575, 1.384590162594685],
    [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
    [-4.634230498983486, -5.799100973351585, -19.33244095627987],
    [6.228269936347081, 14.17993336680509, 56.69055260068105],
    [4.776384997670288, -13.74514537774601, -65.35303263337234],
    [-5.435455855934631, 4.645852612178535, 26.3124352495832],
])

_RDBU = ["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
         "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f"]

MASKED_RGBA = np.array([205, 205, 205, 255], dtype=np.uint8)
MASKED_HEX = "#cdcdcd"


def _viridis_lut() -> np.ndarray:
    t = np.linspace(0.0, 1.0, 256)[:, None]
    rgb = np.zeros((256, 3))
    for c in _VIRIDIS_POLY[::-1]:  # Horner
        rgb = rgb * t + c[None, :]
    return _rgba(rgb)


def _rgba(rgb: np.ndarray) -> np.ndarray:
    lut = np.empty((rgb.shape[0], 4), dtype=np.uint8)
    lut[:, :3] = np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)
    lut[:, 3] = 255
    return lut


def _interpolated_lut(hexes) -> np.ndarray:
    anchors = np.array([[int(h[i:i + 2], 16) / 255.0 for i in (1, 3, 5)] for h in hexes])
    pos = np.linspace(0.0, 1.0, len(hexes))
    t = np.linspace(0.0, 1.0, 256)
    rgb = np.stack([np.interp(t, pos, anchors[:, c]) for c in range(3)], axis=1)
    return _rgba(rgb)


VIRIDIS = _viridis_lut()        # (256, 4) uint8
DIVERGING = _interpolated_lut(_RDBU)  # (256, 4) uint8; index 128 is ~white (value 0)


def hex_color(lut: np.ndarray, i: int) -> str:
    r, g, b = (int(v) for v in lut[int(i), :3])
    return "#%02x%02x%02x" % (r, g, b)


def to_index(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Values mapped linearly to LUT indices 0..255 (uint8); vmin -> 0, vmax -> 255 exactly."""
    span = float(vmax) - float(vmin)
    if not np.isfinite(span) or span <= 0:
        span = 1.0
    t = np.asarray(values, dtype=np.float32) - np.float32(vmin)  # a new array: the steps below are in place
    t *= np.float32(255.0 / span)
    if not np.isfinite(t).all():  # rare (masked -inf, NaN): one extra pass
        t = np.nan_to_num(t, nan=0.0, posinf=255.0, neginf=0.0)  # numpy >= 1.17
    np.clip(t, 0, 255, out=t)
    np.rint(t, out=t)
    return t.astype(np.uint8)


def colorize(values: np.ndarray, lut: np.ndarray, vmin: float, vmax: float,
             mask: Optional[np.ndarray] = None) -> np.ndarray:
    """(r, c) values -> (r, c, 4) uint8 RGBA by one LUT gather; `mask` (bool) cells get MASKED_RGBA.

    The gather moves one uint32 per pixel (the LUT viewed as 256 packed RGBA words), not four bytes.
    """
    idx = to_index(values, vmin, vmax)
    packed = np.ascontiguousarray(lut, dtype=np.uint8).view(np.uint32).reshape(-1)  # (256,) RGBA words
    rgba = packed.take(idx).view(np.uint8).reshape(idx.shape + (4,))
    if mask is not None and mask.any():
        rgba[mask] = MASKED_RGBA
    return rgba


def weight_colors(values: np.ndarray, vmax: float, mask: Optional[np.ndarray] = None) -> np.ndarray:
    """Attention weights (0..vmax) in viridis: the strongest shown cell gets the top colour VIRIDIS[255]."""
    return colorize(values, VIRIDIS, 0.0, vmax, mask)


def signed_colors(values: np.ndarray, limit: Optional[float] = None) -> np.ndarray:
    """Signed values in the diverging map, symmetric about 0 (limit = max |value| unless given)."""
    vals = np.asarray(values, dtype=np.float32)
    if limit is None:
        finite = vals[np.isfinite(vals)]
        limit = float(np.abs(finite).max()) if finite.size else 1.0
    limit = limit if limit > 0 else 1.0
    return colorize(vals, DIVERGING, -limit, limit)


def legend_image(lut: np.ndarray, vertical: bool = True) -> np.ndarray:
    """The LUT as an image, top (or right) = index 255."""
    img = lut[::-1][:, None, :] if vertical else lut[None, :, :]
    return np.ascontiguousarray(img)
