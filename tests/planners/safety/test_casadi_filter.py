"""Predictive CBF safety filter: keeps a naive controller out of the obstacle, acts only then."""

from __future__ import annotations

import numpy as np
import pytest

from cost import Scene
from dynamics import PointMass2D
from imle_mpc.core.model import StepDynamics
from imle_mpc.tasks import make_task
from planners.nmpc import NMPCConfig
from planners.safety.cbf_filter import CBFSafetyFilter


@pytest.fixture(scope="module")
def task():
    return make_task("nav_one_obstacle")


@pytest.fixture(scope="module")
def safety(task):
    return CBFSafetyFilter(task.dynamics, task.constraints[0], gamma=0.2, horizon=8)


def _go_to_goal(task, x: np.ndarray) -> np.ndarray:
    """A naive PD controller straight at the goal, blind to the obstacle."""
    return np.clip(2.0 * (np.asarray(task.goal) - x[:2]) - 1.5 * x[2:], -2.0, 2.0)


def _closed_loop(task, safety, steps: int = 60) -> tuple[float, int]:
    """Smallest obstacle distance over the run, and how many actions the filter changed."""
    x, d_min, changed = task.initial_state.copy(), np.inf, 0
    if safety is not None:
        safety.reset()
    for _ in range(steps):
        u = _go_to_goal(task, x)
        if safety is not None:
            result = safety.filter(x, u)
            assert result.success, result.status
            changed += result.changed
            u = result.action
        x = task.dynamics.step(x, u)
        d_min = min(d_min, float(task.scene.distances(x[None, None])[0, 0]))
    return d_min, changed


def test_filter_keeps_the_naive_controller_out_of_the_obstacle(task, safety) -> None:
    unfiltered, _ = _closed_loop(task, None)
    assert unfiltered < -0.5  # straight through the disc

    filtered, changed = _closed_loop(task, safety)
    margin = task.constraints[0].margin
    assert filtered >= margin - 1e-6  # never inside, not even within the margin
    assert changed > 0


def test_action_into_the_obstacle_is_changed(task, safety) -> None:
    x = np.array([0.8, 0.0, 1.0, 0.0])  # 0.5 m from the disc at 1 m/s, heading at it
    u_ref = np.array([2.0, 0.0])
    safety.reset()
    result = safety.filter(x, u_ref)
    assert result.success and result.changed
    assert result.action[0] < 0.0  # brakes now: a force acts on the position only later
    assert np.all(np.abs(result.action) <= 2.0)
    assert result.solve_time > 0.0 and result.status == "Solve_Succeeded"


@pytest.mark.parametrize(
    ("x", "u_ref"),
    [
        (np.array([0.0, 2.0, 0.0, 0.0]), np.array([1.0, 0.5])),  # far from the disc
        (np.array([1.1, 0.0, -0.5, 0.0]), np.array([-1.0, 0.3])),  # close, moving away
    ],
)
def test_safe_reference_is_returned_unchanged(safety, x, u_ref) -> None:
    safety.reset()
    result = safety.filter(x, u_ref)
    assert result.success and not result.changed
    np.testing.assert_array_equal(result.action, u_ref)


def test_infeasible_state_reports_failure_and_a_bounded_action(task) -> None:
    safety = CBFSafetyFilter(
        task.dynamics, task.constraints[0], gamma=0.1, horizon=5,
        config=NMPCConfig(max_iter=50, max_cpu_time=0.5),
    )  # fmt: skip
    x = np.array([1.0, 0.0, 4.0, 0.0])  # 0.3 m away at 4 m/s: no force can brake in time
    result = safety.filter(x, np.array([2.0, 0.0]))
    assert not result.success
    assert result.action.shape == (2,) and np.all(np.isfinite(result.action))
    assert np.all(np.abs(result.action) <= 2.0)


def test_filter_argument_errors(task) -> None:
    model, scene = PointMass2D(), Scene(circles=[[1.0, 0.0, 0.5]])
    with pytest.raises(ValueError, match="gamma"):
        CBFSafetyFilter(model, scene, gamma=0.0)
    with pytest.raises(TypeError, match=r"Scene or a cost\.ObstacleConstraint"):
        CBFSafetyFilter(model, [[1.0, 0.0, 0.5]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one obstacle"):
        CBFSafetyFilter(model, Scene())
    user_model = StepDynamics(PointMass2D.step_function, [1.0, 0.5, 0.1], nx=4, nu=2, dt=0.1)
    with pytest.raises(TypeError, match="PointMass2D"):
        CBFSafetyFilter(user_model, scene)
    with pytest.raises(ValueError, match=r"u_ref must be a finite action of Shape=\(2,\)"):
        CBFSafetyFilter(model, scene).filter(np.zeros(4), np.zeros(3))


def test_filter_is_the_guards_casadi_fallback(task) -> None:
    """A reckless planner behind the guard whose only fallback is the CBF filter."""
    from imle_mpc.core.plan_result import PlanResult
    from planners.safety.fallbacks import SafePlan
    from planners.safety.guard import GuardConfig, SafetyGuard

    class Reckless:
        horizon = 8

        def reset(self, seed: int | None = None) -> None:
            pass

        def plan(self, state: np.ndarray) -> PlanResult:
            u = _go_to_goal(task, state)
            return PlanResult(np.tile(u, (8, 1)), 0.0, {}, 1, 0, np.empty((0, 0)))

    safety = CBFSafetyFilter(task.dynamics, task.constraints[0], gamma=0.2, horizon=8)
    guard = SafetyGuard(
        Reckless(), task.dynamics, task.constraints, GuardConfig(fallbacks=(SafePlan(),)),
        safe_plan=safety.safe_plan,
    )  # fmt: skip
    x = task.initial_state.copy()
    d_min = np.inf
    for _ in range(60):
        x = task.dynamics.step(x, guard.plan(x).action)
        d_min = min(d_min, float(task.scene.distances(x[None, None])[0, 0]))
    assert d_min > 0.0
    assert any(e.fallback == "casadi" for e in guard.events)
