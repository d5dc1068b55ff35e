"""The multi-modal tasks: geometry, success predicates, constraints, and a plain MPPI baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imle_mpc.tasks import Task, make_task
from imle_mpc.tasks.arm import (
    ARM_GOAL_Q,
    ARM_POST,
    ARM_START_Q,
    ArmPostConstraint,
    arm_clearance,
    arm_tip,
)
from imle_mpc.tasks.navigation import NAV_LAYOUTS, nav_layout

MULTIMODAL = ["arm_reach_around", "nav_one_obstacle", "nav_trap", "nav_two_obstacles"]


def task_routes(name: str) -> tuple[str, ...]:
    return make_task(name).route_names


def classify_route(name: str, states: np.ndarray) -> str:
    return make_task(name).route_of(states)


def expert_rollout(task: Task, route: str):  # type: ignore[no-untyped-def]
    return task.demos.generate.rollout(task, route, None)  # type: ignore[union-attr]


REPO = Path(__file__).resolve().parents[2]
NAV_TASKS = sorted(NAV_LAYOUTS)


def _straight_states(task: Task, goal: np.ndarray) -> np.ndarray:
    """States that move along the straight line from the start to the goal (no model)."""
    steps = task.steps
    frac = np.linspace(0.0, 1.0, steps + 1)[:, None]
    start = np.asarray(task.initial_state)
    return start + frac * (goal - start)


@pytest.mark.parametrize("name", MULTIMODAL)
def test_builders_return_complete_tasks(name: str) -> None:
    task = make_task(name)
    assert isinstance(task, Task)
    assert task.name == name
    assert task.initial_state.shape == (task.dynamics.nx,)
    assert 60 <= task.steps <= 100
    assert task.hints.horizon == 16
    assert len(task.constraints) == 1
    X = np.repeat(task.initial_state[None, None], 17, axis=1).repeat(3, axis=0)
    U = np.zeros((3, 16, task.dynamics.nu))
    total, breakdown = task.cost.evaluate(X, U)
    assert total.shape == (3,) and np.all(np.isfinite(total))
    assert {"goal", "terminal", "clearance", "effort"} <= set(breakdown)
    assert np.all(task.constraints[0].violation(X, U) == 0.0)  # the start is safe
    assert len(task_routes(name)) == (4 if name == "nav_two_obstacles" else 2)


def test_navigation_timing_choices() -> None:
    for name in NAV_TASKS:
        task = make_task(name)
        assert task.dynamics.dt == pytest.approx(0.1)
        assert np.all(task.dynamics.action_high == 2.0)
        assert task.scene is not None
    assert make_task("arm_reach_around").scene is None


def test_unknown_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="choose one of"):
        make_task("nav_three")
    with pytest.raises(ValueError, match="choose one of"):
        nav_layout("nope")
    with pytest.raises(ValueError, match="has no routes"):
        make_task("pendulum").route_of(np.zeros((3, 2)))


@pytest.mark.parametrize("name", NAV_TASKS)
def test_straight_line_through_the_obstacles_fails(name: str) -> None:
    task = make_task(name)
    layout = nav_layout(name)
    states = _straight_states(task, layout.goal_state)
    assert layout.clearance(states[:, :2]).min() < 0.0
    assert not task.success(states)
    assert "through" in classify_route(name, states)
    X = states[None]
    assert task.constraints[0].violation(X, np.zeros((1, task.steps, 2)))[0] > 0.0


def test_straight_arm_sweep_hits_the_post() -> None:
    task = make_task("arm_reach_around")
    states = _straight_states(task, np.array([*ARM_GOAL_Q, 0.0, 0.0]))
    assert arm_clearance(states).min() < 0.0
    assert not task.success(states)
    U = np.zeros((1, task.steps, 2))
    assert ArmPostConstraint().violation(states[None], U)[0] > 0.0


@pytest.mark.parametrize("name", MULTIMODAL)
def test_success_on_expert_rollouts_of_every_route(name: str) -> None:
    task = make_task(name)
    for route in task_routes(name):
        run = expert_rollout(task, route)
        assert task.success(run.states), route
        assert classify_route(name, run.states) == route
        # An unfinished run (cut before arriving) is no success.
        assert not task.success(run.states[: task.steps // 3])
        U = run.actions[None]
        assert task.constraints[0].violation(run.states[None], U)[0] == 0.0


def test_classify_nav_route_on_synthetic_paths() -> None:
    layout = nav_layout("nav_two_obstacles")
    x = np.linspace(0.0, 6.5, 50)
    for s1 in (1.0, -1.0):
        for s2 in (1.0, -1.0):
            y = s1 * np.exp(-((x - 2.0) ** 2)) + s2 * np.exp(-((x - 4.5) ** 2))
            label = classify_route("nav_two_obstacles", np.stack([x, y], 1))
            expected = "-".join("above" if s > 0 else "below" for s in (s1, s2))
            assert label == expected
    assert layout.routes == ("above-above", "above-below", "below-above", "below-below")
    short = np.stack([np.linspace(0, 3, 10), np.ones(10)], 1)
    assert classify_route("nav_two_obstacles", short) == "above-none"


def test_trap_cup_is_a_dead_end_on_the_straight_line() -> None:
    """nav_trap: the straight line enters the cup and hits its back wall; the routes pass it."""
    layout = nav_layout("nav_trap")
    assert layout.obstacles == () and len(layout.walls) == 3
    assert layout.routes == ("above", "below")
    # Inside the cup (open toward the start) is free space, the back wall is not.
    assert layout.clearance(np.array([2.4, 0.0])) > 0.5
    assert layout.clearance(np.array([3.0, 0.0])) == pytest.approx(-0.1)
    # The cup's mouth faces the start: from (1.0, 0) the way in is free, the way through is not.
    inside = np.stack([np.linspace(1.0, 2.8, 20), np.zeros(20)], 1)
    assert layout.clearance(inside).min() > 0.0
    # A path that ends inside the cup took no route: it went into the cup.
    assert classify_route("nav_trap", inside) == "through"
    assert classify_route("nav_trap", inside + np.array([0.0, 1.5])) == "above"
    # A disc layout's clearance is the discs' signed distance.
    one = nav_layout("nav_one_obstacle")
    p = np.array([[2.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(one.clearance(p), np.linalg.norm(p - [2.0, 0.0], axis=1) - 0.7)


def test_plain_mppi_is_stuck_in_the_trap() -> None:
    """The reason for nav_trap: greedy sampling MPC drives into the cup, whatever its K."""
    from imle_mpc.eval.episodes import run_episode
    from imle_mpc.eval.factory import make_planner

    task = make_task("nav_trap")
    for k in (64, 1024):
        record = run_episode(task, make_planner("mppi", task, seed=0, num_samples=k), seed=0)
        assert not record.success
        final = record.states[-1, :2]
        assert 1.8 < final[0] < 3.0 and abs(final[1]) < 1.0, final  # inside the cup


def test_arm_clearance_matches_a_sampled_reference(rng: np.random.Generator) -> None:
    q = rng.uniform(-np.pi, np.pi, size=(200, 2))
    states = np.concatenate([q, np.zeros_like(q)], axis=1)
    elbow = np.stack([np.cos(q[:, 0]), np.sin(q[:, 0])], 1)
    tip = arm_tip(states)
    t = np.linspace(0.0, 1.0, 2001)[None, :, None]
    points = np.concatenate([t * elbow[:, None], elbow[:, None] + t * (tip - elbow)[:, None]], 1)
    ref = np.linalg.norm(points - np.array(ARM_POST[:2]), axis=-1).min(axis=1) - ARM_POST[2]
    np.testing.assert_allclose(arm_clearance(states), ref, atol=2e-3)


def test_an_arm_with_an_unknown_angle_is_never_clear() -> None:
    """Protects: a NaN or infinite elbow (or shoulder) angle gives NaN clearance, so the
    post constraint rejects the state; the minimum over the links kept the shoulder
    link's distance and called it clear (a defect until 2026-12-04)."""
    states = np.array([[0.1, np.nan, 0, 0], [np.inf, 0.1, 0, 0], [0.1, 0.1, 0, 0]])
    d = arm_clearance(states)
    assert np.isnan(d[0]) and np.isnan(d[1]) and np.isfinite(d[2])


def test_arm_start_and_goal_are_straight_and_clear() -> None:
    start = np.array([*ARM_START_Q, 0.0, 0.0])
    goal = np.array([*ARM_GOAL_Q, 0.0, 0.0])
    assert arm_clearance(np.stack([start, goal])).min() > 1.0
    np.testing.assert_allclose(np.linalg.norm(arm_tip(goal)), 2.0)
    # Mirror images of each other about the vertical through the shoulder and the post.
    np.testing.assert_allclose(arm_tip(start) * [-1.0, 1.0], arm_tip(goal), atol=1e-12)


@pytest.mark.slow
def test_plain_mppi_on_nav_one_obstacle() -> None:
    """Plain MPPI with the task's hints (horizon 16 = one IMLE chunk, 256 samples): the baseline.

    Measured: seeds 0 and 1 succeed, seed 0 above (0.22 m clearance) and seed 1 below
    (0.20 m); asserted with a margin of a few cm under the 0.1 m planning margin. Where
    short-horizon MPPI does NOT cope — the same hints on ``arm_reach_around`` (0/3
    seeds: the arm wedges against the post; even horizon 40 / 512 samples managed 1/2,
    overshooting), the route collapse on ``nav_two_obstacles`` (3/3 seeds took
    above-above, never the other three routes) and ``nav_trap``
    (``test_plain_mppi_is_stuck_in_the_trap``) — is the motivation for IMLE proposals,
    which carry the routes of the demonstrations into the sample set.
    """
    from imle_mpc.eval.episodes import run_episode
    from imle_mpc.eval.factory import make_planner

    task = make_task("nav_one_obstacle")
    routes = []
    for seed in (0, 1):
        record = run_episode(task, make_planner("mppi", task, seed=0), seed=seed)
        assert record.success, seed
        assert task.min_clearance(record.states) > 0.05
        assert np.all(np.abs(record.actions) <= 2.0 + 1e-12)
        routes.append(classify_route("nav_one_obstacle", record.states))
    assert routes == ["above", "below"]  # no side is built into the sampler
