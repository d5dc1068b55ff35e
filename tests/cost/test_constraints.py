"""Constraints: violations against NumPy references, hard vs soft, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from cost import (
    ActionBox,
    ControlEffort,
    CostSum,
    FunctionConstraint,
    JointLimits,
    ObstacleConstraint,
    RateLimit,
    Scene,
    SphereConstraint,
    StateBox,
    StateTracking,
    Term,
    split_constraints,
)
from dynamics import PointMass2D
from planners import PredictiveSampling, PredictiveSamplingConfig

K, H, NX, NU = 32, 6, 4, 2


@pytest.fixture
def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.normal(size=(K, H + 1, NX)) * 2.0, rng.normal(size=(K, H, NU)) * 2.0


def test_state_box_matches_reference(batch) -> None:
    X, U = batch
    low, high = np.array([-1.0, -np.inf, -2.0, -2.0]), np.array([1.0, 0.5, np.inf, 2.0])
    expected = np.maximum(np.maximum(low - X[:, 1:], X[:, 1:] - high), 0).max(axis=(1, 2))
    np.testing.assert_allclose(StateBox(low, high).violation(X, U), expected)
    # The current state X[:, 0] is a measurement: it is never judged.
    X2 = X.copy()
    X2[:, 0] = 1e6
    np.testing.assert_allclose(StateBox(low, high).violation(X2, U), expected)


def test_action_box_and_rate_limit(batch) -> None:
    X, U = batch
    np.testing.assert_allclose(
        ActionBox(-1.0, 1.0).violation(X, U), np.maximum(np.abs(U) - 1.0, 0).max(axis=(1, 2))
    )
    rate = np.abs(np.diff(U, axis=1))
    np.testing.assert_allclose(
        RateLimit([0.5, 1.0]).violation(X, U), np.maximum(rate - [0.5, 1.0], 0).max(axis=(1, 2))
    )


def test_joint_limits_combine_position_velocity_torque(batch) -> None:
    X, U = batch
    limits = JointLimits([-1.0, -1.0], [1.0, 1.0], velocity_limit=2.0, torque_limit=[3.0, 1.5])
    pos = np.maximum(np.abs(X[:, 1:, :2]) - 1.0, 0).max(axis=(1, 2))
    vel = np.maximum(np.abs(X[:, 1:, 2:]) - 2.0, 0).max(axis=(1, 2))
    tau = np.maximum(np.abs(U) - [3.0, 1.5], 0).max(axis=(1, 2))
    np.testing.assert_allclose(limits.violation(X, U), np.maximum(np.maximum(pos, vel), tau))


def test_capsule_distance_matches_reference(batch) -> None:
    X, U = batch
    a, b, r = np.array([-1.0, 0.5]), np.array([2.0, -0.5]), 0.3
    scene = Scene(capsules=[[*a, *b, r]])
    p = X[..., :2]
    s = np.clip(((p - a) @ (b - a)) / ((b - a) @ (b - a)), 0.0, 1.0)
    expected = np.linalg.norm(p - (a + s[..., None] * (b - a)), axis=-1) - r
    np.testing.assert_allclose(scene.distances(X), expected, atol=1e-12)
    # The soft term and the hard constraint see the capsule too; the point check
    # judges the states, the swept check (default) also the segments between them.
    v = ObstacleConstraint(scene, margin=0.1, swept=False).violation(X, U)
    np.testing.assert_allclose(v, np.maximum(0.1 - expected[:, 1:].min(axis=1), 0.0))
    assert np.all(ObstacleConstraint(scene, margin=0.1).violation(X, U) >= v)


def test_sphere_constraint_keeps_points_off_spheres(batch) -> None:
    X, U = batch

    def points(X: np.ndarray) -> np.ndarray:  # two robot points: (x, y, 0) and (x, y, 1)
        p = np.zeros((*X.shape[:2], 2, 3))
        p[..., 0, :2] = X[..., :2]
        p[..., 1, :2] = X[..., :2]
        p[..., 1, 2] = 1.0
        return p

    spheres, radii = [[0.0, 0.0, 1.0, 0.5]], [0.1, 0.2]
    c = SphereConstraint(points, spheres=spheres, point_radii=radii, swept=False)
    d0 = np.linalg.norm(X[:, 1:, :2] - 0.0, axis=-1)
    d0 = np.sqrt(d0**2 + 1.0) - 0.5 - 0.1
    d1 = np.linalg.norm(X[:, 1:, :2], axis=-1) - 0.5 - 0.2
    expected = np.maximum(-np.minimum(d0, d1).min(axis=1), 0.0)
    np.testing.assert_allclose(c.violation(X, U), expected, atol=1e-12)
    # Swept (the default): the points' paths between the states count too.
    swept = SphereConstraint(points, spheres=spheres, point_radii=radii).violation(X, U)
    assert np.all(swept >= expected) and np.any(swept > expected)


def test_empty_box_and_bad_rows_name_the_fix() -> None:
    with pytest.raises(ValueError, match="the box is empty"):
        StateBox([0.0, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="rows of 5 numbers"):
        Scene(capsules=[[0.0, 0.0, 1.0, 0.2]])
    with pytest.raises(ValueError, match="max_delta must be > 0"):
        RateLimit(0.0)


def test_wrong_shaped_user_constraint_is_named(batch) -> None:
    X, U = batch
    bad = FunctionConstraint("bad", lambda X, U: np.zeros((X.shape[0], 2)))
    with pytest.raises(ValueError, match="'bad' returned shape"):
        bad.violation(X, U)
    with pytest.raises(TypeError, match="FunctionConstraint"):
        split_constraints([lambda X, U: X])


def _planner(constraint: object, record_samples: bool = False) -> PredictiveSampling:
    cost = CostSum(
        Term("goal", StateTracking([2.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0])),
        Term("effort", ControlEffort(), 0.01),
    )
    config = PredictiveSamplingConfig(
        num_samples=64, horizon=10, noise_sigma=1.0, seed=1, record_samples=record_samples
    )
    return PredictiveSampling(PointMass2D(dt=0.1), cost, config, [constraint])


def test_hard_rejects_and_soft_penalises() -> None:
    # "Stay below y = -0.1" can never hold from y = 0 within one step: hard rejects all.
    def below(X: np.ndarray, U: np.ndarray) -> np.ndarray:
        return np.maximum(X[:, 1:, 1] + 0.1, 0.0).max(axis=1)

    hard = _planner(FunctionConstraint("below", below))
    result = hard.plan(np.zeros(4))
    assert result.num_feasible == 0
    soft = _planner(FunctionConstraint("below", below, hard=False, weight=50.0))
    result = soft.plan(np.zeros(4))
    assert result.num_feasible == 64
    assert "soft:below" in result.term_costs
    assert result.term_costs["soft:below"] > 0.0
    # The penalty steers: with it the plan pushes downwards.
    assert result.actions[:3, 1].mean() < 0.0


def test_least_violating_sample_is_returned_when_nothing_is_feasible() -> None:
    scene = Scene(circles=[[0.0, 0.0, 1.0]])  # the start is inside: every sample violates
    constraint = ObstacleConstraint(scene, margin=0.0)
    planner = _planner(constraint, record_samples=True)
    result = planner.plan(np.zeros(4))
    assert result.num_feasible == 0
    assert result.samples is not None
    U_all = result.samples[0]
    model = PointMass2D(dt=0.1)
    v_all = constraint.violation(model.rollout(np.zeros(4), U_all), U_all)
    v_plan = constraint.violation(model.rollout(np.zeros(4), result.actions[None]), U_all[:1])
    assert v_plan[0] == pytest.approx(v_all.min())
    assert v_all.min() < np.median(v_all)  # a real choice, not a tie
