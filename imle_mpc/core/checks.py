"""Conformance checks users run on their own models and costs.

``check_dynamics(model)`` and ``check_cost(term, nx, nu)`` raise
``ConformanceError`` with a message that says what to fix, or return a short
report. The shipped models are tested with the same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from imle_mpc.core.protocols import Dynamics


class ConformanceError(AssertionError):
    """A model or cost breaks the contract the planners rely on."""


def _fail(what: str, fix: str) -> None:
    raise ConformanceError(f"{what} Fix: {fix}")


def _random_actions(dynamics: Dynamics, rng: np.random.Generator, K: int, H: int) -> np.ndarray:
    low = np.asarray(dynamics.action_low, dtype=np.float64)
    high = np.asarray(dynamics.action_high, dtype=np.float64)
    lo = np.where(np.isfinite(low), low, -1.0)
    hi = np.where(np.isfinite(high), high, 1.0)
    return rng.uniform(lo, hi, size=(K, H, dynamics.nu))


def check_dynamics(
    dynamics: Dynamics,
    state: np.ndarray | None = None,
    num_samples: int = 8,
    horizon: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Check a ``Dynamics`` against the contract. Returns a report dict.

    Checked: ``nx``/``nu``/``dt``/bounds; rollout shape, dtype and ``X[:, 0] == x0``;
    determinism; that sample k of a batch equals rolling it out alone (no
    cross-talk between samples); that the inputs are not modified; that a NaN
    action stays confined to its own sample; that wrongly shaped input raises
    ``ValueError``.

    Args:
        dynamics: the model under test.
        state: start state Shape=(nx,); zeros if not given.
        num_samples: batch size K to test with.
        horizon: horizon H to test with.
        seed: seed of the random actions.
    """
    nx, nu = int(dynamics.nx), int(dynamics.nu)
    if nx < 1 or nu < 1:
        _fail(f"nx={nx}, nu={nu}.", "both must be positive integers.")
    if not float(dynamics.dt) > 0:
        _fail(f"dt={dynamics.dt!r}.", "dt is the step length in seconds and must be > 0.")
    for name in ("action_low", "action_high"):
        bound = np.asarray(getattr(dynamics, name))
        if bound.shape != (nu,):
            _fail(f"{name} has shape {bound.shape}.", f"return an array of shape ({nu},).")
    rng = np.random.default_rng(seed)
    x0 = np.zeros(nx) if state is None else np.asarray(state, dtype=np.float64)
    U = _random_actions(dynamics, rng, num_samples, horizon)
    U_before, x_before = U.copy(), x0.copy()
    X = np.asarray(dynamics.rollout(x0, U))
    if X.shape != (num_samples, horizon + 1, nx):
        _fail(
            f"rollout returned shape {X.shape}.",
            f"return Shape=(K, H+1, nx) = {(num_samples, horizon + 1, nx)} with X[:, 0] = x0.",
        )
    # Inputs first: a model that writes into x0 would otherwise be told its X[:, 0] is wrong.
    if not np.array_equal(U, U_before) or not np.array_equal(x0, x_before):
        _fail("rollout modified its inputs.", "never write into x0 or U; copy first.")
    if X.dtype != np.float64:
        _fail(f"rollout returned dtype {X.dtype}.", "return float64 states.")
    if not np.array_equal(X[:, 0], np.broadcast_to(x0, (num_samples, nx))):
        _fail("X[:, 0] differs from x0.", "write the initial state into X[:, 0].")
    if not np.all(np.isfinite(X)):
        _fail("rollout produced NaN/inf from finite inputs.", "check the step function.")
    if not np.array_equal(np.asarray(dynamics.rollout(x0, U)), X):
        _fail("two rollouts of the same input differ.", "make the model deterministic.")
    alone = np.asarray(dynamics.rollout(x0, U[num_samples - 1 :]))
    if not np.allclose(alone[0], X[-1], rtol=1e-12, atol=1e-12):
        _fail(
            "a sample's rollout depends on the other samples in the batch.",
            "keep per-sample work buffers separate.",
        )
    U_nan = U.copy()
    U_nan[0, 0, 0] = np.nan
    X_nan = np.asarray(dynamics.rollout(x0, U_nan))
    if num_samples > 1 and not np.allclose(X_nan[1:], X[1:], rtol=1e-12, atol=1e-12):
        _fail("a NaN action in sample 0 changed other samples.", "keep samples independent.")
    for bad in (np.zeros((num_samples, horizon, nu + 1)), np.zeros((horizon, nu))):
        try:
            dynamics.rollout(x0, bad)
        except ValueError:
            continue
        _fail(
            f"rollout accepted actions of shape {bad.shape}.",
            f"raise ValueError unless U has Shape=(K, H, {nu}).",
        )
    return {
        "nx": nx,
        "nu": nu,
        "dt": float(dynamics.dt),
        "samples": num_samples,
        "horizon": horizon,
        "ok": True,
    }


def check_cost(
    term: Callable[[np.ndarray, np.ndarray], np.ndarray],
    nx: int,
    nu: int,
    num_samples: int = 8,
    horizon: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Check a cost term ``term(X, U) -> (K,)`` on random finite input.

    Checked: output shape (K,) and real dtype; finite for finite input;
    deterministic; inputs not modified; sample k's cost does not depend on the
    other samples.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_samples, horizon + 1, nx))
    U = rng.standard_normal((num_samples, horizon, nu))
    X0, U0 = X.copy(), U.copy()
    c = np.asarray(term(X, U))
    if c.shape != (num_samples,):
        _fail(
            f"cost returned shape {c.shape}.",
            f"return one number per sample, Shape=({num_samples},); sum over time inside.",
        )
    if not np.issubdtype(c.dtype, np.floating):
        _fail(f"cost returned dtype {c.dtype}.", "return floats.")
    if not np.all(np.isfinite(c)):
        _fail("cost is NaN/inf for finite input.", "check the formula.")
    if not np.array_equal(X, X0) or not np.array_equal(U, U0):
        _fail("cost modified its inputs.", "never write into X or U.")
    if not np.array_equal(np.asarray(term(X, U)), c):
        _fail("two evaluations of the same input differ.", "make the cost deterministic.")
    alone = np.asarray(term(X[-1:], U[-1:]))
    if not np.allclose(alone[0], c[-1], rtol=1e-12, atol=1e-12):
        _fail("a sample's cost depends on the other samples.", "compute costs per sample.")
    return {"samples": num_samples, "horizon": horizon, "ok": True}
