"""Gradient-based refinement of a sampled plan: multiple-shooting NMPC solved by IPOPT.

A sampling planner finds the right mode (which side of the obstacle); a few
Newton steps then make the plan locally optimal and the obstacle constraints
exact. ``NMPCRefiner`` builds the nonlinear program once (CasADi, the model's
symbolic step from ``dynamics.symbolic``, the cost's symbolic form from
``cost.symbolic``) and each ``refine`` call only solves it from a new state and
warm start. ``RefinedPlanner`` wraps any planner: it refines every plan and
keeps the refined one only when it is better and provably safe.

The NLP over actions ``u_0..u_{H-1}`` and states ``x_1..x_H`` (``x_0`` is a
parameter)::

    min  cost(x_0..x_H, u_0..u_{H-1})          (the task's CostSum, exactly)
    s.t. x_{t+1} = f(x_t, u_t)                  (the model's step)
         action_low <= u_t <= action_high
         d_i(x_t) >= margin + margin_backoff   (every obstacle i, t = 1..H)
         d_i(p) >= margin + margin_backoff     (points p inside each segment x_t -> x_t+1,
                                                for a swept constraint)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import casadi as ca
import numpy as np
from numpy.typing import ArrayLike

from cost.composite import CostSum
from cost.symbolic import SymbolicTerm, obstacle_margins, symbolic_cost
from cost.terms import ObstacleConstraint
from dynamics.symbolic import symbolic_step
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import Constraint, Dynamics, Planner
from imle_mpc.core.validation import (
    FloatArray,
    check_state,
    require_int_at_least,
    require_non_negative,
    require_positive,
)
from imle_mpc.core.wrapper import PlannerWrapper
from planners.sampling import as_cost_sum

SymbolicConstraint = Callable[[Any, Any], list[Any]]
"""``fn(X Shape=(nx, H+1), U Shape=(nu, H)) -> [CasADi expressions that must be >= 0]``."""


@dataclass(frozen=True)
class NMPCConfig:
    """IPOPT settings of an NMPC refinement (also used by ``CBFSafetyFilter``).

    Attributes:
        max_iter: IPOPT iterations per solve (>= 1).
        max_cpu_time: CPU seconds per solve (> 0); IPOPT stops with status
            ``Maximum_CpuTime_Exceeded`` after that, and the result counts as
            not converged.
        tolerance: IPOPT's convergence tolerance ``tol`` (> 0).
        constraint_tolerance: IPOPT's ``constr_viol_tol`` (> 0): how far a
            converged solution may violate the dynamics and obstacle constraints.
        margin_backoff: metres of clearance added to every obstacle margin
            (>= 0), so a solution on the constraint boundary still passes the
            exact check of the Numba rollout after round-off.
        segment_points: points constrained inside each segment between two nodes
            for a swept ``ObstacleConstraint`` (``cost.symbolic.obstacle_margins``),
            so the refined plan also passes the swept check, not only its nodes.
        verbose: print IPOPT's iteration log (off by default).
    """

    max_iter: int = 100
    max_cpu_time: float = 0.5
    tolerance: float = 1e-6
    constraint_tolerance: float = 1e-6
    margin_backoff: float = 1e-3
    segment_points: int = 2
    verbose: bool = False

    def __post_init__(self) -> None:
        require_int_at_least("NMPCConfig", "max_iter", self.max_iter, 1)
        require_positive("NMPCConfig", "max_cpu_time", self.max_cpu_time)
        require_positive("NMPCConfig", "tolerance", self.tolerance)
        require_positive("NMPCConfig", "constraint_tolerance", self.constraint_tolerance)
        require_non_negative("NMPCConfig", "margin_backoff", self.margin_backoff)
        require_int_at_least("NMPCConfig", "segment_points", self.segment_points, 0)

    def ipopt_options(self) -> dict[str, Any]:
        """Options for ``casadi.nlpsol(..., "ipopt", options)``."""
        return {
            "print_time": self.verbose,
            "ipopt": {
                "max_iter": self.max_iter,
                "max_cpu_time": self.max_cpu_time,
                "tol": self.tolerance,
                "constr_viol_tol": self.constraint_tolerance,
                "print_level": 5 if self.verbose else 0,
                "sb": "yes",
            },
        }


def solver_status(solver: ca.Function) -> tuple[bool, str]:
    """``(converged, IPOPT return status)`` of the last solve of ``solver``."""
    stats = solver.stats()
    return bool(stats.get("success", False)), str(stats.get("return_status", "unknown"))


def box_bounds(dynamics: Dynamics, horizon: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Action box of ``dynamics`` as (low, high) for ``horizon`` stacked actions, and its row.

    Returns:
        ``(low Shape=(H*nu,), high Shape=(H*nu,), row_low_high Shape=(2, nu))``,
        infinite where the model has no bound.
    """
    low = np.asarray(dynamics.action_low, dtype=np.float64).reshape(-1)
    high = np.asarray(dynamics.action_high, dtype=np.float64).reshape(-1)
    return np.tile(low, horizon), np.tile(high, horizon), np.stack([low, high])


def symbolic_model_step(dynamics: Dynamics, step: ca.Function | None) -> Callable[[Any, Any], Any]:
    """``(x, u) -> x_next`` on CasADi expressions: ``step`` if given, else the model's form.

    Raises:
        TypeError: no ``step`` and the model has no CasADi form (see ``dynamics.symbolic``).
    """
    if step is not None:
        return lambda x, u: step(x, u)
    symbolic_step(dynamics, ca.SX.sym("x", dynamics.nx), ca.SX.sym("u", dynamics.nu))  # check
    return lambda x, u: symbolic_step(dynamics, x, u)


@dataclass(frozen=True)
class RefineResult:
    """What one ``NMPCRefiner.refine`` call produced.

    Every number is measured on the Numba rollout of ``actions`` (the model the
    sampling planner uses), not on the solver's own states.

    Attributes:
        actions: the refined plan (the solver's last iterate, clipped to the
            action box), Shape=(H, nu).
        converged: IPOPT reported success (within ``max_iter`` and ``max_cpu_time``).
        solve_time: wall-clock seconds of the solve.
        cost: task cost of ``actions``.
        min_margin: smallest constraint margin over the rollout (obstacle
            distance minus margin; ``-violation`` for other constraints;
            ``inf`` without constraints). Negative means violated.
        status: IPOPT's return status, e.g. ``Solve_Succeeded``.
        feasible: every constraint's ``violation`` is 0 on the rollout.
        predicted_states: the rollout, Shape=(H+1, nx).
        term_costs: weighted cost of each term of the task cost.
    """

    actions: FloatArray
    converged: bool
    solve_time: float
    cost: float
    min_margin: float
    status: str
    feasible: bool = True
    predicted_states: FloatArray = field(default_factory=lambda: np.empty((0, 0)))
    term_costs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanScore:
    """A plan scored on the Numba model: cost, terms, constraint margin, states."""

    cost: float
    term_costs: dict[str, float]
    min_margin: float
    feasible: bool
    states: FloatArray


def constraint_margin(constraint: Constraint, X: FloatArray, U: FloatArray) -> float:
    """Smallest margin of one constraint over ``X[0, 1:]`` (negative: violated).

    ``ObstacleConstraint``: the smallest obstacle distance minus its margin, over
    what it checks (the swept path by default, ``ObstacleConstraint.slack``);
    any other constraint: ``-violation``.
    """
    if isinstance(constraint, ObstacleConstraint):
        return float(constraint.slack(X)[0])
    return -float(np.asarray(constraint.violation(X, U))[0])


class NMPCRefiner:
    """Refine a warm-start plan with a multiple-shooting NLP (IPOPT), built once.

    Args:
        dynamics: the planner's model; one of ``dynamics.symbolic.SUPPORTED_MODELS``
            unless ``step`` is given.
        cost: the task's ``CostSum`` (terms need a CasADi form, see ``cost.symbolic``).
        constraints: hard constraints; ``ObstacleConstraint`` has a CasADi form,
            others need ``casadi_constraints``. All of them are checked on the
            Numba rollout of every result.
        horizon: H, steps of the plans (>= 1).
        config: IPOPT settings.
        step: optional ``casadi.Function (x, u) -> x_next`` replacing the model's form.
        casadi_cost: CasADi forms of cost terms by name (``cost.symbolic.symbolic_cost``).
        casadi_constraints: CasADi forms of constraints without a built-in one;
            when given, they replace the built-in forms of all ``constraints``.
            No ``margin_backoff`` is added to them: leave a little room, or a
            solution on the boundary may fail the exact ``violation`` check.

    Soft constraints (``hard=False``) are enforced exactly too, like hard ones:
    a plan that satisfies them owes no penalty.

    A local method: from a warm start exactly on a symmetry line (a straight
    path through the centre of a disc, on the disc's axis) no gradient says
    which way round, and IPOPT may stop at a plan that halts in front of the
    obstacle or fail to converge. Sampled warm starts are practically never
    exactly symmetric.

    Raises:
        TypeError: the model, a cost term or a constraint has no CasADi form.
    """

    def __init__(
        self,
        dynamics: Dynamics,
        cost: CostSum | Callable[[FloatArray, FloatArray], FloatArray],
        constraints: Sequence[Constraint] = (),
        horizon: int = 16,
        config: NMPCConfig = NMPCConfig(),
        *,
        step: ca.Function | None = None,
        casadi_cost: Mapping[str, SymbolicTerm] | None = None,
        casadi_constraints: Sequence[SymbolicConstraint] = (),
    ) -> None:
        require_int_at_least("NMPCRefiner", "horizon", horizon, 1)
        self.dynamics = dynamics
        self.cost = as_cost_sum(cost)
        self.constraints = tuple(constraints)
        self.horizon = horizon
        self.config = config
        nx, nu, H = dynamics.nx, dynamics.nu, horizon
        f = symbolic_model_step(dynamics, step)

        x0 = ca.SX.sym("x0", nx)
        U = ca.SX.sym("U", nu, H)
        Xs = ca.SX.sym("X", nx, H)
        X = ca.horzcat(x0, Xs)
        objective = symbolic_cost(self.cost, X, U, casadi_cost)
        defects = [Xs[:, t] - f(X[:, t], U[:, t]) for t in range(H)]
        inequalities: list[Any] = []
        if casadi_constraints:
            for form in casadi_constraints:
                inequalities.extend(form(X, U))
        else:
            for c in self.constraints:
                inequalities.extend(
                    obstacle_margins(c, X, config.margin_backoff, config.segment_points)
                )
        g = ca.vertcat(*defects, *inequalities)
        n_eq = nx * H
        self._lbg = np.concatenate([np.zeros(n_eq), np.zeros(len(inequalities))])
        self._ubg = np.concatenate([np.zeros(n_eq), np.full(len(inequalities), np.inf)])
        u_low, u_high, self._box = box_bounds(dynamics, H)
        self._lbx = np.concatenate([u_low, np.full(nx * H, -np.inf)])
        self._ubx = np.concatenate([u_high, np.full(nx * H, np.inf)])
        nlp = {"x": ca.vertcat(ca.vec(U), ca.vec(Xs)), "p": x0, "f": objective, "g": g}
        self._solver = ca.nlpsol("nmpc_refiner", "ipopt", nlp, config.ipopt_options())
        self._n_u = nu * H

    def score(self, x: ArrayLike, actions: ArrayLike) -> PlanScore:
        """Roll ``actions`` Shape=(H, nu) out from ``x`` on the model; cost and margins."""
        x0 = check_state(x, self.dynamics.nx)
        U = np.asarray(actions, dtype=np.float64)[None]
        X = self.dynamics.rollout(x0, U)
        total, parts = self.cost.evaluate(X, U)
        margins = [constraint_margin(c, X, U) for c in self.constraints]
        feasible = all(float(np.asarray(c.violation(X, U))[0]) <= 0.0 for c in self.constraints)
        return PlanScore(
            cost=float(total[0]),
            term_costs={n: float(v[0]) for n, v in parts.items()},
            min_margin=min(margins, default=float("inf")),
            feasible=feasible,
            states=X[0].copy(),
        )

    def refine(self, x: ArrayLike, U_init: ArrayLike) -> RefineResult:
        """Solve the NLP from state ``x`` Shape=(nx,), warm-started at ``U_init`` Shape=(H, nu).

        The states are warm-started with the rollout of ``U_init`` (clipped to
        the action box). The result's actions are the solver's last iterate,
        converged or not; check ``converged`` and ``feasible`` before using them.
        """
        nx, nu, H = self.dynamics.nx, self.dynamics.nu, self.horizon
        x0 = check_state(x, nx)
        U0 = np.asarray(U_init, dtype=np.float64)
        if U0.shape != (H, nu):
            raise ValueError(
                f"U_init must have Shape=({H}, {nu}) (horizon, nu) to match the refiner, got "
                f"{U0.shape}."
            )
        U0 = np.clip(U0, self._box[0], self._box[1])
        X0 = self.dynamics.rollout(x0, U0[None])[0]
        if not np.all(np.isfinite(X0)):
            X0 = np.tile(x0, (H + 1, 1))  # a diverging warm start: start the states at x
        w0 = np.concatenate([U0.ravel(), X0[1:].ravel()])
        t0 = time.perf_counter()
        sol = self._solver(x0=w0, p=x0, lbx=self._lbx, ubx=self._ubx, lbg=self._lbg, ubg=self._ubg)
        solve_time = time.perf_counter() - t0
        converged, status = solver_status(self._solver)
        w = np.asarray(sol["x"]).ravel()
        actions = np.clip(w[: self._n_u].reshape(H, nu), self._box[0], self._box[1])
        if not np.all(np.isfinite(actions)):
            actions, converged, status = U0, False, f"{status} (non-finite iterate)"
        s = self.score(x0, actions)
        return RefineResult(
            actions=actions,
            converged=converged,
            solve_time=solve_time,
            cost=s.cost,
            min_margin=s.min_margin,
            status=status,
            feasible=s.feasible,
            predicted_states=s.states,
            term_costs=s.term_costs,
        )


class RefinedPlanner(PlannerWrapper):
    """A planner whose every plan is refined by an ``NMPCRefiner`` when that helps.

    The refined plan replaces the planner's only if the solve converged (within
    the refiner's ``max_cpu_time``, and within ``time_budget`` wall-clock
    seconds if one is given), its Numba rollout violates no constraint, and its
    task cost is not higher than the unrefined plan's. After a used refinement
    the inner planner's warm start becomes the refined plan (``set_nominal``,
    where the planner has it).

    ``timings["refine"]`` holds the seconds spent refining and scoring,
    ``timings["refined"]`` is 1.0 when the refined plan was used and 0.0
    otherwise, and ``timings["total"]`` includes the refinement. A used
    refinement also replaces ``cost``, ``term_costs`` (the task cost's terms)
    and ``predicted_states``; ``num_feasible`` and ``best_index`` stay the
    inner planner's.

    Args:
        planner: any ``Planner`` with the refiner's horizon.
        refiner: the refinement.
        time_budget: optional wall-clock seconds a solve may take to be used.
    """

    def __init__(
        self, planner: Planner, refiner: NMPCRefiner, time_budget: float | None = None
    ) -> None:
        if planner.horizon != refiner.horizon:
            raise ValueError(
                f"the planner's horizon {planner.horizon} differs from the refiner's "
                f"{refiner.horizon}; build the NMPCRefiner with horizon={planner.horizon}."
            )
        if time_budget is not None:
            require_positive("RefinedPlanner", "time_budget", time_budget)
        super().__init__(planner)
        self.refiner = refiner
        self.time_budget = time_budget
        self.last_refinement: RefineResult | None = None

    def reset(self, seed: int | None = None) -> None:
        """Reset the inner planner (the refiner keeps no state between calls)."""
        super().reset(seed)
        self.last_refinement = None

    def plan(self, state: ArrayLike) -> PlanResult:
        """The inner planner's plan, refined where the refinement is converged, safe and better."""
        x = np.asarray(state, dtype=np.float64)
        result = self.planner.plan(x)
        t0 = time.perf_counter()
        refined = self.refiner.refine(x, result.actions)
        base = self.refiner.score(x, result.actions)
        in_time = self.time_budget is None or refined.solve_time <= self.time_budget
        use = (
            refined.converged and in_time and refined.feasible and refined.cost <= base.cost + 1e-9
        )
        self.last_refinement = refined
        elapsed = time.perf_counter() - t0
        timings = dict(result.timings)
        timings["refine"] = elapsed
        timings["refined"] = 1.0 if use else 0.0
        timings["total"] = timings.get("total", 0.0) + elapsed
        if not use:
            return replace(result, timings=timings)
        self.set_nominal(refined.actions)
        return replace(
            result,
            actions=refined.actions.copy(),
            cost=refined.cost,
            term_costs=dict(refined.term_costs),
            predicted_states=refined.predicted_states.copy(),
            timings=timings,
        )


__all__ = [
    "NMPCConfig",
    "NMPCRefiner",
    "PlanScore",
    "RefineResult",
    "RefinedPlanner",
    "SymbolicConstraint",
    "box_bounds",
    "constraint_margin",
    "solver_status",
    "symbolic_model_step",
]
