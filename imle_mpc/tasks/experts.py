"""Scripted experts and the demonstrations they make: the part every task family shares.

A task family writes only its expert: ``fn(task, route, rng) -> (x0, controller)``,
a feedback controller that follows one chosen route (mode) and never touches an
obstacle (``navigation.nav_expert``, ``arm.arm_expert``). ``ScriptedDemos`` turns
it into the task's demonstration recipe (``Task.demos.generate``):

Each demonstration draws (from one ``np.random.Generator`` seeded once) a start
jittered a little and a slightly different path, so demonstrations of one route
are similar but not identical. Routes are balanced: for N demonstrations and M
routes each route appears N // M or N // M + 1 times, in shuffled order. Every
demonstration is checked (task success, minimum clearance, the intended route)
before it is kept.

Observation
-----------
``observation(state)`` is the observation used in the datasets AND at control
time: the full state vector as float64 (navigation ``(px, py, vx, vy)`` in the
world frame, arm ``(q1, q2, dq1, dq2)``). The goal and the obstacles of a task
are fixed, so the state determines the situation. The generator conditions on
the last two observations; at the first step of an episode, repeat the first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import BatchObservation
from imle_mpc.core.validation import FloatArray
from imle_mpc.learn.demos import DemoDataset, Episode
from imle_mpc.tasks.base import Task

OBSERVATION_DOC = (
    "observation = the full state, float64 (navigation: px, py, vx, vy in the world frame; "
    "arm: q1, q2, dq1, dq2); condition on the last 2 observations, the first one repeated at "
    "the start of an episode."
)

EXPERT_MIN_CLEARANCE = 0.15
"""Every kept demonstration stays at least this far (m) from every obstacle."""

Controller = Callable[[FloatArray, int], FloatArray]
"""``controller(state Shape=(nx,), step) -> action Shape=(nu,)`` (clipped afterwards)."""

ExpertFactory = Callable[[Task, str, "np.random.Generator | None"], tuple[FloatArray, Controller]]
"""``fn(task, route, rng) -> (x0 Shape=(nx,), controller)``; ``rng=None``: the nominal run."""


class StateObservation(BatchObservation):
    """The policy's observation of a state: the state itself, as a float64 copy.

    Shared by the demonstrations and the controller at run time, so the two can
    never diverge. Works on one state Shape=(nx,) or a batch Shape=(..., nx), and
    declares ``BatchObservation`` so the lookahead maps its states in one call.
    """

    def __call__(self, state: ArrayLike) -> FloatArray:
        return np.array(state, dtype=np.float64, copy=True)

    def observe_batch(self, states: ArrayLike) -> FloatArray:
        """States Shape=(N, nx) -> observations Shape=(N, nx)."""
        return self(states)


observation = StateObservation()
"""The shipped tasks' observation function (``StateObservation``)."""


@dataclass(frozen=True)
class DemoPushes:
    """Pushes that knock a demonstration off its reference, so the data shows recovery.

    A scripted expert tracks its reference so tightly that clean runs never
    leave it, and a generator trained on them has never seen a state off the
    nominal path: there it proposes nothing useful (the arm: the gravity torque
    of wherever it rests, so a small offset from the goal is never corrected;
    the trap: slow or off-route states at the cup's mouth, from which it drives
    in). With pushes, the recorded actions include the expert's recoveries
    (the idea of DART: perturb the states the expert is asked about).

    Attributes:
        probability: chance per step of a push (never in the last ``quiet_steps``).
        std: std of the Gaussian jump of each state entry, Shape=(nx,).
        quiet_steps: steps at the end of a demonstration that are never pushed.
        tries: a run that fails the expert checks is drawn again, this many times.
    """

    probability: float
    std: tuple[float, ...]
    quiet_steps: int = 10
    tries: int = 10


@dataclass(frozen=True)
class ExpertRollout:
    """One expert run: ``actions[t]`` (clipped to the actuator box) applied in ``states[t]``.

    Attributes:
        route: the route the expert was told to follow.
        states: Shape=(T+1, nx).
        actions: Shape=(T, nu).
    """

    route: str
    states: FloatArray
    actions: FloatArray


def _rollout(
    task: Task,
    x0: FloatArray,
    controller: Controller,
    rng: np.random.Generator | None = None,
    pushes: DemoPushes | None = None,
    min_clearance: float = EXPERT_MIN_CLEARANCE,
) -> tuple[FloatArray, FloatArray]:
    """Run ``controller`` on the task's model, pushed now and then if asked.

    A push that would put the state within ``min_clearance`` of an obstacle is
    not applied. Returns ``(states Shape=(T+1, nx), actions Shape=(T, nu))``.
    """
    step = _one_step(task.dynamics)
    model = task.dynamics
    low, high = model.action_low, model.action_high
    steps = task.steps
    X = np.empty((steps + 1, model.nx))
    U = np.empty((steps, model.nu))
    X[0] = np.asarray(x0, dtype=np.float64)
    for t in range(steps):
        U[t] = np.clip(controller(X[t], t), low, high)
        step(X[t], U[t], X[t + 1])
        pushed_now = rng is not None and pushes is not None and t < steps - pushes.quiet_steps
        if pushed_now and rng.random() < pushes.probability:  # type: ignore[union-attr]
            pushed = X[t + 1] + rng.normal(0.0, 1.0, model.nx) * np.asarray(pushes.std)  # type: ignore[union-attr]
            if task.min_clearance(pushed[None]) > min_clearance:
                X[t + 1] = pushed
    return X, U


def _one_step(model: Any) -> Callable[[FloatArray, FloatArray, FloatArray], None]:
    """``step(x, u, out)``: the model's own @njit step where it has one (the analytic
    models), else one ``rollout`` step (any ``Dynamics``: MuJoCo, Pinocchio)."""
    if hasattr(model, "step_function") and hasattr(model, "params_vector"):
        step_fn, params = model.step_function, model.params_vector()
        return lambda x, u, out: step_fn(x, u, params, out)
    U1 = np.zeros((1, 1, model.nu))

    def step(x: FloatArray, u: FloatArray, out: FloatArray) -> None:
        U1[0, 0] = u
        out[:] = model.rollout(x, U1)[0, 1]

    return step


def simulate(task: Task, x0: ArrayLike, controller: Controller) -> ExpertRollout:
    """Run ``controller`` on the task's model for the task's episode length.

    The actions are clipped to the actuator box before they are applied and recorded.
    """
    X, U = _rollout(task, np.asarray(x0, dtype=np.float64), controller)
    return ExpertRollout(route="", states=X, actions=U)


def rollout_passes(
    task: Task, run: ExpertRollout, min_clearance: float = EXPERT_MIN_CLEARANCE
) -> bool:
    """The expert checks: task success, ``min_clearance``, and the intended route."""
    clear = task.min_clearance(run.states) >= min_clearance
    return clear and bool(task.success(run.states)) and task.route_of(run.states) == run.route


@dataclass(frozen=True)
class ScriptedDemos:
    """A task's demonstration recipe from a scripted expert (``Demonstrations.generate``).

    Attributes:
        expert: ``fn(task, route, rng) -> (x0, controller)``.
        description: what the expert does (kept in the dataset's metadata).
        pushes: push the state off the reference now and then (``DemoPushes``), so
            the demonstrations show recoveries; None: clean runs.
        min_clearance: every kept demonstration stays at least this far (m) from
            every obstacle (``Task.min_clearance``), and no push goes closer.
    """

    expert: ExpertFactory
    description: str
    pushes: DemoPushes | None = None
    min_clearance: float = EXPERT_MIN_CLEARANCE

    def rollout(self, task: Task, route: str, rng: np.random.Generator | None) -> ExpertRollout:
        """One expert run along ``route``; with pushes, redrawn until it passes the checks."""
        if route not in task.route_names:
            raise ValueError(f"route {route!r} is not one of {task.route_names} of {task.name}.")
        tries = 1 if self.pushes is None or rng is None else self.pushes.tries
        x0, controller = self.expert(task, route, rng)
        for _ in range(tries):
            reset = getattr(controller, "reset", None)  # a path follower keeps its progress
            if reset is not None:
                reset()
            X, U = _rollout(task, x0, controller, rng, self.pushes, self.min_clearance)
            run = ExpertRollout(route=route, states=X, actions=U)
            if rollout_passes(task, run, self.min_clearance):
                return run
        return run  # __call__'s checks name the failure

    def __call__(self, task: Task, num_demos: int, seed: int) -> DemoDataset:
        """``num_demos`` checked demonstrations, all routes in balanced numbers.

        Deterministic: the same ``(task, num_demos, seed)`` gives the same arrays.
        ``meta`` holds ``task``, ``dt``, ``seed``, ``num_demos``, ``modes`` (the route
        of each episode, in order), ``mode_names``, ``observation`` and the expert.

        Raises:
            RuntimeError: an expert run failed its checks (a bug, never expected).
        """
        rng = np.random.default_rng(seed)
        labels = balanced_routes(task, num_demos, rng)
        episodes = []
        for i, route in enumerate(labels):
            run = self.rollout(task, route, rng)
            _check_rollout(task, run, i, self.min_clearance)
            obs = observation(run.states[:-1])
            episodes.append(Episode(obs, run.states[:-1].copy(), run.actions.copy()))
        model: Any = task.dynamics
        pushed = ", the state pushed off it now and then" if self.pushes is not None else ""
        meta: dict[str, Any] = {
            "task": task.name,
            "dt": float(model.dt),
            "seed": int(seed),
            "num_demos": int(num_demos),
            "modes": labels,
            "mode_names": list(task.route_names),
            "observation": "state",
            "observation_doc": OBSERVATION_DOC,
            "state_names": list(getattr(model, "state_names", ())),
            "action_names": list(getattr(model, "action_names", ())),
            "action_low": np.asarray(model.action_low).tolist(),
            "action_high": np.asarray(model.action_high).tolist(),
            "expert": self.description + pushed,
            "generator": "imle_mpc.tasks.experts.ScriptedDemos",
        }
        return DemoDataset(tuple(episodes), meta)


def balanced_routes(task: Task, num: int, rng: np.random.Generator) -> list[str]:
    """``num`` route labels, each route ``num // M`` or ``num // M + 1`` times, shuffled."""
    routes = task.route_names
    labels = [routes[i % len(routes)] for i in range(num)]
    return [labels[i] for i in rng.permutation(num)]


def _check_rollout(task: Task, run: ExpertRollout, index: int, min_clearance: float) -> None:
    if not rollout_passes(task, run, min_clearance):
        raise RuntimeError(
            f"{task.name} expert run {index} (route {run.route!r}) failed its checks: "
            f"success={task.success(run.states)}, clearance="
            f"{task.min_clearance(run.states):.3f} (need >= {min_clearance}), "
            f"route taken {task.route_of(run.states)!r}."
        )


class ControllerPlanner:
    """A feedback controller run as a ``Planner``: each ``plan`` is its next action.

    So a scripted expert goes through the same loop, guard and figures as the
    planners it is compared with (``bench/push_efficiency.py``). The plan is one
    step long (``horizon = 1``); its predicted states are the model's for that step.

    Args:
        dynamics: the model the predicted step is rolled out with (and whose
            actuator box clips the action).
        make_controller: ``fn(seed) -> controller``, called on every ``reset``
            (``seed=None``: the nominal controller), so the controller's own
            state (progress along a path) starts afresh each episode.
    """

    horizon = 1

    def __init__(self, dynamics: Any, make_controller: Callable[[int | None], Controller]) -> None:
        self.dynamics = dynamics
        self._make = make_controller
        self._controller = make_controller(None)
        self._step = 0

    def reset(self, seed: int | None = None) -> None:
        self._controller = self._make(seed)
        self._step = 0

    def plan(self, state: ArrayLike) -> PlanResult:
        """The controller's action in ``state`` Shape=(nx,) as a plan Shape=(1, nu)."""
        t0 = time.perf_counter()
        x = np.asarray(state, dtype=np.float64)
        action = np.clip(
            self._controller(x, self._step), self.dynamics.action_low, self.dynamics.action_high
        )
        self._step += 1
        actions = np.asarray(action, dtype=np.float64).reshape(1, -1)
        predicted = self.dynamics.rollout(x, actions[None])[0]
        return PlanResult(
            actions=actions,
            cost=0.0,
            term_costs={},
            num_feasible=1,
            best_index=0,
            predicted_states=predicted,
            timings={"total": time.perf_counter() - t0},
        )
