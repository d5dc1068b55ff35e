"""An LQR terminal value from a model and a cost: linearise, quadratise, solve the Riccati equation.

``lqr_terminal_value(model, x_op, u_op, cost=task_cost)`` gives a
``cost.QuadraticTerminalValue``: the cost-to-go, past the planning horizon, of the
model linearised at the operating point (``dynamics.linearize.linearize``) under
the LQR controller, with the stage cost the quadratic model of the task's own
running cost there (``quadratic_cost_model``) or given ``Q`` and ``R``. Add it to
the task's cost (``with_terminal_value``) and every planner, the fused kernel and
the NMPC refiner (its CasADi twin in ``cost.symbolic``) charge it.

Convention. The planners charge step ``t`` on the state it leads to,
``c(x_{t+1}, u_t)`` for ``t = 0..H-1`` (``StateTracking`` runs over X[1..H]). What
is left after the horizon is then ``sum_{t>=H} c(x_{t+1}, u_t)``; with
``c = x'Qx + u'Ru + 2 x'Su`` on the next state and ``x_{t+1} = A x_t + B u_t``
that is a standard LQR in ``(x_t, u_t)`` with ``Q~ = A'QA``,
``R~ = R + B'QB + B'S + S'B`` and ``S~ = A'QB + A'S``, and its ``P~`` is the value
of ``x_H`` exactly (for ``S = 0``, ``P~ = P - Q``: the Riccati ``P`` minus the
``x_H'Qx_H`` the horizon has charged already).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cost.composite import CostSum, Term
from cost.value import QuadraticTerminalValue, lqr_value
from dynamics.linearize import linearize
from imle_mpc.core.actions import neutral_action
from imle_mpc.core.errors import InputError
from imle_mpc.core.protocols import Dynamics
from imle_mpc.core.validation import FloatArray, check_state, require_positive
from planners.sampling import as_cost_sum

CostFn = Callable[[FloatArray, FloatArray], FloatArray]


def quadratic_cost_model(
    cost: CostSum | CostFn, x: ArrayLike, u: ArrayLike, eps: float = 1e-4
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(Q, R, S)``: half the Hessian of one running step of ``cost`` at ``(x, u)``.

    The step is scored as a planner scores step 0 of a plan: the state it leads to
    ``X[:, 1] = x + dx``, its action ``U[:, 0] = u + du``, and after it one more step
    that stays at ``(x, u)`` (so terminal terms see a fixed final state and are left
    out). Central second differences of step ``eps``, every entry pair in ONE
    batched cost call of ``4 n^2`` samples, ``n = nx + nu``; so
    ``c(x + dx, u + du) ~ c + g'(dx, du) + dx'Q dx + du'R du + 2 dx'S du``.

    Args:
        cost: the task's cost, a ``CostSum`` or ``fn(X, U) -> (K,)``.
        x: state, Shape=(nx,). u: action, Shape=(nu,).
        eps: the difference step (> 0); a cost with a kink at ``(x, u)`` (a norm at
            its zero, a hinge) has no Hessian there and gives noise.

    Returns:
        ``Q`` Shape=(nx, nx), ``R`` Shape=(nu, nu), ``S`` Shape=(nx, nu).
    """
    require_positive("quadratic_cost_model", "eps", eps)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    u = np.asarray(u, dtype=np.float64).reshape(-1)
    nx, nu = x.size, u.size
    n = nx + nu
    eye = eps * np.eye(n)
    # Sample (i, j, a, b) is z + s_a e_i + s_b e_j with s = (+1, -1).
    signs = np.array([1.0, -1.0])
    dz = (
        signs[None, None, :, None, None] * eye[:, None, None, None, :]
        + signs[None, None, None, :, None] * eye[None, :, None, None, :]
    ).reshape(-1, n)
    K = dz.shape[0]
    X = np.empty((K, 3, nx))
    X[:] = x
    X[:, 1] += dz[:, :nx]
    U = np.empty((K, 2, nu))
    U[:] = u
    U[:, 0] += dz[:, nx:]
    values = np.asarray(as_cost_sum(cost)(np.ascontiguousarray(X), np.ascontiguousarray(U)))
    c = values.reshape(n, n, 2, 2)
    if not np.all(np.isfinite(c)):
        raise InputError(
            "the cost is not finite within eps of the operating point, so it has no quadratic "
            "model there; pick an operating point where the cost is defined."
        )
    hessian = (c[:, :, 0, 0] - c[:, :, 0, 1] - c[:, :, 1, 0] + c[:, :, 1, 1]) / (4.0 * eps * eps)
    half = 0.25 * (hessian + hessian.T)
    return half[:nx, :nx].copy(), half[nx:, nx:].copy(), half[:nx, nx:].copy()


def _clip_psd(M: FloatArray, tol: float = 1e-6) -> FloatArray:
    """``M`` with the eigenvalues that rounding pushed just below zero set to zero."""
    w, V = np.linalg.eigh(M)
    scale = max(1.0, float(np.abs(w).max()) if w.size else 0.0)
    if w.size and w.min() < -tol * scale:
        return M  # curves down for real: lqr_value refuses it with the reason
    return np.asarray((V * np.maximum(w, 0.0)) @ V.T)


def lqr_terminal_value(
    model: Dynamics,
    operating_state: ArrayLike,
    operating_action: ArrayLike | None = None,
    *,
    cost: CostSum | CostFn | None = None,
    Q: ArrayLike | None = None,
    R: ArrayLike | None = None,
    dims: Sequence[int] | None = None,
    eps: float = 1e-6,
) -> QuadraticTerminalValue:
    """The LQR cost-to-go past the horizon of ``model`` linearised at an operating point.

    Args:
        model: the planner's model (any ``Dynamics``; MuJoCo's own Jacobians where it
            can, ``dynamics.linearize``).
        operating_state: the equilibrium to hold, Shape=(nx,), e.g. upright at rest.
        operating_action: the action that holds it, Shape=(nu,) (default: the neutral
            action, zero where the box allows).
        cost: the task's cost; ``Q``, ``R`` (and the cross term) are its quadratic
            model at the operating point (``quadratic_cost_model``). Or give both
            ``Q`` Shape=(n, n) and ``R`` Shape=(nu, nu), per step on the next state as the
            planners charge it.
        dims: the state entries the value is over (None: all), for a state with parts
            no action moves (a target): their rows of ``A`` may not depend on the rest.
        eps: the finite-difference step of the linearisation.

    Returns:
        ``QuadraticTerminalValue(P, operating_state, dims)``, ``P`` in the planners'
        convention (see the module docstring); weight 1 adds the cost-to-go as is.

    Raises:
        InputError: the operating point is not an equilibrium; the chosen states depend
            on the others; neither ``cost`` nor both ``Q`` and ``R``; or the LQR has no
            finite value (``cost.lqr_value`` says why).
    """
    nx, nu = model.nx, model.nu
    x_op = check_state(operating_state, nx, "operating_state")
    if operating_action is None:
        u_op = neutral_action(model)
    else:
        u_op = np.asarray(operating_action, dtype=np.float64).reshape(-1)
    if u_op.shape != (nu,):
        raise InputError(f"operating_action must have shape ({nu},), got {u_op.shape}.")
    drift = np.asarray(model.rollout(x_op, u_op.reshape(1, 1, nu)))[0, 1] - x_op
    if not np.all(np.abs(drift) <= 1e-6 * (1.0 + np.abs(x_op))):
        raise InputError(
            f"the operating point is not an equilibrium: one step from it with action {u_op} "
            f"moves the state by {np.round(drift, 8)}. Linearise where the model rests (upright "
            "at zero velocity, say), or give the action that holds it (operating_action=...)."
        )
    A, B = linearize(model, x_op, u_op, eps)
    chosen = np.arange(nx) if dims is None else np.asarray(dims, dtype=np.int64)
    rest = np.setdiff1d(np.arange(nx), chosen)
    coupling = np.abs(A[np.ix_(chosen, rest)]).max() if rest.size else 0.0
    if coupling > 1e-8 * max(1.0, float(np.abs(A).max())):
        raise InputError(
            f"the states dims={[int(i) for i in chosen]} evolve with the others (|dA| up to "
            f"{coupling:.3g}), so a value over them alone is not the cost-to-go; include the "
            "states they depend on."
        )
    A_s, B_s = A[np.ix_(chosen, chosen)], B[chosen]
    if Q is not None and R is not None:
        Q_s = np.asarray(Q, dtype=np.float64)
        R_s = np.asarray(R, dtype=np.float64)
        S_s = np.zeros((chosen.size, nu))
    elif cost is not None:
        Q_full, R_s, S_full = quadratic_cost_model(cost, x_op, u_op)
        Q_s, S_s = _clip_psd(Q_full[np.ix_(chosen, chosen)]), S_full[chosen]
    else:
        raise InputError(
            "lqr_terminal_value needs the stage cost: pass the task's cost (cost=...), or "
            "both Q and R."
        )
    # The LQR in (x_t, u_t) of the planners' next-state stage cost (module docstring).
    Q_t = A_s.T @ Q_s @ A_s
    R_t = R_s + B_s.T @ Q_s @ B_s + B_s.T @ S_s + S_s.T @ B_s
    S_t = A_s.T @ Q_s @ B_s + A_s.T @ S_s
    P = lqr_value(A_s, B_s, 0.5 * (Q_t + Q_t.T), 0.5 * (R_t + R_t.T), S_t)
    return QuadraticTerminalValue(P, x_op, None if dims is None else [int(i) for i in chosen])


def with_terminal_value(
    cost: CostSum | CostFn, value: Any, weight: float = 1.0, name: str = "terminal_value"
) -> CostSum:
    """``cost`` with one more term, ``Term(name, value, weight)`` (a nested sum stays flat)."""
    return CostSum(*as_cost_sum(cost).terms, Term(name, value, weight))


__all__ = ["lqr_terminal_value", "quadratic_cost_model", "with_terminal_value"]
