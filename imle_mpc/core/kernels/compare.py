"""Batches compared: exactly (result caches), and by squared distance to a reference plan.

``np.array_equal(a, b)`` compares every entry into a temporary boolean array and then
reduces it, also when the first entries differ. A cache keyed on a planner's batch (the
clearance the cost term and the hard constraint both ask for) misses on every new batch
and hits once per step: measured on the Panda (256 x 17 x 7 configurations), one thread,
``np.array_equal`` 29 us on a miss, 38 us on a hit; ``same_values`` 0.6 us and 26 us.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["all_finite", "key_copy", "same_values", "squared_distance_to_plan"]


@nb.njit(cache=True)
def _same_values_3d(a, b):  # pragma: no cover - compiled
    K, T, n = a.shape
    for k in range(K):
        for t in range(T):
            for i in range(n):
                if a[k, t, i] != b[k, t, i]:  # NaN != NaN: never equal, as np.array_equal
                    return False
    return True


def same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether float arrays ``a`` and ``b`` (any strides) have the same shape and equal
    entries; NaN counts as different, as in ``np.array_equal``. Shape=(K, T, n) runs the
    early-exit kernel, other shapes ``np.array_equal``."""
    if a.shape != b.shape:
        return False
    if a.ndim != 3:
        return bool(np.array_equal(a, b))
    return bool(_same_values_3d(a, b))


@nb.njit(cache=True)
def _copy_3d(a, out):  # pragma: no cover - compiled
    K, T, n = a.shape
    for k in range(K):
        for t in range(T):
            for i in range(n):
                out[k, t, i] = a[k, t, i]


def key_copy(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` (any strides): a cache's key for ``same_values``.

    For the Panda's configurations, a (256, 17, 7) view of the (256, 17, 14) states,
    NumPy's strided copy runs its inner loop once per 7 numbers: 31 us, this loop 21-24 us
    (the allocation included; one thread, medians).
    Float64 arrays of three axes take the loop, anything else ``np.array(a, order="C")``.
    """
    if a.ndim != 3 or a.dtype != np.float64:
        return np.array(a, order="C")
    out = np.empty(a.shape)
    _copy_3d(a, out)
    return out


@nb.njit(cache=True)
def squared_distance_to_plan(U, plan, steps, out):  # pragma: no cover - compiled
    """``out[k] = sum_{t < steps} sum_j (U[k, t, j] - plan[t, j])^2``, in that order.

    IMLE-MPC's consistency term. NumPy's ``einsum`` on the difference (a temporary)
    took 46 us a Panda step (K = 256, 8 of 16 steps, nu = 7); this loop about 10 us.

    Args:
        U: Shape=(K, H, nu); plan: Shape=(>= steps, nu); steps: <= H; out: Shape=(K,).
    """
    K, _, nu = U.shape
    for k in range(K):
        acc = 0.0
        for t in range(steps):
            for j in range(nu):
                d = U[k, t, j] - plan[t, j]
                acc += d * d
        out[k] = acc


@nb.njit(cache=True)
def _all_finite_flat(flat):  # pragma: no cover - compiled
    for i in range(flat.shape[0]):
        v = flat[i]
        if v - v != 0.0:  # NaN for NaN and for +-inf, 0 for every finite value
            return False
    return True


def all_finite(arr: np.ndarray) -> bool:
    """``bool(np.all(np.isfinite(arr)))`` for a float64 array, without the temporary.

    NumPy's pair (an elementwise pass into a boolean array, then a reduction) costs
    ~3 us on a state or one plan; a control step asks about a dozen times (the
    measurement, the plan, the guard's check). C-contiguous float64 arrays go through
    one compiled loop, anything else through NumPy.
    """
    if arr.dtype != np.float64 or not arr.flags.c_contiguous:
        return bool(np.all(np.isfinite(arr)))
    return bool(_all_finite_flat(arr.reshape(-1)))
