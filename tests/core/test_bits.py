"""``core.kernels.bits``: a float64's bit pattern and back, compiled and as plain Python."""

from __future__ import annotations

import numba as nb
import numpy as np

from imle_mpc.core.kernels.bits import bits_as_float, float_as_bits

VALUES = np.array([0.0, -0.0, 5e-324, 1.0, -1.0, 2.5e300, np.inf, -np.inf, np.nan])


# not cached: Numba keys its cache on this file alone, and the intrinsics live in another
@nb.njit
def _round_trip(values, bits, back):  # pragma: no cover - compiled
    for i in range(values.shape[0]):
        bits[i] = float_as_bits(values[i])
        back[i] = bits_as_float(bits[i])


def test_the_patterns_are_numpys_view_and_come_back_unchanged() -> None:
    bits, back = np.empty(VALUES.size, np.int64), np.empty(VALUES.size)
    _round_trip(VALUES, bits, back)
    assert np.array_equal(bits, VALUES.view(np.int64))
    assert np.array_equal(back.view(np.int64), VALUES.view(np.int64))  # -0.0 and NaN too


def test_non_negative_numbers_order_as_their_patterns_and_negatives_fall_below_zero() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.random(1000) * 10.0 ** rng.integers(-300, 300, 1000), [0.0, np.inf]])
    bits = np.empty(x.size, np.int64)
    _round_trip(x, bits, np.empty(x.size))
    assert np.array_equal(np.argsort(bits, kind="stable"), np.argsort(x, kind="stable"))
    negative = np.empty(3, np.int64)
    _round_trip(np.array([-0.0, -5e-324, -np.inf]), negative, np.empty(3))
    assert (negative < 0).all()  # what the box excess's integer maximum relies on
