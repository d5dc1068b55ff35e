"""Evaluation sweeps: a grid of configurations x seeds, one durable record per episode.

A sweep is the grid tasks x planners x sample counts x fault settings (fault
kinds x scale factors) x guard on/off x seeds (``SweepConfig``). Every point
is an ``EpisodeJob`` with a stable ``key`` whose record is one flat dict
(``imle_mpc.eval.jobs.run_job``). ``run_sweep`` runs the jobs whose keys
are not in the results file yet on a backend (``imle_mpc.eval.backends``:
``serial``, a ``local`` process pool, or ``ray``) and appends each record as
it finishes (``imle_mpc.eval.results.RecordWriter``: flushed and fsynced line by
line), so an interrupted sweep loses nothing finished and ``resume=True``
runs only the rest. The same job gives the same record on every backend,
apart from the wall-clock fields (``comparable`` drops them).

    from imle_mpc.eval.sweep import BackendConfig, SweepConfig, run_sweep

    grid = SweepConfig(tasks=("nav_one_obstacle",), planners=("imle_mpc", "mppi"),
                       samples=(8, 64), faults=("all",), fault_scales=(0.5, 1, 2),
                       guards=(True, False), episodes=50)
    result = run_sweep(grid, "out/sweep.jsonl", BackendConfig("local", workers=2))
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

from tqdm import tqdm

from imle_mpc.core.errors import InputError
from imle_mpc.core.validation import require_int_at_least
from imle_mpc.eval.backends import (
    BACKENDS,
    RAY_INSTALL_HINT,
    RAY_TEMP_DIR_MAX,
    BackendConfig,
    check_reachable,
    import_ray,
    records,
    short_path,
)
from imle_mpc.eval.factory import PLANNERS
from imle_mpc.eval.jobs import (
    CONFIG_FIELDS,
    PLANNER_SEED,
    TIMING_FIELDS,
    EpisodeJob,
    PlannerCache,
    comparable,
    fault_config,
    fault_kinds,
    run_job,
)
from imle_mpc.eval.results import RecordWriter
from imle_mpc.tasks.registry import TASKS, load_task

__all__ = [
    "BACKENDS",
    "CONFIG_FIELDS",
    "GUARD_CHOICES",
    "PLANNER_SEED",
    "RAY_INSTALL_HINT",
    "RAY_TEMP_DIR_MAX",
    "TIMING_FIELDS",
    "BackendConfig",
    "EpisodeJob",
    "PlannerCache",
    "SweepConfig",
    "SweepResult",
    "check_reachable",
    "comparable",
    "fault_config",
    "fault_kinds",
    "import_ray",
    "run_job",
    "run_sweep",
    "short_path",
]

GUARD_CHOICES: dict[str, tuple[bool, ...]] = {"on": (True,), "off": (False,), "both": (True, False)}
"""``--guard`` values and the guard settings they sweep."""


# --- the grid -------------------------------------------------------------------------------


def _tuple(owner: str, name: str, values: Sequence[Any]) -> tuple[Any, ...]:
    out = tuple(values)
    if not out:
        raise ValueError(f"{owner}.{name} must name at least one value, got an empty list.")
    if len(set(out)) != len(out):
        raise ValueError(f"{owner}.{name} lists a value twice: {list(out)}; list each once.")
    return out


@dataclass(frozen=True)
class SweepConfig:
    """The grid of a sweep; every combination runs ``episodes`` seeds.

    Attributes:
        tasks: task names.
        planners: planner kinds.
        samples: samples per step (None: the task's default).
        faults: fault specs (``none``, ``all``, or a comma list such as ``noise,push``).
        fault_scales: factors on the stated fault magnitudes (>= 0).
        guards: guard settings (``(True, False)`` runs both).
        episodes: seeds per configuration (``seed .. seed + episodes - 1``).
        seed: first episode seed.
        store_states: keep each episode's measured states in its record (for plots).
    """

    tasks: Sequence[str] = ("nav_one_obstacle",)
    planners: Sequence[str] = ("imle_mpc",)
    samples: Sequence[int | None] = (None,)
    faults: Sequence[str] = ("none",)
    fault_scales: Sequence[float] = (1.0,)
    guards: Sequence[bool] = (True,)
    episodes: int = 1
    seed: int = 0
    store_states: bool = False

    def __post_init__(self) -> None:
        owner = "SweepConfig"
        for name in ("tasks", "planners", "samples", "faults", "fault_scales", "guards"):
            object.__setattr__(self, name, _tuple(owner, name, getattr(self, name)))
        unknown = [t for t in self.tasks if t not in TASKS and ":" not in t]
        if unknown:
            raise InputError(
                f"{owner}.tasks: unknown tasks {unknown}; choose from {sorted(TASKS)}."
            )
        unknown = [p for p in self.planners if p not in PLANNERS]
        if unknown:
            raise InputError(f"{owner}.planners: unknown {unknown}; choose from {list(PLANNERS)}.")
        for n in self.samples:
            if n is not None:
                require_int_at_least(owner, "samples", n, 1)
        for spec in self.faults:
            fault_kinds(spec)
        for scale in self.fault_scales:
            if not (math.isfinite(scale) and scale >= 0):
                raise ValueError(f"{owner}.fault_scales must be finite and >= 0, got {scale!r}.")
        require_int_at_least(owner, "episodes", self.episodes, 1)
        require_int_at_least(owner, "seed", self.seed, 0)

    @property
    def size(self) -> int:
        """Number of episodes in the grid."""
        dims = (self.tasks, self.planners, self.samples, self.faults, self.fault_scales)
        return math.prod(len(d) for d in dims) * len(self.guards) * self.episodes

    def jobs(self) -> list[EpisodeJob]:
        """Every episode of the grid, one configuration's seeds back to back."""
        seeds = range(self.seed, self.seed + self.episodes)
        grid = product(
            self.tasks, self.planners, self.samples, self.faults, self.fault_scales, self.guards
        )
        return [
            EpisodeJob(task, planner, n, spec, float(scale), bool(guard), seed)
            for task, planner, n, spec, scale, guard in grid
            for seed in seeds
        ]

    def check_faults(self) -> None:
        """Raise ``InputError`` now if a task states no faults but the grid asks for some."""
        if all(spec == "none" for spec in self.faults):
            return
        for name in self.tasks:
            fault_config(load_task(name), next(s for s in self.faults if s != "none"), 1.0)


# --- the sweep ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    """What ``run_sweep`` did.

    Attributes:
        records: every record of the grid in the results file (earlier runs included).
        ran: episodes run now.
        skipped: episodes already in the file (``resume``).
        seconds: wall time of the episodes run now (planner building included).
        workers: workers used (1 for ``serial``).
    """

    records: list[dict[str, Any]]
    ran: int
    skipped: int
    seconds: float
    workers: int

    @property
    def episodes_per_s(self) -> float:
        return self.ran / self.seconds if self.seconds > 0 else float("nan")


def run_sweep(
    config: SweepConfig,
    out: str | os.PathLike[str],
    backend: BackendConfig | None = None,
    resume: bool = False,
    progress: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> SweepResult:
    """Run every episode of ``config`` not yet in ``out``, appending records as they finish.

    Args:
        config: the grid.
        out: results file (JSON lines, one record per episode).
        backend: where to run (serial by default).
        resume: keep and skip the records already in ``out`` (else ``out`` must
            not hold results yet).
        progress: show a progress bar (episodes done, rate, ETA) on stderr.
        on_record: called with each new record after it is on disk.

    Raises:
        InputError: ``out`` holds results and ``resume`` is off; Ray is missing;
            a task in the grid states no fault magnitudes but faults are asked for.
    """

    backend = backend or BackendConfig()
    config.check_faults()
    if backend.backend == "ray":
        import_ray()
        if backend.ray_address:
            check_reachable(backend.ray_address)
    out = Path(out)
    jobs = config.jobs()
    keys = {job.key for job in jobs}
    with RecordWriter(out, resume=resume) as writer:
        done = {r.get("key"): r for r in writer.existing if r.get("key") in keys}
        todo = [job for job in jobs if job.key not in done]
        workers: int | None = 1
        if backend.backend != "serial":
            joined = backend.backend == "ray" and backend.ray_address
            workers = backend.workers or (None if joined else os.cpu_count() or 1)
        if workers is not None:
            workers = min(workers, max(1, len(todo)))
        info: dict[str, Any] = {"workers": workers}
        ray_dir = out.resolve().parent / ".ray"
        stream = records(todo, backend, workers, ray_dir, config.store_states, info)
        new: list[dict[str, Any]] = []
        t0 = time.perf_counter()
        bar = tqdm(
            total=len(jobs), initial=len(done), disable=not progress or not todo,
            desc=f"sweep ({backend.backend})", unit="ep", smoothing=0.1,
        )  # fmt: skip
        with bar, contextlib.closing(stream):
            for record in stream if todo else ():
                writer.append(record)
                new.append(record)
                bar.update(1)
                if on_record is not None:
                    on_record(record)
        seconds = time.perf_counter() - t0
    order = {job.key: i for i, job in enumerate(jobs)}
    every = sorted([*done.values(), *new], key=lambda r: order[r["key"]])
    return SweepResult(every, len(new), len(done), seconds, info["workers"] or 0)
