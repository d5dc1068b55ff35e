"""The guard's stale-state policy: a lost measurement never lets an unchecked action through.

Mechanism protected: ``SafetyGuard``'s stale-state handling (dead reckoning from the
last valid state, bridging within ``GuardConfig.stale_timeout``, then the checked
``stale_stop``). The closed-loop test runs the unguarded loop alongside, which keeps
driving blind through the same outage: the seed and outage are ones where it matters.
"""

from __future__ import annotations

import numpy as np
import pytest

from dynamics import PointMass2D, Unicycle
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.eval.factory import make_planner
from imle_mpc.loop.faults import FaultConfig, FaultLog, FaultyRobot
from imle_mpc.loop.plant import DynamicsEnv, EnvRobot
from imle_mpc.loop.runner import LoopConfig, run_closed_loop
from imle_mpc.tasks import make_task
from planners.safety.fallbacks import Hold
from planners.safety.guard import GuardConfig, PassThrough, SafetyGuard
from planners.safety.offset_free import OffsetFree

H = 10


class OutageRobot:
    """A simulated robot whose sensor returns NaN for reads ``start .. start+length-1``."""

    def __init__(self, robot: EnvRobot, start: int, length: int) -> None:
        self.robot, self.start, self.length = robot, start, length
        self.reads = 0
        self.true_states: list[np.ndarray] = []

    def read_state(self) -> np.ndarray:
        true = self.robot.read_state()
        self.true_states.append(true.copy())
        lost = self.start <= self.reads < self.start + self.length
        self.reads += 1
        return np.full_like(true, np.nan) if lost else true

    def send_action(self, action: np.ndarray) -> None:
        self.robot.send_action(action)


class Recorder:
    """A planner that plans a fixed action and records the states it was asked from."""

    horizon = H

    def __init__(self, action: np.ndarray) -> None:
        self.action = np.asarray(action, dtype=np.float64)
        self.states: list[np.ndarray] = []

    def reset(self, seed: int | None = None) -> None:
        self.states.clear()

    def plan(self, state: np.ndarray) -> PlanResult:
        self.states.append(np.array(state))
        return PlanResult(
            actions=np.tile(self.action, (H, 1)), cost=0.0, term_costs={}, num_feasible=1,
            best_index=0, predicted_states=np.empty((0, 0)),
        )  # fmt: skip


def _outage_run(guarded: bool, start: int = 15, length: int = 30) -> tuple[OutageRobot, object]:
    task = make_task("point_mass")
    planner = make_planner("mppi", task, seed=0)
    loop = (
        SafetyGuard(planner, task.dynamics, task.constraints, velocity_dims=(2, 3))
        if guarded
        else PassThrough(planner, task.dynamics)
    )
    robot = OutageRobot(EnvRobot(DynamicsEnv(task.dynamics, task.initial_state)), start, length)
    run_closed_loop(robot, loop, LoopConfig(steps=start + length, control_period=0.1))
    return robot, loop


@pytest.mark.parametrize("guarded", [True, False], ids=["stale_stop", "unguarded"])
def test_a_long_sensor_outage_stops_the_robot(guarded: bool) -> None:
    robot, loop = _outage_run(guarded)
    true = np.array(robot.true_states)
    start = 15
    speed_at_loss = np.linalg.norm(true[start, 2:])
    travelled = np.linalg.norm(true[-1, :2] - true[start, :2])
    final_speed = np.linalg.norm(true[-1, 2:])
    assert speed_at_loss > 0.5  # it was moving when the sensor died: the stop matters
    if guarded:
        # Brake at 2 N on 1 kg from about 1 m/s: stopped within a few steps, < 0.5 m on.
        assert final_speed < 1e-6
        assert travelled < 0.5
        events = [e for e in loop.events if e.step >= start]  # type: ignore[attr-defined]
        assert len(events) == 30 and all("stale state" in e.reason for e in events)
        assert {e.fallback for e in events} <= {"brake", "hold"}
        assert all(e.violation == 0.0 for e in events)  # every stop was checked safe
    else:
        # A plain loop plays on blind: it is still moving, metres past the loss.
        assert travelled > 2.0 and final_speed > 1.0  # measured: 2.50 m, 1.20 m/s


def test_within_the_timeout_the_planner_plans_from_the_dead_reckoned_state() -> None:
    model = PointMass2D(dt=0.1, max_force=2.0)
    planner = Recorder(np.array([1.0, 0.0]))
    guard = SafetyGuard(planner, model, (), GuardConfig(stale_timeout=2), velocity_dims=(2, 3))
    x0 = np.array([0.0, 0.0, 0.5, 0.0])
    guard.plan(x0)
    guard.plan(np.full(4, np.nan))
    guard.plan(None)  # type: ignore[arg-type]  # a driver that hands over nothing
    third = guard.plan("abc")  # type: ignore[arg-type]  # nor numbers: past the timeout
    expected = model.rollout(x0, np.tile([1.0, 0.0], (2, 1))[None])[0]
    np.testing.assert_allclose(planner.states[1], expected[1])
    np.testing.assert_allclose(planner.states[2], expected[2])
    assert len(planner.states) == 3  # the third stale step did not plan: it stopped
    assert third.fallback is not None and "past the timeout of 2" in third.fallback
    reasons = [e.reason for e in guard.events]
    assert len(reasons) == 3 and all("stale state" in r for r in reasons)
    guard.plan(x0)  # a valid measurement again: back to plain planning
    assert len(planner.states) == 4 and len(guard.events) == 3


def test_the_stop_is_checked_on_the_prediction() -> None:
    # Heading into a wall at full speed: braking cannot avoid it, holding cannot either;
    # the guard must say so (a positive violation), not pretend the stop was safe.
    from cost import ObstacleConstraint, Scene

    model = PointMass2D(dt=0.1, max_force=2.0)
    wall = ObstacleConstraint(Scene(boxes=[[0.6, 0.0, 0.1, 2.0]]), margin=0.05)
    guard = SafetyGuard(Recorder(np.zeros(2)), model, [wall], velocity_dims=(2, 3))
    guard.plan(np.array([0.0, 0.0, 3.0, 0.0]))
    result = guard.plan(np.full(4, np.nan))
    event = guard.events[-1]
    assert "stale state" in event.reason and event.violation > 0
    assert event.fallback.startswith("least_violation:")
    assert result.predicted_states.shape == (H + 1, 4)


def test_no_valid_measurement_yet_holds_the_neutral_action() -> None:
    model = Unicycle()
    guard = SafetyGuard(Recorder(np.array([1.0, 0.0])), model, (), GuardConfig(stale_timeout=3))
    result = guard.plan(np.full(3, np.nan))
    np.testing.assert_array_equal(result.actions, np.zeros((H, 2)))
    assert "no valid measurement yet" in guard.events[0].reason


def test_a_unicycle_without_a_brake_stops_by_holding() -> None:
    model = Unicycle(dt=0.1, max_speed=2.5)
    guard = SafetyGuard(Recorder(np.array([2.5, 0.3])), model, (), GuardConfig())
    guard.plan(np.zeros(3))
    for _ in range(5):
        result = guard.plan(np.full(3, np.nan))
        np.testing.assert_array_equal(result.action, [0.0, 0.0])  # v = 0: stopped
    assert all(e.fallback == "hold" for e in guard.events)


def test_faulty_robot_loses_the_measurement_for_whole_outages() -> None:
    model = PointMass2D(dt=0.1)
    config = FaultConfig(dropout_probability=0.2, dropout_steps=4)
    log = FaultLog()
    robot = FaultyRobot(DynamicsEnv(model, np.zeros(4)), config, np.random.default_rng(3), log=log)
    lost = []
    for _ in range(60):
        lost.append(bool(np.all(np.isnan(robot.read_state()))))
        robot.send_action(np.zeros(2))
    assert sum(lost) == len(log.dropouts) > 0
    # Outages come in runs of dropout_steps reads.
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, np.array(lost, int), 0])))[::2]
    assert set(runs.tolist()) <= {4, 8, 12} and 4 in runs
    assert config.active == ("dropout",)


def test_dropout_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="dropout_steps must be >= 1"):
        FaultConfig(dropout_probability=0.1)
    with pytest.raises(ValueError, match="stale_stop is empty"):
        GuardConfig(stale_stop=())
    with pytest.raises(ValueError, match="stale_timeout"):
        GuardConfig(stale_timeout=-1)
    assert GuardConfig(stale_stop=(Hold(),)).stale_stop == (Hold(),)


def test_offset_estimate_skips_the_transitions_across_an_outage() -> None:
    model = PointMass2D(dt=0.1, max_force=2.0)
    guard = SafetyGuard(Recorder(np.array([1.0, 0.0])), model, (), velocity_dims=(2, 3))
    loop = OffsetFree(guard, model)
    x = np.zeros(4)
    loop.plan(x)
    for lost in (np.full(4, np.nan), "abc", [1.0, 2.0]):  # NaN, not numbers, wrong size
        loop.plan(lost)  # type: ignore[arg-type]
        np.testing.assert_array_equal(loop.estimator.offset, 0.0)
    loop.plan(model.step(x, np.array([1.0, 0.0])) + 1.0)  # back, far from any prediction
    np.testing.assert_array_equal(loop.estimator.offset, 0.0)  # no transition to learn from
