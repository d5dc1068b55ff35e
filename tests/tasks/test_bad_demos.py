"""Bad demonstrations per task family: each kind does what it says, the labels are kept."""

from __future__ import annotations

import numpy as np
import pytest

from imle_mpc.tasks import make_task
from imle_mpc.tasks.bad_demos import FAMILIES, bad_demo_family, bad_demonstration, mixed_dataset
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.push import (
    BLOCK_DIMS,
    PUSH_BLOCK_HALF,
    PUSH_GOAL,
    PUSH_POST,
    PUSH_PUSHER_RADIUS,
    PUSHER_DIMS,
)

_TASKS: dict[str, Task] = {}


def task_named(name: str) -> Task:
    if name not in _TASKS:
        _TASKS[name] = make_task(name)
    return _TASKS[name]


@pytest.mark.parametrize("name", ["nav_one_obstacle", "push_block"])
def test_noisy_episodes_are_the_expert_plus_the_stated_noise(name: str) -> None:
    task = task_named(name)
    family = bad_demo_family(task)
    std = family.config.noise_std
    X, U = bad_demonstration(task, "noisy", task.route_names[0], np.random.default_rng(3))
    # The same draws again: the expert's start and jitter, then the noise.
    rng = np.random.default_rng(3)
    x0, expert = family.spoil(task, "noisy", task.route_names[0], rng, family.config)
    noise = rng.normal(0.0, std, U.shape)
    np.testing.assert_array_equal(X[0], x0)
    low, high = task.dynamics.action_low, task.dynamics.action_high
    clean = np.array([expert(X[t], t) for t in range(task.steps)])  # before the clip
    unclipped = np.abs(U - 0.5 * (low + high)) < 0.5 * (high - low) - 1e-9
    assert unclipped.mean() > 0.5
    residual = (U - clean)[unclipped]
    # In the visited states the recorded action is the expert's plus exactly that noise.
    np.testing.assert_allclose(residual, noise[unclipped], atol=1e-9)
    assert 0.7 * std < residual.std() < 1.3 * std


@pytest.mark.parametrize("name", ["nav_one_obstacle", "push_block"])
def test_the_failing_kinds_never_reach_the_goal(name: str) -> None:
    task = task_named(name)
    family = bad_demo_family(task)
    assert family.failing and set(family.failing) <= set(family.kinds)
    for kind in family.failing:
        for seed, route in enumerate(task.route_names[:2]):
            X, _ = bad_demonstration(task, kind, route, np.random.default_rng(seed))
            assert not task.success(X), (kind, route)


def test_push_kinds_fail_the_way_they_say() -> None:
    task = task_named("push_block")
    rng = np.random.default_rng(0)
    cfg = bad_demo_family(task).config
    # through the post: the block is pushed straight at it and jams against it
    X, _ = bad_demonstration(task, "through_post", "left", rng)
    jam_x = PUSH_POST[0] - PUSH_POST[2] - PUSH_BLOCK_HALF
    assert abs(X[-1, BLOCK_DIMS[0]] - jam_x) < 0.01 and abs(X[-1, BLOCK_DIMS[1]]) < 0.02
    assert task.route_of(X) == "none" and task.min_clearance(X) > 0.0
    # stop short: the block ends beside the post, halfway along x, on its route's side
    X, _ = bad_demonstration(task, "stop_short", "left", rng)
    assert abs(X[-1, BLOCK_DIMS[0]] - cfg.short * PUSH_GOAL[0]) < 0.03
    assert X[-1, BLOCK_DIMS[1]] > PUSH_POST[2]
    # lose contact: the pusher leaves the block, which then stays where it was left
    X, _ = bad_demonstration(task, "lose_contact", "right", rng)
    left = cfg.lose_at + cfg.slide
    gap = np.linalg.norm(X[:, PUSHER_DIMS] - X[:, BLOCK_DIMS], axis=1)
    contact = PUSH_BLOCK_HALF + PUSH_PUSHER_RADIUS
    assert gap[cfg.lose_at - 5] < contact + 0.01 and gap[-1] > contact + 0.05
    assert np.linalg.norm(X[-1, BLOCK_DIMS] - X[left + 10, BLOCK_DIMS]) < 0.005


def test_mixed_dataset_keeps_the_labels_and_is_seeded() -> None:
    task = task_named("push_block")
    clean = task.load_demonstrations()
    counts = {"noisy": 2, "lose_contact": 1, "through_post": 1}
    data = mixed_dataset(task, clean, counts, seed=4)
    n = len(clean.episodes)
    assert data.meta["quality"] == ["expert"] * n + ["noisy"] * 2 + ["lose_contact", "through_post"]
    assert len(data.episodes) == data.meta["num_demos"] == n + 4
    assert data.meta["bad_demos"] == counts and len(data.meta["modes"]) == n + 4
    assert set(data.meta["modes"][n:]) <= set(task.route_names)
    np.testing.assert_array_equal(data.episodes[0].actions, clean.episodes[0].actions)
    again = mixed_dataset(task, clean, counts, seed=4)
    other = mixed_dataset(task, clean, counts, seed=5)
    for a, b, c in zip(data.episodes[n:], again.episodes[n:], other.episodes[n:], strict=True):
        np.testing.assert_array_equal(a.actions, b.actions)
        assert not np.array_equal(a.actions, c.actions)
    # the lose-contact episode fails, labelled as such
    assert not task.success(data.episodes[n + 2].states)


def test_unknown_kinds_and_tasks_are_refused_with_the_choices() -> None:
    push = task_named("push_block")
    with pytest.raises(ValueError, match="lose_contact"):
        mixed_dataset(push, push.load_demonstrations(), {"hesitant": 1})
    with pytest.raises(ValueError, match="push_block"):
        bad_demo_family("pendulum")
    assert {"nav_one_obstacle", "nav_two_obstacles", "nav_trap", "push_block"} <= set(FAMILIES)
