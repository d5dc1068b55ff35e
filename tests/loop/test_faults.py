"""Fault injection: each fault does what it says, seeded and recorded."""

from __future__ import annotations

import numpy as np
import pytest

from dynamics import PointMass2D
from imle_mpc.core.errors import PlanningTimeoutError
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.loop.faults import (
    DroppedPlanning,
    FaultConfig,
    FaultLog,
    FaultyRobot,
    mismatched_model,
)
from imle_mpc.loop.plant import DynamicsEnv

MODEL = PointMass2D(dt=0.1)


def _robot(config: FaultConfig, seed: int = 0, model: PointMass2D = MODEL) -> FaultyRobot:
    return FaultyRobot(DynamicsEnv(model, np.zeros(4)), config, np.random.default_rng(seed))


def test_observation_noise_has_the_stated_spread() -> None:
    robot = _robot(FaultConfig(observation_noise=(0.01, 0.02, 0.0, 0.1)))
    readings = np.array([robot.read_state() for _ in range(4000)])
    np.testing.assert_allclose(readings.std(axis=0), [0.01, 0.02, 0.0, 0.1], rtol=0.06)
    np.testing.assert_array_equal(robot.env.state, np.zeros(4))  # the plant itself is untouched


def test_action_delay_shifts_the_commands_by_whole_steps() -> None:
    delayed, direct = _robot(FaultConfig(action_delay=2)), _robot(FaultConfig())
    commands = [np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([-1.0, 0.5])]
    for u in [*commands, np.zeros(2), np.zeros(2)]:
        delayed.send_action(u)
    for u in [np.zeros(2), np.zeros(2), *commands]:
        direct.send_action(u)
    np.testing.assert_allclose(delayed.env.state, direct.env.state, atol=1e-15)


def test_model_mismatch_changes_only_the_plant() -> None:
    plant = mismatched_model(MODEL, {"mass": 2.0})
    assert plant.mass == 2.0 and MODEL.mass == 1.0
    with pytest.raises(ValueError, match="does not have"):
        mismatched_model(MODEL, {"wheel_radius": 1.1})


def test_pushes_change_velocity_by_the_stated_magnitude() -> None:
    config = FaultConfig(push_probability=1.0, push_magnitude=0.3, push_dims=(2, 3))
    model = PointMass2D(dt=0.1, drag=0.0)
    robot = _robot(config, model=model)
    robot.send_action(np.zeros(2))
    assert np.linalg.norm(robot.env.state[2:]) == pytest.approx(0.3)
    assert robot.log.pushes == [0]


def test_dropped_planning_raises_at_the_stated_rate_and_is_logged() -> None:
    class Planner:
        horizon = 4

        def __init__(self) -> None:
            self.steps: list[int] = []  # the steps it was asked to plan (state[0])

        def plan(self, state: np.ndarray) -> PlanResult:
            self.steps.append(int(state[0]))
            return PlanResult(np.zeros((4, 2)), 0.0, {}, 1, 0, np.zeros((5, 4)))

        def reset(self, seed: int | None = None) -> None:
            pass

    log = FaultLog()
    planner = Planner()
    dropping = DroppedPlanning(planner, 0.25, np.random.default_rng(1), log)
    raised = 0
    for step in range(2000):
        try:
            dropping.plan(np.array([step, 0.0, 0.0, 0.0]))
        except PlanningTimeoutError:
            raised += 1
    assert raised == len(log.dropped)
    assert 0.22 < raised / 2000 < 0.28
    # A dropped step never ran the planner (its result never arrives): the calls the
    # planner saw are exactly the steps that were not dropped.
    assert planner.steps == sorted(set(range(2000)) - set(log.dropped))


def test_same_seed_same_faults() -> None:
    config = FaultConfig(observation_noise=0.05, push_probability=0.3, push_magnitude=0.2,
                         push_dims=(2, 3))  # fmt: skip
    runs = []
    for _ in range(2):
        robot = _robot(config, seed=7)
        for _ in range(20):
            robot.send_action(robot.read_state()[:2])
        runs.append(np.array(robot.log.true_states))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_scaling_and_selection() -> None:
    base = FaultConfig(observation_noise=0.01, action_delay=1, model_mismatch={"mass": 1.2},
                       push_probability=0.05, push_magnitude=0.3, push_dims=(2, 3),
                       drop_probability=0.1)  # fmt: skip
    assert base.active == ("noise", "delay", "mismatch", "push", "drop")
    double = base.scaled(2.0)
    assert double.observation_noise == pytest.approx(0.02)
    assert double.action_delay == 2
    assert double.model_mismatch["mass"] == pytest.approx(1.4)
    assert double.push_magnitude == pytest.approx(0.6)
    assert base.scaled(0.0).active == ()
    assert base.only(("noise", "push")).active == ("noise", "push")
    with pytest.raises(ValueError, match="choose from"):
        base.only("earthquake")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"observation_noise": -1.0}, "observation_noise"),
        ({"action_delay": -1}, "action_delay"),
        ({"model_mismatch": {"mass": 0.0}}, "factor > 0"),
        ({"push_probability": 1.5}, "probability"),
        ({"push_probability": 0.1, "push_magnitude": 0.2}, "push_dims"),
    ],
)
def test_bad_fault_settings_name_the_field(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FaultConfig(**kwargs)
