"""Guarded rollouts at scale: seeded episodes of a task with faults, the guard on or off.

``evaluate(EvalConfig(...))`` builds the planner once, then for each episode
seed: resets it, wraps it (dropped planning steps, then the safety guard or
the unguarded pass-through), builds the plant with a mismatched model, noisy
sensing, delay and pushes, runs the closed loop, and judges the TRUE executed
trajectory by the task's safety constraints (zero margin). Every random draw
comes from the episode seed, so an episode is reproducible on its own.

A *violation step* is a transition (x_t, u_t, x_t+1) of the executed
trajectory on which any safety constraint is violated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imle_mpc.faults import DroppedPlanning, FaultConfig, FaultLog, FaultyRobot, mismatched_model
from imle_mpc.plant import DynamicsEnv
from imle_mpc.runner import EpisodeRecord, LoopConfig, run_closed_loop
from imle_mpc.tasks import Task
from imle_mpc.validation import FloatArray, require_int_at_least


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation: a task, a planner, a fault set, guard on/off, E episodes.

    Attributes:
        task: task name (``imle_mpc.tasks.TASKS``).
        planner: planner kind (``imle_mpc.episodes.PLANNERS``).
        episodes: number of seeded episodes (seeds ``seed .. seed + episodes - 1``).
        faults: fault magnitudes (all off by default).
        guard: wrap the planner in ``planners.guard.SafetyGuard``.
        offset_free: with the guard, also estimate and undo the plant's action
            offset (``planners.offset_free.OffsetFree``, for model mismatch).
        num_samples: planner samples (generator chunks for the learned planners).
        seed: first episode seed.
    """

    task: str = "nav_one_obstacle"
    planner: str = "imle_mpc"
    episodes: int = 200
    faults: FaultConfig = field(default_factory=FaultConfig)
    guard: bool = True
    offset_free: bool = True
    num_samples: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        require_int_at_least("EvalConfig", "episodes", self.episodes, 1)
        require_int_at_least("EvalConfig", "seed", self.seed, 0)


@dataclass(frozen=True)
class EpisodeOutcome:
    """The figures of one evaluated episode."""

    seed: int
    success: bool
    violation_steps: int
    fallback_steps: int
    deadline_overruns: int
    steps: int
    min_clearance: float
    plan_ms_mean: float
    plan_ms_p95: float
    pushes: int
    dropped_plans: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def violation_per_step(
    safety: Sequence[Any], states: FloatArray, actions: FloatArray
) -> FloatArray:
    """Total safety violation of each executed transition, Shape=(T,).

    Args:
        safety: constraints with ``violation(X, U)``.
        states: executed (true) states, Shape=(T+1, nx).
        actions: executed actions, Shape=(T, nu).
    """
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


def _clearance(task: Task, states: FloatArray) -> float:
    if task.scene is None:
        return float("nan")
    return float(task.scene.distances(np.asarray(states)[None]).min())


def build_guarded(
    task: Task,
    planner: Any,
    guard: bool,
    action_delay: int = 0,
    deadline: float | None = None,
    offset_free: bool = True,
) -> Any:
    """``planner`` wrapped in the safety guard (or the unguarded pass-through).

    The guard is told the robot's actuation delay (a latency is measured when
    a robot is commissioned) and compensates it; the unguarded loop does not.
    ``deadline`` (seconds) makes the guard run the planner on a worker thread
    and never wait longer for it. ``offset_free`` puts ``OffsetFree`` around the
    guard: the plant's action offset from the model (a heavier link, a weaker
    motor) is estimated from the measured states and undone in the commands;
    with an exact model the estimate stays at zero.
    """
    from planners.guard import GuardConfig, PassThrough, SafetyGuard
    from planners.offset_free import OffsetFree

    if not guard:
        return PassThrough(planner, task.dynamics)
    guarded = SafetyGuard(
        planner, task.dynamics, task.constraints, GuardConfig(deadline=deadline),
        velocity_dims=task.velocity_dims, action_delay=action_delay,
    )  # fmt: skip
    if not offset_free:
        return guarded
    return OffsetFree(guarded, task.dynamics, action_delay=action_delay)


def run_faulty_episode(
    task: Task,
    planner: Any,
    seed: int,
    faults: FaultConfig,
    guard: bool = True,
    offset_free: bool = True,
) -> tuple[EpisodeRecord, EpisodeOutcome]:
    """One episode of ``task`` under ``faults``; ``planner`` is reset with ``seed``.

    ``guard`` and ``offset_free`` as in ``build_guarded``.
    """
    rng = np.random.default_rng([seed, 0xFA17])
    log = FaultLog()
    planner.reset(seed)
    inner = DroppedPlanning(planner, faults.drop_probability, rng, log)
    loop_planner = build_guarded(task, inner, guard, faults.action_delay, offset_free=offset_free)
    plant = DynamicsEnv(mismatched_model(task.dynamics, faults.model_mismatch), task.initial_state)
    robot = FaultyRobot(plant, faults, rng, seed=seed, log=log)
    config = LoopConfig(steps=task.steps, control_period=task.dynamics.dt)
    record = run_closed_loop(robot, loop_planner, config)
    true_states = np.array(log.true_states)
    violations = violation_per_step(task.safety, true_states, record.actions)
    record.success = bool(task.success(true_states))
    record.info.update(
        {"task": task.name, "seed": seed, "faults": faults.to_dict(), "guard": guard}
    )
    offset = getattr(loop_planner, "offset", None)
    if offset is not None:  # the final estimate of the plant's action offset
        record.info["action_offset"] = [float(v) for v in offset]
    record.info.update(log.to_dict())
    times = record.plan_times * 1e3
    outcome = EpisodeOutcome(
        seed=seed,
        success=record.success,
        violation_steps=int(np.count_nonzero(violations > 0)),
        fallback_steps=record.fallback_steps,
        deadline_overruns=record.deadline_overruns,
        steps=record.steps,
        min_clearance=_clearance(task, true_states),
        plan_ms_mean=float(times.mean()),
        plan_ms_p95=float(np.percentile(times, 95)),
        pushes=len(log.pushes),
        dropped_plans=len(log.dropped),
    )
    return record, outcome


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def summarise(config: EvalConfig, outcomes: Sequence[EpisodeOutcome]) -> dict[str, Any]:
    """The evaluation summary (the keys ``imle-mpc eval --json`` prints)."""
    n = len(outcomes)
    successes = sum(o.success for o in outcomes)
    return {
        "task": config.task,
        "planner": config.planner,
        "guard": config.guard,
        "offset_free": config.guard and config.offset_free,
        "faults": list(config.faults.active),
        "episodes": n,
        "success_rate": successes / n if n else float("nan"),
        "violation_steps": int(sum(o.violation_steps for o in outcomes)),
        "violation_episodes": int(sum(o.violation_steps > 0 for o in outcomes)),
        "fallback_steps": int(sum(o.fallback_steps for o in outcomes)),
        "deadline_overruns": int(sum(o.deadline_overruns for o in outcomes)),
        # None (JSON null) where the task has no planar scene to measure against.
        "min_clearance": _finite_or_none(min((o.min_clearance for o in outcomes), default=np.nan)),
        "plan_ms_mean": float(np.mean([o.plan_ms_mean for o in outcomes])) if n else float("nan"),
        "plan_ms_p95": float(np.max([o.plan_ms_p95 for o in outcomes])) if n else float("nan"),
    }


def evaluate(
    config: EvalConfig,
    on_episode: Callable[[EpisodeOutcome], None] | None = None,
    planner: Any = None,
) -> tuple[dict[str, Any], list[EpisodeOutcome]]:
    """Run the evaluation; returns the summary and every episode's outcome.

    Args:
        config: what to run.
        on_episode: called after each episode (progress bars, streaming results).
        planner: a ready planner to reuse (built from the task's hints if None).
    """
    from imle_mpc.episodes import make_planner
    from imle_mpc.tasks import make_task

    task = make_task(config.task)
    if planner is None:
        planner = make_planner(
            config.planner, task, seed=config.seed, num_samples=config.num_samples
        )
    outcomes = []
    for seed in range(config.seed, config.seed + config.episodes):
        _, outcome = run_faulty_episode(
            task, planner, seed, config.faults, config.guard, config.offset_free
        )
        outcomes.append(outcome)
        if on_episode is not None:
            on_episode(outcome)
    return summarise(config, outcomes), outcomes
