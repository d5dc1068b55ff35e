"""``sin`` and ``cos`` written so that LLVM vectorises a loop of them (no libm call).

Numba calls libm for ``np.sin`` / ``np.cos`` one value at a time (no SVML here), about
17 ns a pair on the development machine: in the batched forward kinematics of the
arm's clearance check (14 a configuration) that was half of the kernel. These are
branch-free arithmetic, so a loop over lanes becomes packed instructions.

Method (fdlibm's, facts not code): reduce by ``n = rint(x * 2 / pi)`` in three parts of
pi / 2 (Cody-Waite; exact products for ``|n| < 2^20``), evaluate fdlibm's minimax
polynomials of ``sin`` and ``cos`` on ``[-pi/4, pi/4]`` and pick by the quadrant
``n mod 4``. Within 1.2e-16 of libm for ``|x| <= REDUCTION_LIMIT``, and away from the
zeros within 1 ulp up to 100 rad, 2 ulp beyond (tested); past the limit the caller
falls back to libm (``needs_libm``). NaN and inf give NaN, as libm.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["REDUCTION_LIMIT", "needs_libm", "sincos"]

REDUCTION_LIMIT = 1.0e5
"""Largest ``|x|`` the three-part reduction is accurate for here (far above any joint angle)."""

_TWO_OVER_PI = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e00  # the first 33 bits of pi/2
_PIO2_2 = 6.07710050630396597660e-11  # the next 33 bits
_PIO2_3 = 2.02226624871116645580e-21  # the next 33 bits
_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10
_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11


@nb.njit(inline="always", error_model="numpy")
def sincos(x):  # pragma: no cover - compiled
    """``(sin(x), cos(x))`` for ``|x| <= REDUCTION_LIMIT`` (see the module docstring)."""
    n = np.rint(x * _TWO_OVER_PI)
    y = ((x - n * _PIO2_1) - n * _PIO2_2) - n * _PIO2_3
    z = y * y
    v = z * y
    ks = y + v * (_S1 + z * (_S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))))
    r = z * (_C1 + z * (_C2 + z * (_C3 + z * (_C4 + z * (_C5 + z * _C6)))))
    hz = 0.5 * z
    w = 1.0 - hz
    kc = w + (((1.0 - w) - hz) + z * r)
    q = n - 4.0 * np.floor(n * 0.25)  # the quadrant, 0..3, as a float
    odd = (q == 1.0) | (q == 3.0)
    s = kc if odd else ks
    c = ks if odd else kc
    if q >= 2.0:
        s = -s
    if q == 1.0 or q == 2.0:
        c = -c
    return s, c


@nb.njit(inline="always")
def needs_libm(x):  # pragma: no cover - compiled
    """True where ``sincos`` is not accurate: ``|x| > REDUCTION_LIMIT`` (NaN: False)."""
    return abs(x) > REDUCTION_LIMIT
