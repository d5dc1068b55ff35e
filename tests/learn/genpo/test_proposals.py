"""The generative policy as IMLE-MPC's proposal generator: rollouts with exact densities."""

from __future__ import annotations

import numpy as np
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


def test_imle_mpc_plans_on_policy_proposals() -> None:
    task = make_task("nav_two_obstacles")
    gen = PolicyChunks(_policy(task.dynamics), task.dynamics, horizon=16)
    planner = make_planner("imle_mpc", task, seed=0, num_samples=8, generator=gen)
    planner.reset()
    result = planner.plan(task.initial_state)
    assert result.actions.shape == (16, 2) and np.all(np.isfinite(result.actions))
    assert np.all(np.abs(result.actions) <= 2.0)
