"""Episode recordings: every step's proposals, costs, chosen plan and guard events, on disk.

A ``Recorder`` is an episode observer: ``run_episode(..., observer=recorder)`` calls it
after every step with the measured state and the outermost ``PlanResult`` (the
guard's, whose ``samples`` are the planner's last proposals and their costs). It keeps
at most ``max_proposals`` proposals a step (the cheapest feasible one always among
them) and rolls them out through the task's model only when a frame is asked for, so
nothing runs on the model while a deadline worker might still be planning.

The file (``write_recording``): one ``.npz`` (``allow_pickle`` off), written atomically,
with a JSON ``header`` (``RECORDING_FORMAT``, ``RECORDING_VERSION``, the task, planner,
seed, dt, sizes, term names, success) and the arrays of ``RECORDING_ARRAYS``.
``read_recording`` refuses another format or version with an error that says which.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imle_mpc.core.errors import InputError
from imle_mpc.core.io import write_atomic
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import Dynamics
from imle_mpc.core.validation import FloatArray
from imle_mpc.loop.runner import EpisodeRecord

RECORDING_FORMAT = "imle_mpc.episode_recording"
RECORDING_VERSION = 1
"""Raised whenever an array is added, removed or changes meaning."""
MAX_PROPOSALS = 64
"""Proposals kept per step by default: enough to see the spread, small on disk."""

RECORDING_ARRAYS: dict[str, str] = {
    "states": "measured states, Shape=(T+1, nx), float64",
    "actions": "executed actions, Shape=(T, nu), float64",
    "plan_costs": "cost of the chosen plan, Shape=(T,) (nan: the guard's fallback)",
    "term_costs": "weighted cost terms of the chosen plan, Shape=(T, n_terms) (nan: none)",
    "plan_times": "seconds of each plan call, Shape=(T,)",
    "num_feasible": "feasible proposals, Shape=(T,), int",
    "fallbacks": "the guard's event ('' none: else why and what it played), Shape=(T,), str",
    "deadline_missed": "planning missed its deadline, Shape=(T,), bool",
    "plans": "the chosen plan, Shape=(T, H, nu) (nan-padded)",
    "plan_states": "the chosen plan rolled out from the state, Shape=(T, H+1, nx)",
    "proposal_states": "kept proposals rolled out, Shape=(T, k, H+1, nx), float32 (nan-padded)",
    "proposal_costs": "their costs, Shape=(T, k) (inf: infeasible; nan: padding)",
    "proposal_count": "proposals kept at each step, Shape=(T,), int",
}
"""The arrays of a recording and what they hold (docs/guides/control.md draws the table)."""


@dataclass(frozen=True)
class Frame:
    """One step as the view draws it.

    Attributes:
        step: the control step.
        state: the measured state, Shape=(nx,).
        plan_states: the chosen plan rolled out, Shape=(H+1, nx).
        proposal_states: the kept proposals rolled out, Shape=(k, H+1, nx).
        proposal_costs: their costs, Shape=(k,) (inf: infeasible).
        cost: the chosen plan's cost (nan where the guard played a fallback).
        term_costs: its weighted terms, by name.
        fallback: the guard's event ('' when the plan was sent as planned).
        num_feasible: feasible proposals of the step.
    """

    step: int
    state: FloatArray
    plan_states: FloatArray
    proposal_states: FloatArray
    proposal_costs: FloatArray
    cost: float
    term_costs: dict[str, float]
    fallback: str
    num_feasible: int

    @property
    def feasible(self) -> np.ndarray:
        """Which kept proposals are feasible (a finite cost), Shape=(k,), bool."""
        return np.isfinite(self.proposal_costs)


@dataclass
class _Step:
    state: FloatArray
    plan: FloatArray
    proposals: FloatArray  # Shape=(k, H, nu)
    costs: FloatArray  # Shape=(k,)
    result: PlanResult


def keep_proposals(costs: FloatArray, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` proposals: the cheapest, and the rest evenly spread.

    Args:
        costs: the proposals' costs, Shape=(K,) (inf: infeasible).
        limit: how many to keep (>= 1).

    Returns:
        Sorted unique indices, Shape=(min(K, limit),).
    """
    K = len(costs)
    if limit >= K:
        return np.arange(K)
    best = int(np.argmin(np.where(np.isnan(costs), np.inf, costs)))
    spread = np.linspace(0, K - 1, limit - 1).round().astype(np.int64)
    keep = np.unique(np.concatenate([[best], spread]))
    # rounding may collide: top up with unused indices so exactly ``limit`` remain
    missing = limit - len(keep)
    if missing > 0:
        spare = np.setdiff1d(np.arange(K), keep)[:missing]
        keep = np.sort(np.concatenate([keep, spare]))
    return keep


class Recorder:
    """Collects an episode step by step; ``run_episode(..., observer=recorder)``.

    Args:
        dynamics: the model the proposals are rolled out with (the task's).
        max_proposals: proposals kept per step (>= 1).

    Example:
        >>> recorder = Recorder(task.dynamics)  # doctest: +SKIP
        >>> record = run_episode(task, planner, guard=True, observer=recorder)  # doctest: +SKIP
        >>> recording = recorder.recording(record, task="nav_trap")  # doctest: +SKIP
        >>> write_recording("episode.npz", recording)  # doctest: +SKIP
    """

    def __init__(self, dynamics: Dynamics, max_proposals: int = MAX_PROPOSALS) -> None:
        if int(max_proposals) < 1:
            raise InputError(f"max_proposals={max_proposals}: keep at least 1 proposal a step.")
        self.dynamics = dynamics
        self.max_proposals = int(max_proposals)
        self._steps: list[_Step] = []

    def __call__(self, step: int, state: FloatArray, result: PlanResult) -> None:
        nu = self.dynamics.nu
        if result.samples is None:  # a policy, or a planner not asked to keep its samples
            proposals, costs = np.zeros((0, len(result.actions), nu)), np.zeros(0)
        else:
            U, all_costs = result.samples
            keep = keep_proposals(np.asarray(all_costs, dtype=np.float64), self.max_proposals)
            proposals, costs = np.asarray(U)[keep], np.asarray(all_costs, dtype=np.float64)[keep]
        self._steps.append(
            _Step(np.array(state, dtype=np.float64), np.array(result.actions), proposals, costs,
                  result)
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self._steps)

    def frame(self, index: int) -> Frame:
        """Step ``index`` (negative: from the end) with its plan and proposals rolled out."""
        s = self._steps[index]
        step = index % len(self._steps)
        plan_states = self._rollout(s.state, s.plan[None])[0]
        proposal_states = self._rollout(s.state, s.proposals)
        return Frame(
            step=step, state=s.state, plan_states=plan_states, proposal_states=proposal_states,
            proposal_costs=s.costs, cost=float(s.result.cost),
            term_costs=dict(s.result.term_costs), fallback=s.result.fallback or "",
            num_feasible=int(s.result.num_feasible),
        )  # fmt: skip

    def _rollout(self, x: FloatArray, U: FloatArray) -> FloatArray:
        if len(U) == 0:
            return np.zeros((0, U.shape[1] + 1, len(x)))
        return np.asarray(self.dynamics.rollout(x, np.ascontiguousarray(U, dtype=np.float64)))

    def recording(self, record: EpisodeRecord, **header: Any) -> EpisodeRecording:
        """The recording of the episode ``record`` (the one observed).

        Args:
            record: what ``run_episode`` returned for the observed episode.
            **header: what to say about it (``task``: the spec to rebuild the task for
                replay; ``planner``; anything JSON-serialisable).

        Raises:
            InputError: the record is not of the observed episode (another length).
        """
        T = record.steps
        if len(self._steps) != T:
            raise InputError(
                f"the record has {T} steps but the recorder saw {len(self._steps)}: pass the "
                "record of the episode this recorder observed (a fresh Recorder per episode)."
            )
        frames = [self.frame(i) for i in range(T)]
        names = sorted({n for f in frames for n in f.term_costs})
        H = max((len(s.plan) for s in self._steps), default=0)
        nx, nu = self.dynamics.nx, self.dynamics.nu
        meta = {
            "format": RECORDING_FORMAT, "version": RECORDING_VERSION, "steps": T, "nx": nx,
            "nu": nu, "dt": float(self.dynamics.dt), "term_names": names,
            "max_proposals": self.max_proposals, "success": record.success,
            "seed": record.info.get("seed"), **header,
        }  # fmt: skip
        return EpisodeRecording(
            header=meta,
            states=np.asarray(record.states, dtype=np.float64),
            actions=np.asarray(record.actions, dtype=np.float64).reshape(T, nu),
            plan_costs=np.array([f.cost for f in frames], dtype=np.float64),
            term_costs=np.array(
                [[f.term_costs.get(n, np.nan) for n in names] for f in frames], dtype=np.float64
            ).reshape(T, len(names)),
            plan_times=np.asarray(record.plan_times, dtype=np.float64),
            num_feasible=np.array([f.num_feasible for f in frames], dtype=np.int64),
            fallbacks=np.array([f.fallback for f in frames], dtype=str),
            deadline_missed=np.array([s.result.deadline_missed for s in self._steps], bool),
            plans=_stack_padded([s.plan for s in self._steps], (H, nu)),
            plan_states=_stack_padded([f.plan_states for f in frames], (H + 1, nx)),
            proposal_states=_stack_padded(
                [f.proposal_states for f in frames], (self._kept(), H + 1, nx)
            ).astype(np.float32),
            proposal_costs=_stack_padded([f.proposal_costs for f in frames], (self._kept(),)),
            proposal_count=np.array([len(f.proposal_costs) for f in frames], dtype=np.int64),
        )

    def _kept(self) -> int:
        return max((len(s.costs) for s in self._steps), default=0)


def _stack_padded(arrays: Sequence[FloatArray], shape: tuple[int, ...]) -> FloatArray:
    """Stack arrays of at most ``shape`` each, nan-padded, Shape=(len(arrays), *shape)."""
    out = np.full((len(arrays), *shape), np.nan)
    for i, a in enumerate(arrays):
        a = np.asarray(a, dtype=np.float64)
        index: tuple[Any, ...] = (i, *(slice(0, n) for n in a.shape))
        out[index] = a
    return out


@dataclass
class EpisodeRecording:
    """A recorded episode: the header and the arrays of ``RECORDING_ARRAYS`` (same names).

    ``header`` holds ``format``, ``version``, ``steps`` (T), ``nx``, ``nu``, ``dt``,
    ``term_names`` (the columns of ``term_costs``), ``success``, ``seed`` and what the
    recorder was told (``task``, ``planner``).
    """

    header: dict[str, Any]
    states: FloatArray
    actions: FloatArray
    plan_costs: FloatArray
    term_costs: FloatArray
    plan_times: FloatArray
    num_feasible: np.ndarray
    fallbacks: np.ndarray
    deadline_missed: np.ndarray
    plans: FloatArray
    plan_states: FloatArray
    proposal_states: FloatArray
    proposal_costs: FloatArray
    proposal_count: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return int(self.actions.shape[0])

    @property
    def term_names(self) -> list[str]:
        return list(self.header["term_names"])

    def frame(self, step: int) -> Frame:
        """Step ``step`` as the view draws it."""
        if not 0 <= step < self.steps:
            raise InputError(f"step {step} is outside the recording's 0..{self.steps - 1}.")
        k = int(self.proposal_count[step])
        return Frame(
            step=step, state=self.states[step],
            plan_states=self.plan_states[step][~np.isnan(self.plan_states[step]).all(axis=1)],
            proposal_states=self.proposal_states[step, :k].astype(np.float64),
            proposal_costs=self.proposal_costs[step, :k], cost=float(self.plan_costs[step]),
            term_costs={n: float(v) for n, v in zip(self.term_names, self.term_costs[step],
                                                     strict=True) if np.isfinite(v)},
            fallback=str(self.fallbacks[step]), num_feasible=int(self.num_feasible[step]),
        )  # fmt: skip


def write_recording(path: str | Path, recording: EpisodeRecording) -> Path:
    """Write ``recording`` to ``path`` (an ``.npz``) atomically."""
    arrays = {name: getattr(recording, name) for name in RECORDING_ARRAYS}
    header = json.dumps(recording.header, sort_keys=True, default=_plain)
    # A file handle, not a name: np.savez would append ".npz" to the temporary name.
    return write_atomic(
        path,
        lambda fh: np.savez_compressed(fh, header=np.array(header), **arrays),
    )


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_recording(path: str | Path) -> EpisodeRecording:
    """Read a recording written by ``write_recording``.

    Raises:
        InputError: no such file, not a recording, another version, or arrays missing.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"no recording at {path}: record one with imle-mpc run TASK --record FILE."
        )
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise InputError(f"{path} is not an episode recording (.npz): {err}") from None
    with data:
        try:
            header = json.loads(str(data["header"]))
        except (KeyError, ValueError):
            raise InputError(
                f"{path} has no recording header: not written by imle-mpc run --record."
            ) from None
        if header.get("format") != RECORDING_FORMAT:
            raise InputError(
                f"{path} is a {header.get('format')!r} file, not an episode recording "
                f"({RECORDING_FORMAT!r})."
            )
        version = header.get("version")
        if version != RECORDING_VERSION:
            raise InputError(
                f"{path} is episode recording version {version}, but this imle_mpc reads "
                f"version {RECORDING_VERSION}: record the episode again with this version "
                "(imle-mpc run TASK --record FILE), or open it with the imle_mpc that wrote it."
            )
        missing = sorted(set(RECORDING_ARRAYS) - set(data.files))
        if missing:
            raise InputError(f"{path} lacks the arrays {missing}: a truncated or edited file.")
        arrays = {name: data[name] for name in RECORDING_ARRAYS}
    return EpisodeRecording(header=header, **arrays)
