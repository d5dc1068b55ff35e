"""The residual's training env: the guarded episode of run_episode one step at a time, the
controlled-exploration schedule, the sparse reward and the guard's interventions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from imle_mpc.eval.episodes import run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.eval.residual_env import ExplorationSchedule, ResidualEnv
from imle_mpc.loop.faults import FaultConfig
from imle_mpc.tasks import load_task
from planners.residual import residual_scale


@pytest.fixture(scope="module")
def push():  # type: ignore[no-untyped-def]
    return load_task("push_block")


def _env(push, schedule: ExplorationSchedule, steps: int = 20, faults=None) -> ResidualEnv:  # type: ignore[no-untyped-def]
    faults = push.refinement("heavy").faults if faults is None else faults
    base = make_planner("imle_policy", push, seed=0)
    scale = residual_scale(push.dynamics, 0.2)
    return ResidualEnv(push, base, scale, faults, schedule, steps=steps)


def test_schedule_probability_is_min_of_step_over_horizon() -> None:
    schedule = ExplorationSchedule(1000)
    rng = np.random.default_rng(0)
    assert schedule.probability(0) == 0.0 and schedule.probability(250) == 0.25
    assert schedule.probability(1000) == 1.0 and schedule.probability(10**6) == 1.0
    assert not any(schedule.draw(0, rng) for _ in range(1000))  # exactly never at step 0
    assert all(schedule.draw(1000, rng) for _ in range(1000))  # exactly always after H
    assert ExplorationSchedule(0).probability(0) == 1.0  # the schedule off
    with pytest.raises(ValueError, match="horizon must be an integer >= 0"):
        ExplorationSchedule(-1)


def test_env_switches_the_residual_on_with_the_schedules_probability(push) -> None:  # type: ignore[no-untyped-def]
    env = _env(push, ExplorationSchedule(1000), steps=1)
    env.reset(seed=0)
    counts = {}
    for step, n in ((0, 50), (300, 300), (1000, 50)):
        env.set_global_step(step)
        counts[step] = sum(env.reset()[1]["residual_on"] for _ in range(n)) / n
    assert counts[0] == 0.0 and counts[1000] == 1.0
    # 300 episodes at p = 0.3: within three standard deviations (0.079).
    assert abs(counts[300] - 0.3) < 0.08, counts


def test_env_steps_the_same_guarded_episode_as_run_episode(push) -> None:  # type: ignore[no-untyped-def]
    # Residual switched off (step 0 of a scheduled run): the base alone, bit for bit.
    env = _env(push, ExplorationSchedule(1000), steps=25)
    obs, info = env.reset(seed=3)
    assert not info["residual_on"] and obs.shape == (11,) and obs.dtype == np.float32
    assert obs[-1] == 1.0  # the whole episode to go
    actions, time_left = [], [obs[-1]]
    for _ in range(25):
        obs, _, terminated, truncated, step_info = env.step(np.ones(2))  # ignored: off
        assert not np.any(step_info["executed_residual"])
        actions.append(step_info["action"])
        time_left.append(obs[-1])
    # The task is judged at its end: a finite horizon, the time left in the observation.
    assert terminated and not truncated
    np.testing.assert_allclose(time_left[:25], 1.0 - np.arange(25) / 25, rtol=1e-6)
    base = make_planner("imle_policy", push, seed=0)
    faults = push.refinement("heavy").faults
    record = run_episode(push, base, info["seed"], faults=faults, guard=True, steps=25)
    assert np.array_equal(np.array(actions), record.actions)
    summary = step_info["episode_summary"]
    assert summary["violation_steps"] == 0 and summary["seed"] == info["seed"]
    assert summary["interventions"] == record.fallback_steps


def test_env_applies_the_residual_and_rewards_success(push) -> None:  # type: ignore[no-untyped-def]
    env = _env(push, ExplorationSchedule(0), steps=3)  # schedule off: always on
    _, info = env.reset(seed=1)
    assert info["residual_on"]
    obs, reward, *_, step_info = env.step(np.array([0.0, 1.0]))
    np.testing.assert_array_equal(step_info["executed_residual"], [0.0, 1.0])
    assert reward == 0.0  # the block is 60 cm from the goal
    # The observation's base action is scaled to the box: the IMLE policy's start is in it.
    assert np.all(np.abs(obs[8:10]) <= 1.0)
    # A task judged a success from the start: rewarded at its end, and only there.
    easy = ResidualEnv(
        dataclasses.replace(push, success=lambda states: True),
        make_planner("imle_policy", push, seed=0), residual_scale(push.dynamics, 0.1), steps=3,
    )  # fmt: skip
    easy.reset(seed=0)
    rewards = [easy.step(np.zeros(2))[1] for _ in range(3)]
    assert rewards == [0.0, 0.0, 1.0]


def test_env_refuses_faults_that_change_the_state_planned_from(push) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"faults \['delay'\] are not supported"):
        _env(push, ExplorationSchedule(), faults=FaultConfig(action_delay=1))


@pytest.mark.parametrize("guard", [True, False])
def test_training_steps_are_guarded_and_counted(push, guard: bool) -> None:  # type: ignore[no-untyped-def]
    # The pusher 2 cm from the post, the residual at the full range pushing it in.
    near = dataclasses.replace(push, initial_state=np.array([0.225, 0, 0, -0.3, 0, 0, 0, 0]))
    base = make_planner("imle_policy", near, seed=0)
    env = ResidualEnv(
        near, base, residual_scale(near.dynamics, 1.0), schedule=ExplorationSchedule(0),
        guard=guard, steps=10,
    )  # fmt: skip
    env.reset(seed=0)
    infos = [env.step(np.array([1.0, 0.0]))[4] for _ in range(10)]
    summary = infos[-1]["episode_summary"]
    assert summary["interventions"] == sum(info["intervention"] for info in infos)
    if guard:
        assert summary["interventions"] > 0 and summary["violation_steps"] == 0
        assert summary["violations_by_constraint"] == {}
    else:
        assert summary["interventions"] == 0 and summary["violation_steps"] > 0
        assert set(summary["violations_by_constraint"]) == {"obstacles"}
