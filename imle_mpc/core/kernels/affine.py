"""Affine maps per entry, one pass each: chunks back to action units, observations in.

``scale_and_shift``: ``float64(y) * scale + shift`` per action entry.

A generator's network gives normalised float32 chunks; NumPy's ``y * half + centre`` into a
float64 array goes through a mixed-type broadcast and a second pass (37 us for the Panda's
127 x 16 x 7 chunks, one thread); this loop 7-11 us, the same numbers (the same cast,
multiply and add per entry).

``shift_scale_to_float32``: a model's condition rows, ``float32((x - centre) * scale)``
with a finiteness check, where NumPy's five steps (``isfinite``, ``all``, subtract,
multiply, ``astype``) took ~10 us for one 4 x 7 history; the same operations per entry.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["scale_and_shift", "shift_scale_to_float32"]


@nb.njit(cache=True)
def scale_and_shift(y, scale, shift, out):  # pragma: no cover - compiled
    """``out[r, t, j] = float64(y[r, t, j]) * scale[j] + shift[j]``.

    Args:
        y: Shape=(R, H, nu), float32 or float64.
        scale, shift: Shape=(nu,), float64.
        out: Shape=(R, H, nu), float64, written in place.
    """
    R, H, nu = out.shape
    for r in range(R):
        for t in range(H):
            for j in range(nu):
                out[r, t, j] = float(y[r, t, j]) * scale[j] + shift[j]


@nb.njit(cache=True)
def shift_scale_to_float32(x, center, scale, out):  # pragma: no cover - compiled
    """``out[r, i] = float32((x[r, i] - center[i % d]) * scale[i % d])``; False if x has NaN/inf.

    Args:
        x: Shape=(R, n), float64, C-contiguous rows of ``n // d`` vectors of ``d`` entries.
        center, scale: Shape=(d,), float64.
        out: Shape=(R, n), float32, written in place (also where x is not finite).

    Returns:
        Whether every entry of ``x`` is finite.
    """
    R, n = x.shape
    d = center.shape[0]
    finite = True
    for r in range(R):
        for i in range(n):
            v = x[r, i]
            if not np.isfinite(v):
                finite = False
            j = i % d
            out[r, i] = np.float32((v - center[j]) * scale[j])
    return finite
