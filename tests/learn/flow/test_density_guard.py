"""The density term and constraint on a trained flow: in the planner's batch and in the guard."""

from __future__ import annotations

import numpy as np
import pytest
from flow_toy import T, make_toy_dataset, toy_action, toy_observation

from cost import DensityConstraint, DensityCost
from dynamics import PointMass2D
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.learn.flow import ChunkFlow, FlowHistory
from planners.safety.fallbacks import Hold
from planners.safety.guard import GuardConfig, SafetyGuard


def _batch(flow: ChunkFlow) -> tuple[np.ndarray, np.ndarray]:
    """A demonstration's state halfway along the up route, and three chunks from it:
    what the demonstrations do there, the average of both routes (ay = 0, the mode
    average that hits the obstacle), and one outside the demonstrated action range."""
    episode = make_toy_dataset(n_demos=2, seed=11).episodes[0]  # fresh, up route
    t = T // 2
    steps = np.arange(t, t + flow.horizon, dtype=np.float64)
    demo = episode.actions[t : t + flow.horizon]
    average = toy_action(1.0, steps)
    average[:, 1] = 0.0
    outside = demo + np.array([0.0, 2.5])
    U = np.stack([demo, average, outside])
    X = np.zeros((3, flow.horizon + 1, 4))
    X[:, 0] = episode.states[t]
    return X, U


def test_density_constraint_passes_a_demonstration_and_rejects_ood_chunks(
    trained_flow: tuple[ChunkFlow, FlowHistory],
) -> None:
    flow, _ = trained_flow
    X, U = _batch(flow)
    guard = DensityConstraint(flow, toy_observation, flow.threshold(0.05))
    v = guard.violation(X, U)
    assert v[0] == 0.0
    assert v[1] > 1.0  # nats below the threshold
    assert v[2] == np.inf  # density 0: outside the demonstrated range
    # The term ranks them the same way; the floor caps what lies outside the range.
    cost = DensityCost(flow, toy_observation)(X, U)
    assert cost[0] < cost[1] < cost[2] == np.inf
    capped = DensityConstraint(flow, toy_observation, flow.threshold(0.05), floor=-50.0)
    assert capped.violation(X, U)[2] == pytest.approx(flow.threshold(0.05) + 50.0)


def test_each_rollout_is_conditioned_on_its_own_start_state(
    trained_flow: tuple[ChunkFlow, FlowHistory],
) -> None:
    flow, _ = trained_flow
    X, U = _batch(flow)
    X[1, 0, 1] = -0.4  # a start on the other route
    guard = DensityConstraint(flow, toy_observation, flow.threshold(0.05))
    together = guard.log_density(X, U)
    one_by_one = [guard.log_density(X[k : k + 1], U[k : k + 1])[0] for k in range(3)]
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)  # float32 batches
    assert together[1] != guard.log_density(X[:1].repeat(3, 0), U)[1]


def test_a_density_of_a_history_is_refused(trained_flow: tuple[ChunkFlow, FlowHistory]) -> None:
    flow, _ = trained_flow

    class TwoStep:
        obs_horizon = 2
        obs_dim = 2

        def log_prob(self, obs_history: np.ndarray, U: np.ndarray) -> np.ndarray:
            return flow.log_prob(obs_history[..., -1:, :], U)

    with pytest.raises(ValueError, match="obs_horizon=1"):
        DensityConstraint(TwoStep(), toy_observation, 0.0)
    with pytest.raises(TypeError, match="ChunkDensity"):
        DensityCost(object(), toy_observation)  # type: ignore[arg-type]


class _FixedPlan:
    """A planner that always proposes the same chunk (the guard's subject)."""

    def __init__(self, actions: np.ndarray) -> None:
        self.actions = actions
        self.horizon = actions.shape[0]

    def reset(self, seed: int | None = None) -> None:
        pass

    def plan(self, state: np.ndarray) -> PlanResult:
        return PlanResult(
            actions=self.actions.copy(), cost=0.0, term_costs={}, num_feasible=1,
            best_index=0, predicted_states=np.empty((0, 0)), timings={},
        )  # fmt: skip


def test_the_guard_checks_the_density_like_any_hard_constraint(
    trained_flow: tuple[ChunkFlow, FlowHistory],
) -> None:
    """The toy's state (t/T, py, vx, vy) read as a point mass's: the guard rolls each plan
    out from the measured state and the constraint conditions on that state."""
    flow, _ = trained_flow
    X, U = _batch(flow)
    model = PointMass2D(dt=0.1, max_force=2.0)
    density = DensityConstraint(flow, toy_observation, flow.threshold(0.05))
    config = GuardConfig(fallbacks=(Hold(),))
    ok = SafetyGuard(_FixedPlan(U[0]), model, [density], config).plan(X[0, 0])
    assert ok.fallback is None
    flagged = SafetyGuard(_FixedPlan(U[1]), model, [density], config).plan(X[0, 0])
    assert flagged.fallback is not None and "check failed" in flagged.fallback
    soft = DensityConstraint(flow, toy_observation, flow.threshold(0.05), hard=False)
    assert SafetyGuard(_FixedPlan(U[1]), model, [soft], config).plan(X[0, 0]).fallback is None
