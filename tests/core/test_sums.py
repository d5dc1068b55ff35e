"""``core.kernels.sums.numpy_row_sum``: NumPy's pairwise order, to the bit."""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest

from imle_mpc.core.kernels.sums import NUMPY_PAIRWISE_BLOCK, numpy_row_sum


# not cached: Numba keys its cache on this file alone, and the sum is inlined from another
@nb.njit
def _row_sums(a, out):  # pragma: no cover - compiled
    for k in range(a.shape[0]):
        out[k] = numpy_row_sum(a[k], a.shape[1])


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 15, 16, 17, 24, 63, 127, NUMPY_PAIRWISE_BLOCK])
def test_rows_add_up_as_numpys_sum(n: int) -> None:
    rng = np.random.default_rng(n)
    # magnitudes over many decades and both signs: any other order rounds differently
    a = (
        rng.random((2000, n)) ** 3
        * rng.choice([-1.0, 1.0], (2000, n))
        * 10.0 ** rng.integers(-8, 8, (2000, n))
    )
    ours = np.empty(2000)
    _row_sums(a, ours)
    assert np.array_equal(ours.view(np.int64), a.sum(axis=1).view(np.int64))


def test_a_row_of_negative_zeros_sums_to_positive_zero_as_in_numpy() -> None:
    for n in (3, 8, 16):
        ours = np.empty(1)
        _row_sums(np.full((1, n), -0.0), ours)
        assert not np.signbit(ours[0]) and not np.signbit(np.full((1, n), -0.0).sum(axis=1)[0])


def test_nan_and_inf_propagate() -> None:
    a = np.ones((3, 16))
    a[0, 5], a[1, 9], a[2, 3], a[2, 12] = np.nan, np.inf, np.inf, -np.inf
    ours = np.empty(3)
    _row_sums(a, ours)
    with np.errstate(invalid="ignore"):  # inf - inf
        expected = a.sum(axis=1)
    assert np.array_equal(ours, expected, equal_nan=True)
