"""The vectorisable sin / cos of the kinematics kernels: libm's values, libm's special cases."""

from __future__ import annotations

import numba as nb
import numpy as np

from imle_mpc.core.kernels.trig import REDUCTION_LIMIT, needs_libm, sincos


@nb.njit
def _sincos_all(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.empty_like(x)
    c = np.empty_like(x)
    for i in range(x.shape[0]):
        s[i], c[i] = sincos(x[i])
    return s, c


def test_sincos_is_libm_to_the_last_bits() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.uniform(-4.0, 4.0, 200_000),  # joint angles
        rng.uniform(-REDUCTION_LIMIT, REDUCTION_LIMIT, 200_000),
        np.arange(-400, 401) * (np.pi / 4),  # the quadrant boundaries
        [0.0, -0.0, 1e-300, 5e-324, REDUCTION_LIMIT, -REDUCTION_LIMIT],
    ])  # fmt: skip
    s, c = _sincos_all(x)
    angles = np.abs(x) <= 100.0
    for ours, libm in ((s, np.sin(x)), (c, np.cos(x))):
        np.testing.assert_allclose(ours, libm, rtol=0, atol=1.2e-16)
        ulps = np.abs(ours - libm) / np.spacing(np.abs(libm))
        big = np.abs(libm) > 1e-3  # away from the zeros: 1 ulp up to 100 rad, 2 beyond
        assert ulps[big & angles].max() <= 1.0
        assert ulps[big].max() <= 2.0


def test_non_finite_angles_give_nan_and_the_range_is_stated() -> None:
    s, c = _sincos_all(np.array([np.nan, np.inf, -np.inf]))
    assert np.all(np.isnan(s)) and np.all(np.isnan(c))
    assert not needs_libm(REDUCTION_LIMIT) and needs_libm(2 * REDUCTION_LIMIT)
    assert not needs_libm(np.nan)
