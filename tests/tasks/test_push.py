"""push_block: the MuJoCo pushing task's model, expert, routes and a guarded MPPI run."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from imle_mpc.core.checks import check_dynamics
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode, violation_per_step
from imle_mpc.eval.factory import make_planner
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
