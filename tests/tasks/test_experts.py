"""Scripted experts and the shipped demonstration datasets of the multi-modal tasks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from imle_mpc.learn.demos import DemoDataset
from imle_mpc.tasks import make_task
from imle_mpc.tasks.arm import arm_reference
from imle_mpc.tasks.experts import EXPERT_MIN_CLEARANCE, balanced_routes, observation
from imle_mpc.tasks.shipped import (
    generate_demonstrations,
    load_default_dataset,
    write_default_datasets,
)

TASKS = ["arm_reach_around", "nav_one_obstacle", "nav_trap", "nav_two_obstacles"]
"""The tasks whose demonstrations come from a scripted expert (quick to regenerate)."""
DEFAULT_NUM_DEMOS = {name: make_task(name).demos.num_demos for name in TASKS}  # type: ignore[union-attr]
PUSHED = {"arm_reach_around", "nav_trap"}


def task_routes(name: str) -> tuple[str, ...]:
    return make_task(name).route_names


def min_clearance(name: str, states: np.ndarray) -> float:
    return make_task(name).min_clearance(states)


def classify_route(name: str, states: np.ndarray) -> str:
    return make_task(name).route_of(states)


def _episode_states(ds: DemoDataset, i: int, task_name: str) -> np.ndarray:
    """An episode's states plus the state its last action leads to (replayed on the model)."""
    ep = ds.episodes[i]
    model = make_task(task_name).dynamics
    last = model.step(ep.states[-1], ep.actions[-1])
    return np.concatenate([ep.states, last[None]])


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_experts_reach_the_goal_without_collision(name: str, seed: int) -> None:
    task = make_task(name)
    n = 2 * len(task_routes(name))
    ds = generate_demonstrations(name, n, seed)
    for i, label in enumerate(ds.meta["modes"]):
        states = _episode_states(ds, i, name)
        assert task.success(states), (i, label)
        assert min_clearance(name, states) >= EXPERT_MIN_CLEARANCE
        # The route read back from the path is the one the episode is labelled with.
        assert classify_route(name, states) == label


@pytest.mark.parametrize("name", TASKS)
def test_all_modes_present_and_balanced(name: str) -> None:
    routes = task_routes(name)
    ds = generate_demonstrations(name, 3 * len(routes) + 1, seed=7)
    counts = Counter(ds.meta["modes"])
    assert set(counts) == set(routes)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert ds.meta["mode_names"] == list(routes)
    assert len(ds.meta["modes"]) == len(ds.episodes)


def test_balanced_routes_are_shuffled_but_exact() -> None:
    labels = balanced_routes(make_task("nav_two_obstacles"), 10, np.random.default_rng(0))
    assert sorted(Counter(labels).values()) == [2, 2, 3, 3]
    assert labels != balanced_routes(make_task("nav_two_obstacles"), 10, np.random.default_rng(1))


@pytest.mark.parametrize("name", TASKS)
def test_dataset_format(name: str) -> None:
    task = make_task(name)
    model = task.dynamics
    ds = generate_demonstrations(name, 4, seed=0)
    assert len(ds.episodes) == 4
    assert (ds.obs_dim, ds.nx, ds.nu) == (model.nx, model.nx, model.nu)
    for ep in ds.episodes:
        assert len(ep) == task.steps
        np.testing.assert_array_equal(ep.observations, observation(ep.states))
        assert np.all(ep.actions >= model.action_low) and np.all(ep.actions <= model.action_high)
        # The states are the model's response to the recorded (applied) actions, step by
        # step; some tasks' demonstrations are pushed off the reference now and then
        # (``ScriptedDemos.pushes``), every other transition is the model's.
        pred = model.rollout_from_states(ep.states[:-1], ep.actions[:-1, None])[:, 1]  # type: ignore[attr-defined]
        mismatched = np.any(np.abs(pred - ep.states[1:]) > 1e-9, axis=1)
        if name in PUSHED:
            assert 0 < mismatched.sum() < 0.15 * len(ep)
        else:
            assert not mismatched.any()
        assert np.linalg.norm(ep.states[0] - task.initial_state) < 0.1  # jittered start
    meta = ds.meta
    assert meta["task"] == name and meta["seed"] == 0 and meta["num_demos"] == 4
    assert meta["dt"] == pytest.approx(model.dt)
    assert meta["observation"] == "state"
    assert meta["action_high"] == list(model.action_high)


def test_starts_are_jittered() -> None:
    ds = generate_demonstrations("nav_one_obstacle", 6, seed=0)
    starts = np.array([ep.states[0] for ep in ds.episodes])
    assert np.all(np.abs(starts[:, :2]) <= 0.05) and np.all(starts[:, 2:] == 0.0)
    assert len({tuple(s) for s in starts}) == 6


@pytest.mark.parametrize("name", TASKS)
def test_generation_is_deterministic(name: str) -> None:
    a = generate_demonstrations(name, 4, seed=11)
    b = generate_demonstrations(name, 4, seed=11)
    c = generate_demonstrations(name, 4, seed=12)
    assert a.meta == b.meta
    for ea, eb in zip(a.episodes, b.episodes, strict=True):
        np.testing.assert_array_equal(ea.actions, eb.actions)
        np.testing.assert_array_equal(ea.states, eb.states)
    assert not np.array_equal(a.episodes[0].states, c.episodes[0].states)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="has no demonstrations"):
        generate_demonstrations("pendulum", 2, 0)
    with pytest.raises(ValueError, match="choose one of"):
        generate_demonstrations("pendula", 2, 0)
    with pytest.raises(ValueError, match="num_demos"):
        generate_demonstrations("nav_one_obstacle", 0, 0)
    with pytest.raises(ValueError, match="has no demonstrations"):
        _ = make_task("pendulum").dataset_path
    with pytest.raises(ValueError, match="route"):
        arm_reference(0.0, "above", 1.9, 2.9)


def test_observation_is_a_copy_of_the_state() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    obs = observation(x)
    np.testing.assert_array_equal(obs, x)
    obs[0] = 9.0
    assert x[0] == 1.0
    assert observation(np.zeros((3, 5, 4))).shape == (3, 5, 4)


@pytest.mark.parametrize("route", ["fold_ccw", "fold_cw"])
def test_arm_reference_derivatives(route: str) -> None:
    """Velocity and acceleration of the reference agree with finite differences."""
    h = 1e-5
    for t in np.linspace(0.05, 3.2, 25):
        ref = arm_reference(t, route, 1.9, 2.9)
        up = arm_reference(t + h, route, 1.9, 2.9)
        down = arm_reference(t - h, route, 1.9, 2.9)
        np.testing.assert_allclose(ref[1], (up[0] - down[0]) / (2 * h), atol=1e-5)
        np.testing.assert_allclose(ref[2], (up[1] - down[1]) / (2 * h), atol=1e-4)
    start = arm_reference(0.0, route, 1.9, 2.9)
    end = arm_reference(2.9, route, 1.9, 2.9)
    np.testing.assert_allclose(start, [[-5 * np.pi / 6, 0.0], [0.0, 0.0], [0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(end, [[-np.pi / 6, 0.0], [0.0, 0.0], [0.0, 0.0]], atol=1e-12)


@pytest.mark.parametrize("name", sorted(DEFAULT_NUM_DEMOS))
def test_shipped_datasets_load(name: str) -> None:
    path = make_task(name).dataset_path
    assert path.is_file(), f"missing {path}; run `python -m imle_mpc.tasks.shipped`"
    ds = load_default_dataset(name)
    assert len(ds.episodes) == DEFAULT_NUM_DEMOS[name]
    assert ds.meta["task"] == name and ds.meta["seed"] == make_task(name).demos.seed  # type: ignore[union-attr]
    counts = Counter(ds.meta["modes"])
    assert set(counts) == set(task_routes(name))
    assert len(set(counts.values())) == 1  # exactly balanced


def test_shipped_datasets_match_regeneration(tmp_path: Path) -> None:
    written = write_default_datasets(tmp_path)
    # The scripted tasks here, and push_block's expert through MuJoCo (tests/tasks/test_push.py).
    assert set(written) == {*DEFAULT_NUM_DEMOS, "push_block"}
    for name, path in written.items():
        fresh = DemoDataset.load(path)
        shipped = load_default_dataset(name)
        assert fresh.meta == shipped.meta
        for ef, es in zip(fresh.episodes, shipped.episodes, strict=True):
            # Tolerance, not equality: libm/BLAS may differ in the last bits across machines.
            np.testing.assert_allclose(ef.actions, es.actions, rtol=1e-7, atol=1e-7)
            np.testing.assert_allclose(ef.states, es.states, rtol=1e-7, atol=1e-7)
