"""The rollout of K action sequences on M models that differ only in their parameters.

A model ensemble of an analytic model (``dynamics.ensemble``) is one step function
and a table of parameter rows, Shape=(M, P): member ``m`` steps with row ``m``. One
parallel pass covers all M x K rollouts (blocks of samples of every member), so the
ensemble is one batch, not M calls and not M Python model objects.
"""

from __future__ import annotations

from typing import Any

import numba as nb

from imle_mpc.core.kernels.rollout import BLOCK, _require_njit, inline_copy

_CACHE: dict[Any, Any] = {}


def make_member_rollout_kernel(step: Any) -> Any:
    """Build ``rollout(x0, U, rows, X)``: ``X[m, k]`` is sample ``k`` rolled out with ``rows[m]``.

    Args:
        step: ``@njit step(x, u, params, out)`` of the model (as ``make_rollout_kernel``).

    Returns:
        A compiled-on-first-call kernel ``rollout(x0 Shape=(nx,), U Shape=(K, H, nu),
        rows Shape=(M, P), X Shape=(M, K, H+1, nx)) -> None``; row ``m`` of ``X`` equals
        the one-model kernel's rollout with ``params = rows[m]`` exactly.
    """
    _require_njit(step, "step", "Decorate it with @numba.njit (write the next state into `out`).")
    if step in _CACHE:
        return _CACHE[step]
    step_fn = inline_copy(step)

    @nb.njit(parallel=True, fastmath=False, error_model="numpy")
    def rollout(x0, U, rows, X):  # pragma: no cover - compiled
        M = rows.shape[0]
        K, H, _ = U.shape
        # a loop copies the start (as kernels.rollout: a slice assignment compiles Numba's
        # shape-formatting error path, seconds for every process), checked once here
        if x0.shape[0] != X.shape[3] or X.shape[0] != M or X.shape[1] != K:
            raise ValueError("member rollout: x0 (nx,), U (K, H, nu), X (M, K, H+1, nx) disagree")
        blocks = (K + BLOCK - 1) // BLOCK
        # One flat loop over (member, block): every member's blocks run in parallel.
        for j in nb.prange(M * blocks):
            m = j // blocks
            k0 = (j % blocks) * BLOCK
            k1 = min(k0 + BLOCK, K)
            params = rows[m]
            Xm = X[m]
            for k in range(k0, k1):
                for i in range(x0.shape[0]):
                    Xm[k, 0, i] = x0[i]
            for t in range(H):
                for k in range(k0, k1):
                    step_fn(Xm[k, t], U[k, t], params, Xm[k, t + 1])

    _CACHE[step] = rollout
    return rollout
