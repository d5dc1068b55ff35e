"""The one episode runner, and the figures of one episode.

``run_episode`` resets the planner with the episode seed, optionally puts it
behind the safety guard, builds the plant (with the faults asked for: a
mismatched model, noisy sensing, delay, pushes, dropped planning steps), runs
the closed loop, and judges the TRUE executed trajectory. Every random draw
comes from the episode seed, so an episode is reproducible on its own.
``EpisodeOutcome.of(task, record)`` gives its figures; ``imle_mpc.eval.summary``
sums them up for the CLI, ``evaluate``, sweeps and reports alike.

A *violation step* is a transition (x_t, u_t, x_t+1) of the executed
trajectory on which any of the task's safety constraints is violated. The
obstacle constraints judge the swept path: the straight segment from x_t to
x_t+1, not only x_t+1 (``cost.constraints.clearance_slack``; a transition that
starts inside an obstacle counts if it goes deeper or ends inside, and the one
that entered counted already). ``point_violation_steps`` counts the same with
the states alone, to show what the swept check adds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imle_mpc.core.errors import InputError
from imle_mpc.core.validation import FloatArray
from imle_mpc.eval.factory import build_guarded
from imle_mpc.loop.faults import (
    DroppedPlanning,
    FaultConfig,
    FaultLog,
    FaultyRobot,
    mismatched_model,
)
from imle_mpc.loop.plant import DynamicsEnv, Plant
from imle_mpc.loop.runner import (
    EpisodeRecord,
    LoopConfig,
    Progress,
    StepObserver,
    run_closed_loop,
)
from imle_mpc.tasks.base import Task
from planners.safety.offset_free import OffsetFree


@dataclass
class Episode:
    """A started episode: the plant with its faults, the planner the loop calls, the fault log.

    ``run_episode`` runs its closed loop at once; a step-by-step caller (the residual's
    training environment) calls ``planner.plan(robot.read_state())`` and
    ``robot.send_action(...)`` itself, then ``finish``.

    Attributes:
        task: the task.
        seed: the episode seed.
        faults: the fault magnitudes.
        guard: as ``run_episode``'s ``guard``.
        robot: the simulated plant (``log.true_states`` holds its true states).
        planner: the planner chain the loop calls (the guard's, if any, outermost).
        log: what the faults did.
        loop: steps and control period of the closed loop.
    """

    task: Task
    seed: int
    faults: FaultConfig
    guard: bool | None
    robot: FaultyRobot
    planner: Any
    log: FaultLog
    loop: LoopConfig

    def finish(self, record: EpisodeRecord) -> EpisodeRecord:
        """Judge ``record`` (this episode's) on the true states and fill in its ``info``."""
        task = self.task
        record.true_states = np.array(self.log.true_states)
        # A plant that terminated the episode (a Gymnasium pole fell) failed it.
        record.success = bool(task.success(record.true_states)) and not self.robot.terminated
        record.info.update(
            {"task": task.name, "seed": self.seed, "faults": self.faults.to_dict(),
             "guard": self.guard, "terminated": self.robot.terminated}
        )  # fmt: skip
        if isinstance(self.planner, OffsetFree):  # the final estimate of the plant's action offset
            record.info["action_offset"] = [float(v) for v in self.planner.offset]
        record.info.update(self.log.to_dict())
        return record


def start_episode(
    task: Task,
    planner: Any,
    seed: int = 0,
    *,
    faults: FaultConfig | None = None,
    guard: bool | None = None,
    offset_free: bool = True,
    deadline: float | None = None,
    real_time: bool = False,
    steps: int | None = None,
) -> Episode:
    """Reset ``planner`` with ``seed``, wrap it as asked and build the faulty plant.

    The arguments are ``run_episode``'s; the returned ``Episode`` has not stepped.
    """
    faults = FaultConfig() if faults is None else faults
    rng = np.random.default_rng([seed, 0xFA17])
    log = FaultLog()
    planner.reset(seed)
    inner = DroppedPlanning(planner, faults.drop_probability, rng, log)
    if guard is None:
        loop_planner: Any = inner
    else:
        loop_planner = build_guarded(
            task, inner, guard, faults.action_delay, deadline=deadline, offset_free=offset_free
        )
    robot = FaultyRobot(make_plant(task, faults), faults, rng, seed=seed, log=log)
    loop = LoopConfig(
        steps=steps or task.steps, control_period=task.dynamics.dt, real_time=real_time
    )
    return Episode(task, seed, faults, guard, robot, loop_planner, log, loop)


def run_episode(
    task: Task,
    planner: Any,
    seed: int = 0,
    *,
    faults: FaultConfig | None = None,
    guard: bool | None = None,
    offset_free: bool = True,
    deadline: float | None = None,
    real_time: bool = False,
    steps: int | None = None,
    progress: Progress | None = None,
    observer: StepObserver | None = None,
) -> EpisodeRecord:
    """One seeded episode of ``task`` with ``planner`` on a simulated plant.

    Args:
        task: the task (its model is the plant's, mismatched by ``faults``, unless the
            task brings its own plant, ``Task.plant``).
        planner: any planner; it is reset with ``seed`` first.
        seed: the episode seed (planner, plant and faults).
        faults: fault magnitudes (None: none).
        guard: None runs ``planner`` as given; True puts it behind the safety guard
            (``build_guarded``: the guard, and the offset estimate unless
            ``offset_free`` is False); False behind the unguarded pass-through.
        offset_free: with the guard, estimate and undo the plant's action offset.
        deadline: with the guard, seconds the planner gets before the previous
            plan is played instead (it then runs on a worker thread).
        real_time: hold the model's control period on the wall clock (as on a robot).
        steps: episode length (default ``task.steps``).
        progress: called as ``progress(step, state)`` after each step.
        observer: called as ``observer(step, state, result)`` after each step with the
            outermost planner's ``PlanResult`` (the guard's, if any): an episode recording
            (``imle_mpc.view.recording.Recorder``) or the live browser view.

    Returns:
        The record; ``success`` is judged on the true states (``record.true_states``)
        and fails when the plant terminated the episode; ``info`` holds the task, seed,
        faults and what they did, and whether the plant terminated.
    """
    episode = start_episode(
        task, planner, seed, faults=faults, guard=guard, offset_free=offset_free,
        deadline=deadline, real_time=real_time, steps=steps,
    )  # fmt: skip
    record = run_closed_loop(
        episode.robot, episode.planner, episode.loop, progress=progress, observer=observer
    )
    return episode.finish(record)


def make_plant(task: Task, faults: FaultConfig) -> Plant:
    """The plant of one episode: the task's own (``Task.plant``), or its model simulated.

    Raises:
        InputError: model mismatch asked of a task with its own plant (a Gymnasium env
            simulates itself; there is no model copy to scale).
    """
    if task.plant is None:
        model = mismatched_model(task.dynamics, faults.model_mismatch)
        return DynamicsEnv(model, task.initial_state)
    if faults.model_mismatch:
        raise InputError(
            f"task {task.name!r} runs on its own plant (Task.plant, e.g. the Gymnasium "
            "environment), which simulates itself: model mismatch scales a copy of the model "
            "the library simulates, so it cannot be applied. Drop model_mismatch from the "
            "faults, or change the environment's MjModel yourself."
        )
    return task.plant()


@dataclass(frozen=True)
class EpisodeOutcome:
    """The figures of one episode (plain JSON data; ``imle_mpc.eval.summary`` sums them).

    Attributes:
        route: the route taken (None for a task without routes).
        violation_steps: transitions violating a safety constraint on the swept path.
        point_violation_steps: the same, judged on the states alone.
        min_clearance: smallest signed distance of the swept path to the obstacles
            (nan: no measure).
    """

    seed: int
    success: bool
    violation_steps: int
    point_violation_steps: int
    fallback_steps: int
    deadline_overruns: int
    overruns: int
    steps: int
    min_clearance: float
    route: str | None
    plan_ms_mean: float
    plan_ms_p95: float
    pushes: int
    dropped_plans: int

    @classmethod
    def of(cls, task: Task, record: EpisodeRecord) -> EpisodeOutcome:
        """The figures of ``record``, an episode of ``task`` (judged on its true states)."""
        states = record.states if record.true_states is None else record.true_states
        violations = violation_per_step(task.safety, states, record.actions)
        point = violation_per_step(task.safety, states, record.actions, swept=False)
        times = np.asarray(record.plan_times, dtype=np.float64) * 1e3
        return cls(
            seed=int(record.info.get("seed", -1)),
            success=bool(record.success),
            violation_steps=int(np.count_nonzero(violations > 0)),
            point_violation_steps=int(np.count_nonzero(point > 0)),
            fallback_steps=record.fallback_steps,
            deadline_overruns=record.deadline_overruns,
            overruns=record.overruns,
            steps=record.steps,
            min_clearance=task.min_clearance(states),
            route=task.route_of(states) if task.routes is not None else None,
            plan_ms_mean=float(times.mean()) if times.size else float("nan"),
            plan_ms_p95=float(np.percentile(times, 95)) if times.size else float("nan"),
            pushes=len(record.info.get("pushes", ())),
            dropped_plans=len(record.info.get("dropped_plans", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _point_only(constraint: Any) -> Any:
    """The constraint with its swept check off (``swept=False``), if it has one."""
    if dataclasses.is_dataclass(constraint) and hasattr(constraint, "swept"):
        return dataclasses.replace(constraint, swept=False)  # type: ignore[type-var]
    return constraint


def violation_per_step(
    safety: Sequence[Any], states: FloatArray, actions: FloatArray, swept: bool = True
) -> FloatArray:
    """Total safety violation of each executed transition, Shape=(T,).

    Args:
        safety: constraints with ``violation(X, U)``.
        states: executed (true) states, Shape=(T+1, nx).
        actions: executed actions, Shape=(T, nu).
        swept: as the constraints are (obstacles judged on the segment x_t -> x_t+1
            where they check it, the default); False: on the states alone.
    """
    if not swept:
        safety = [_point_only(c) for c in safety]
    states = np.asarray(states, dtype=np.float64)
    actions = np.asarray(actions, dtype=np.float64)
    T = actions.shape[0]
    X = np.ascontiguousarray(np.stack([states[:T], states[1 : T + 1]], axis=1))
    U = np.ascontiguousarray(actions[:, None, :])
    total = np.zeros(T)
    for constraint in safety:
        v = np.asarray(constraint.violation(X, U), dtype=np.float64)
        total += np.where(np.isnan(v), np.inf, v)
    return total
