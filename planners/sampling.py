"""The sampling-MPC loop shared by MPPI, CEM, predictive sampling and IMLE-MPC.

One control step: propose K action sequences -> roll them out -> score them
(cost terms, hard constraints) -> select a plan. The planner keeps only its
nominal plan, its samplers' adapted state and its RNG between steps; all
work arrays are allocated once in the constructor.

Two ways through a step, chosen once in the constructor:

* fused: the model is a single-step ``@njit`` function (``AnalyticModel``,
  ``StepDynamics``) and every cost term has a per-step form (the built-in terms,
  ``StageCost``). One parallel Numba pass per iteration draws the Gaussian
  proposals (for ``GaussianSampler``; other samplers fill them first), rolls
  them out and charges every term (``imle_mpc.core.kernels.fused``).
* generic: any ``Dynamics``, any cost callable: propose, ``rollout``,
  ``CostSum.evaluate``, each in turn.

Both give the same proposals, states and costs for the same seed.

The search may run over spline knots instead of per-step actions (``SamplingConfig.knots``,
``planners.knots``): the sampler proposes K x M knots around the nominal's knots, they
are expanded to K x H actions inside the rollout (in the fused kernel on the fused
path, one Numba pass before the rollout on the generic one), and the selector and
the sampler's adaptation see the knots, so MPPI's weighted mean, CEM's elites and
predictive sampling's best live in knot space. The executed plan is the expansion.

With ``config.risk`` (``planners.risk.RiskScoring``) every sample is rolled out on
each member of a model ensemble (member 0 the nominal), costed and checked on each,
and the members' costs are aggregated (mean, worst case, CVaR) into the one cost
the selector sees; a sample is feasible when the hard constraints hold on the stated
fraction of members (all by default). On the fused path that is one fused pass per
member with the member's parameter row; on the generic path one batched
``rollout_members`` (a Numba pass over all M x K rollouts for an analytic model, one
``mujoco.rollout`` call for MuJoCo). The plan's predicted states and its per-term
costs are the nominal member's; its ``cost`` is the aggregate.
"""

from __future__ import annotations

import time
import types
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cost.composite import CostSum, Term
from cost.constraints import constraint_name, split_constraints
from imle_mpc.core.actions import neutral_action
from imle_mpc.core.kernels.fused import FusedKernels, StageForm, make_fused_kernels, pack_params
from imle_mpc.core.kernels.rng import draw_seed
from imle_mpc.core.kernels.select import reject_violating
from imle_mpc.core.model import RolloutMixin
from imle_mpc.core.plan_reference import PlanReference
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import (
    Constraint,
    Dynamics,
    LaneStepModel,
    MemberRollout,
    NominalSettable,
    ParameterRows,
    ProposalSampler,
    ReferenceSampler,
    ReturnsSample,
    Selector,
    StepModel,
    fast_rollout,
)
from imle_mpc.core.threads import PLANNING_THREADS, ThreadPolicy, under_thread_policy
from imle_mpc.core.validation import (
    FloatArray,
    check_bounds,
    check_plan,
    check_state,
    require_int_at_least,
)
from planners.knots import Interpolation, KnotSchedule, check_knots
from planners.risk import RiskScoring
from planners.samplers import GaussianSampler

_NO_TOTALS = np.empty(0)  # reject_violating without a running sum (read, never written)


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
        threads: the threads a step may use (``imle_mpc.core.threads``; default one
            Numba and one torch thread, which keeps plan time bounded under load).
        knots: M, the spline knots per action a sample is made of (``planners.knots``;
            1 <= M <= H, M >= 2 unless ``interpolation="zero"``). None (or H): one
            value per step, the planners exactly as without knots.
        interpolation: how knots become steps: ``"zero"`` (hold), ``"linear"`` or
            ``"cubic"`` (natural spline). Read only with ``knots``.
        risk: score every sample over a model ensemble with a risk measure
            (``planners.risk.RiskScoring``); None (the default): on the model alone.
    """

    num_samples: int = 256
    horizon: int = 30
    iterations: int = 1
    shift: int = 1
    seed: int = 0
    record_samples: bool = False
    threads: ThreadPolicy = PLANNING_THREADS
    knots: int | None = None
    interpolation: Interpolation = "cubic"
    risk: RiskScoring | None = None

    def __post_init__(self) -> None:
        if self.risk is not None and not isinstance(self.risk, RiskScoring):
            raise TypeError(
                f"{type(self).__name__}.risk must be a planners.risk.RiskScoring (or None), "
                f"got {type(self.risk).__name__}: RiskScoring(ModelEnsemble(...), "
                "RiskMeasure.cvar(0.2))."
            )
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
        check_knots(type(self).__name__, self.knots, self.interpolation, self.horizon)


def _search_rows(knots: KnotSchedule | None, sampler: ProposalSampler, horizon: int) -> int:
    """Rows of one sample in the search (M knots or H steps); a mismatched sampler is an error."""
    if knots is not None and knots.horizon != horizon:
        raise ValueError(
            f"the knot schedule expands to {knots.horizon} steps but the planner's horizon is "
            f"{horizon}; build it with KnotSchedule(M, horizon={horizon}, ...)."
        )
    rows = horizon if knots is None else knots.num_knots
    if isinstance(sampler, GaussianSampler) and sampler.sigma.shape[0] != rows:
        what = "steps" if knots is None else "knots"
        raise ValueError(
            f"the sampler proposes {sampler.sigma.shape[0]} rows a sample but the planner "
            f"searches {rows} {what}; build the sampler with horizon={rows}."
        )
    return rows


def as_cost_sum(cost: CostSum | Callable[[FloatArray, FloatArray], FloatArray]) -> CostSum:
    """Accept a ``CostSum`` or any ``fn(X, U) -> (K,)`` (then reported as term ``cost``)."""
    if isinstance(cost, CostSum):
        return cost
    if not callable(cost):
        raise TypeError(f"cost must be a CostSum or a callable fn(X, U) -> (K,), got {cost!r}.")
    return CostSum(Term("cost", cost))


ScoreFn = Callable[[FloatArray, FloatArray, dict[str, float]], FloatArray]
ScorePlanFn = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray, dict[str, float]]]


class _FusedPath:
    """The fused kernels and their work arrays for one planner (see the module docstring)."""

    def __init__(
        self,
        kernels: FusedKernels,
        params: Callable[[], FloatArray],
        forms: Sequence[StageForm],
        weights: Sequence[float],
        samples: bool,
        store: bool,
        shape: tuple[int, int, int, int],
        low: FloatArray,
        high: FloatArray,
        knots: KnotSchedule | None,
    ) -> None:
        K, H, nx, nu = shape
        self.kernels = kernels
        self.params = params  # the model's params_vector, read every step
        self.samples = samples  # draw Gaussian proposals in the kernel
        self.P = pack_params(forms)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.low = np.ascontiguousarray(low, dtype=np.float64)
        self.high = np.ascontiguousarray(high, dtype=np.float64)
        self.parts = np.zeros((K, len(forms)))
        self.total = np.zeros(K)
        # Without constraints nobody reads the K x (H+1) x nx states: the kernel
        # then steps through this 2-slot scratch instead (less memory traffic).
        self.store = store
        self.scratch = np.zeros((K, 2, nx))
        self.no_sigma = np.zeros((H, nu))  # placeholder when the proposals come in U
        # The knot expansion the kernel applies (a placeholder when the search is per step).
        self.basis = np.zeros((1, 1)) if knots is None else knots.basis
        # One-sample buffers to score the executed plan.
        self.U1 = np.zeros((1, H, nu))
        self.X1 = np.zeros((1, H + 1, nx))
        self.parts1 = np.zeros((1, len(forms)))
        self.total1 = np.zeros(1)


class _MemberBuffers:
    """Work arrays for scoring B samples on M ensemble members (the batch, or one plan)."""

    def __init__(self, M: int, B: int, H: int, nx: int, n_terms: int) -> None:
        self.X = np.zeros((M, B, H + 1, nx))  # X[m]: member m's rollouts
        self.costs = np.zeros((M, B))  # each member's cost, before the constraints
        self.violation = np.zeros((M, B))  # each member's summed hard violation
        self.parts = np.zeros((M, B, n_terms))  # the fused kernel's per-term costs
        self.totals = np.zeros((M, B))  # the fused kernel's totals
        self.out = np.zeros(B)  # the aggregate, +inf where infeasible
        self.total_violation = np.zeros(B)  # summed over members


class SamplingPlanner(NominalSettable):
    """Generic sampling MPC: any proposal sampler, any selector, any dynamics.

    Args:
        dynamics: batched model (``Dynamics`` protocol).
        cost: ``CostSum`` or ``fn(X, U) -> (K,)``.
        sampler: where proposals come from.
        selector: how scored proposals become a plan.
        config: shared settings (samples, horizon, iterations, shift, seed).
        constraints: a sample with a positive violation of a hard constraint is
            rejected; a soft one (``hard=False``) adds ``weight * violation`` to
            the cost as term ``soft:<name>`` (see ``cost.constraints``).
        initial_plan: warm start for the first step, Shape=(H, nu), finite; zeros
            clipped to the actuator box by default.
        fused: use the fused Numba path when the model and the cost allow it
            (``uses_fused_path`` tells); False forces the generic path.
        knots: search over these spline knots (``planners.knots.KnotSchedule``): the
            sampler then proposes Shape=(K, M, nu) around the nominal's knots, built
            for M rows; None searches per-step actions.

    With ``config.risk`` the samples are scored over a model ensemble (the module
    docstring); a model that cannot be randomized is an ``InputError`` here.

    Compilation happens here (``warmup``), not on the first control step.
    On the fused path ``timings["rollout"]`` covers rollout and cost, and the
    Gaussian sampling too (``propose`` is then only the seed draw; ``cost`` is
    the hard constraints).
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
        *,
        fused: bool = True,
        knots: KnotSchedule | None = None,
    ) -> None:
        self.dynamics = dynamics
        hard, soft = split_constraints(constraints)
        task_cost = as_cost_sum(cost)
        self.cost = CostSum(*task_cost.terms, *soft) if soft else task_cost
        self.sampler = sampler
        self.selector = selector
        # Capability checks once: isinstance on a runtime protocol walks its members
        # (~10 us each, measured 28 us a plan; a tenth of a small MPPI step's overhead).
        self._reference_sampler = sampler if isinstance(sampler, ReferenceSampler) else None
        self._sample_selector = selector if isinstance(selector, ReturnsSample) else None
        self.config = config
        self.thread_policy = config.threads
        self.constraints = hard
        K, H, nu, nx = config.num_samples, config.horizon, dynamics.nu, dynamics.nx
        self.knots = knots
        rows = _search_rows(knots, sampler, H)  # M knots, or H steps
        self._U = np.zeros((K, H, nu))
        # The search's samples and its plan: knots, or the per-step arrays themselves.
        self._Z = self._U if knots is None else np.zeros((K, rows, nu))
        self._X = np.zeros((K, H + 1, nx))
        self._violation = np.zeros(K)
        self._risk = config.risk
        self._members: MemberRollout | None = None
        self._member_rows = np.zeros((0, 0))  # the members' parameter rows (fused path)
        if config.risk is not None:
            self._members = config.risk.ensemble.build(dynamics)
            M, n_terms = self._members.members, len(self.cost.terms)
            self._mb = _MemberBuffers(M, K, H, nx, n_terms)
            self._mb1 = _MemberBuffers(M, 1, H, nx, n_terms)
            self._X = self._mb.X[0]  # the nominal member's rollouts: the predicted states
        self._plan_buffer = np.zeros((H, nu))
        self._search_plan = self._plan_buffer if knots is None else np.zeros((rows, nu))
        self._candidate = np.zeros((rows, nu))
        self._U1 = np.zeros((1, H, nu))
        self._X1 = np.zeros((1, H + 1, nx))
        self._breakdown: dict[str, FloatArray] = {}
        self._reference: PlanReference | None = None
        self._low, self._high = check_bounds(
            "the dynamics' action bounds", dynamics.action_low, dynamics.action_high, nu
        )
        if initial_plan is None:
            self._initial_plan = np.tile(neutral_action(dynamics), (H, 1))
        else:
            init = check_plan("initial_plan", initial_plan, (H, nu))
            self._initial_plan = np.clip(init, self._low, self._high)
        # Fast path for Numba models: skip per-call validation in the hot loop.
        self._rollout: Callable[..., Any] = fast_rollout(dynamics)
        self._use_path(self._build_fused() if fused else None)
        self.reset(config.seed)
        try:
            self.warmup()
        except Exception as err:
            if self._fused is None:
                raise
            # A model or term Numba cannot fuse: try the generic path. If that fails too,
            # the model or cost itself is broken: its own error is raised, no warning.
            self._use_path(None)
            self.reset(config.seed)
            self.warmup()
            gist = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), "")
            warnings.warn(
                "the model's step and the cost terms could not be fused into one Numba kernel "
                f"({type(err).__name__}: {gist[:200]}); this planner uses the generic path "
                "(rollout, then each cost term: the same results, slower). Pass fused=False "
                "to skip the attempt.",
                RuntimeWarning,
                stacklevel=2,
            )

    def _use_path(self, fused: _FusedPath | None) -> None:
        """Choose the scoring routines once, so the hot loop never branches on the path."""
        self._fused = fused
        if self._members is not None:
            self._use_member_path(fused)
            return
        self._score: ScoreFn = self._score_generic if fused is None else self._score_fused
        self._score_plan: ScorePlanFn = (
            self._score_plan_generic if fused is None else self._score_plan_fused
        )

    def _use_member_path(self, fused: _FusedPath | None) -> None:
        """The ensemble's scoring routines; the fused kernel writes member 0's terms in place."""
        if fused is not None:
            assert isinstance(self._members, ParameterRows)  # _build_fused checked it
            self._member_rows = self._members.parameter_rows
            fused.parts, fused.parts1 = self._mb.parts[0], self._mb1.parts[0]
        self._score = self._score_members
        self._score_plan = self._score_plan_members

    def _build_fused(self) -> _FusedPath | None:
        """Fused kernels if the model is a Numba step model and every term has a per-step form."""
        dyn = self.dynamics
        if not (isinstance(dyn, StepModel) and isinstance(dyn, RolloutMixin)):
            return None
        step = dyn.step_function
        if isinstance(step, types.MethodType):  # a dispatcher bound as a method
            step = step.__func__
        rolls_out_its_step = (
            type(dyn).rollout is RolloutMixin.rollout
            and type(dyn).rollout_unchecked is RolloutMixin.rollout_unchecked
        )
        if step is None or not rolls_out_its_step:
            return None
        if self._members is not None and not isinstance(self._members, ParameterRows):
            return None  # members that are not parameter rows of this step roll out themselves
        forms = self.cost.stage_forms(dyn.nx, dyn.nu)
        if forms is None:
            return None
        sampler = self.sampler
        samples = (
            isinstance(sampler, GaussianSampler)
            and type(sampler).propose is GaussianSampler.propose
        )
        lane_step = dyn.lane_step_function if isinstance(dyn, LaneStepModel) else None
        return _FusedPath(
            make_fused_kernels(step, forms, lane_step=lane_step),
            dyn.params_vector,
            forms,
            [t.weight for t in self.cost.terms],
            samples,
            bool(self.constraints),
            (self.config.num_samples, self.config.horizon, dyn.nx, dyn.nu),
            self._low,
            self._high,
            self.knots,
        )

    @property
    def uses_fused_path(self) -> bool:
        """Whether sampling, rollout and cost run as one fused Numba kernel."""
        return self._fused is not None

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @property
    def reference(self) -> PlanReference | None:
        """What the last step's proposals were compared with (None: the sampler makes none).

        A ``ReferenceSampler`` makes it after each ``propose``; the planner hands it
        to the cost with the rollouts (the consistency term reads it).
        """
        return self._reference

    @property
    def nominal(self) -> FloatArray:
        """A copy of the current warm-start plan, Shape=(H, nu)."""
        return self._nominal.copy()

    def reset(self, seed: int | None = None) -> None:
        """Drop the warm start and re-seed the RNG (``None`` keeps the configured seed)."""
        self._rng = np.random.default_rng(self.config.seed if seed is None else seed)
        self._nominal = self._initial_plan.copy()
        self._fresh = True
        self.sampler.reset()

    def warmup(self) -> None:
        """Compile every kernel on a dummy step, then restore the RNG and warm start."""
        state = np.zeros(self.dynamics.nx)
        saved_rng = self._rng.bit_generator.state
        self._plan_once(state, self._initial_plan.copy())
        self.sampler.reset()
        self._rng.bit_generator.state = saved_rng

    def set_nominal(self, plan: ArrayLike) -> None:
        """Replace the warm start (e.g. with a demonstration or an outside plan).

        Args:
            plan: Shape=(H, nu), finite; clipped to the actuator box.

        Raises:
            ValueError: wrong shape, or a NaN/inf entry (named by step and action).
        """
        arr = check_plan("plan", plan, (self.config.horizon, self.dynamics.nu))
        self._nominal = np.clip(arr, self._low, self._high)
        self._fresh = False

    @under_thread_policy
    def plan(self, state: ArrayLike) -> PlanResult:
        """One control step from the measured state ``Shape=(nx,)``."""
        x = check_state(state, self.dynamics.nx)
        self.sampler.start_step(x)
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

    def _reject_infeasible(
        self, X: FloatArray, U: FloatArray, costs: FloatArray, violation: FloatArray | None = None
    ) -> None:
        """Set the cost of every sample that violates a hard constraint to +inf.

        With ``violation`` given, also write each sample's summed violation into
        it (+inf for a sample whose cost was already unscorable), so that the
        least-violating sample can be found when none is feasible.
        """
        if not self.constraints:
            return  # the violations are read only when there are constraints
        totals = _NO_TOTALS if violation is None else violation
        for i, constraint in enumerate(self.constraints):
            v = np.asarray(constraint.violation(X, U), dtype=np.float64)
            if v.shape != costs.shape:
                raise ValueError(
                    f"constraint {constraint_name(constraint)!r} returned shape {v.shape}; "
                    f"violation(X, U) must return one number per sample, Shape={costs.shape}."
                )
            # NaN -> +inf, costs of violating samples -> +inf, the sum: one pass
            reject_violating(costs, v, totals, i == 0)

    def _propose(self, x: FloatArray, plan: FloatArray, Z: FloatArray) -> None:
        """Fill ``Z`` with proposals around ``plan``; take the sampler's reference for them.

        ``Z`` and ``plan`` are in the search's space: knots Shape=(K, M, nu) and (M, nu),
        or per-step actions.
        """
        self.sampler.propose(x, plan, self._rng, Z)
        if self._reference_sampler is not None:
            self._reference = self._reference_sampler.reference(plan)

    def _score_generic(
        self, x: FloatArray, plan: FloatArray, timings: dict[str, float]
    ) -> FloatArray:
        """Propose, roll out and score K samples around ``plan``; returns costs Shape=(K,)."""
        U, X = self._U, self._X
        t0 = time.perf_counter()
        self._propose(x, plan, self._Z)
        if self.knots is not None:
            self.knots.expand(self._Z, self._low, self._high, U)
        t1 = time.perf_counter()
        self._rollout(x, U, X)
        t2 = time.perf_counter()
        costs, self._breakdown = self.cost.evaluate(X, U, self._reference)
        self._reject_infeasible(X, U, costs, self._violation)
        t3 = time.perf_counter()
        timings["propose"] += t1 - t0
        timings["rollout"] += t2 - t1
        timings["cost"] += t3 - t2
        return costs

    def _score_fused(
        self, x: FloatArray, plan: FloatArray, timings: dict[str, float]
    ) -> FloatArray:
        """``_score_generic`` with rollout and cost (and Gaussian sampling) in one kernel."""
        fused = self._fused
        assert fused is not None
        U, Z, X, costs = self._U, self._Z, self._X, fused.total
        t0 = time.perf_counter()
        if fused.samples:
            sampler: GaussianSampler = self.sampler  # type: ignore[assignment]
            seed = draw_seed(self._rng)  # the same draw GaussianSampler.propose makes
            sigma, first_noisy, low, high = (
                sampler.sigma,
                sampler.nominal_rows,
                sampler.low,
                sampler.high,
            )
        else:
            self._propose(x, plan, Z)
            seed, sigma, first_noisy, low, high = (
                np.uint64(0),
                fused.no_sigma,
                0,
                fused.low,
                fused.high,
            )
        t1 = time.perf_counter()
        fused.kernels.parallel(
            x, Z, U, fused.basis, plan, sigma, low, high, first_noisy, seed, fused.samples,
            fused.store, fused.params(), fused.P, fused.weights,
            X if fused.store else fused.scratch, fused.parts, costs,
        )  # fmt: skip
        t2 = time.perf_counter()
        self._reject_infeasible(X, U, costs, self._violation)
        t3 = time.perf_counter()
        timings["propose"] += t1 - t0
        timings["rollout"] += t2 - t1
        timings["cost"] += t3 - t2
        return costs

    def _plan_once(self, x: FloatArray, nominal: FloatArray) -> PlanResult:
        t_start = time.perf_counter()
        timings = {"propose": 0.0, "rollout": 0.0, "cost": 0.0, "select": 0.0}
        U, Z, plan, candidate = self._U, self._Z, self._plan_buffer, self._candidate
        plan[:] = nominal
        knots = self.knots
        # The search's mean: the plan itself, or its knots re-fitted (the shifted warm start).
        search = plan if knots is None else knots.fit(nominal, self._search_plan)
        best = -1
        costs = np.empty(0)
        for _ in range(self.config.iterations):
            costs = self._score(x, search, timings)
            t3 = time.perf_counter()
            best = self.selector.select(Z, costs, candidate)
            if best >= 0:
                search[:] = candidate
            self.sampler.update(Z, costs)
            timings["select"] += time.perf_counter() - t3
        if knots is not None:
            knots.expand_plan(search, self._low, self._high, plan)
        num_feasible = int(np.count_nonzero(np.isfinite(costs)))
        if num_feasible == 0 and self.constraints:
            # Nothing is safe: hand back the least-violating sample rather than a
            # stale plan; the safety guard decides what is executed.
            least = int(np.argmin(self._violation))
            if np.isfinite(self._violation[least]):
                plan[:] = U[least]
        predicted, plan_cost, term_costs = self._describe_plan(x, plan, best, costs)
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
        self, x: FloatArray, plan: FloatArray, best: int, costs: FloatArray
    ) -> tuple[FloatArray, float, dict[str, float]]:
        """Predicted states, cost and per-term cost of the plan that will be executed."""
        selector = self._sample_selector
        if best >= 0 and selector is not None and selector.returns_sample:
            return self._sample_states(x, best), float(costs[best]), self._sample_terms(best)
        # The plan is not one of the samples (an average): score it on its own.
        X1, total, terms = self._score_plan(x, plan)
        return X1[0].copy(), float(total[0]), terms

    def _sample_states(self, x: FloatArray, k: int) -> FloatArray:
        """Predicted states of sample ``k``, Shape=(H+1, nx) (re-rolled if not kept)."""
        fused = self._fused
        if fused is None or fused.store:
            return self._X[k].copy()
        X1 = self._score_plan_fused(x, self._U[k])[0]
        return X1[0].copy()

    def _sample_terms(self, k: int) -> dict[str, float]:
        """Weighted per-term costs of sample ``k`` of the last iteration."""
        if self._fused is not None:
            parts = self._fused.parts[k]
            return {n: float(v) for n, v in zip(self.cost.names, parts, strict=True)}
        return {n: float(v[k]) for n, v in self._breakdown.items()}

    def _score_plan_generic(
        self, x: FloatArray, plan: FloatArray
    ) -> tuple[FloatArray, FloatArray, dict[str, float]]:
        U1, X1 = self._U1, self._X1
        U1[0] = plan
        self._rollout(x, U1, X1)
        total, parts = self.cost.evaluate(X1, U1, self._reference)
        self._reject_infeasible(X1, U1, total)
        return X1, total, {n: float(v[0]) for n, v in parts.items()}

    def _score_plan_fused(
        self, x: FloatArray, plan: FloatArray
    ) -> tuple[FloatArray, FloatArray, dict[str, float]]:
        fused = self._fused
        assert fused is not None
        U1, X1, total = fused.U1, fused.X1, fused.total1
        U1[0] = plan
        fused.kernels.serial(
            x, U1, U1, fused.basis, plan, fused.no_sigma, fused.low, fused.high, 0,
            np.uint64(0), False, True, fused.params(), fused.P, fused.weights, X1, fused.parts1,
            total,
        )  # fmt: skip
        self._reject_infeasible(X1, U1, total)
        parts = fused.parts1[0]
        return X1, total, {n: float(v) for n, v in zip(self.cost.names, parts, strict=True)}

    # --- scoring over a model ensemble (config.risk) ----------------------------------------

    def _member_costs(
        self,
        x: FloatArray,
        Z: FloatArray,
        U: FloatArray,
        plan: FloatArray,
        mb: _MemberBuffers,
        sample: bool,
    ) -> dict[str, FloatArray]:
        """Roll ``U`` Shape=(B, H, nu) out on every member; fill ``mb``'s costs and violations.

        ``Z``: the search's samples (knots, expanded into ``U`` by the fused kernel), or ``U``.
        ``sample``: the fused kernel draws the Gaussian proposals into ``Z`` on member 0.
        Returns member 0's per-term costs on the generic path (empty on the fused one).
        """
        members = self._members
        assert members is not None
        fused = self._fused
        breakdown: dict[str, FloatArray] = {}
        if fused is None:
            members.rollout_members(x, U, mb.X)
            for m in range(members.members):
                costs, parts = self.cost.evaluate(mb.X[m], U, self._reference)
                if m == 0:
                    breakdown = parts
                mb.costs[m] = costs
                self._reject_infeasible(mb.X[m], U, costs, mb.violation[m])
            return breakdown
        rows = self._member_rows
        kernel = fused.kernels.parallel if U.shape[0] > 1 else fused.kernels.serial
        if sample:
            sampler: GaussianSampler = self.sampler  # type: ignore[assignment]
            seed = draw_seed(self._rng)  # the same draw GaussianSampler.propose makes
            args = (sampler.sigma, sampler.low, sampler.high, sampler.nominal_rows, seed)
        else:
            args = (fused.no_sigma, fused.low, fused.high, 0, np.uint64(0))
        sigma, low, high, first_noisy, seed = args
        store = fused.store or U.shape[0] == 1
        for m in range(members.members):
            X = mb.X[m] if store else fused.scratch
            kernel(
                x, Z, U, fused.basis, plan, sigma, low, high, first_noisy, seed,
                sample and m == 0, store, rows[m], fused.P, fused.weights, X, mb.parts[m],
                mb.totals[m],
            )  # fmt: skip
            mb.costs[m] = mb.totals[m]
            self._reject_infeasible(mb.X[m], U, mb.totals[m], mb.violation[m])
        return breakdown

    def _score_members(
        self, x: FloatArray, plan: FloatArray, timings: dict[str, float]
    ) -> FloatArray:
        """Propose K samples, score each on every member, aggregate: costs Shape=(K,)."""
        risk, mb, fused = self._risk, self._mb, self._fused
        assert risk is not None
        U = self._U
        t0 = time.perf_counter()
        sample = fused is not None and fused.samples
        if not sample:
            self._propose(x, plan, self._Z)
            if self.knots is not None and fused is None:
                self.knots.expand(self._Z, self._low, self._high, U)
        t1 = time.perf_counter()
        breakdown = self._member_costs(x, self._Z, U, plan, mb, sample)
        if fused is None:
            self._breakdown = breakdown
        t2 = time.perf_counter()
        risk.combine(mb.costs, mb.violation, mb.out, mb.total_violation)
        self._violation[:] = mb.total_violation
        t3 = time.perf_counter()
        timings["propose"] += t1 - t0
        timings["rollout"] += t2 - t1
        timings["cost"] += t3 - t2
        return mb.out

    def _score_plan_members(
        self, x: FloatArray, plan: FloatArray
    ) -> tuple[FloatArray, FloatArray, dict[str, float]]:
        """The plan on every member: the nominal's states and terms, the aggregate cost."""
        risk, mb = self._risk, self._mb1
        assert risk is not None
        U1 = self._U1
        U1[0] = plan
        breakdown = self._member_costs(x, U1, U1, plan, mb, False)
        risk.combine(mb.costs, mb.violation, mb.out, mb.total_violation)
        if self._fused is not None:
            names = self.cost.names
            terms = {n: float(v) for n, v in zip(names, mb.parts[0, 0], strict=True)}
        else:
            terms = {n: float(v[0]) for n, v in breakdown.items()}
        return mb.X[0], mb.out, terms
