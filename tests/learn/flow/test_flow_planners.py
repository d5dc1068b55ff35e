"""The flow where the generator goes: IMLE-MPC on flow proposals, latent search in its box."""

from __future__ import annotations

import numpy as np
import torch

from cost import ControlEffort, CostSum, DensityConstraint, StateTracking, Term
from dynamics import PointMass2D
from imle_mpc.learn.config import FlowConfig
from imle_mpc.learn.flow import ChunkFlow, build_box_flow
from imle_mpc.learn.pairs import MinMaxNormalizer
from planners.imle import IMLEMPC, IMLEMPCConfig, LatentIMLEMPC, LatentPlanConfig, SoftmaxRefit

H = 8
LOW, HIGH = np.array([0.2, -0.5]), np.array([1.0, 0.5])
"""The 'demonstrations' action range: well inside the point mass's +-2 N box."""


def _flow() -> ChunkFlow:
    config = FlowConfig(horizon=H, action_horizon=4, transforms=2, bins=4, hidden=(16,))
    net = build_box_flow(config, 4, 2, torch.Generator().manual_seed(0))
    obs = MinMaxNormalizer(-np.ones(4), np.ones(4))
    return ChunkFlow(net, config, obs, MinMaxNormalizer(LOW, HIGH))


def _cost() -> CostSum:
    goal = np.array([1.0, 0.5, 0.0, 0.0])
    return CostSum(
        Term("goal", StateTracking(goal, [1, 1, 0, 0])), Term("effort", ControlEffort(), 0.01)
    )


def _in_range(U: np.ndarray) -> np.ndarray:
    return np.all((U >= LOW - 1e-9) & (U <= HIGH + 1e-9), axis=(1, 2))


def test_latent_search_in_the_flows_box_keeps_every_candidate_in_range() -> None:
    flow = _flow()
    for update in (None, SoftmaxRefit(temperature=0.1)):
        extra = {} if update is None else {"update": update}
        # latent_bound 2 (prior stds for a Gaussian generator) is cut to the flow's box.
        config = LatentPlanConfig(
            horizon=H, num_samples=24, num_elites=4, iterations=3, record_samples=True,
            init_sigma=1.0, **extra,
        )  # fmt: skip
        planner = LatentIMLEMPC(PointMass2D(), _cost(), flow, lambda x: x, config)
        assert planner.sampler.bound == 1.0
        planner.plan(np.zeros(4))
        U = planner.plan(np.zeros(4)).samples[0]  # type: ignore[index]  # row 0: the last plan
        assert np.all(_in_range(U)), "a candidate left the flow's support"
        assert np.all(np.abs(planner.sampler._z) <= 1.0)


def test_imle_mpc_runs_on_flow_proposals_and_the_density_guard_rejects_samples() -> None:
    flow = _flow()
    config = IMLEMPCConfig(horizon=H, num_samples=17, num_imle=8, record_samples=True, seed=1)
    planner = IMLEMPC(PointMass2D(), _cost(), flow, lambda x: x, config)
    U = planner.plan(np.zeros(4)).samples[0]  # type: ignore[index]
    assert np.all(_in_range(U[1:9]))  # the flow's own rows; the perturbed ones may leave it
    assert not np.all(_in_range(U[9:]))
    # With the density as a hard constraint, out-of-range perturbations are rejected.
    rng = np.random.default_rng(0)
    lp = flow.log_prob(np.zeros((1, 4)), flow.sample(np.zeros((1, 4)), 256, rng))
    guard = DensityConstraint(flow, lambda x: x, float(np.quantile(lp, 0.5)))
    guarded = IMLEMPC(PointMass2D(), _cost(), flow, lambda x: x, config, [guard])
    result = guarded.plan(np.zeros(4))
    costs = result.samples[1]  # type: ignore[index]
    assert np.all(np.isinf(costs[9:][~_in_range(result.samples[0][9:])]))  # type: ignore[index]
    if result.feasible:
        X = PointMass2D().rollout(np.zeros(4), result.actions[None])
        assert guard.violation(X, result.actions[None])[0] == 0.0
