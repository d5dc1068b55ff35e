"""The generative policy's density is exact: the change of variables, inversion, the box."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from imle_mpc.learn.genpo import (
    GenerativePolicy,
    GenPOConfig,
    entropy_estimate,
    kl_estimate,
    load_policy,
    save_policy,
)
from imle_mpc.learn.model_file import CheckpointError


def _random_policy(
    nu: int = 2, obs_dim: int = 3, seed: int = 0, mix: float = 0.8
) -> GenerativePolicy:
    """A small policy in float64 with non-zero velocity networks (trained ones are)."""
    torch.manual_seed(seed)
    policy = GenerativePolicy(
        obs_dim, nu, [-2.0] * nu, [1.0] * nu, GenPOConfig(steps=3, mix=mix, hidden=(16,)),
        obs_shift=np.full(obs_dim, 0.5), obs_scale=np.full(obs_dim, 2.0),
    )  # fmt: skip
    with torch.no_grad():
        for name, p in policy.named_parameters():
            # the final affine map gently: a log-scale of ~5 saturates the tanh
            p.normal_(0.0, 0.1 if name.startswith("out.") else 0.5)
    return policy.double()


@pytest.mark.parametrize("mix", [0.8, 1.0])  # 1: no mixing, the bench's nav setting
def test_log_prob_equals_a_numerical_change_of_variables(mix: float) -> None:
    policy = _random_policy(mix=mix)
    obs = torch.randn(4, 3, dtype=torch.float64)
    z = torch.randn(4, 4, dtype=torch.float64)
    for o, zi in zip(obs, z, strict=True):
        jac = torch.autograd.functional.jacobian(
            lambda v, o=o: policy.forward_map(o[None], v[None])[0], zi
        )
        expected = float(policy.base_log_prob(zi[None])[0]) - float(torch.linalg.slogdet(jac)[1])
        a = policy.forward_map(o[None], zi[None])
        assert float(policy.log_prob(o[None], a).detach()[0]) == pytest.approx(expected, abs=1e-5)
    # the sampled log-probs are the same quantity
    gen = torch.Generator().manual_seed(3)
    pair, logp = policy.sample(obs, gen)
    assert torch.allclose(logp, policy.log_prob(obs, pair), atol=1e-6)


def test_no_mixing_would_break_the_log_det_check() -> None:
    """The mixing's log-det matters: drop it from the formula and the check fails."""
    policy = _random_policy()
    obs, z = torch.randn(1, 3, dtype=torch.float64), torch.randn(1, 4, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda v: policy.forward_map(obs, v[None])[0], z[0])
    assert (
        abs(
            float(torch.linalg.slogdet(jac)[1])
            - float(policy.squash(policy.flow(obs, z))[1][0].detach())
        )
        > 1.0
    )  # the couplings alone do not account for the volume change


def test_inverse_round_trip() -> None:
    policy = _random_policy(seed=1)
    obs = torch.randn(64, 3, dtype=torch.float64)
    z = torch.randn(64, 4, dtype=torch.float64)
    u = policy.flow(obs, z)
    assert torch.allclose(policy.flow_inverse(obs, u), z, atol=1e-9)
    a = policy.squash(u)[0]
    assert torch.allclose(policy.unsquash(a), u, atol=1e-6)


def test_samples_are_inside_the_box() -> None:
    policy = _random_policy(seed=2)
    obs = 10 * torch.randn(2000, 3, dtype=torch.float64)
    pair, logp = policy.sample(obs, torch.Generator().manual_seed(0))
    assert pair.shape == (2000, 4) and logp.shape == (2000,)
    assert bool(((pair >= -2.0) & (pair <= 1.0)).all())
    assert bool(torch.isfinite(logp).all())
    action = policy.executed(pair)
    assert action.shape == (2000, 2) and torch.equal(action, pair[:, :2])


def test_the_density_integrates_to_one_in_one_dimension() -> None:
    """nu = 1: the pair lives in the box [-2, 1]^2; a grid sum of its density is 1."""
    policy = _random_policy(nu=1, obs_dim=2, seed=4)
    assert policy.out is not None
    with torch.no_grad():  # a narrow pre-squash law: no density spikes at the faces for the grid
        last = policy.out[-1]
        assert isinstance(last, torch.nn.Linear)
        last.bias[2:] -= 1.0
    obs = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    n = 600
    g = torch.linspace(-2.0, 1.0, n + 1, dtype=torch.float64)
    centres = (g[:-1] + g[1:]) / 2
    xx, yy = torch.meshgrid(centres, centres, indexing="ij")
    pairs = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
    with torch.no_grad():
        density = policy.log_prob(obs.expand(pairs.shape[0], -1), pairs).exp()
    cell = (3.0 / n) ** 2
    assert float(density.sum()) * cell == pytest.approx(1.0, abs=0.02)


@torch.no_grad()  # estimates only: no graph, no grad-carrying scalars
def test_entropy_and_kl_estimates() -> None:
    policy = _random_policy(seed=5)
    obs = torch.randn(4000, 3, dtype=torch.float64)
    u, logp = policy.sample_latent(obs, torch.Generator().manual_seed(1))
    assert float(kl_estimate(logp, policy.log_prob_latent(obs, u))) == pytest.approx(0, abs=1e-9)
    other = _random_policy(seed=6)
    assert float(kl_estimate(logp, other.log_prob_latent(obs, u))) > 0.1  # another policy
    # in the box: the entropy of the squashed pair is below that of the box's uniform law
    _, logp_box = policy.sample(obs, torch.Generator().manual_seed(1))
    assert float(entropy_estimate(logp_box)) < 4 * math.log(3.0)


def test_model_file_round_trip(tmp_path: Path) -> None:
    policy = _random_policy(seed=7).float()
    path = save_policy(policy, tmp_path, {"task": "nav_two_obstacles"})
    loaded = load_policy(path)
    obs = torch.randn(5, 3)
    pair, _ = policy.sample(obs, torch.Generator().manual_seed(0))
    assert torch.allclose(loaded.log_prob(obs, pair), policy.log_prob(obs, pair))
    assert loaded.trained_for == {"task": "nav_two_obstacles"}
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        load_policy(path)


def test_the_latent_density_differs_from_the_boxed_one_by_the_squash_alone() -> None:
    """PPO acts in the pre-squash pair: same ratios, and the same executed action."""
    from imle_mpc.learn.genpo.ppo import genpo_action_map

    policy, other = _random_policy(seed=8), _random_policy(seed=9)
    obs = torch.randn(50, 3, dtype=torch.float64)
    u, logp_u = policy.sample_latent(obs, torch.Generator().manual_seed(0))
    assert torch.allclose(logp_u, policy.log_prob_latent(obs, u), atol=1e-8)
    a, log_det = policy.squash(u)
    assert torch.allclose(policy.log_prob(obs, a), logp_u - log_det, atol=1e-6)
    ratio_u = other.log_prob_latent(obs, u) - logp_u
    assert torch.allclose(other.log_prob(obs, a) - policy.log_prob(obs, a), ratio_u, atol=1e-6)
    mapped = genpo_action_map([-2.0, -2.0], [1.0, 1.0])(u.detach().numpy())
    np.testing.assert_allclose(mapped, policy.executed_latent(u).detach().numpy())
