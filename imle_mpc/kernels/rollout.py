"""Factories that lift a single-step ``@njit`` function to a batched kernel.

A model author writes only ``step(x, u, params, out)`` for ONE state; the
factory turns it into a parallel loop over K samples x H steps. Users never
write ``prange`` themselves, and every model gets the same parallel schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np

StepFunction = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]
"""``step(x (nx,), u (nu,), params (p,), out (nx,)) -> None``, an ``@njit`` function."""


def make_rollout_kernel(step: Any) -> Any:
    """Build ``rollout(x0, U, params, X)`` from a single-step ``@njit`` function.

    The kernel writes ``X[k, 0] = x0`` and ``X[k, t+1] = step(X[k, t], U[k, t])``
    for every sample ``k`` in parallel.

    Args:
        step: ``@njit`` function ``step(x, u, params, out)`` that writes the next
            state into ``out``. It must not allocate in the hot path if you care
            about speed, and must not write into ``x``.

    Returns:
        A compiled-on-first-call kernel ``rollout(x0 Shape=(nx,), U Shape=(K, H, nu),
        params Shape=(p,), X Shape=(K, H+1, nx)) -> None``.
    """
    if not hasattr(step, "py_func"):
        raise TypeError(
            f"step must be a numba @njit function, got {type(step).__name__}. "
            "Decorate it with @numba.njit (write the next state into `out`)."
        )

    @nb.njit(parallel=True, fastmath=False)
    def rollout(x0, U, params, X):  # pragma: no cover - compiled
        K, H, _ = U.shape
        for k in nb.prange(K):
            X[k, 0, :] = x0
            for t in range(H):
                step(X[k, t], U[k, t], params, X[k, t + 1])

    return rollout


@nb.njit
def _zero_terminal(x, params):  # pragma: no cover - compiled
    return 0.0


def make_stage_cost_kernel(stage: Any, terminal: Any | None = None) -> Any:
    """Build ``cost(X, U, params, out)`` from per-step ``@njit`` cost functions.

    ``out[k] = sum_t stage(X[k, t+1], U[k, t], t, params) + terminal(X[k, H], params)``.
    Stage costs are charged on the state an action leads to, the same convention
    as pytorch_mppi's running cost.

    Args:
        stage: ``@njit`` ``stage(x Shape=(nx,), u Shape=(nu,), t, params) -> float``.
        terminal: optional ``@njit`` ``terminal(x Shape=(nx,), params) -> float``.
    """
    for fn, name in ((stage, "stage"), (terminal, "terminal")):
        if fn is not None and not hasattr(fn, "py_func"):
            raise TypeError(f"{name} must be a numba @njit function, got {type(fn).__name__}.")
    final = terminal if terminal is not None else _zero_terminal

    @nb.njit(parallel=True)
    def cost(X, U, params, out):  # pragma: no cover - compiled
        K, H, _ = U.shape
        for k in nb.prange(K):
            acc = 0.0
            for t in range(H):
                acc += stage(X[k, t + 1], U[k, t], t, params)
            out[k] = acc + final(X[k, H], params)

    return cost
