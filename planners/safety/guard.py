"""The safety guard: nothing unchecked reaches the actuators, and the loop never stalls.

``SafetyGuard`` wraps any planner (``plan(state) -> PlanResult``) and is a
planner itself, so a closed loop, a residual policy or an evaluation harness
uses it unchanged. Each step it

1. plans (through ``DeadlineRunner`` when a deadline is set: a plan that is not
   ready in time is a *deadline miss*, never a wait);
2. checks the plan on the measured state: finite actions inside the actuator
   box, and the model's rollout of the plan from this state violating no hard
   constraint (this includes the issue's one-step check of the first action);
3. if the planner failed (an exception, a deadline miss, no feasible sample,
   NaN actions) or the check failed, asks the configured fallbacks in order
   (``planners.safety.fallbacks``: ``PreviousPlan`` the rest of the last
   executed plan, ``Brake`` a closed-loop stopping trajectory, ``Hold`` the
   neutral action held, ``SafePlan`` a user-supplied optimiser, e.g. the CBF
   safety filter) and executes the first proposal that passes the same check.
   If none does, it executes the candidate with the smallest predicted
   violation: there is always an action.
   Every fallback is recorded as a ``GuardEvent`` with its reason.

A lost or invalid measurement (NaN, wrong shape, not numbers) is a *stale
state*. The guard then predicts the state from the last valid one through the
actions that took effect since (dead reckoning on its model). For
``GuardConfig.stale_timeout`` steps it plans and checks from that prediction as
usual; past the timeout it stops the robot: ``GuardConfig.stale_stop`` (a brake,
then the held neutral action) proposed and checked on the prediction. Every
stale step is a ``GuardEvent``. Before the first valid measurement there is
nothing to predict from, and the guard holds the neutral action (what the robot
plays before its first command anyway). Nothing else is ever sent unchecked.

The guard checks with the planner's constraints, margins included: the
margins are what absorbs sensor noise and model error (see ``imle_mpc.loop.faults``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cost.constraints import split_constraints
from imle_mpc.core.actions import DelayLine, neutral_action
from imle_mpc.core.errors import PlanningTimeoutError
from imle_mpc.core.kernels.compare import all_finite
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import Dynamics, Planner, fast_rollout
from imle_mpc.core.threads import PLANNING_THREADS, ThreadPolicy, under_thread_policy
from imle_mpc.core.validation import FloatArray, require_int_at_least, valid_measurement
from imle_mpc.core.wrapper import PlannerWrapper
from planners.safety.fallbacks import (
    FALLBACK_TYPES,
    Brake,
    BrakeFn,
    Fallback,
    FallbackContext,
    Hold,
    PreviousPlan,
    SafePlan,
    SafePlanFn,
)

FALLBACKS = tuple(FALLBACK_TYPES)
"""The shipped fallbacks' names: ``previous``, ``brake``, ``hold``, ``casadi``."""


@dataclass(frozen=True)
class GuardConfig:
    """How the guard checks and falls back.

    Attributes:
        fallbacks: ``Fallback`` objects (``planners.safety.fallbacks``), asked in
            order when the plan is not usable. ``SafePlan()`` needs a ``fn`` or a
            ``safe_plan`` function on the guard. A name from ``FALLBACKS`` is
            still accepted in place of its object, with a ``DeprecationWarning``.
        deadline: seconds the planner may take per step (``None``: wait for
            it, the right choice in simulation). On a miss the previous plan's
            next action is executed and the late plan is dropped.
        action_tolerance: how far outside the actuator box an action may be
            before the check fails (rounding slack).
        stale_timeout: control steps a lost measurement may be bridged by planning
            from the predicted state (0: stop at the first lost one). A model's
            prediction drifts from the robot, so keep it short.
        stale_stop: what is executed past the timeout, tried in order on the
            predicted state and checked like any plan (default: brake, then hold).
        threads: the threads the guard's step (the plan and its checks) may use
            (``imle_mpc.core.threads``; default one Numba and one torch thread).
    """

    fallbacks: tuple[Fallback, ...] = (PreviousPlan(), Brake(), Hold())
    deadline: float | None = None
    action_tolerance: float = 1e-9
    stale_timeout: int = 0
    stale_stop: tuple[Fallback, ...] = (Brake(), Hold())
    threads: ThreadPolicy = PLANNING_THREADS

    def __post_init__(self) -> None:
        object.__setattr__(self, "fallbacks", _fallback_objects(self.fallbacks))
        object.__setattr__(self, "stale_stop", _fallback_objects(self.stale_stop))
        if not self.stale_stop:
            raise ValueError(
                "GuardConfig.stale_stop is empty: give at least one way to stop, e.g. (Hold(),)."
            )
        require_int_at_least("GuardConfig", "stale_timeout", self.stale_timeout, 0)
        if self.deadline is not None and not self.deadline > 0:
            raise ValueError(
                f"GuardConfig.deadline must be > 0 seconds or None, got {self.deadline!r}."
            )
        if not self.action_tolerance >= 0:
            raise ValueError(
                f"GuardConfig.action_tolerance must be >= 0, got {self.action_tolerance!r}."
            )


def _fallback_objects(entries: Sequence[Fallback | str]) -> tuple[Fallback, ...]:
    """The fallbacks as objects: a (deprecated) name becomes its shipped fallback."""
    unknown = [f for f in entries if isinstance(f, str) and f not in FALLBACK_TYPES]
    if unknown:
        raise ValueError(
            f"GuardConfig.fallbacks has unknown entries {unknown}; choose from {FALLBACKS}."
        )
    names = [f for f in entries if isinstance(f, str)]
    if names:
        warnings.warn(
            f"GuardConfig.fallbacks as names {names} is deprecated; pass the objects of "
            "planners.safety.fallbacks, e.g. (PreviousPlan(), Brake(), Hold(), SafePlan()).",
            DeprecationWarning,
            stacklevel=4,
        )
    objects = tuple(FALLBACK_TYPES[f]() if isinstance(f, str) else f for f in entries)
    wrong = [f for f in objects if not isinstance(f, Fallback)]
    if wrong:
        raise TypeError(
            f"GuardConfig.fallbacks entries {wrong} are not fallbacks: each needs a `name` "
            "and `propose(state, context) -> plan or None` (see planners.safety.fallbacks)."
        )
    return objects


@dataclass(frozen=True)
class GuardEvent:
    """One step on which the guard did not execute the planner's plan as it was.

    Attributes:
        step: control step (0 = first ``plan`` call after ``reset``).
        reason: why (``"deadline"``, ``"no feasible sample"``, ``"planner error: ..."``,
            ``"check failed: ..."``, ``"stale state ..."``).
        fallback: what was executed instead (the fallback's ``name``, one of
            ``FALLBACKS`` for the shipped ones, or ``"least_violation:<name>"``
            when no candidate passed the check).
        violation: predicted violation of what was executed (0 = safe).
    """

    step: int
    reason: str
    fallback: str
    violation: float


class DeadlineRunner:
    """Runs ``planner.plan`` on a worker thread and waits at most ``deadline`` seconds.

    A plan that is not ready in time raises ``PlanningTimeoutError``; it keeps
    running, and while it does every later call raises at once (the loop never
    blocks on it). A plan that finishes late is dropped: it was made for an
    old state.
    """

    def __init__(self, planner: Planner, deadline: float) -> None:
        self.planner = planner
        self.deadline = deadline
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="planner")
        self._pending: Future[PlanResult] | None = None

    @property
    def busy(self) -> bool:
        """Whether a late plan is still running."""
        return self._pending is not None and not self._pending.done()

    def plan(self, state: FloatArray) -> PlanResult:
        if self.busy:
            raise PlanningTimeoutError("the previous plan is still running")
        self._pending = self._pool.submit(self.planner.plan, state)
        try:
            result = self._pending.result(timeout=self.deadline)
        except TimeoutError:
            raise PlanningTimeoutError(f"planning took longer than {self.deadline:.4f} s") from None
        self._pending = None
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass
class _Candidate:
    name: str
    actions: FloatArray
    states: FloatArray
    violation: float


@dataclass
class _Memory:
    """What the guard carries between steps."""

    in_flight: DelayLine  # sent, not yet in effect
    previous: FloatArray | None = None  # the last executed plan, shifted to start now
    step: int = 0
    events: list[GuardEvent] = field(default_factory=list)
    # The last measured (or predicted) state and the action that took effect on it:
    # where the next state is predicted from when the measurement is lost.
    last_state: FloatArray | None = None
    last_effect: FloatArray | None = None
    stale: int = 0  # consecutive steps without a valid measurement


class SafetyGuard(PlannerWrapper):
    """A planner wrapper that checks every plan and falls back when it is not safe.

    Args:
        planner: any planner; its ``horizon`` sets the plan length.
        dynamics: the model the checks roll out (usually the planner's).
        constraints: the hard constraints to enforce (soft ones are ignored).
        config: fallbacks and deadline.
        brake: the stopping feedback law of a ``Brake()`` fallback; without one
            the brake is ``StoppingBrake`` when ``velocity_dims`` is given, else
            it is skipped.
        velocity_dims: state entries that are velocities (for the default brake).
        safe_plan: the optimiser of a ``SafePlan()`` fallback (``casadi``),
            ``fn(state, reference) -> plan or None``.
        action_delay: the robot's known actuation delay in control steps. The
            guard then plans and checks from the state predicted through the
            actions already sent but not yet in effect (delay compensation).

    Example:
        >>> guard = SafetyGuard(planner, task.dynamics, task.constraints,
        ...                     velocity_dims=(2, 3))          # doctest: +SKIP
        >>> result = guard.plan(x)  # result.fallback says if it stepped in
    """

    def __init__(
        self,
        planner: Planner,
        dynamics: Dynamics,
        constraints: Sequence[Any] = (),
        config: GuardConfig = GuardConfig(),
        brake: BrakeFn | None = None,
        velocity_dims: Sequence[int] = (),
        safe_plan: SafePlanFn | None = None,
        action_delay: int = 0,
    ) -> None:
        needs_fn = any(isinstance(f, SafePlan) and f.fn is None for f in config.fallbacks)
        if needs_fn and safe_plan is None:
            raise ValueError(
                "GuardConfig.fallbacks lists 'casadi' (SafePlan()) but no safe_plan function "
                "was given; pass safe_plan=... (e.g. a CBFSafetyFilter), SafePlan(fn), or "
                "drop it."
            )
        super().__init__(planner)
        self.dynamics = dynamics
        self.constraints, _ = split_constraints(constraints)
        self.config = config
        self.thread_policy = config.threads
        if brake is None and velocity_dims:
            brake = StoppingBrake(dynamics, velocity_dims)
        self.brake = brake
        self.safe_plan = safe_plan
        self._runner = (
            DeadlineRunner(planner, config.deadline) if config.deadline is not None else None
        )
        self._low = np.asarray(dynamics.action_low, dtype=np.float64)
        self._high = np.asarray(dynamics.action_high, dtype=np.float64)
        self._neutral = neutral_action(dynamics)
        self._rollout = fast_rollout(dynamics)
        require_int_at_least("SafetyGuard", "action_delay (control steps)", action_delay, 0)
        self.action_delay = int(action_delay)
        self._memory = self._fresh_memory()
        self._warm_up_check()

    @property
    def events(self) -> list[GuardEvent]:
        """Fallbacks since the last ``reset``, in order."""
        return list(self._memory.events)

    def reset(self, seed: int | None = None) -> None:
        """Reset the planner and forget the previous plan and the events."""
        if self._runner is not None and self._runner.busy:
            self._runner.close()
            self._runner = DeadlineRunner(self.planner, self._runner.deadline)
        super().reset(seed)
        self._memory = self._fresh_memory()

    def set_nominal(self, plan: FloatArray) -> None:
        """Hand ``plan`` to the planner as its warm start, unless a late plan still runs."""
        if self._runner is not None and self._runner.busy:
            return  # the planner is busy on the worker thread: leave it alone
        super().set_nominal(plan)

    def _fresh_memory(self) -> _Memory:
        # Before the first command the robot plays the neutral action.
        return _Memory(in_flight=DelayLine(self.action_delay, self._neutral))

    def _predict_through_delay(self, x: FloatArray) -> FloatArray:
        """The state when the next command takes effect: x rolled through the in-flight ones."""
        in_flight = self._memory.in_flight
        if not in_flight.steps:
            return x
        U = in_flight.pending[None]
        X = self.dynamics.rollout(x, U)
        return np.asarray(X[0, -1].copy())

    @under_thread_policy
    def plan(self, state: FloatArray) -> PlanResult:
        """Plan, check, fall back if needed; ``result.fallback`` says what happened.

        ``state`` may be anything a sensor driver hands over: a lost or invalid
        measurement is a stale state (see the module docstring), never an error.
        """
        t0 = time.perf_counter()
        memory = self._memory
        x = valid_measurement(state, self.dynamics.nx)
        if x is not None:
            memory.stale = 0
        else:
            memory.stale += 1
            x = self._dead_reckoned()
        if x is None:
            result = self._hold_before_first_measurement(t0)
        elif memory.stale == 0:
            result = self._checked_plan(self._predict_through_delay(x), t0)
        else:
            result = self._stale_step(self._predict_through_delay(x), t0)
        memory.last_state = x
        memory.last_effect = memory.in_flight.push(result.action)
        memory.previous = _shifted(result.actions)
        memory.step += 1
        return result

    def _dead_reckoned(self) -> FloatArray | None:
        """The state now, predicted from the last one through the action that took effect."""
        memory = self._memory
        if memory.last_state is None or memory.last_effect is None:
            return None
        U = np.ascontiguousarray(memory.last_effect[None, None])
        X = self._rollout(memory.last_state, U, np.empty((1, 2, self.dynamics.nx)))
        x = np.asarray(X[0, 1].copy())
        return x if np.all(np.isfinite(x)) else None

    # -- one step ---------------------------------------------------------------------------

    def _stale_step(self, x: FloatArray, t0: float) -> PlanResult:
        """A step without a valid measurement, from the predicted state ``x``."""
        memory, timeout = self._memory, self.config.stale_timeout
        stale = f"stale state ({memory.stale} step(s) without a valid measurement"
        if memory.stale <= timeout:
            # Bridge a short outage: plan from the prediction, checked as usual.
            events = len(memory.events)
            result = self._checked_plan(x, t0)
            if len(memory.events) == events:  # the planner's plan passed: still say so
                reason = f"{stale}, within the timeout of {timeout}): planned from the prediction"
                memory.events.append(GuardEvent(memory.step, reason, "planner", 0.0))
                result = dataclasses.replace(result, fallback=f"{reason} -> planner")
            return result
        reason = f"{stale}, past the timeout of {timeout}): stopping"
        chosen = self._first_safe(x, self.config.stale_stop, [])
        memory.events.append(GuardEvent(memory.step, reason, chosen.name, chosen.violation))
        self._warm_start(chosen.actions)
        return self._result(chosen, None, reason, False, t0)

    def _checked_plan(self, x: FloatArray, t0: float) -> PlanResult:
        result: PlanResult | None = None
        missed = False
        try:
            result = self._runner.plan(x) if self._runner is not None else self.planner.plan(x)
            reason = self._problem(result)
        except PlanningTimeoutError:
            reason, missed = "deadline", True
        except Exception as err:  # the loop must survive a broken planner
            reason = f"planner error: {type(err).__name__}: {err}"
        # The planner's own plan, checked once: executed if safe, else a fallback candidate.
        candidates: list[_Candidate] = []
        if result is not None and _well_formed(result.actions, self.horizon, self.dynamics.nu):
            candidates.append(self._candidate("planner", x, result.actions))
        if reason is None:
            assert result is not None and candidates
            if candidates[0].violation == 0.0:
                return result
            reason = f"check failed: predicted violation {candidates[0].violation:.3g}"
        chosen = self._fallback(x, candidates)
        self._memory.events.append(
            GuardEvent(self._memory.step, reason, chosen.name, chosen.violation)
        )
        self._warm_start(chosen.actions)
        return self._result(chosen, result, reason, missed, t0)

    def _problem(self, result: PlanResult) -> str | None:
        """Why a planner result cannot be used as it is, or None."""
        actions = np.asarray(result.actions)
        expected = (self.horizon, self.dynamics.nu)
        if actions.shape != expected:
            return f"planner returned actions of shape {actions.shape}, expected {expected}"
        if not all_finite(actions):
            return "planner returned non-finite actions"
        if result.num_feasible == 0:
            return "no feasible sample"
        return None

    def _fallback(self, x: FloatArray, tried: list[_Candidate]) -> _Candidate:
        """The first configured fallback that passes the check, else the least violating."""
        return self._first_safe(x, self.config.fallbacks, tried)

    def _first_safe(
        self, x: FloatArray, fallbacks: Sequence[Fallback], tried: list[_Candidate]
    ) -> _Candidate:
        """The first of ``fallbacks`` whose plan from ``x`` passes the check, else the
        least violating of them and of ``tried``."""
        context = FallbackContext(
            self.dynamics, self.horizon, self._memory.previous, self._neutral,
            self._low, self._high, self.brake, self.safe_plan,
        )  # fmt: skip
        for fallback in fallbacks:
            actions = fallback.propose(x, context)
            if actions is None:
                continue
            candidate = self._candidate(fallback.name, x, actions)
            if candidate.violation == 0.0:
                return candidate
            tried.append(candidate)
        if not tried:  # nothing at all to compare: hold the neutral action
            tried.append(self._candidate("hold", x, self._hold_plan()))
        least = min(tried, key=lambda c: c.violation)
        least.name = f"least_violation:{least.name}"
        return least

    def _warm_up_check(self) -> None:
        """Compile the check's rollout and constraints now, not on the first control step."""
        # A model that rejects the zero state says so on the first real step instead.
        with contextlib.suppress(Exception):
            x = np.zeros(self.dynamics.nx)
            self._candidate("hold", x, self._hold_plan())
            if self.action_delay:
                self.dynamics.rollout(x, self._memory.in_flight.pending[None])

    def _hold_plan(self) -> FloatArray:
        return np.tile(self._neutral, (self.horizon, 1))

    def _candidate(self, name: str, x: FloatArray, actions: FloatArray) -> _Candidate:
        """Roll ``actions`` out from ``x`` and total its hard-constraint violation.

        A plan outside the actuator box fails the check by how far it is outside, and
        is checked (and, as the least violating, executed) clipped to the box: what the
        actuators can do is what is rolled out, and nothing outside the box is sent.
        """
        actions = np.asarray(actions, dtype=np.float64)
        tol = self.config.action_tolerance
        outside = np.maximum(np.maximum(self._low - actions, actions - self._high), 0.0).max()
        if outside > 0.0:
            actions = np.clip(actions, self._low, self._high)
        U = np.ascontiguousarray(actions[None])
        # Shapes are checked already (x here, plans by _well_formed or by construction).
        X = self._rollout(np.ascontiguousarray(x), U, np.empty((1, U.shape[1] + 1, len(x))))
        violation = 0.0 if outside <= tol else float(outside)
        if not all_finite(X):
            violation = np.inf
        for constraint in self.constraints:
            v = float(np.asarray(constraint.violation(X, U), dtype=np.float64)[0])
            violation += np.inf if np.isnan(v) else max(v, 0.0)
        return _Candidate(name, actions, X[0], violation)

    def _hold_before_first_measurement(self, t0: float) -> PlanResult:
        """No valid state yet, nothing to predict from: the neutral action, which the
        robot plays before its first command anyway (the one action sent unchecked)."""
        reason = "stale state (no valid measurement yet): holding the neutral action"
        self._memory.events.append(GuardEvent(self._memory.step, reason, "hold", np.nan))
        chosen = _Candidate(
            "hold", self._hold_plan(), np.full((0, self.dynamics.nx), np.nan), np.nan
        )
        return self._result(chosen, None, reason, False, t0)

    def _warm_start(self, actions: FloatArray) -> None:
        """Tell the planner what was executed, so its next warm start is aligned."""
        # A planner with another horizon keeps its own warm start.
        with contextlib.suppress(ValueError, TypeError):
            self.set_nominal(actions)

    def _result(
        self,
        chosen: _Candidate,
        planned: PlanResult | None,
        reason: str,
        missed: bool,
        t0: float,
    ) -> PlanResult:
        timings = dict(planned.timings) if planned is not None else {}
        timings["guard_total"] = time.perf_counter() - t0
        return PlanResult(
            actions=chosen.actions.copy(),
            cost=float("nan"),
            term_costs={},
            num_feasible=planned.num_feasible if planned is not None else 0,
            best_index=-1,
            predicted_states=chosen.states.copy(),
            timings=timings,
            samples=planned.samples if planned is not None else None,
            fallback=f"{reason} -> {chosen.name}",
            deadline_missed=missed,
        )


def _well_formed(actions: Any, horizon: int, nu: int) -> bool:
    """A plan of the right shape with finite entries (worth comparing as a candidate)."""
    arr = np.asarray(actions)
    return arr.shape == (horizon, nu) and all_finite(arr)


def _shifted(actions: FloatArray) -> FloatArray:
    """The plan one step later: drop the executed action, hold the last one."""
    actions = np.asarray(actions, dtype=np.float64)
    return np.concatenate([actions[1:], actions[-1:]], axis=0)


class StoppingBrake:
    """A model-based brake: the action that brings the velocities closest to zero in one step.

    For control-affine models (every shipped model, torque-controlled arms) the
    next velocity is affine in the action, so two finite-difference rollouts per
    action entry give the exact least-squares stopping action, clipped to the
    actuator box. Works for any ``Dynamics``, no hand-written brake needed.
    """

    def __init__(self, dynamics: Dynamics, velocity_dims: Sequence[int], step: float = 1e-3):
        dims = np.asarray(velocity_dims, dtype=np.int64)
        if dims.size == 0 or dims.min() < 0 or dims.max() >= dynamics.nx:
            raise ValueError(
                f"velocity_dims={list(velocity_dims)} must be indices into the state of "
                f"size {dynamics.nx}."
            )
        self.dynamics = dynamics
        self.velocity_dims = dims
        self.step = step
        nu = dynamics.nu
        # Sample 0: the neutral action; 1..nu: one entry nudged by +step each.
        self._U = np.zeros((nu + 1, 1, nu))
        for j in range(nu):
            self._U[j + 1, 0, j] = step
        self._low = np.asarray(dynamics.action_low, dtype=np.float64)
        self._high = np.asarray(dynamics.action_high, dtype=np.float64)

    def __call__(self, state: FloatArray) -> FloatArray:
        X = self.dynamics.rollout(state, self._U)
        v = X[:, 1, self.velocity_dims]
        v0 = v[0]
        B = (v[1:] - v0).T / self.step  # d v_next / d u, Shape=(nv, nu)
        u, *_ = np.linalg.lstsq(B, -v0, rcond=None)
        return np.asarray(np.clip(u, self._low, self._high))


class PassThrough(PlannerWrapper):
    """The unguarded loop, for comparison: executes whatever the planner returns.

    A missed deadline (``PlanningTimeoutError``) or a lost measurement plays the
    previous plan's next action unchecked (the neutral action before the first
    plan), as a plain MPC loop would; any other planner error propagates.
    """

    def __init__(self, planner: Planner, dynamics: Dynamics) -> None:
        super().__init__(planner)
        self._neutral_plan = np.tile(neutral_action(dynamics), (int(planner.horizon), 1))
        self._nx = dynamics.nx
        self._previous: FloatArray | None = None

    def reset(self, seed: int | None = None) -> None:
        """Reset the planner and forget the previous plan."""
        super().reset(seed)
        self._previous = None

    def plan(self, state: FloatArray) -> PlanResult:
        """The planner's plan, or the previous plan's rest when the step was dropped
        or the measurement lost (as a plain MPC loop without a guard would)."""
        try:
            if valid_measurement(state, self._nx) is None:
                raise PlanningTimeoutError("no valid measurement to plan from")
            result = self.planner.plan(state)
        except PlanningTimeoutError:
            previous = self._neutral_plan if self._previous is None else self._previous
            result = PlanResult(
                actions=previous, cost=float("nan"), term_costs={}, num_feasible=0,
                best_index=-1, predicted_states=np.empty((0, 0)), deadline_missed=True,
            )  # fmt: skip
        self._previous = _shifted(result.actions)
        return result
