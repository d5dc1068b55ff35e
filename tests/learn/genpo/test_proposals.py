"""The generative policy as IMLE-MPC's proposal generator: rollouts with exact densities."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from imle_mpc.core.protocols import Dynamics
from imle_mpc.eval.factory import make_planner
from imle_mpc.learn.genpo import GenerativePolicy, GenPOConfig
from imle_mpc.learn.genpo.proposals import PolicyChunks
from imle_mpc.tasks.registry import make_task


def _policy(dynamics: Dynamics) -> GenerativePolicy:
    torch.manual_seed(0)
    config = GenPOConfig(steps=2, hidden=(16,))
    policy = GenerativePolicy(4, 2, dynamics.action_low, dynamics.action_high, config)
    with torch.no_grad():
        for p in policy.parameters():
            p.normal_(0.0, 0.3)
    return policy


def test_chunks_are_policy_rollouts_with_their_exact_densities() -> None:
    task = make_task("nav_two_obstacles")
    policy = _policy(task.dynamics)
    gen = PolicyChunks(policy, task.dynamics, horizon=5)
    x0 = np.array([[0.5, -0.2, 0.3, 0.0]])
    chunks = gen.sample(x0, 7, np.random.default_rng(0))
    assert chunks.shape == (7, 5, 2)
    assert np.all(chunks >= -2.0) and np.all(chunks <= 2.0)
    logp = gen.last_log_prob.copy()
    # the same latents replay the same chunks
    z = np.random.default_rng(0).standard_normal((7, gen.latent_dim))
    np.testing.assert_array_equal(gen.decode(x0, z), chunks)
    # the density is the sum of the policy's per-step densities along the model's states
    X = task.dynamics.rollout(x0[0], chunks)
    total = np.zeros(7)
    Z = torch.as_tensor(z.reshape(7, 5, 4), dtype=torch.float32)
    for t in range(5):
        obs = torch.as_tensor(X[:, t], dtype=torch.float32)
        pair = policy.forward_map(obs, Z[:, t])
        np.testing.assert_allclose(policy.executed(pair).detach().numpy(), chunks[:, t], atol=1e-6)
        total += policy.log_prob(obs, pair).detach().numpy()
    np.testing.assert_allclose(logp, total, atol=1e-3)


@pytest.mark.parametrize("kind", ["genpo", "flow"])
def test_imle_mpc_plans_on_policy_proposals(kind: str) -> None:
    if kind == "flow":
        pytest.importorskip("zuko")
    task = make_task("nav_two_obstacles")
    policy = (_policy if kind == "genpo" else _flow_policy)(task.dynamics)
    gen = PolicyChunks(policy, task.dynamics, horizon=16)
    planner = make_planner("imle_mpc", task, seed=0, num_samples=8, generator=gen)
    planner.reset()
    result = planner.plan(task.initial_state)
    assert result.actions.shape == (16, 2) and np.all(np.isfinite(result.actions))
    assert np.all(np.abs(result.actions) <= 2.0)


def _flow_policy(dynamics: Dynamics) -> Any:
    from imle_mpc.learn.genpo.flow_policy import FlowPolicy, FlowPolicyConfig

    config = FlowPolicyConfig(transforms=2, bins=4, hidden=(16,))
    policy = FlowPolicy(4, 2, dynamics.action_low, dynamics.action_high, config, seed=3)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in policy.parameters():  # away from zuko's near-identity start
            p.add_(0.3 * torch.randn_like(p))
    return policy


def test_flow_policy_chunks_replay_and_carry_the_flows_exact_density() -> None:
    pytest.importorskip("zuko")
    task = make_task("nav_two_obstacles")
    policy = _flow_policy(task.dynamics)
    gen = PolicyChunks(policy, task.dynamics, horizon=6)
    assert gen.latent_dim == 6 * 2  # the flow: one action a step, no dummy half
    assert gen.describe()["kind"] == "flow_policy_rollout"
    x0 = np.array([[0.5, -0.2, 0.3, 0.0]])
    chunks = gen.sample(x0, 9, np.random.default_rng(4))
    assert chunks.shape == (9, 6, 2)
    assert np.all(np.abs(chunks) <= 2.0)
    assert chunks[:, 0].std(axis=0).min() > 0.05  # different latents, different actions
    logp = gen.last_log_prob.copy()
    z = np.random.default_rng(4).standard_normal((9, gen.latent_dim))
    np.testing.assert_array_equal(gen.decode(x0, z), chunks)
    # the density the flow gives each executed action (its inverse pass), summed along
    # the model's states, is what sampling reported (its forward pass)
    X = task.dynamics.rollout(x0[0], chunks)
    total = np.zeros(9)
    with torch.no_grad():
        for t in range(6):
            obs = torch.as_tensor(X[:, t], dtype=torch.float32)
            a = torch.as_tensor(chunks[:, t], dtype=torch.float32)
            total += policy.log_prob(obs, a).numpy()
    np.testing.assert_allclose(logp, total, atol=2e-3)


def test_flow_policy_normal_draws_are_its_samples() -> None:
    pytest.importorskip("zuko")
    policy = _flow_policy(make_task("nav_two_obstacles").dynamics)
    obs = torch.tensor([[0.5, -0.2, 0.3, 0.0]]).repeat(500, 1)
    with torch.no_grad():
        # sample() decodes uniform draws u; draw_from_normal the normal draws Phi^-1(u)
        sampled, log_prob = policy.sample(obs, torch.Generator().manual_seed(1))
        u = torch.rand(500, 2, generator=torch.Generator().manual_seed(1))
        drawn, drawn_log_prob = policy.draw_from_normal(obs, torch.special.ndtri(u))
    np.testing.assert_allclose(drawn.numpy(), sampled.numpy(), atol=1e-4)
    np.testing.assert_allclose(drawn_log_prob.numpy(), log_prob.numpy(), atol=1e-2)
