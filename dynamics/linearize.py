"""Jacobians of one model step, ``x_{t+1} = f(x_t, u_t)``, at an operating point.

``linearize(model, x, u)`` returns ``(A, B)`` with ``A = df/dx`` Shape=(nx, nx) and
``B = df/du`` Shape=(nx, nu): from the model itself where it gives them
(``Linearizable``: ``MujocoDynamics`` through MuJoCo's ``mjd_transitionFD``), else by
central differences through the model's ``rollout`` (``finite_difference_jacobians``),
which works for any ``Dynamics``. ``equilibrium`` finds the resting state near a
guess (Gymnasium's inverted pendulum rests 1.7 mrad off upright: its pole is drawn
1 mm off vertical). Used for an LQR terminal value (``planners.terminal_value``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.errors import InputError
from imle_mpc.core.protocols import Dynamics, Linearizable, MultiStartRollout
from imle_mpc.core.validation import FloatArray, check_state, require_positive


def _action(u: ArrayLike, nu: int) -> FloatArray:
    arr = np.asarray(u, dtype=np.float64).reshape(-1)
    if arr.shape != (nu,) or not np.all(np.isfinite(arr)):
        raise ValueError(
            f"u must be a finite action of the model's nu={nu} entries, got {np.asarray(u)}."
        )
    return arr


def finite_difference_jacobians(
    model: Dynamics, x: ArrayLike, u: ArrayLike, eps: float = 1e-6
) -> tuple[FloatArray, FloatArray]:
    """``(A, B)`` of one step by central differences through ``model.rollout``.

    The ``2 (nx + nu)`` perturbed one-step rollouts run as one batched call where
    the model rolls out from many start states (``MultiStartRollout``); otherwise
    the control perturbations share one call and each state perturbation has its
    own. The error is O(eps^2) plus rounding of order 1e-16 / eps.

    Args:
        model: any ``Dynamics``.
        x: state, Shape=(nx,).
        u: action, Shape=(nu,). Not clipped: at an actuator limit a clamping model
            gives half the one-sided slope.
        eps: the difference step (> 0), on every state and action entry.

    Returns:
        ``(A Shape=(nx, nx), B Shape=(nx, nu))``.

    Raises:
        ValueError: a step of the perturbed rollouts is not finite (the model fails
            within ``eps`` of the operating point).
    """
    require_positive("finite_difference_jacobians", "eps", eps)
    nx, nu = model.nx, model.nu
    x = check_state(x, nx, "x")
    u = _action(u, nu)
    n = nx + nu
    # Row 2i is +eps on entry i of (x, u), row 2i + 1 is -eps.
    delta = np.zeros((2 * n, n))
    delta[0::2] = eps * np.eye(n)
    delta[1::2] = -eps * np.eye(n)
    starts = x + delta[:, :nx]
    U = np.ascontiguousarray((u + delta[:, nx:])[:, None, :])
    if isinstance(model, MultiStartRollout):
        ends = np.asarray(model.rollout_from_states(starts, U))[:, 1]
    else:
        ends = np.empty((2 * n, nx))
        for k in range(2 * nx):
            ends[k] = model.rollout(starts[k], U[k : k + 1])[0, 1]
        ends[2 * nx :] = model.rollout(x, U[2 * nx :])[:, 1]
    if not np.all(np.isfinite(ends)):
        raise ValueError(
            "the model's step is not finite within eps of the operating point; linearise "
            "where the model is defined (or use a smaller eps)."
        )
    J = (ends[0::2] - ends[1::2]).T / (2.0 * eps)
    return J[:, :nx].copy(), J[:, nx:].copy()


def linearize(
    model: Dynamics, x: ArrayLike, u: ArrayLike, eps: float = 1e-6
) -> tuple[FloatArray, FloatArray]:
    """``(A, B)`` of one step ``x_{t+1} = f(x_t, u_t)`` at ``(x, u)``.

    The model's own Jacobians where it has them (``Linearizable``; MuJoCo's
    ``mjd_transitionFD``, composed over ``frame_skip``), else
    ``finite_difference_jacobians``.

    Args:
        model: any ``Dynamics``.
        x: state, Shape=(nx,).
        u: action, Shape=(nu,), held for the step.
        eps: the finite-difference step.

    Returns:
        ``(A Shape=(nx, nx), B Shape=(nx, nu))``.

    Example:
        >>> from dynamics import PointMass2D
        >>> A, B = linearize(PointMass2D(), np.zeros(4), np.zeros(2))
        >>> A.shape, B.shape
        ((4, 4), (4, 2))
    """
    if isinstance(model, Linearizable):
        A, B = model.linearize(
            np.asarray(x, dtype=np.float64), np.asarray(u, dtype=np.float64), eps
        )
        return np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    return finite_difference_jacobians(model, x, u, eps)


def equilibrium(
    model: Dynamics,
    guess: ArrayLike,
    u: ArrayLike,
    free: Sequence[int],
    free_action: bool = False,
    tol: float = 1e-10,
    max_iter: int = 20,
) -> tuple[FloatArray, FloatArray]:
    """The state (and action) near a guess that one step leaves where it is.

    Gauss-Newton on ``f(x, u) - x = 0`` over the state entries ``free`` (and the
    action, with ``free_action``; the rest stay at the guess), with the Jacobians
    of ``linearize``.

    Args:
        model: any ``Dynamics``.
        guess: the start, Shape=(nx,) (e.g. upright at rest).
        u: the action held (the start, with ``free_action``), Shape=(nu,).
        free: the state entries the search may move (e.g. the pole angles).
        free_action: the action may move too (a force that holds the cart against
            a slope, or InvertedDoublePendulum's 1e-5 sideways gravity).
        tol: stop when no entry of ``f(x, u) - x`` exceeds this.
        max_iter: Gauss-Newton steps at most.

    Returns:
        ``(x Shape=(nx,), u Shape=(nu,))``, the equilibrium.

    Raises:
        InputError: no equilibrium within ``max_iter`` steps (the residual is named):
            free more entries, give a closer guess, or another action.
    """
    x = check_state(guess, model.nx, "guess").copy()
    u = _action(u, model.nu).copy()
    idx = np.asarray(free, dtype=np.int64)
    residual = np.full(model.nx, np.inf)
    for _ in range(max_iter + 1):
        residual = np.asarray(model.rollout(x, u.reshape(1, 1, -1)))[0, 1] - x
        if np.abs(residual).max() <= tol:
            return x, u
        A, B = linearize(model, x, u)
        J = (A - np.eye(model.nx))[:, idx]
        if free_action:
            J = np.hstack([J, B])
        step = np.linalg.lstsq(J, residual, rcond=None)[0]
        x[idx] -= step[: idx.size]
        if free_action:
            u -= step[idx.size :]
    raise InputError(
        f"no equilibrium near the guess moving the state entries {[int(i) for i in idx]}"
        f"{' and the action' if free_action else f' with the action {u}'}: one step still moves "
        f"the state by up to {np.abs(residual).max():.3g}. Free more entries (or the action, "
        "free_action=True), or start closer."
    )


__all__ = ["equilibrium", "finite_difference_jacobians", "linearize"]
