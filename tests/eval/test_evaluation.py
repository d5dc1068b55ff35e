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


@pytest.mark.parametrize("guard", [True, False], ids=["guard", "mechanism-off:no-guard"])
def test_guarded_imle_mpc_stays_safe_under_all_faults(nav_task, guard: bool) -> None:  # type: ignore[no-untyped-def]
    """Protects: the safety guard (``SafetyGuard`` + ``OffsetFree`` in ``build_guarded``).

    Seeds 0-11 under the stated faults, measured: guarded 12/12 successes and no
    violation; unguarded seed 8 hits the disc (4 violation steps, 11/12 successes).
    The unguarded case proves that these seeds need the guard.
    """
    assert nav_task.faults is not None
    config = EvalConfig(episodes=12, faults=nav_task.faults, guard=guard)
    summary, outcomes = evaluate(config)
    assert summary["episodes"] == 12
    if not guard:
        assert summary["violation_episodes"] >= 1, summary
        assert summary["success_rate"] < 1.0
        return
    assert summary["violation_steps"] == 0
    assert summary["success_rate"] == 1.0
    # The faults really happened and the guard really worked.
    assert sum(o.dropped_plans for o in outcomes) > 0
    assert summary["deadline_overruns"] == sum(o.dropped_plans for o in outcomes)
    assert summary["fallback_steps"] >= summary["deadline_overruns"]


def _no_delay_compensation(cls):  # type: ignore[no-untyped-def]
    """``cls`` built with ``action_delay=0`` whatever it is told (the delay left uncompensated)."""

    def build(*args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["action_delay"] = 0
        return cls(*args, **kwargs)

    return build


@pytest.mark.parametrize(
    "compensated", [True, False], ids=["compensated", "mechanism-off:guard-delay-0"]
)
def test_the_evaluated_guard_compensates_the_actuation_delay(
    nav_task, monkeypatch: pytest.MonkeyPatch, compensated: bool
) -> None:  # type: ignore[no-untyped-def]
    """Protects: delay compensation in the evaluated loop (``build_guarded`` tells the guard
    the plant's ``action_delay``; the guard plans from the state predicted through the
    commands in flight).

    Two steps of delay with the other stated faults, seeds 0-7, measured: compensated
    8/8 successes and no violation; the guard told ``action_delay=0`` (the mutation
    of ``build_guarded``) 5/8 successes and 7 violation steps in 2 episodes. At the
    stated one step the difference is a single episode, too thin to assert.
    """
    from dataclasses import replace

    import imle_mpc.eval.factory as factory
    from planners.safety.guard import SafetyGuard

    if not compensated:
        monkeypatch.setattr(factory, "SafetyGuard", _no_delay_compensation(SafetyGuard))
    faults = replace(nav_task.faults, action_delay=2)
    planner = make_planner("imle_mpc", nav_task, seed=0)
    outcomes = [outcome(nav_task, planner, s, faults, guard=True) for s in range(8)]
    violations = sum(o.violation_steps for o in outcomes)
    successes = sum(o.success for o in outcomes)
    if compensated:
        assert (successes, violations) == (8, 0)
    else:
        assert violations > 0 and successes <= 6, (successes, violations)


def test_success_and_violations_are_judged_on_the_true_states(nav_task) -> None:  # type: ignore[no-untyped-def]
    """Protects: ``run_episode`` and ``EpisodeOutcome.of`` judge the plant's TRUE states.

    With 0.3 m position noise (seed 0, measured) the measured trajectory ends outside
    the goal tolerance and crosses the disc on 3 steps; the true one succeeds with
    0.23 m clearance. Judged on the measurements the figures would flip.
    """
    from imle_mpc.loop.faults import FaultConfig

    planner = make_planner("mppi", nav_task, seed=0, num_samples=64)
    faults = FaultConfig(observation_noise=(0.3, 0.3, 0.0, 0.0))
    record = run_episode(nav_task, planner, 0, faults=faults)
    assert record.true_states is not None
    measured = np.count_nonzero(violation_per_step(nav_task.safety, record.states, record.actions))
    true = np.count_nonzero(violation_per_step(nav_task.safety, record.true_states, record.actions))
    assert measured > 0 and true == 0, (measured, true)  # the seed makes the two differ
    assert not nav_task.success(record.states) and nav_task.success(record.true_states)
    result = EpisodeOutcome.of(nav_task, record)
    assert record.success and result.success
    assert result.violation_steps == 0
    assert result.min_clearance == nav_task.min_clearance(record.true_states) > 0.0


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
