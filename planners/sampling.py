"""The sampling-MPC loop shared by MPPI, CEM, predictive sampling and IMLE-MPC.

One control step: propose K action sequences -> roll them out -> score them
(cost terms, hard constraints) -> select a plan. The planner keeps only its
nominal plan, its samplers' adapted state and its RNG between steps; all
work arrays are allocated once in the constructor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cost.composite import CostSum, Term
from imle_mpc.plan_result import PlanResult
from imle_mpc.protocols import Constraint, Dynamics, ProposalSampler, Selector
from imle_mpc.validation import FloatArray, check_state, require_int_at_least


@dataclass(frozen=True)
class SamplingConfig:
    """Settings every sampling planner shares.

    Attributes:
        num_samples: K, proposals per iteration (>= 2).
        horizon: H, steps per proposal (>= 1).
        iterations: sample-score-select rounds per control step (>= 1).
        shift: control steps executed between two ``plan`` calls; the warm
            start is shifted by this much (>= 0; 0 re-plans from the same plan).
        seed: seed of the planner's ``np.random.Generator``.
        record_samples: copy the last iteration's proposals and costs into the
            result (for plots; costs memory and time).
    """

    num_samples: int = 256
    horizon: int = 30
    iterations: int = 1
    shift: int = 1
    seed: int = 0
    record_samples: bool = False

    def __post_init__(self) -> None:
        require_int_at_least(type(self).__name__, "num_samples", self.num_samples, 2)
        require_int_at_least(type(self).__name__, "horizon", self.horizon, 1)
        require_int_at_least(type(self).__name__, "iterations", self.iterations, 1)
        require_int_at_least(type(self).__name__, "shift", self.shift, 0)
        require_int_at_least(type(self).__name__, "seed", self.seed, 0)
        if self.shift >= self.horizon:
            raise ValueError(
                f"{type(self).__name__}.shift={self.shift} must be smaller than horizon="
                f"{self.horizon}; otherwise nothing of the plan is left to warm-start from."
            )


def as_cost_sum(cost: CostSum | Callable[[FloatArray, FloatArray], FloatArray]) -> CostSum:
    """Accept a ``CostSum`` or any ``fn(X, U) -> (K,)`` (then reported as term ``cost``)."""
    if isinstance(cost, CostSum):
        return cost
    if not callable(cost):
        raise TypeError(f"cost must be a CostSum or a callable fn(X, U) -> (K,), got {cost!r}.")
    return CostSum(Term("cost", cost))


class SamplingPlanner:
    """Generic sampling MPC: any proposal sampler, any selector, any dynamics.

    Args:
        dynamics: batched model (``Dynamics`` protocol).
        cost: ``CostSum`` or ``fn(X, U) -> (K,)``.
        sampler: where proposals come from.
        selector: how scored proposals become a plan.
        config: shared settings (samples, horizon, iterations, shift, seed).
        constraints: hard constraints; a sample with violation > 0 is infeasible.
        initial_plan: warm start for the first step, Shape=(H, nu); zeros
            clipped to the actuator box by default.

    Compilation happens here (``warmup``), not on the first control step.
    """

    def __init__(
        self,
        dynamics: Dynamics,
        cost: CostSum | Callable[[FloatArray, FloatArray], FloatArray],
        sampler: ProposalSampler,
        selector: Selector,
        config: SamplingConfig,
        constraints: Sequence[Constraint] = (),
        initial_plan: ArrayLike | None = None,
    ) -> None:
        self.dynamics = dynamics
        self.cost = as_cost_sum(cost)
        self.sampler = sampler
        self.selector = selector
        self.config = config
        self.constraints = tuple(constraints)
        K, H, nu, nx = config.num_samples, config.horizon, dynamics.nu, dynamics.nx
        self._U = np.zeros((K, H, nu))
        self._X = np.zeros((K, H + 1, nx))
        self._plan_buffer = np.zeros((H, nu))
        self._low = np.asarray(dynamics.action_low, dtype=np.float64)
        self._high = np.asarray(dynamics.action_high, dtype=np.float64)
        if initial_plan is None:
            self._initial_plan = np.tile(np.clip(0.0, self._low, self._high), (H, 1))
        else:
            init = np.asarray(initial_plan, dtype=np.float64)
            if init.shape != (H, nu):
                raise ValueError(f"initial_plan must have Shape=({H}, {nu}), got {init.shape}.")
            self._initial_plan = np.clip(init, self._low, self._high)
        # Fast path for Numba models: skip per-call validation in the hot loop.
        self._rollout: Callable[..., Any] = getattr(dynamics, "rollout_unchecked", dynamics.rollout)
        self.reset(config.seed)
        self.warmup()

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @property
    def nominal(self) -> FloatArray:
        """A copy of the current warm-start plan, Shape=(H, nu)."""
        return self._nominal.copy()

    def reset(self, seed: int | None = None) -> None:
        """Drop the warm start and re-seed the RNG (``None`` keeps the configured seed)."""
        self._rng = np.random.default_rng(self.config.seed if seed is None else seed)
        self._nominal = self._initial_plan.copy()
        self._fresh = True

    def warmup(self) -> None:
        """Compile every kernel on a dummy step, then restore the RNG and warm start."""
        state = np.zeros(self.dynamics.nx)
        saved_rng = self._rng.bit_generator.state
        self._plan_once(state, self._initial_plan.copy())
        self.sampler.reset()
        self._rng.bit_generator.state = saved_rng

    def set_nominal(self, plan: ArrayLike) -> None:
        """Replace the warm start (e.g. with a demonstration or an outside plan)."""
        arr = np.asarray(plan, dtype=np.float64)
        if arr.shape != self._nominal.shape:
            raise ValueError(f"plan must have Shape={self._nominal.shape}, got {arr.shape}.")
        self._nominal = np.clip(arr, self._low, self._high)
        self._fresh = False

    def plan(self, state: ArrayLike) -> PlanResult:
        """One control step from the measured state ``Shape=(nx,)``."""
        x = check_state(state, self.dynamics.nx)
        if not self._fresh and self.config.shift:
            self._shift(self.config.shift)
        self._fresh = False
        result = self._plan_once(x, self._nominal)
        self._nominal = result.actions.copy()
        return result

    def _shift(self, steps: int) -> None:
        nominal = self._nominal
        nominal[:-steps] = nominal[steps:]
        nominal[-steps:] = nominal[-steps - 1]  # hold the last planned action

    def _plan_once(self, x: FloatArray, nominal: FloatArray) -> PlanResult:
        t_start = time.perf_counter()
        timings = {"propose": 0.0, "rollout": 0.0, "cost": 0.0, "select": 0.0}
        U, X, plan = self._U, self._X, self._plan_buffer
        plan[:] = nominal
        self.sampler.reset()
        best = -1
        costs = np.empty(0)
        breakdown: dict[str, FloatArray] = {}
        for _ in range(self.config.iterations):
            t0 = time.perf_counter()
            self.sampler.propose(x, plan, self._rng, U)
            t1 = time.perf_counter()
            self._rollout(x, U, X)
            t2 = time.perf_counter()
            costs, breakdown = self.cost.evaluate(X, U)
            for constraint in self.constraints:
                costs[np.asarray(constraint.violation(X, U)) > 0.0] = np.inf
            t3 = time.perf_counter()
            candidate = np.empty_like(plan)
            best = self.selector.select(U, costs, candidate)
            if best >= 0:
                plan[:] = candidate
            self.sampler.update(U, costs)
            t4 = time.perf_counter()
            timings["propose"] += t1 - t0
            timings["rollout"] += t2 - t1
            timings["cost"] += t3 - t2
            timings["select"] += t4 - t3
        num_feasible = int(np.count_nonzero(np.isfinite(costs)))
        predicted, plan_cost, term_costs = self._describe_plan(x, plan, best, costs, breakdown)
        timings["total"] = time.perf_counter() - t_start
        samples = (U.copy(), costs.copy()) if self.config.record_samples else None
        return PlanResult(
            actions=plan.copy(),
            cost=plan_cost,
            term_costs=term_costs,
            num_feasible=num_feasible,
            best_index=best,
            predicted_states=predicted,
            timings=timings,
            samples=samples,
        )

    def _describe_plan(
        self,
        x: FloatArray,
        plan: FloatArray,
        best: int,
        costs: FloatArray,
        breakdown: dict[str, FloatArray],
    ) -> tuple[FloatArray, float, dict[str, float]]:
        """Predicted states, cost and per-term cost of the plan that will be executed."""
        if best >= 0 and getattr(self.selector, "returns_sample", False):
            return (
                self._X[best].copy(),
                float(costs[best]),
                {name: float(v[best]) for name, v in breakdown.items()},
            )
        # The plan is not one of the samples (an average): score it on its own.
        U1 = plan[None]
        X1 = self.dynamics.rollout(x, U1)
        total, parts = self.cost.evaluate(X1, U1)
        for constraint in self.constraints:
            if np.asarray(constraint.violation(X1, U1))[0] > 0.0:
                total[0] = np.inf
        return X1[0].copy(), float(total[0]), {n: float(v[0]) for n, v in parts.items()}
