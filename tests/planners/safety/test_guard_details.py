"""The guard's smaller promises, each pinned: written from the mutants of
``planners/safety/guard.py`` that survived ``tools/mutation.sh`` (the rest of the
survivors change message wording or are equivalent, e.g. ``dtype=None`` on floats).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from cost import ActionBox, FunctionConstraint, ObstacleConstraint, Scene
from dynamics import PointMass2D
from imle_mpc.core.plan_result import PlanResult
from planners.safety.fallbacks import Brake, Hold
from planners.safety.guard import GuardConfig, PassThrough, SafetyGuard, StoppingBrake

H = 6
MODEL = PointMass2D(dt=0.1, max_force=2.0)
FAR = ObstacleConstraint(Scene(circles=[[50.0, 0.0, 0.5]]), margin=0.05)  # never near


class Planner:
    """Plans ``actions`` every step; records the states, seeds and warm starts it is given."""

    horizon = H

    def __init__(self, actions: np.ndarray, num_feasible: int = 1, sleep: float = 0.0) -> None:
        self.actions = np.asarray(actions, dtype=np.float64)
        self.num_feasible, self.sleep = num_feasible, sleep
        self.states: list[np.ndarray] = []
        self.seeds: list[int | None] = []
        self.nominals: list[np.ndarray] = []

    def reset(self, seed: int | None = None) -> None:
        self.seeds.append(seed)

    def set_nominal(self, plan: np.ndarray) -> None:
        self.nominals.append(np.array(plan))

    def plan(self, state: np.ndarray) -> PlanResult:
        self.states.append(np.array(state))
        time.sleep(self.sleep)
        return PlanResult(self.actions.copy(), 0.0, {}, self.num_feasible, 0, np.empty((0, 0)))


def _plan(u: list[float]) -> np.ndarray:
    return np.tile(u, (H, 1))


def test_a_two_step_delay_is_predicted_through_both_commands_in_flight() -> None:
    planner = Planner(_plan([1.0, 0.0]))
    guard = SafetyGuard(planner, MODEL, [FAR], action_delay=2)
    x = np.array([0.0, 0.0, 0.3, 0.0])
    guard.plan(x)
    # In flight now: the neutral action (sent before), then the first command.
    expected = MODEL.rollout(x, np.array([[[0.0, 0.0], [1.0, 0.0]]]))[0, -1]
    guard.plan(x)
    np.testing.assert_allclose(planner.states[1], expected)


def test_lost_measurements_before_any_valid_one_hold_and_never_crash() -> None:
    guard = SafetyGuard(Planner(_plan([1.0, 0.0])), MODEL, [FAR], velocity_dims=(2, 3))
    for _ in range(3):
        result = guard.plan(np.full(4, np.nan))
        np.testing.assert_array_equal(result.actions, np.zeros((H, 2)))
    assert all("no valid measurement yet" in e.reason for e in guard.events)


def test_a_bridged_stale_step_is_reported_as_the_planners_checked_plan() -> None:
    planner = Planner(_plan([1.0, 0.0]))
    guard = SafetyGuard(planner, MODEL, [FAR], GuardConfig(stale_timeout=1), velocity_dims=(2, 3))
    guard.plan(np.zeros(4))
    result = guard.plan(np.full(4, np.nan))
    event = guard.events[-1]
    assert (event.step, event.fallback, event.violation) == (1, "planner", 0.0)
    assert result.fallback is not None and result.fallback.endswith("-> planner")
    assert not result.deadline_missed
    np.testing.assert_array_equal(result.actions, _plan([1.0, 0.0]))


def test_the_stop_past_the_timeout_becomes_the_planners_warm_start() -> None:
    planner = Planner(_plan([1.0, 0.0]))
    guard = SafetyGuard(planner, MODEL, [FAR], velocity_dims=(2, 3))
    guard.plan(np.array([0.0, 0.0, 0.5, 0.0]))
    stop = guard.plan(np.full(4, np.nan))
    assert not stop.deadline_missed
    assert stop.action[0] < 0.0  # braking against the motion
    np.testing.assert_array_equal(planner.nominals[-1], stop.actions)


def test_a_planner_error_is_not_a_deadline_miss_and_its_figures_are_kept() -> None:
    class Broken(Planner):
        def plan(self, state: np.ndarray) -> PlanResult:
            raise RuntimeError("solver exploded")

    guard = SafetyGuard(Broken(_plan([0.0, 0.0])), MODEL, [FAR], velocity_dims=(2, 3))
    result = guard.plan(np.zeros(4))
    assert not result.deadline_missed and "solver exploded" in (result.fallback or "")
    infeasible = SafetyGuard(Planner(_plan([0.5, 0.0]), num_feasible=0), MODEL, [FAR])
    result = infeasible.plan(np.zeros(4))
    assert "no feasible sample" in (result.fallback or "")
    assert result.num_feasible == 0 and not result.deadline_missed


def test_nothing_to_propose_and_nothing_usable_holds_the_neutral_action() -> None:
    # The planner's plan is NaN and the only fallback has no law: the hold is compared.
    guard = SafetyGuard(
        Planner(_plan([np.nan, 0.0])), MODEL, [FAR], GuardConfig(fallbacks=(Brake(),))
    )
    result = guard.plan(np.zeros(4))
    assert result.fallback is not None and result.fallback.endswith("least_violation:hold")
    np.testing.assert_array_equal(result.actions, np.zeros((H, 2)))


@pytest.mark.parametrize("u", [[-2.5, 0.0], [0.0, 2.0 + 1e-6]], ids=["below", "above"])
def test_a_plan_outside_the_box_fails_the_check_and_is_never_sent(u: list[float]) -> None:
    guard = SafetyGuard(Planner(_plan(u)), MODEL, [FAR], GuardConfig(fallbacks=(Hold(),)))
    result = guard.plan(np.zeros(4))
    assert result.fallback is not None and result.fallback.startswith("check failed")
    np.testing.assert_array_equal(result.actions, np.zeros((H, 2)))  # the hold passed


def test_every_constraint_counts_not_only_the_last() -> None:
    def always(X: np.ndarray, U: np.ndarray) -> np.ndarray:
        return np.ones(X.shape[0])

    def never(X: np.ndarray, U: np.ndarray) -> np.ndarray:
        return np.zeros(X.shape[0])

    broken = [FunctionConstraint("always", always), FunctionConstraint("never", never)]
    guard = SafetyGuard(Planner(_plan([0.5, 0.0])), MODEL, broken, GuardConfig(fallbacks=()))
    result = guard.plan(np.zeros(4))
    assert result.fallback is not None and "check failed" in result.fallback
    assert guard.events[-1].violation == 1.0


def test_a_constraint_that_cannot_judge_the_plan_fails_it() -> None:
    def unknown(X: np.ndarray, U: np.ndarray) -> np.ndarray:
        return np.full(X.shape[0], np.nan)

    guard = SafetyGuard(
        Planner(_plan([0.5, 0.0])), MODEL, [FunctionConstraint("unknown", unknown)],
        GuardConfig(fallbacks=()),
    )  # fmt: skip
    guard.plan(np.zeros(4))
    assert guard.events and guard.events[-1].violation == np.inf


def test_reset_hands_the_seed_on_with_and_without_a_deadline() -> None:
    for config in (GuardConfig(), GuardConfig(deadline=1.0)):
        planner = Planner(_plan([0.0, 0.0]))
        SafetyGuard(planner, MODEL, [FAR], config).reset(7)
        assert planner.seeds == [7]
    planner = Planner(_plan([0.0, 0.0]))
    PassThrough(planner, MODEL).reset(7)
    assert planner.seeds == [7]


def test_with_a_deadline_the_planner_sees_the_measured_state_and_keeps_its_deadline() -> None:
    planner = Planner(_plan([0.0, 0.0]))
    guard = SafetyGuard(planner, MODEL, [FAR], GuardConfig(deadline=0.05))
    x = np.array([0.1, 0.2, 0.0, 0.0])
    assert guard.plan(x).fallback is None
    np.testing.assert_array_equal(planner.states[-1], x)
    planner.sleep = 0.3  # late from now on
    assert guard.plan(x).deadline_missed
    guard.reset(1)  # while the late plan still runs: waits for it, then a fresh worker
    assert guard.plan(x).deadline_missed  # the deadline still holds after the reset
    time.sleep(0.35)


def test_the_stopping_brake_saturates_at_both_ends_of_the_box() -> None:
    brake = StoppingBrake(MODEL, velocity_dims=(2, 3))
    np.testing.assert_allclose(brake(np.array([0.0, 0.0, 10.0, -10.0])), [-2.0, 2.0])
    np.testing.assert_allclose(brake(np.array([0.0, 0.0, -10.0, 10.0])), [2.0, -2.0])


def test_a_plan_below_the_box_is_sent_clipped_when_nothing_passes() -> None:
    inside = ObstacleConstraint(Scene(circles=[[0.0, 0.0, 1.0]]), margin=0.05)
    guard = SafetyGuard(Planner(_plan([-2.5, 0.0]), 0), MODEL, [inside], GuardConfig(fallbacks=()))
    result = guard.plan(np.zeros(4))  # inside the disc: nothing can pass
    assert result.fallback is not None and "least_violation:planner" in result.fallback
    np.testing.assert_array_equal(result.actions, _plan([-2.0, 0.0]))


def test_a_plan_within_the_rounding_tolerance_of_the_box_passes() -> None:
    guard = SafetyGuard(Planner(_plan([2.0 + 1e-12, 0.0])), MODEL, [FAR])
    assert guard.plan(np.zeros(4)).fallback is None


def test_constraints_on_the_actions_are_checked_on_the_plan() -> None:
    gentle = ActionBox([-0.5, -0.5], [0.5, 0.5])
    guard = SafetyGuard(
        Planner(_plan([1.0, 0.0])), MODEL, [gentle], GuardConfig(fallbacks=(Hold(),))
    )
    result = guard.plan(np.zeros(4))
    assert result.fallback is not None and result.fallback.endswith("-> hold")


def test_a_brake_law_outside_the_box_is_clipped_to_it() -> None:
    def slam(state: np.ndarray) -> np.ndarray:
        return np.array([-5.0, 5.0])

    guard = SafetyGuard(
        Planner(_plan([np.nan, 0.0])), MODEL, [FAR], GuardConfig(fallbacks=(Brake(slam),))
    )
    result = guard.plan(np.zeros(4))
    assert result.fallback is not None and result.fallback.endswith("-> brake")
    np.testing.assert_array_equal(result.actions, _plan([-2.0, 2.0]))
