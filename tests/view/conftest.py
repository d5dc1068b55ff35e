"""One short recorded episode the view's tests share: IMLE-MPC, guarded, on
``nav_one_obstacle`` with the passage walled off (``test_infeasible``'s task), so the
recording has infeasible proposals and guard events."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imle_mpc.core.plan_result import PlanResult
from imle_mpc.eval.episodes import run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.loop.runner import EpisodeRecord
from imle_mpc.tasks import Task, load_task
from imle_mpc.view.recording import EpisodeRecording, Recorder, write_recording

BLOCKED = "tests/planners/safety/test_infeasible.py:_blocked_passage"
"""The walled-off passage as a task spec (``load_task`` rebuilds it for a replay)."""
STEPS = 40
KEEP = 16


@dataclass
class Recorded:
    task: Task
    path: Path
    record: EpisodeRecord
    recording: EpisodeRecording
    states: list[Any]  # the state of each step, as the observer saw it
    results: list[PlanResult]  # the full PlanResult of each step (all proposals)


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    task = load_task(BLOCKED)
    recorder = Recorder(task.dynamics, max_proposals=KEEP)
    states, results = [], []

    def observe(step: int, state: Any, result: PlanResult) -> None:
        recorder(step, state, result)
        states.append(state.copy())
        results.append(result)

    planner = make_planner("imle_mpc", task, seed=0, record_samples=True)
    record = run_episode(task, planner, 0, guard=True, steps=STEPS, observer=observe)
    recording = recorder.recording(record, task=BLOCKED, planner="imle_mpc")
    path = write_recording(tmp_path_factory.mktemp("recording") / "blocked.npz", recording)
    return Recorded(task, path, record, recording, states, results)
