"""The safety guard: checks, fallbacks, deadlines, and a loop that survives a broken planner."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cost import ObstacleConstraint, Scene
from dynamics import PointMass2D
from imle_mpc.core.errors import PlanningTimeoutError
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.loop.plant import DynamicsEnv, EnvRobot
from imle_mpc.loop.runner import LoopConfig, run_closed_loop
from planners.safety.fallbacks import (
    Brake,
    FallbackContext,
    Hold,
    PreviousPlan,
    SafePlan,
)
from planners.safety.guard import (
    FALLBACKS,
    GuardConfig,
    PassThrough,
    SafetyGuard,
    StoppingBrake,
)

H = 10
MODEL = PointMass2D(dt=0.1, max_force=2.0)
SCENE = Scene(circles=[[2.0, 0.0, 0.5]])
CONSTRAINT = ObstacleConstraint(SCENE, margin=0.05)


def _result(actions: np.ndarray, num_feasible: int = 1) -> PlanResult:
    return PlanResult(
        actions=np.asarray(actions, dtype=np.float64), cost=0.0, term_costs={},
        num_feasible=num_feasible, best_index=0, predicted_states=np.empty((0, 0)),
    )  # fmt: skip


class ScriptedPlanner:
    """Returns a fixed plan (or raises / returns NaN on chosen steps)."""

    horizon = H

    def __init__(self, plan: np.ndarray, failures: dict[int, str] | None = None) -> None:
        self.plan_actions = np.asarray(plan, dtype=np.float64)
        self.failures = failures or {}
        self.calls = 0
        self.nominals: list[np.ndarray] = []

    def reset(self, seed: int | None = None) -> None:
        self.calls = 0

    def set_nominal(self, plan: np.ndarray) -> None:
        self.nominals.append(np.array(plan))

    def plan(self, state: np.ndarray) -> PlanResult:
        step = self.calls
        self.calls += 1
        kind = self.failures.get(step)
        if kind == "raise":
            raise RuntimeError("solver exploded")
        if kind == "nan":
            return _result(np.full((H, 2), np.nan))
        if kind == "timeout":
            raise PlanningTimeoutError("dropped")
        if kind == "infeasible":
            return _result(self.plan_actions, num_feasible=0)
        return _result(self.plan_actions)


class GoStraight:
    """A reckless controller: full force toward the goal, straight through the obstacle."""

    horizon = H

    def reset(self, seed: int | None = None) -> None:
        pass

    def plan(self, state: np.ndarray) -> PlanResult:
        direction = np.array([4.0, 0.0]) - state[:2]
        u = 2.0 * direction / max(np.linalg.norm(direction), 1e-9)
        return _result(np.tile(u, (H, 1)))


def _guard(planner: object, **config: object) -> SafetyGuard:
    return SafetyGuard(
        planner,
        MODEL,
        [CONSTRAINT],
        GuardConfig(**config),
        velocity_dims=(2, 3),  # type: ignore[arg-type]
    )


def test_a_safe_plan_passes_unchanged() -> None:
    plan = np.tile([0.0, 1.0], (H, 1))  # away from the obstacle
    result = _guard(ScriptedPlanner(plan)).plan(np.zeros(4))
    assert result.fallback is None
    np.testing.assert_array_equal(result.actions, plan)


@pytest.mark.parametrize("failure", ["raise", "nan", "infeasible"])
def test_a_failed_step_falls_back_to_the_rest_of_the_previous_plan(failure: str) -> None:
    plan = np.arange(2 * H, dtype=np.float64).reshape(H, 2) * 0.05
    guard = _guard(ScriptedPlanner(plan, {1: failure}))
    guard.plan(np.zeros(4))
    result = guard.plan(np.zeros(4))
    assert result.fallback is not None and result.fallback.endswith("-> previous")
    np.testing.assert_array_equal(result.actions[:-1], plan[1:])  # shifted by one step
    assert [e.step for e in guard.events] == [1]
    assert guard.events[0].violation == 0.0


def test_deadline_executes_the_next_action_of_the_previous_plan_and_never_blocks() -> None:
    release = threading.Event()
    plan = np.tile([0.0, 0.5], (H, 1))
    plan[1] = [0.3, 0.0]

    class Slow(ScriptedPlanner):
        def plan(self, state: np.ndarray) -> PlanResult:
            if self.calls == 1:
                self.calls += 1
                release.wait(timeout=30.0)  # stuck until the test lets it go
                return _result(self.plan_actions)
            return super().plan(state)

    guard = _guard(Slow(plan), deadline=0.05)
    guard.plan(np.zeros(4))
    late = guard.plan(np.zeros(4))  # the planner is stuck: must return anyway
    assert not release.is_set()  # returned while the planner was still blocked
    assert late.deadline_missed
    np.testing.assert_array_equal(late.action, [0.3, 0.0])
    again = guard.plan(np.zeros(4))  # still stuck: answered at once, not queued
    assert again.deadline_missed
    release.set()


def test_reset_while_a_late_plan_runs_waits_for_it_and_starts_clean() -> None:
    """Protects: ``SafetyGuard.reset`` with a late plan on the worker thread. The planner
    is not reset under a running plan (it would be reseeded mid-step), and the next
    episode's first step is planned, not refused as "the previous plan is still running"."""
    release = threading.Event()
    log: list[str] = []
    plan = np.tile([0.0, 0.5], (H, 1))

    class Slow(ScriptedPlanner):
        def plan(self, state: np.ndarray) -> PlanResult:
            if self.calls == 1:
                self.calls += 1
                log.append("late plan starts")
                release.wait(timeout=30.0)
                log.append("late plan ends")
                return _result(self.plan_actions)
            return super().plan(state)

        def reset(self, seed: int | None = None) -> None:
            log.append("reset")
            super().reset(seed)

    guard = _guard(Slow(plan), deadline=0.05)
    guard.plan(np.zeros(4))
    assert guard.plan(np.zeros(4)).deadline_missed  # the late plan is still running
    resetting = threading.Thread(target=guard.reset, args=(3,))
    resetting.start()
    # Never a false failure: a correct reset is still blocked after any wait.
    resetting.join(timeout=0.2)
    assert resetting.is_alive(), "reset returned while the late plan was still running"
    release.set()
    resetting.join(timeout=30.0)
    assert log == ["late plan starts", "late plan ends", "reset"]
    first = guard.plan(np.zeros(4))  # a new episode: planned, on time, checked
    assert first.fallback is None and not first.deadline_missed
    np.testing.assert_array_equal(first.actions, plan)
    assert guard.events == []


def test_unsafe_plans_are_replaced_and_the_robot_never_collides() -> None:
    def run(planner: object) -> np.ndarray:
        robot = EnvRobot(DynamicsEnv(MODEL, np.zeros(4)), seed=0)
        record = run_closed_loop(robot, planner, LoopConfig(steps=60, control_period=0.1))  # type: ignore[arg-type]
        return record.states

    unguarded = run(GoStraight())
    assert SCENE.distances(unguarded[None]).min() < 0.0  # it does hit the obstacle
    guard = _guard(GoStraight())
    guarded = run(guard)
    assert SCENE.distances(guarded[None]).min() > 0.0
    assert guard.events, "the guard should have stepped in"
    # Every step-in found a fallback that passed the check: none was a least-violating
    # "nothing passed" pick (named "least_violation:<name>"), none predicted a violation.
    assert {e.fallback for e in guard.events} <= {"brake", "hold", "previous"}
    assert all(e.violation == 0.0 for e in guard.events)


def test_planner_exception_does_not_crash_the_loop() -> None:
    plan = np.tile([0.0, 0.5], (H, 1))
    planner = ScriptedPlanner(plan, {i: "raise" for i in range(3, 8)})
    robot = EnvRobot(DynamicsEnv(MODEL, np.zeros(4)), seed=0)
    record = run_closed_loop(robot, _guard(planner), LoopConfig(steps=12, control_period=0.1))
    assert record.steps == 12
    assert record.fallback_steps == 5
    assert all("solver exploded" in f for f in record.fallbacks[3:8])


def test_warm_start_is_told_what_was_executed() -> None:
    plan = np.tile([0.0, 0.5], (H, 1))
    planner = ScriptedPlanner(plan, {1: "raise"})
    guard = _guard(planner)
    guard.plan(np.zeros(4))
    executed = guard.plan(np.zeros(4)).actions
    np.testing.assert_array_equal(planner.nominals[-1], executed)


def test_stopping_brake_stops_a_point_mass_in_one_step() -> None:
    brake = StoppingBrake(MODEL, velocity_dims=(2, 3))
    x = np.array([0.0, 0.0, 0.15, -0.1])  # slow enough to stop within the force limit
    x_next = MODEL.step(x, brake(x))
    np.testing.assert_allclose(x_next[2:], 0.0, atol=1e-9)
    fast = np.array([0.0, 0.0, 10.0, 0.0])  # too fast: saturates, still slows down
    u = brake(fast)
    assert np.all(np.abs(u) <= 2.0 + 1e-12)
    assert abs(MODEL.step(fast, u)[2]) < 10.0


def test_no_safe_candidate_executes_the_least_violating() -> None:
    # Inside the margin band already: nothing can be feasible, something must be sent.
    x = np.array([1.46, 0.0, 0.0, 0.0])  # 0.04 m from the disc, margin 0.05
    toward = np.tile([2.0, 0.0], (H, 1))
    guard = _guard(ScriptedPlanner(toward, {0: "infeasible"}))
    result = guard.plan(x)
    assert result.fallback is not None and "least_violation" in result.fallback
    assert guard.events[0].violation > 0.0
    X = MODEL.rollout(x, result.actions[None])
    assert SCENE.distances(X).min() > 0.0  # it backs off rather than pressing on


def test_config_errors_name_the_fix() -> None:
    with pytest.raises(ValueError, match="choose from"):
        GuardConfig(fallbacks=("teleport",))
    with pytest.raises(ValueError, match="safe_plan"):
        SafetyGuard(GoStraight(), MODEL, [], GuardConfig(fallbacks=(SafePlan(),)))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="propose"):
        GuardConfig(fallbacks=(object(),))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="velocity_dims"):
        StoppingBrake(MODEL, velocity_dims=(7,))


def test_pass_through_plays_the_previous_plan_on_a_dropped_step() -> None:
    plan = np.arange(2 * H, dtype=np.float64).reshape(H, 2) * 0.05
    loop = PassThrough(ScriptedPlanner(plan, {1: "timeout"}), MODEL)  # type: ignore[arg-type]
    loop.plan(np.zeros(4))
    result = loop.plan(np.zeros(4))
    assert result.deadline_missed
    np.testing.assert_array_equal(result.action, plan[1])


def test_known_actuation_delay_is_compensated() -> None:
    seen: list[np.ndarray] = []

    class Recording(ScriptedPlanner):
        def plan(self, state: np.ndarray) -> PlanResult:
            seen.append(np.array(state))
            return super().plan(state)

    plan = np.tile([0.0, 1.0], (H, 1))
    guard = SafetyGuard(Recording(plan), MODEL, [CONSTRAINT], action_delay=1, velocity_dims=(2, 3))
    x = np.array([0.0, 0.0, 0.5, 0.0])
    guard.plan(x)  # the neutral action is still in flight
    np.testing.assert_allclose(seen[0], MODEL.step(x, [0.0, 0.0]))
    guard.plan(x)  # now the first command is in flight
    np.testing.assert_allclose(seen[1], MODEL.step(x, plan[0]))
    with pytest.raises(ValueError, match="action_delay"):
        SafetyGuard(Recording(plan), MODEL, [], action_delay=-1)


def test_fallback_names_still_work_for_a_release() -> None:
    with pytest.warns(DeprecationWarning, match="PreviousPlan"):
        config = GuardConfig(fallbacks=("previous", "brake", "hold", "casadi"))  # type: ignore[arg-type]
    assert config.fallbacks == (PreviousPlan(), Brake(), Hold(), SafePlan())
    assert tuple(f.name for f in config.fallbacks) == FALLBACKS
    assert GuardConfig().fallbacks == (PreviousPlan(), Brake(), Hold())


def test_a_fallback_of_ones_own_is_asked_in_order_and_named_in_the_events() -> None:
    class Sidestep:
        name = "sidestep"

        def __init__(self) -> None:
            self.contexts: list[FallbackContext] = []

        def propose(self, state: np.ndarray, context: FallbackContext) -> np.ndarray:
            self.contexts.append(context)
            return np.tile([0.0, -0.5], (context.horizon, 1))

    sidestep = Sidestep()
    plan = np.tile([0.0, 0.5], (H, 1))
    guard = _guard(ScriptedPlanner(plan, {1: "raise"}), fallbacks=(sidestep, Hold()))
    guard.plan(np.zeros(4))
    result = guard.plan(np.zeros(4))
    assert result.fallback is not None and result.fallback.endswith("-> sidestep")
    np.testing.assert_array_equal(result.actions, np.tile([0.0, -0.5], (H, 1)))
    assert [e.fallback for e in guard.events] == ["sidestep"]
    (context,) = sidestep.contexts
    np.testing.assert_array_equal(context.previous[:-1], plan[1:])  # type: ignore[index]
    np.testing.assert_array_equal(context.hold_plan(), np.zeros((H, 2)))


def test_brake_and_safe_plan_take_their_own_functions() -> None:
    context = FallbackContext(
        MODEL, H, None, np.zeros(2), MODEL.action_low, MODEL.action_high,
    )  # fmt: skip
    x = np.array([0.0, 0.0, 0.15, -0.1])
    assert Brake().propose(x, context) is None  # no law anywhere: nothing to offer
    braked = Brake(StoppingBrake(MODEL, (2, 3))).propose(x, context)
    assert braked is not None and braked.shape == (H, 2)
    np.testing.assert_allclose(MODEL.step(x, braked[0])[2:], 0.0, atol=1e-9)
    assert SafePlan().propose(x, context) is None
    seen: list[np.ndarray] = []

    def optimiser(state: np.ndarray, reference: np.ndarray) -> np.ndarray:
        seen.append(reference)
        return reference + 0.1

    proposed = SafePlan(optimiser).propose(x, context)
    np.testing.assert_array_equal(seen[0], np.zeros((H, 2)))  # hold before the first plan
    np.testing.assert_array_equal(proposed, np.full((H, 2), 0.1))
    assert SafePlan(lambda s, r: np.zeros((H + 1, 2))).propose(x, context) is None

    def broken(state: np.ndarray, reference: np.ndarray) -> np.ndarray:
        raise RuntimeError("solver failed")

    assert SafePlan(broken).propose(x, context) is None


def test_the_least_violating_plan_is_sent_inside_the_actuator_box() -> None:
    # Inside the disc already: nothing passes, and the planner's plan is the least
    # violating one; it is 0.0156 N outside the 2 N box (found by a property test).
    plan = np.zeros((H, 2))
    plan[0, 0] = 2.015625
    guard = _guard(ScriptedPlanner(plan, {0: "infeasible"}))
    result = guard.plan(np.array([2.0, 0.0, 0.0, 0.0]))
    assert result.fallback is not None and "least_violation" in result.fallback
    assert np.all(np.abs(result.actions) <= 2.0)
    np.testing.assert_allclose(result.predicted_states, MODEL.rollout(
        np.array([2.0, 0.0, 0.0, 0.0]), result.actions[None])[0])  # fmt: skip
