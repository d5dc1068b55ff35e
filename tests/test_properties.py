"""Property-based tests (hypothesis) over the kernels', constraints' and planners' inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cost import ControlEffort, CostSum, ObstacleConstraint, Scene, StateBox, StateTracking, Term
from dynamics import PointMass2D
from imle_mpc.core.kernels.select import argmin_finite, softmax_weights
from imle_mpc.core.plan_result import PlanResult
from planners import PredictiveSampling, PredictiveSamplingConfig
from planners.safety.guard import SafetyGuard

MODEL = PointMass2D(dt=0.1, max_force=2.0)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
finite = st.floats(-50.0, 50.0, allow_nan=False, allow_infinity=False)
any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)


def _reference_rollout(x0: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Semi-implicit Euler of the point mass, written independently of the kernel."""
    m, c, dt = MODEL.mass, MODEL.drag, MODEL.dt
    K, H, _ = U.shape
    X = np.empty((K, H + 1, 4))
    X[:, 0] = x0
    for t in range(H):
        v = X[:, t, 2:] + dt * (U[:, t] - c * X[:, t, 2:]) / m
        X[:, t + 1, 2:] = v
        X[:, t + 1, :2] = X[:, t, :2] + dt * v
    return X


@st.composite
def batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    K = draw(st.integers(1, 9))
    H = draw(st.integers(1, 7))
    x0 = draw(arrays(np.float64, 4, elements=finite))
    U = draw(arrays(np.float64, (K, H, 2), elements=finite))
    return x0, U


@SETTINGS
@given(batches())
def test_rollout_kernel_matches_reference(batch: tuple[np.ndarray, np.ndarray]) -> None:
    x0, U = batch
    np.testing.assert_allclose(
        MODEL.rollout(x0, U), _reference_rollout(x0, U), rtol=1e-12, atol=1e-9
    )


@SETTINGS
@given(batches(), st.data())
def test_nan_in_one_sample_stays_in_that_sample(batch, data) -> None:  # type: ignore[no-untyped-def]
    x0, U = batch
    k = data.draw(st.integers(0, U.shape[0] - 1))
    clean = MODEL.rollout(x0, U)
    U[k, 0, 0] = np.nan
    dirty = MODEL.rollout(x0, U)
    others = np.arange(U.shape[0]) != k
    np.testing.assert_array_equal(dirty[others], clean[others])
    assert np.isnan(dirty[k, 1:]).any()


@SETTINGS
@given(arrays(np.float64, st.integers(1, 40), elements=any_float), st.floats(1e-3, 1e3))
def test_softmax_weights_are_a_distribution_over_finite_costs(costs, temperature) -> None:  # type: ignore[no-untyped-def]
    best = argmin_finite(costs)
    finite_mask = np.isfinite(costs)
    if not finite_mask.any():
        assert best == -1
        return
    assert costs[best] == np.min(costs[finite_mask])
    weights = np.empty_like(costs)
    softmax_weights(costs, temperature, weights)
    assert np.all(weights >= 0.0)
    assert weights.sum() == pytest.approx(1.0)
    assert np.all(weights[~finite_mask] == 0.0)


@SETTINGS
@given(batches())
def test_violations_are_non_negative_and_zero_inside(batch) -> None:  # type: ignore[no-untyped-def]
    x0, U = batch
    X = MODEL.rollout(x0, U)
    box = StateBox([-20.0, -20.0, -5.0, -5.0], [20.0, 20.0, 5.0, 5.0])
    v = box.violation(X, U)
    assert np.all(v >= 0.0)
    inside = np.all((X[:, 1:] >= box._low) & (X[:, 1:] <= box._high), axis=(1, 2))
    np.testing.assert_array_equal(v == 0.0, inside)
    scene = Scene(circles=[[0.0, 0.0, 1.0]], capsules=[[2.0, 2.0, 4.0, 2.0, 0.3]])
    d = ObstacleConstraint(scene, margin=0.1).violation(X, U)
    assert np.all(d >= 0.0)


@pytest.fixture(scope="module")
def planner() -> PredictiveSampling:
    cost = CostSum(
        Term("goal", StateTracking([1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.1, 0.1])),
        Term("effort", ControlEffort(), 0.01),
    )
    config = PredictiveSamplingConfig(num_samples=32, horizon=8, noise_sigma=1.0)
    return PredictiveSampling(MODEL, cost, config)


@SETTINGS
@given(arrays(np.float64, 4, elements=finite))
def test_plan_from_any_finite_state_is_finite_and_inside_the_actuator_box(planner, state) -> None:  # type: ignore[no-untyped-def]
    planner.reset(0)
    actions = planner.plan(state).actions
    assert actions.shape == (8, 2)
    assert np.all(np.isfinite(actions))
    assert np.all(np.abs(actions) <= 2.0)


@SETTINGS
@given(
    arrays(np.float64, st.integers(0, 6), elements=any_float).filter(
        lambda a: a.shape != (4,) or not np.all(np.isfinite(a))
    )
)
def test_bad_states_are_refused_with_the_problem_named(planner, state) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=r"shape \(4,\)|NaN/inf"):
        planner.plan(state)


class Anything:
    """A planner that returns whatever hypothesis hands it."""

    horizon = 6

    def __init__(self, actions: np.ndarray, feasible: int) -> None:
        self.actions, self.feasible = actions, feasible

    def reset(self, seed: int | None = None) -> None:
        pass

    def plan(self, state: np.ndarray) -> PlanResult:
        return PlanResult(self.actions, 0.0, {}, self.feasible, 0, np.empty((0, 0)))


@SETTINGS
@given(
    arrays(
        np.float64,
        st.sampled_from([(6, 2), (6, 3), (5, 2), (2,)]),
        elements=any_float,
    ),
    st.integers(0, 3),
    arrays(np.float64, 4, elements=st.floats(-3.0, 3.0)),
)
def test_guard_always_sends_a_finite_action_inside_the_box(actions, feasible, state) -> None:  # type: ignore[no-untyped-def]
    scene = Scene(circles=[[2.0, 0.0, 0.5]])
    guard = SafetyGuard(
        Anything(actions, feasible), MODEL, [ObstacleConstraint(scene, 0.05)], velocity_dims=(2, 3)
    )
    result = guard.plan(state)
    assert result.actions.shape == (6, 2)
    assert np.all(np.isfinite(result.action))
    assert np.all(np.abs(result.action) <= 2.0 + 1e-9)
