"""Input checks shared by configs and hot-path entry points.

Every error names what was wrong and how to fix it, because the person reading
it is usually in the middle of wiring a robot, not reading our source.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def require_positive(owner: str, field: str, value: float) -> None:
    """Raise if ``value`` is not a finite number > 0."""
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}.{field} must be a finite number > 0, got {value!r}.")


def require_non_negative(owner: str, field: str, value: float) -> None:
    """Raise if ``value`` is not a finite number >= 0."""
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{owner}.{field} must be a finite number >= 0, got {value!r}.")


def require_int_at_least(owner: str, field: str, value: int, minimum: int) -> None:
    """Raise if ``value`` is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}.{field} must be an integer >= {minimum}, got {value!r}.")


def as_float_vector(name: str, value: ArrayLike, size: int) -> FloatArray:
    """Return ``value`` as a C-contiguous float64 vector of length ``size``.

    A scalar is broadcast to the full length, which is what users mean when they
    write ``noise_sigma=0.5`` for a 2-D action.
    """
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(size, float(arr))
    if arr.shape != (size,):
        raise ValueError(
            f"{name} must have shape ({size},) (or be a scalar), got shape {arr.shape}."
        )
    return np.ascontiguousarray(arr)


def check_state(state: ArrayLike, nx: int, who: str = "state") -> FloatArray:
    """Validate a measured state: shape (nx,), finite; return it as float64."""
    arr = np.asarray(state, dtype=np.float64)
    if arr.shape != (nx,):
        raise ValueError(
            f"{who} must have shape ({nx},) to match the dynamics' nx={nx}, got shape "
            f"{arr.shape}. Pass the full state vector, not an observation."
        )
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr)).tolist()
        raise ValueError(
            f"{who} contains NaN/inf at indices {bad}: {arr.tolist()}. Check the state "
            "estimator or sensor driver before planning from it."
        )
    return np.ascontiguousarray(arr)


def valid_measurement(state: object, nx: int) -> FloatArray | None:
    """``state`` as a finite float64 vector Shape=(nx,), or None when it is not one.

    For code that must survive any sensor reading (the safety guard, ``OffsetFree``,
    the unguarded loop): a lost or broken measurement is a value to handle, not an
    error. Use ``check_state`` where bad input is the caller's mistake.
    """
    try:
        x = np.asarray(state, dtype=np.float64)
    except (TypeError, ValueError):  # not numbers at all: a broken sensor driver
        return None
    if x.shape != (nx,) or not np.all(np.isfinite(x)):
        return None
    return np.ascontiguousarray(x)


def check_actions(U: ArrayLike, nu: int, horizon: int | None = None) -> FloatArray:
    """Validate a batch of action sequences ``Shape=(K, H, nu)``; return float64 C-order."""
    arr = np.asarray(U, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != nu or (horizon is not None and arr.shape[1] != horizon):
        want = f"(K, {horizon if horizon is not None else 'H'}, {nu})"
        raise ValueError(
            f"actions must have shape {want}, got {arr.shape}. A single sequence of shape "
            "(H, nu) needs a leading batch axis: U[None]."
        )
    return np.ascontiguousarray(arr)


def check_bounds(
    name: str, low: Sequence[float] | FloatArray, high: Sequence[float] | FloatArray, size: int
) -> tuple[FloatArray, FloatArray]:
    """Validate a (low, high) box of length ``size`` with low <= high."""
    lo = as_float_vector(f"{name} low", low, size)
    hi = as_float_vector(f"{name} high", high, size)
    if np.any(lo > hi):
        raise ValueError(f"{name}: low must be <= high elementwise, got low={lo}, high={hi}.")
    return lo, hi


def states_buffer(out: FloatArray | None, shape: tuple[int, int, int]) -> FloatArray:
    """A rollout's result array: ``out`` checked against ``shape`` (float64), or a new one."""
    if out is None:
        return np.empty(shape)
    if out.shape != shape or out.dtype != np.float64:
        raise ValueError(
            f"out must be a float64 array of shape {shape}, got {out.dtype} {out.shape}."
        )
    return out
