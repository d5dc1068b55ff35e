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


BLOCK = 8
"""Samples a kernel rolls out in lockstep. One pendulum step is a chain of a
``sin`` and two divisions that the next step waits on; eight independent chains
keep the CPU busy. Measured at K=1000, H=30, one thread: 0.82 ms -> 0.44 ms."""

_INLINE_CACHE: dict[Any, Any] = {}


def _require_njit(fn: Any, name: str, hint: str = "") -> None:
    """Raise unless ``fn`` is a Numba ``@njit`` function (any function with JIT disabled)."""
    if getattr(nb.config, "DISABLE_JIT", False) and callable(fn):
        return  # NUMBA_DISABLE_JIT=1: @njit returns plain functions; run them as Python.
    if not hasattr(fn, "py_func"):
        raise TypeError(
            f"{name} must be a numba @njit function, got {type(fn).__name__}: decorate it "
            f"with @numba.njit. {hint}".rstrip()
        )


def inline_copy(fn: Any) -> Any:
    """A copy of an ``@njit`` function that Numba inlines into the kernels that call it.

    A call through Numba's calling convention passes every array as seven
    fields; for a ten-flop step that costs about as much as the step itself
    (measured: a pendulum rollout 1.6 ms -> 1.2 ms at K=1000, H=30, one thread).
    The copy keeps the original's ``fastmath`` and ``error_model``. Plain
    Python functions (``NUMBA_DISABLE_JIT=1``) are returned as they are.
    """
    if not hasattr(fn, "py_func"):
        return fn
    if fn not in _INLINE_CACHE:
        keep = {k: v for k, v in fn.targetoptions.items() if k in ("fastmath", "error_model")}
        _INLINE_CACHE[fn] = nb.njit(inline="always", **keep)(fn.py_func)
    return _INLINE_CACHE[fn]


def make_rollout_kernel(step: Any, multi_start: bool = False) -> Any:
    """Build ``rollout(x0, U, params, X)`` from a single-step ``@njit`` function.

    The kernel writes ``X[k, 0] = x0`` and ``X[k, t+1] = step(X[k, t], U[k, t])``
    for every sample ``k`` in parallel.

    Args:
        step: ``@njit`` function ``step(x, u, params, out)`` that writes the next
            state into ``out``. It must not allocate in the hot path if you care
            about speed, and must not write into ``x``.
        multi_start: every sample starts from its own state: ``x0`` is
            Shape=(K, nx) and ``X[k, 0] = x0[k]`` (continuations from the ends
            of K rollouts, for instance).

    Returns:
        A compiled-on-first-call kernel ``rollout(x0 Shape=(nx,) or (K, nx),
        U Shape=(K, H, nu), params Shape=(p,), X Shape=(K, H+1, nx)) -> None``.
    """
    _require_njit(step, "step", "Decorate it with @numba.njit (write the next state into `out`).")
    step_fn = inline_copy(step)

    # error_model="numpy": a division by zero gives inf/NaN (an infinite cost
    # downstream) instead of raising, and without the exception branches Numba
    # drops the reference counting of the per-step views.
    @nb.njit(parallel=True, fastmath=False, error_model="numpy")
    def advance(U, params, X):  # pragma: no cover - compiled
        """X[k, t+1] = step(X[k, t], U[k, t]) from the filled-in X[:, 0]."""
        K, H, _ = U.shape
        # Blocks of BLOCK samples advance in lockstep, so their step-to-step
        # dependency chains overlap in the CPU (see kernels.fused).
        for b in nb.prange((K + BLOCK - 1) // BLOCK):
            k0 = b * BLOCK
            k1 = min(k0 + BLOCK, K)
            for t in range(H):
                for k in range(k0, k1):
                    step_fn(X[k, t], U[k, t], params, X[k, t + 1])

    # The first states are copied by loops under a check with a fixed message: a slice
    # assignment (`X[k, 0, :] = x0`) made Numba compile its shape-formatting error path,
    # 1.5-2.4 s of every process's first rollout (this kernel is a closure: not cached).
    @nb.njit(error_model="numpy")
    def rollout(x0, U, params, X):  # pragma: no cover - compiled
        if x0.shape[0] != X.shape[2] or X.shape[0] != U.shape[0]:
            raise ValueError("rollout: x0 (nx,), U (K, H, nu) and X (K, H+1, nx) disagree")
        for k in range(U.shape[0]):
            for i in range(x0.shape[0]):
                X[k, 0, i] = x0[i]
        advance(U, params, X)

    @nb.njit(error_model="numpy")
    def rollout_multi_start(x0, U, params, X):  # pragma: no cover - compiled
        if x0.shape[0] != X.shape[0] or x0.shape[1] != X.shape[2] or X.shape[0] != U.shape[0]:
            raise ValueError("rollout: x0 (K, nx), U (K, H, nu) and X (K, H+1, nx) disagree")
        for k in range(x0.shape[0]):
            for i in range(x0.shape[1]):
                X[k, 0, i] = x0[k, i]
        advance(U, params, X)

    return rollout_multi_start if multi_start else rollout


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
    _require_njit(stage, "stage")
    if terminal is not None:
        _require_njit(terminal, "terminal")
    stage_fn = inline_copy(stage)
    final = inline_copy(terminal) if terminal is not None else _zero_terminal

    @nb.njit(parallel=True, error_model="numpy")
    def cost(X, U, params, out):  # pragma: no cover - compiled
        K, H, _ = U.shape
        for k in nb.prange(K):
            acc = 0.0
            for t in range(H):
                acc += stage_fn(X[k, t + 1], U[k, t], t, params)
            out[k] = acc + final(X[k, H], params)

    return cost
