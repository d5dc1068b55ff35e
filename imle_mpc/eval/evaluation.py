"""Guarded rollouts of one configuration: E seeded episodes of a task with faults, guard on/off.

``evaluate(EvalConfig(...))`` builds the planner once, then runs each episode
seed through ``run_episode`` (which resets the planner with it) and sums the
outcomes up with ``summarise``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imle_mpc.core.validation import require_int_at_least
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.eval.summary import summarise
from imle_mpc.loop.faults import FaultConfig
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.registry import load_task


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation: a task, a planner, a fault set, guard on/off, E episodes.

    Attributes:
        task: a registered task's name, or your own as ``module:function`` (``load_task``).
        planner: planner kind (``imle_mpc.eval.factory.PLANNERS``).
        episodes: number of seeded episodes (seeds ``seed .. seed + episodes - 1``).
        faults: fault magnitudes (all off by default).
        guard: wrap the planner in ``planners.safety.guard.SafetyGuard``.
        offset_free: with the guard, also estimate and undo the plant's action
            offset (``planners.safety.offset_free.OffsetFree``, for model mismatch).
        num_samples: planner samples (generator chunks for the learned planners).
        seed: first episode seed.
        generator: the learned planners' generator checkpoint (None: the task's shipped one).
    """

    task: str = "nav_one_obstacle"
    planner: str = "imle_mpc"
    episodes: int = 200
    faults: FaultConfig = field(default_factory=FaultConfig)
    guard: bool = True
    offset_free: bool = True
    num_samples: int | None = None
    seed: int = 0
    generator: str | Path | None = None

    def __post_init__(self) -> None:
        require_int_at_least("EvalConfig", "episodes", self.episodes, 1)
        require_int_at_least("EvalConfig", "seed", self.seed, 0)


def evaluate(
    config: EvalConfig,
    on_episode: Callable[[EpisodeOutcome], None] | None = None,
    planner: Any = None,
    task: Task | None = None,
) -> tuple[dict[str, Any], list[EpisodeOutcome]]:
    """Run the evaluation; returns the summary and every episode's outcome.

    Args:
        config: what to run.
        on_episode: called after each episode (progress bars, streaming results).
        planner: a ready planner to reuse (built from the task's hints if None).
        task: the task, if already built (default ``load_task(config.task)``).
    """
    task = load_task(config.task) if task is None else task
    if planner is None:
        planner = make_planner(
            config.planner, task, seed=config.seed, num_samples=config.num_samples,
            generator=config.generator,
        )  # fmt: skip
    outcomes = []
    for seed in range(config.seed, config.seed + config.episodes):
        record = run_episode(
            task, planner, seed, faults=config.faults, guard=config.guard,
            offset_free=config.offset_free,
        )  # fmt: skip
        outcome = EpisodeOutcome.of(task, record)
        outcomes.append(outcome)
        if on_episode is not None:
            on_episode(outcome)
    summary = {
        "task": task.name,
        "planner": config.planner,
        "guard": config.guard,
        "offset_free": config.guard and config.offset_free,
        "faults": list(config.faults.active),
        **summarise([o.to_dict() for o in outcomes]),
    }
    return summary, outcomes
