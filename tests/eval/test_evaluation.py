"""Guarded rollouts with every fault on: a small version of ``imle-mpc eval``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imle_mpc.cli import main
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode, violation_per_step
from imle_mpc.eval.evaluation import EvalConfig, evaluate
from imle_mpc.eval.factory import make_planner
from imle_mpc.tasks import make_task

pytestmark = pytest.mark.slow

KEYS = {"episodes", "success_rate", "violation_steps", "fallback_steps", "deadline_overruns"}


def outcome(task, planner, seed, faults, guard):  # type: ignore[no-untyped-def]
    return EpisodeOutcome.of(task, run_episode(task, planner, seed, faults=faults, guard=guard))


@pytest.fixture(scope="module")
def nav_task():  # type: ignore[no-untyped-def]
    return make_task("nav_one_obstacle")


def test_guarded_imle_mpc_stays_safe_under_all_faults(nav_task) -> None:  # type: ignore[no-untyped-def]
    assert nav_task.faults is not None
    config = EvalConfig(episodes=6, faults=nav_task.faults, guard=True)
    summary, outcomes = evaluate(config)
    assert summary["episodes"] == 6
    assert summary["violation_steps"] == 0
    assert summary["success_rate"] >= 0.5
    # The faults really happened and the guard really worked.
    assert sum(o.dropped_plans for o in outcomes) > 0
    assert summary["deadline_overruns"] == sum(o.dropped_plans for o in outcomes)
    assert summary["fallback_steps"] >= summary["deadline_overruns"]


def test_faults_make_the_unguarded_imle_policy_unsafe_and_the_guard_fixes_it(nav_task) -> None:  # type: ignore[no-untyped-def]
    planner = make_planner("imle_policy", nav_task, seed=0)
    faults = nav_task.faults  # the stated magnitudes
    seeds = range(16)
    unguarded = [outcome(nav_task, planner, s, faults, guard=False) for s in seeds]
    guarded = [outcome(nav_task, planner, s, faults, guard=True) for s in seeds]
    assert sum(o.violation_steps for o in unguarded) > 0
    assert sum(o.violation_steps for o in guarded) == 0


def test_episode_is_reproducible_from_its_seed(nav_task) -> None:  # type: ignore[no-untyped-def]
    planner = make_planner("imle_mpc", nav_task, seed=0)
    a = run_episode(nav_task, planner, 3, faults=nav_task.faults, guard=True)
    b = run_episode(nav_task, planner, 3, faults=nav_task.faults, guard=True)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert a.info["pushes"] == b.info["pushes"]
    assert a.info["dropped_plans"] == b.info["dropped_plans"]


def test_violation_steps_count_transitions_into_the_obstacle(nav_task) -> None:  # type: ignore[no-untyped-def]
    states = np.zeros((5, 4))
    states[:, 0] = [1.0, 1.2, 1.4, 2.0, 3.0]  # the disc (radius 0.7 at x=2) spans x in 1.3..2.7
    actions = np.zeros((4, 2))
    v = violation_per_step(nav_task.safety, states, actions)
    np.testing.assert_array_equal(v > 0, [False, True, True, False])


def test_eval_command_prints_the_summary_keys(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "eval.json"
    code = main(["eval", "--episodes", "2", "--faults", "noise,drop", "--json", "--out", str(out)])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary) >= KEYS
    assert summary["faults"] == ["noise", "drop"]
    saved = json.loads(out.read_text())
    assert len(saved["episodes"]) == 2


def test_eval_refuses_unknown_fault_kinds(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["eval", "--episodes", "1", "--faults", "noise,earthquake"]) == 2
    assert "unknown fault kinds" in capsys.readouterr().err
