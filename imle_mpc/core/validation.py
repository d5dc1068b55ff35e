"""Input checks shared by configs and hot-path entry points.

Every error names what was wrong and how to fix it, because the person reading
it is usually in the middle of wiring a robot, not reading our source.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from numba.core.errors import TypingError
from numpy.typing import ArrayLike, NDArray

from imle_mpc.core.kernels.compare import all_finite

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
    if not all_finite(arr):
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
    if x.shape != (nx,) or not all_finite(x):
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
    name: str, low: ArrayLike, high: ArrayLike, size: int
) -> tuple[FloatArray, FloatArray]:
    """Validate a (low, high) box of length ``size``: no NaN, low <= high.

    -inf / +inf mean "no bound" on that side; NaN is refused (every comparison
    with it is false, so clipping to it would pass NaN actions through).
    """
    lo = as_float_vector(f"{name} low", low, size)
    hi = as_float_vector(f"{name} high", high, size)
    for side, arr in (("low", lo), ("high", hi)):
        bad = np.flatnonzero(np.isnan(arr)).tolist()
        if bad:
            raise ValueError(
                f"{name}: {side} is NaN at indices {bad} ({arr}). Give a number for every "
                "entry (-inf / +inf for no bound on that side)."
            )
    if np.any(lo == np.inf) or np.any(hi == -np.inf):
        raise ValueError(
            f"{name}: low must be < +inf and high > -inf (no action fits such a box), got "
            f"low={lo}, high={hi}."
        )
    if np.any(lo > hi):
        raise ValueError(f"{name}: low must be <= high elementwise, got low={lo}, high={hi}.")
    return lo, hi


def check_plan(name: str, plan: ArrayLike, shape: tuple[int, int]) -> FloatArray:
    """Validate a plan (warm start) of Shape=(H, nu): right shape, every entry finite.

    A single NaN would spread through the proposals around it into every
    returned action, silently, until the planner is reset.
    """
    arr = np.asarray(plan, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f"{name} must have Shape={shape}, got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        bad = [tuple(int(i) for i in ix) for ix in np.argwhere(~np.isfinite(arr))]
        raise ValueError(
            f"{name} contains NaN/inf at (step, action) entries {bad[:10]}"
            f"{' ...' if len(bad) > 10 else ''}. A plan must be finite: replace those entries "
            "(e.g. with the neutral action) before passing it."
        )
    return np.ascontiguousarray(arr)


def states_buffer(out: FloatArray | None, shape: tuple[int, int, int]) -> FloatArray:
    """A rollout's result array: ``out`` checked against ``shape`` (float64), or a new one."""
    if out is None:
        return np.empty(shape)
    if out.shape != shape or out.dtype != np.float64:
        raise ValueError(
            f"out must be a float64 array of shape {shape}, got {out.dtype} {out.shape}."
        )
    return out


@contextmanager
def user_numba_function(expected: str) -> Iterator[None]:
    """Turn Numba's typing dump for a user's function into a short ``TypeError``.

    Args:
        expected: what the function should have been, e.g. ``"StageCost: stage must be
            @njit stage(x (nx,), u (nu,), t, params) -> float"``.

    Raises:
        TypeError: ``expected``, then the gist of Numba's complaint (its first lines).
    """
    try:
        yield
    except TypingError as err:
        raise numba_typing_error(expected, err) from None


def numba_typing_error(expected: str, err: Exception) -> TypeError:
    """``user_numba_function``'s short ``TypeError`` for a caught ``TypingError`` ``err``
    (for a hot loop, where a ``try`` costs nothing and a context manager ~1.5 us a call)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    # Numba's first line names its pipeline step, later ones its internals: skip those.
    useful = [ln for ln in lines if not ln.startswith(("Failed in", "During:"))]
    gist = " ".join(useful[:2])
    gist = gist if len(gist) <= 300 else gist[:297] + "..."
    return TypeError(f"{expected}. Numba could not compile it: {gist}")
