"""One episode of an evaluation sweep: what to run (``EpisodeJob``) and its record (``run_job``).

An ``EpisodeJob`` is a configuration (task, planner, samples, fault setting,
guard) and a seed, with a stable ``key``. ``run_job`` runs it through
``imle_mpc.eval.episodes.run_episode`` with a planner from the worker's
``PlannerCache`` and returns one flat record of plain JSON data: the job's
fields, the fault settings, the ``EpisodeOutcome`` and the planning-time
figures. A planner is built with ``PLANNER_SEED`` and reset with the episode
seed, and every random draw of an episode comes from that seed, so the same
job gives the same record in any process and any order, apart from the
wall-clock fields ``TIMING_FIELDS`` (``comparable`` drops them).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from imle_mpc.core.errors import InputError
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.loop.faults import FAULT_KINDS, FaultConfig
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.registry import load_task

TIMING_FIELDS = frozenset(
    {"plan_ms", "plan_ms_mean", "plan_ms_p50", "plan_ms_p95", "plan_ms_p99", "plan_ms_max",
     "episode_s", "overruns"}
)  # fmt: skip
"""Record fields measured on the wall clock: the only ones that differ between runs."""

CONFIG_FIELDS = ("task", "planner", "num_samples", "faults", "fault_scale", "guard")
"""Record fields that name a configuration (all of a job's fields except the seed)."""

PLANNER_SEED = 0
"""Seed every planner is built with; each episode resets it with its own seed."""

# --- fault settings -------------------------------------------------------------------------


def fault_kinds(spec: str) -> tuple[str, ...]:
    """The fault kinds a ``--faults`` spec names: ``none``, ``all`` or a comma list.

    Raises:
        InputError: an unknown kind.
    """
    if spec == "none":
        return ()
    kinds = FAULT_KINDS if spec == "all" else tuple(k.strip() for k in spec.split(",") if k)
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or not kinds:
        raise InputError(
            f"unknown fault kinds {unknown or [spec]}; use all, none or some of {FAULT_KINDS}."
        )
    return kinds


def fault_config(task: Any, spec: str, scale: float) -> FaultConfig:
    """The faults of ``spec`` at ``task``'s stated magnitudes (``Task.faults``) x ``scale``.

    Raises:
        InputError: an unknown kind, faults asked of a task that states none, or a
            scale that is not a finite number >= 0.
    """
    if not (math.isfinite(scale) and scale >= 0):
        raise InputError(f"the fault scale must be a finite number >= 0, got {scale!r}.")
    kinds = fault_kinds(spec)
    if not kinds:
        return FaultConfig()
    if task.faults is None:
        raise InputError(
            f"task {task.name!r} states no fault magnitudes; use --faults none or a task "
            "that has them (the navigation and arm tasks)."
        )
    return task.faults.only(kinds).scaled(scale)


# --- one episode -------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class EpisodeJob:
    """One episode of a sweep: a configuration and a seed.

    Attributes:
        task: task name (``imle_mpc.tasks.TASKS``).
        planner: planner kind (``imle_mpc.eval.factory.PLANNERS``).
        num_samples: samples per step (IMLE: generator chunks); None: the task's default.
        faults: fault spec (``none``, ``all`` or a comma list of kinds).
        fault_scale: factor on the task's stated fault magnitudes.
        guard: wrap the planner in the safety guard.
        seed: episode seed.
    """

    task: str
    planner: str
    num_samples: int | None
    faults: str
    fault_scale: float
    guard: bool
    seed: int

    @property
    def key(self) -> str:
        """Stable identifier, e.g. ``nav_one_obstacle/mppi/n=32/faults=all/x1.0/guard/seed=3``."""
        samples = "default" if self.num_samples is None else str(self.num_samples)
        guard = "guard" if self.guard else "noguard"
        return (
            f"{self.task}/{self.planner}/n={samples}/faults={self.faults}/"
            f"x{float(self.fault_scale)!r}/{guard}/seed={self.seed}"
        )

    @property
    def planner_key(self) -> tuple[str, str, int | None]:
        """What the planner depends on: jobs with equal keys share one planner."""
        return (self.task, self.planner, self.num_samples)

    def fields(self) -> dict[str, Any]:
        """The job as record fields (``key`` first)."""
        return {
            "key": self.key,
            "task": self.task,
            "planner": self.planner,
            "num_samples": self.num_samples,
            "faults": self.faults,
            "fault_scale": float(self.fault_scale),
            "guard": self.guard,
            "seed": self.seed,
        }


# --- running it --------------------------------------------------------------------------------


class PlannerCache:
    """The tasks and planners one worker has built (building a planner is the slow part).

    A planner is built once per ``EpisodeJob.planner_key`` with ``PLANNER_SEED``;
    ``run_episode`` resets it with the episode seed.
    """

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._planners: dict[tuple[str, str, int | None], Any] = {}

    def task(self, name: str) -> Task:
        if name not in self._tasks:
            self._tasks[name] = load_task(name)
        return self._tasks[name]

    def planner(self, job: EpisodeJob) -> Any:
        if job.planner_key not in self._planners:
            task = self.task(job.task)
            self._planners[job.planner_key] = make_planner(
                job.planner, task, seed=PLANNER_SEED, num_samples=job.num_samples
            )
        return self._planners[job.planner_key]

    def __len__(self) -> int:
        return len(self._planners)


def run_job(job: EpisodeJob, cache: PlannerCache, store_states: bool = False) -> dict[str, Any]:
    """Run one episode; returns its record (plain JSON data).

    Args:
        job: what to run.
        cache: the worker's tasks and planners.
        store_states: add the measured states (``states``, rounded to 1e-4).
    """
    task = cache.task(job.task)
    planner = cache.planner(job)
    faults = fault_config(task, job.faults, job.fault_scale)
    t0 = time.perf_counter()
    episode = run_episode(task, planner, job.seed, faults=faults, guard=job.guard)
    outcome = EpisodeOutcome.of(task, episode)
    wall = time.perf_counter() - t0
    ms = np.asarray(episode.plan_times, dtype=np.float64) * 1e3
    record = job.fields()
    record.update(
        fault_kinds=list(faults.active), fault_settings=faults.to_dict(), **outcome.to_dict()
    )
    record.update(
        plan_ms_p50=float(np.percentile(ms, 50)),
        plan_ms_p99=float(np.percentile(ms, 99)),
        plan_ms_max=float(ms.max()),
        plan_ms=np.round(ms, 4).tolist(),
        episode_s=round(wall, 4),
    )
    if store_states:
        record["states"] = np.round(episode.states, 4).tolist()
    return record


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without its wall-clock fields: equal for the same job on any backend."""
    return {k: v for k, v in record.items() if k not in TIMING_FIELDS}
