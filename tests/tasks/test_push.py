"""push_block: the MuJoCo pushing task's model, expert, routes and a guarded MPPI run."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest

from imle_mpc.core.checks import check_dynamics
from imle_mpc.core.errors import InputError
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode, violation_per_step
from imle_mpc.eval.factory import make_planner
from imle_mpc.loop.faults import mismatched_model
from imle_mpc.tasks import make_task
from imle_mpc.tasks.push import (
    PUSH_GOAL,
    PUSH_GOAL_TOLERANCE,
    push_block,
    run_push_expert,
)


@pytest.fixture(scope="module")
def task():  # type: ignore[no-untyped-def]
    return push_block()


def test_model_passes_the_dynamics_contract(task) -> None:  # type: ignore[no-untyped-def]
    report = check_dynamics(task.dynamics, state=task.initial_state)
    assert report["ok"] and report["nx"] == 8 and report["nu"] == 2
    assert task.dynamics.dt == pytest.approx(0.05)
    assert make_task("push_block").name == "push_block"


def test_the_post_blocks_the_straight_push(task) -> None:  # type: ignore[no-untyped-def]
    # Pushing straight at the goal jams the block against the post: the task needs a detour.
    U = np.tile([0.3, 0.0], (1, task.steps, 1))
    X = task.dynamics.rollout(task.initial_state, U)[0]
    assert X[-1, 2] < 0.3 - 0.04 - 0.04 + 0.005  # the block's face stops at the post
    assert not task.success(X) and task.route_of(X) == "none"


@pytest.mark.parametrize("route", ["left", "right"])
def test_expert_pushes_the_block_to_the_goal_both_ways(task, route: str) -> None:  # type: ignore[no-untyped-def]
    X, U = run_push_expert(task, route)
    assert task.success(X)
    assert np.linalg.norm(X[-1, 2:4] - np.asarray(PUSH_GOAL)) < PUSH_GOAL_TOLERANCE
    assert task.route_of(X) == route
    assert violation_per_step(task.safety, X, U).max() == 0.0
    assert task.min_clearance(X) > 0.0


def test_route_classifier_reads_the_block_not_the_pusher(task) -> None:  # type: ignore[no-untyped-def]
    X, _ = run_push_expert(task, "left")
    swapped = X.copy()
    swapped[:, 1] *= -1.0  # the pusher mirrored: the block's route is unchanged
    assert task.route_of(swapped) == "left"
    swapped[:, 3] *= -1.0
    assert task.route_of(swapped) == "right"


def test_guarded_mppi_stays_clear_of_the_post(task) -> None:  # type: ignore[no-untyped-def]
    planner = make_planner("mppi", task, seed=0)
    start = time.perf_counter()
    record = run_episode(task, planner, 0, guard=True, steps=30)
    outcome = EpisodeOutcome.of(task, record)
    print(
        f"guarded MPPI K={task.hints.num_samples}: {outcome.plan_ms_mean:.1f} ms a step "
        f"(mean), {time.perf_counter() - start:.1f} s for 30 steps"
    )
    assert outcome.violation_steps == 0 and outcome.point_violation_steps == 0
    assert outcome.min_clearance > 0.0
    # It pushes the block towards the goal (straight at the post: the greedy cost's trap).
    assert record.true_states[-1, 2] > 0.1


def test_demonstration_recipe_runs_on_the_mujoco_model(task) -> None:  # type: ignore[no-untyped-def]
    # No file ships yet: the recipe itself (ScriptedDemos stepping a MujocoDynamics).
    ds = task.generate_demonstrations(4, seed=3)
    assert len(ds.episodes) == 4 and sorted(ds.meta["modes"]) == ["left", "left", "right", "right"]
    for episode, route in zip(ds.episodes, ds.meta["modes"], strict=True):
        assert episode.actions.shape == (task.steps, 2) and episode.states.shape == (task.steps, 8)
        assert task.route_of(episode.states) == route
    again = task.generate_demonstrations(4, seed=3)
    assert all(
        np.array_equal(a.actions, b.actions)
        for a, b in zip(ds.episodes, again.episodes, strict=True)
    )


def test_demonstration_recipe_checks_the_clearance(task) -> None:  # type: ignore[no-untyped-def]
    strict = dataclasses.replace(task.demos.generate, min_clearance=0.5)
    with pytest.raises(RuntimeError, match=r"need >= 0.5"):
        strict(task, 2, 0)


@pytest.mark.slow
def test_guarded_imle_mpc_with_the_shipped_generator_pushes_the_block_home(task) -> None:  # type: ignore[no-untyped-def]
    """The demonstrations know which side of the post to start on: 3/3 on seeds 0-2 with
    33 samples, where guarded MPPI with 256 jams the block on the post in 4 of 6."""
    record = run_episode(task, make_planner("imle_mpc", task, seed=0), 0, guard=True)
    outcome = EpisodeOutcome.of(task, record)
    assert record.success and outcome.violation_steps == 0
    assert task.route_of(record.true_states) in ("left", "right")


def test_the_stated_mismatch_is_a_heavier_block_on_the_plant(task) -> None:  # type: ignore[no-untyped-def]
    """``mismatched_model`` copies the MuJoCo model with the stated factors: pushed
    the same way, the plant's block coasts on further (measured 17.2 vs 15.5 mm: its
    50 % more mass outweighs the 30 % more table friction)."""
    faults = task.faults
    assert "mismatch" in faults.active
    plant = mismatched_model(task.dynamics, faults.model_mismatch)
    assert plant.model.body_mass[2] == pytest.approx(1.5 * task.dynamics.model.body_mass[2])
    # A push from behind, then the pusher stops and the block coasts.
    U = np.concatenate([np.tile([0.3, 0.0], (12, 1)), np.zeros((20, 2))])[None]
    nominal = task.dynamics.rollout(task.initial_state, U)[0]
    mismatched = plant.rollout(task.initial_state, U)[0]
    slide = nominal[-1, 2] - nominal[12, 2]
    assert slide > 0.005 and mismatched[-1, 2] - mismatched[12, 2] > 1.05 * slide


@pytest.mark.slow
def test_push_block_goes_through_run_eval_sweep_and_report(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Every path a user has, on the MuJoCo task: ``run`` (real time), a guarded and
    unguarded ``sweep`` with the stated faults (mismatch included), ``report``."""
    from imle_mpc.cli import main

    args = ["run", "push_block", "--planner", "imle_mpc", "--real-time", "--json", "--out"]
    assert main([*args, str(tmp_path)]) == 0
    run = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert run["task"] == "push_block" and run["success_rate"] == 1.0
    assert "overruns" in run
    sweep = tmp_path / "push.jsonl"
    grid = ["--planners", "imle_mpc", "--samples", "8", "--faults", "all", "--guard", "both"]
    assert (
        main(["sweep", "--task", "push_block", *grid, "--episodes", "1", "--out", str(sweep)]) == 0
    )
    records = [json.loads(line) for line in sweep.read_text().splitlines()]
    assert sorted(r["guard"] for r in records) == [False, True]
    assert all("mismatch" in r["fault_kinds"] for r in records)
    capsys.readouterr()
    assert main(["report", str(sweep), "--out", str(tmp_path / "report"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["episodes"] == 2
    assert "push_block" in (tmp_path / "report" / "report.md").read_text()


def test_refinement_settings_are_stated_with_the_task(task) -> None:  # type: ignore[no-untyped-def]
    heavy, precise = task.refinement("heavy"), task.refinement("precise")
    assert task.refinement() is heavy  # the first is the default
    assert heavy.faults.active == ("mismatch",) and heavy.apply(task) is task
    assert heavy.faults.model_mismatch["body_mass:block"] == 2.0
    # precise: the same plant, a 2 cm tolerance instead of 5 cm.
    strict = precise.apply(task)
    assert precise.faults.active == () and strict.success is not task.success
    X = np.zeros((2, 8))
    X[-1, 2:4] = [PUSH_GOAL[0] - 0.03, PUSH_GOAL[1]]
    assert task.success(X) and not strict.success(X)
    X[-1, 2] = PUSH_GOAL[0] - 0.015
    assert strict.success(X)
    with pytest.raises(
        InputError, match=r"no refinement setting 'slippery'.*\['heavy', 'precise'\]"
    ):
        task.refinement("slippery")
    with pytest.raises(InputError, match="states no refinement setting"):
        make_task("pendulum").refinement()


def test_the_frozen_imle_policy_is_short_in_the_heavy_setting(task) -> None:  # type: ignore[no-untyped-def]
    # The block twice as heavy with 5x the table friction: the policy's push runs out short.
    planner = make_planner("imle_policy", task, seed=0)
    faults = task.refinement("heavy").faults
    success = {
        name: np.mean(
            [run_episode(task, planner, s, faults=f, guard=True).success for s in range(8)]
        )
        for name, f in (("nominal", None), ("heavy", faults))
    }
    assert success["nominal"] >= 0.85 and success["heavy"] <= 0.75, success
