"""The closed-loop runner, the plants and episode records."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from dynamics import Pendulum, PointMass2D
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.loop.plant import DynamicsEnv, EnvRobot, Robot
from imle_mpc.loop.runner import EpisodeRecord, LoopConfig, run_closed_loop


class ConstantPlanner:
    """Plans the same action every step (isolates the runner from planning)."""

    horizon = 3

    def __init__(self, u: np.ndarray, delay: float = 0.0) -> None:
        self.u = u
        self.delay = delay
        self.seen: list[np.ndarray] = []

    def plan(self, state: np.ndarray) -> PlanResult:
        self.seen.append(state.copy())
        if self.delay:
            time.sleep(self.delay)
        actions = np.tile(self.u, (3, 1))
        return PlanResult(actions, 1.0, {"c": 1.0}, 5, 0, np.zeros((4, state.size)))

    def reset(self, seed: int | None = None) -> None:
        self.seen.clear()


def test_dynamics_env_passes_gymnasium_checker() -> None:
    check_env(DynamicsEnv(Pendulum(), np.array([np.pi, 0.0])), skip_render_check=True)


def test_env_clips_and_rejects_nan_actions() -> None:
    env = DynamicsEnv(Pendulum(), np.array([0.5, 0.0]))
    env.reset(seed=0)
    clipped, *_ = env.step(np.array([100.0]))
    env.reset(seed=0)
    at_limit, *_ = env.step(np.array([2.0]))
    np.testing.assert_array_equal(clipped, at_limit)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan]))


def test_random_initial_state_uses_env_rng() -> None:
    env = DynamicsEnv(PointMass2D(), lambda rng: rng.uniform(-1, 1, size=4))
    a, _ = env.reset(seed=3)
    b, _ = env.reset(seed=3)
    c, _ = env.reset(seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_runner_records_the_episode() -> None:
    model = PointMass2D()
    robot = EnvRobot(DynamicsEnv(model, np.zeros(4)), seed=0)
    assert isinstance(robot, Robot)
    planner = ConstantPlanner(np.array([1.0, 0.0]))
    record = run_closed_loop(robot, planner, LoopConfig(steps=10), success=lambda s: s[-1, 0] > 0.0)
    assert record.states.shape == (11, 4) and record.actions.shape == (10, 2)
    # The planner saw exactly the states the record lists, and they follow the model.
    np.testing.assert_array_equal(np.array(planner.seen), record.states[:-1])
    expected = model.rollout(np.zeros(4), np.tile([1.0, 0.0], (1, 10, 1)))[0]
    np.testing.assert_allclose(record.states, expected, rtol=1e-12)
    assert record.success is True
    assert record.term_costs["c"].shape == (10,)
    assert record.summary()["min_feasible"] == 5


def test_real_time_mode_holds_the_period() -> None:
    robot = EnvRobot(DynamicsEnv(PointMass2D(), np.zeros(4)), seed=0)
    start = time.perf_counter()
    record = run_closed_loop(
        robot,
        ConstantPlanner(np.zeros(2)),
        LoopConfig(steps=5, control_period=0.03, real_time=True),
    )
    assert time.perf_counter() - start >= 4 * 0.03  # it waited out the periods
    assert record.overruns == 0


def test_overrun_is_counted_not_waited_for() -> None:
    robot = EnvRobot(DynamicsEnv(PointMass2D(), np.zeros(4)), seed=0)
    record = run_closed_loop(
        robot,
        ConstantPlanner(np.zeros(2), delay=0.02),
        LoopConfig(steps=3, control_period=0.005, real_time=True),
    )
    assert record.overruns == 3


def test_runner_stops_when_the_env_terminates() -> None:
    env = DynamicsEnv(PointMass2D(), np.zeros(4), terminate=lambda x: x[0] > 0.05)
    record = run_closed_loop(
        EnvRobot(env, seed=0), ConstantPlanner(np.array([2.0, 0.0])), LoopConfig(steps=100)
    )
    assert record.steps < 100 and record.states[-1, 0] > 0.05


def test_record_round_trip(tmp_path: Path) -> None:
    robot = EnvRobot(DynamicsEnv(PointMass2D(), np.zeros(4)), seed=0)
    record = run_closed_loop(
        robot, ConstantPlanner(np.ones(2)), LoopConfig(steps=4), success=lambda s: False
    )
    path = record.save(tmp_path / "sub" / "ep.npz")
    loaded = EpisodeRecord.load(path)
    np.testing.assert_array_equal(loaded.states, record.states)
    np.testing.assert_array_equal(loaded.term_costs["c"], record.term_costs["c"])
    assert loaded.success is False
    assert [p.name for p in path.parent.iterdir()] == ["ep.npz"]  # no temp files left
