"""Predictive control-barrier-function (CBF) safety filter for obstacles in the plane.

Any controller's action ``u_ref`` passes through ``CBFSafetyFilter.filter``,
which returns the closest action that keeps a short predicted trajectory
safe::

    min  ||u_0 - u_ref||^2 + regularization * sum_{j >= 1} ||u_j - u_ref||^2
    s.t. x_{j+1} = f(x_j, u_j),              j = 0..N-1  (the model's step)
         action_low <= u_j <= action_high
         h_i(x_{j+1}) >= (1 - gamma) h_i(x_j)   for every obstacle i, j = 0..N-1

with ``h_i(x) = d_i(position of x) - margin`` the signed distance to obstacle
``i`` minus the margin, so ``h_i >= 0`` is the safe set and ``h_i`` may shrink
by at most the fraction ``gamma`` per step (the discrete-time CBF condition).

Why predictive: for a force-driven model (a double integrator) the action does
not move the position within one step, only the velocity, so a one-step CBF
condition cannot be enforced through ``u_0``. Over N steps the later actions
form a backup plan that brakes or steers in time, and ``u_0`` is the first
action of the cheapest such plan. The later actions are pulled weakly towards
``u_ref`` only to make them unique.

Only the first action is returned; the filter is re-solved at every control step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike

from cost.symbolic import obstacle_distances
from cost.terms import ObstacleConstraint, Scene
from imle_mpc.core.protocols import Dynamics
from imle_mpc.core.validation import (
    FloatArray,
    check_state,
    require_int_at_least,
    require_non_negative,
)
from planners.nmpc import NMPCConfig, box_bounds, solver_status, symbolic_model_step


@dataclass(frozen=True)
class FilterResult:
    """What one ``CBFSafetyFilter.filter`` call produced.

    Attributes:
        action: the action to execute, Shape=(nu,). Exactly ``u_ref`` when
            ``changed`` is False.
        changed: the filter moved the action by more than ``change_tolerance``.
        success: IPOPT solved the filter problem. When False (no action keeps
            the predicted trajectory safe from this state, or the solver ran
            out of iterations or time) ``action`` is the solver's last iterate
            clipped to the action box: the best it found, with no guarantee.
        solve_time: wall-clock seconds of the solve.
        status: IPOPT's return status, e.g. ``Solve_Succeeded`` or ``Infeasible_Problem_Detected``.
        plan: the filter's whole N-step backup plan, Shape=(N, nu) (its first row
            is the optimiser's first action, before the ``changed`` rounding).
    """

    action: FloatArray
    changed: bool
    success: bool
    solve_time: float
    status: str
    plan: FloatArray


class CBFSafetyFilter:
    """Minimal change to a reference action so that N predicted steps satisfy the CBF condition.

    The nonlinear program is built once here; ``filter`` only solves it.
    ``reset`` forgets the warm start (the previous solution, shifted).

    Args:
        dynamics: the model; one of ``dynamics.symbolic.SUPPORTED_MODELS``
            unless ``step`` is given.
        obstacles: a ``cost.Scene`` or an ``ObstacleConstraint`` (whose scene
            and margin are used).
        gamma: the CBF decay rate in (0, 1]: ``h`` may shrink by this fraction
            per step (small: cautious, acts early; 1: only ``h >= 0`` is kept).
        horizon: N, predicted steps (>= 1); long enough to brake from the
            speeds the controller reaches.
        margin: clearance (m) added to the obstacles when ``obstacles`` is a
            ``Scene`` (>= 0); an ``ObstacleConstraint`` brings its own margin.
        regularization: weight of ``||u_j - u_ref||^2`` for the later actions
            j >= 1 (>= 0; small, so it hardly moves ``u_0``).
        change_tolerance: an action moved by at most this much (max norm,
            action units) counts as unchanged and ``u_ref`` is returned as is
            (>= 0): such a move is solver round-off or the regularisation's pull.
        config: IPOPT settings (``max_cpu_time`` bounds each solve).
        step: optional ``casadi.Function (x, u) -> x_next`` replacing the model's form.

    Raises:
        TypeError: the model has no CasADi form and no ``step`` is given, or
            ``obstacles`` is neither a ``Scene`` nor an ``ObstacleConstraint``.
    """

    def __init__(
        self,
        dynamics: Dynamics,
        obstacles: Scene | ObstacleConstraint,
        gamma: float = 0.2,
        horizon: int = 8,
        margin: float = 0.0,
        regularization: float = 1e-6,
        change_tolerance: float = 1e-4,
        config: NMPCConfig = NMPCConfig(max_cpu_time=0.1, tolerance=1e-8),
        *,
        step: ca.Function | None = None,
    ) -> None:
        if isinstance(obstacles, ObstacleConstraint):
            scene, margin = obstacles.scene, obstacles.margin
        elif isinstance(obstacles, Scene):
            scene = obstacles
        else:
            raise TypeError(
                "CBFSafetyFilter.obstacles must be a cost.Scene or a cost.ObstacleConstraint, "
                f"got {type(obstacles).__name__}."
            )
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"CBFSafetyFilter.gamma must be in (0, 1], got {gamma!r}.")
        require_int_at_least("CBFSafetyFilter", "horizon", horizon, 1)
        require_non_negative("CBFSafetyFilter", "margin", margin)
        require_non_negative("CBFSafetyFilter", "regularization", regularization)
        require_non_negative("CBFSafetyFilter", "change_tolerance", change_tolerance)
        self.dynamics = dynamics
        self.scene = scene
        self.gamma = float(gamma)
        self.horizon = horizon
        self.margin = float(margin)
        self.change_tolerance = float(change_tolerance)
        nx, nu, N = dynamics.nx, dynamics.nu, horizon
        f = symbolic_model_step(dynamics, step)
        x_sym = ca.SX.sym("x", nx)
        h_sym = obstacle_distances(scene, x_sym)
        if not h_sym:
            raise ValueError("CBFSafetyFilter needs a scene with at least one obstacle.")
        h_vec: Any = ca.vertcat(*h_sym)
        self._h = ca.Function("h", [x_sym], [h_vec - self.margin])

        x0 = ca.SX.sym("x0", nx)
        u_ref = ca.SX.sym("u_ref", nu)
        U = ca.SX.sym("U", nu, N)
        Xs = ca.SX.sym("X", nx, N)
        X = ca.horzcat(x0, Xs)
        objective = ca.sumsqr(U[:, 0] - u_ref)
        for j in range(1, N):
            objective += regularization * ca.sumsqr(U[:, j] - u_ref)
        defects = [Xs[:, j] - f(X[:, j], U[:, j]) for j in range(N)]
        h = [self._h(X[:, j]) for j in range(N + 1)]
        barrier = ca.vertcat(*[h[j + 1] - (1.0 - self.gamma) * h[j] for j in range(N)])
        g = ca.vertcat(*defects, barrier)
        n_barrier = barrier.shape[0]
        self._lbg = np.zeros(nx * N + n_barrier)
        self._ubg = np.concatenate([np.zeros(nx * N), np.full(n_barrier, np.inf)])
        u_low, u_high, self._box = box_bounds(dynamics, N)
        self._lbx = np.concatenate([u_low, np.full(nx * N, -np.inf)])
        self._ubx = np.concatenate([u_high, np.full(nx * N, np.inf)])
        nlp = {"x": ca.vertcat(ca.vec(U), ca.vec(Xs)), "p": ca.vertcat(x0, u_ref), "f": objective}
        nlp["g"] = g
        self._solver = ca.nlpsol("cbf_filter", "ipopt", nlp, config.ipopt_options())
        self._rollout = ca.Function("rollout", [x0, U], [ca.horzcat(*self._states(f, x0, U))])
        self._n_u = nu * N
        self._previous: FloatArray | None = None

    @staticmethod
    def _states(f: Callable[[Any, Any], Any], x0: ca.SX, U: ca.SX) -> list[ca.SX]:
        x, out = x0, []
        for j in range(U.shape[1]):
            x = f(x, U[:, j])
            out.append(x)
        return out

    def reset(self) -> None:
        """Forget the warm start (call at the start of an episode)."""
        self._previous = None

    def barrier(self, x: ArrayLike) -> FloatArray:
        """``h_i(x)`` for every obstacle (distance minus margin), Shape=(n_obstacles,)."""
        x0 = check_state(x, self.dynamics.nx)
        return np.asarray(self._h(x0), dtype=np.float64).ravel()

    def _enters(self, X: FloatArray) -> bool:
        """Whether any of the states Shape=(N, nx) is inside an obstacle's margin."""
        return bool(np.min(np.asarray(self._h.map(X.shape[0])(X.T))) < 0.0)

    def filter(self, x: ArrayLike, u_ref: ArrayLike) -> FilterResult:
        """The safe action closest to ``u_ref`` Shape=(nu,) at state ``x`` Shape=(nx,)."""
        nx, nu, N = self.dynamics.nx, self.dynamics.nu, self.horizon
        x0 = check_state(x, nx)
        ref = np.asarray(u_ref, dtype=np.float64).reshape(-1)
        if ref.shape != (nu,) or not np.all(np.isfinite(ref)):
            raise ValueError(f"u_ref must be a finite action of Shape=({nu},), got {u_ref!r}.")
        U0 = np.tile(np.clip(ref, self._box[0], self._box[1]), (N, 1))
        if self._previous is not None:
            U0[1:-1] = self._previous[2:]  # the last backup plan, shifted by one step
            U0[-1] = self._previous[-1]
        X0 = np.asarray(self._rollout(x0, U0.T)).T
        if not np.all(np.isfinite(X0)) or self._enters(X0):
            # States inside an obstacle are a poor start (past a disc's centre the
            # distance gradient pulls them further through); standing still at x
            # satisfies every barrier condition and leaves only the dynamics to fix.
            X0 = np.tile(x0, (N, 1))
        w0 = np.concatenate([U0.ravel(), X0.ravel()])
        t0 = time.perf_counter()
        sol = self._solver(
            x0=w0,
            p=np.concatenate([x0, ref]),
            lbx=self._lbx,
            ubx=self._ubx,
            lbg=self._lbg,
            ubg=self._ubg,
        )
        solve_time = time.perf_counter() - t0
        success, status = solver_status(self._solver)
        w = np.asarray(sol["x"]).ravel()
        plan = np.clip(w[: self._n_u].reshape(N, nu), self._box[0], self._box[1])
        if not np.all(np.isfinite(plan)):
            plan, success, status = U0, False, f"{status} (non-finite iterate)"
        self._previous = plan
        action = plan[0].copy()
        changed = bool(np.max(np.abs(action - ref)) > self.change_tolerance)
        if not changed:
            action = ref.copy()
        return FilterResult(action, changed, success, solve_time, status, plan.copy())

    def safe_plan(self, x: FloatArray, reference: FloatArray) -> FloatArray | None:
        """The ``casadi`` fallback of ``planners.safety.guard.SafetyGuard``.

        Filters the reference plan's first action and returns the filter's backup
        plan, held at its last action up to the reference's length, or ``None``
        when the filter found no safe action.
        """
        reference = np.asarray(reference, dtype=np.float64)
        result = self.filter(x, reference[0])
        if not result.success:
            return None
        plan = result.plan.copy()
        plan[0] = result.action
        H = reference.shape[0]
        if plan.shape[0] >= H:
            return plan[:H]
        return np.concatenate([plan, np.repeat(plan[-1:], H - plan.shape[0], axis=0)])


__all__ = ["CBFSafetyFilter", "FilterResult"]
