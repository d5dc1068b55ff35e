"""The flow policy (the second exact-likelihood kind): its density is exact, its samples
follow it, the file keeps it, behaviour cloning fits it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from imle_mpc.learn.config import TrainConfig
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.genpo.bc import action_nll, demo_pairs, train_flow_policy_bc
from imle_mpc.learn.genpo.flow_policy import (
    FlowPolicy,
    FlowPolicyConfig,
    load_flow_policy,
    save_flow_policy,
)
from imle_mpc.learn.genpo.policy import load_policy
from imle_mpc.learn.model_file import CheckpointError
from imle_mpc.tasks.registry import make_task

LOW, HIGH = np.array([-2.0, -0.5]), np.array([1.0, 1.5])


def _random_policy(seed: int = 0) -> FlowPolicy:
    """A small float64 flow whose splines are far from the identity (trained ones are)."""
    policy = FlowPolicy(
        3, 2, LOW, HIGH, FlowPolicyConfig(transforms=3, bins=6, hidden=(16,)),
        obs_shift=np.full(3, 0.5), obs_scale=np.full(3, 2.0), seed=seed,
    )  # fmt: skip
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in policy.flow.parameters():
            p.add_(0.25 * torch.randn_like(p))
    return policy.double()


def _grid(n: int) -> tuple[torch.Tensor, float]:
    """Midpoints of an n x n grid over the actuator box, and one cell's area."""
    axes = [
        torch.linspace(lo, hi, n + 1, dtype=torch.float64) for lo, hi in zip(LOW, HIGH, strict=True)
    ]
    mids = [(a[1:] + a[:-1]) / 2 for a in axes]
    pts = torch.cartesian_prod(*mids)
    return pts, float(np.prod((HIGH - LOW) / n))


def test_the_density_integrates_to_one_over_the_actuator_box() -> None:
    policy = _random_policy()
    pts, cell = _grid(300)
    for o in torch.randn(3, 3, dtype=torch.float64):
        with torch.no_grad():
            density = policy.log_prob(o.expand(pts.shape[0], -1), pts).exp()
        assert float(density.sum()) * cell == pytest.approx(1.0, abs=5e-3)
        # not a flat density: the check would pass for the uniform one too
        assert float(density.max() / density.min()) > 2.0
    # outside the box: density 0
    assert policy.log_prob(o[None], torch.tensor([[1.2, 0.0]], dtype=torch.float64)).item() == (
        -np.inf
    )


def test_log_prob_equals_a_numerical_change_of_variables() -> None:
    """log pi(a) = log u(z) + log|det dz/da|, the Jacobian by autograd of the map a -> z."""
    policy = _random_policy(seed=1)
    obs = torch.randn(4, 3, dtype=torch.float64)
    a, logp = policy.sample(obs, torch.Generator().manual_seed(0))
    for o, ai, lp in zip(obs, a.detach(), logp.detach(), strict=True):
        cond = policy._condition(o[None])

        def to_latent(v: torch.Tensor, cond: torch.Tensor = cond) -> torch.Tensor:
            x = (v - policy.box_mid) / policy.box_half
            return policy.flow.bijection(cond)(x[None])[0]

        jac = torch.autograd.functional.jacobian(to_latent, ai)
        expected = -2 * np.log(2.0) + float(torch.linalg.slogdet(jac)[1])  # uniform on [-1,1]^2
        assert float(lp) == pytest.approx(expected, abs=1e-6)
        assert float(policy.log_prob(o[None], ai[None]).detach()[0]) == pytest.approx(expected)
    # the latent u = atanh(x) that PPO stores: its density is the action's times |da/du|
    u, logp_u = policy.sample_latent(obs, torch.Generator().manual_seed(0))
    assert torch.allclose(logp_u, policy.log_prob_latent(obs, u), atol=1e-9)
    for o, ui, lpu in zip(obs, u.detach(), logp_u.detach(), strict=True):
        jac = torch.autograd.functional.jacobian(lambda v: policy.executed_latent(v[None])[0], ui)
        a_i = policy.executed_latent(ui[None])
        expected = float(policy.log_prob(o[None], a_i).detach()[0]) + float(
            torch.linalg.slogdet(jac)[1]
        )
        assert float(lpu) == pytest.approx(expected, abs=1e-6)


def test_samples_fall_in_a_region_as_often_as_the_density_says() -> None:
    policy = _random_policy(seed=2)
    o = torch.randn(1, 3, dtype=torch.float64)
    with torch.no_grad():
        a, _ = policy.sample(o.expand(40_000, -1), torch.Generator().manual_seed(1))
        pts, cell = _grid(200)
        density = policy.log_prob(o.expand(pts.shape[0], -1), pts).exp()
    assert bool(((a >= torch.as_tensor(LOW)) & (a <= torch.as_tensor(HIGH))).all())
    for corner in ([-2.0, -0.5], [-0.5, 0.5]):  # two sub-boxes of 1.5 x 1
        lo, hi = torch.tensor(corner), torch.tensor(corner) + torch.tensor([1.5, 1.0])
        share = float(((a > lo) & (a < hi)).all(dim=1).double().mean())
        mass = float(density[((pts > lo) & (pts < hi)).all(dim=1)].sum()) * cell
        assert share == pytest.approx(mass, abs=0.012)  # 40k draws: sd <= 0.0025


def test_the_file_round_trips_and_names_its_kind(tmp_path: Path) -> None:
    policy = _random_policy().float()
    save_flow_policy(policy, tmp_path, {"task": "t"})
    loaded = load_flow_policy(tmp_path)
    obs, a = torch.randn(6, 3), policy.act(torch.randn(6, 3).numpy())
    at = torch.as_tensor(a, dtype=torch.float32)
    assert torch.allclose(loaded.log_prob(obs, at), policy.log_prob(obs, at))
    assert loaded.trained_for == {"task": "t"}
    with pytest.raises(CheckpointError, match="holds a 'flow_policy'"):
        load_policy(tmp_path / "flow_policy.safetensors")  # not a GenPO policy file


def test_behaviour_cloning_lowers_the_nll(tmp_path: Path) -> None:
    task = make_task("nav_two_obstacles")
    demos = task.load_demonstrations()
    small = DemoDataset(demos.episodes[:8], demos.meta)
    low, high = task.dynamics.action_low, task.dynamics.action_high
    config = FlowPolicyConfig(transforms=2, hidden=(32,))
    train = TrainConfig(epochs=5, batch_size=128, lr=3e-3, warmup_steps=5, checkpoint_every=5)
    _, history = train_flow_policy_bc(small, low, high, config, train, out_dir=tmp_path)
    assert len(history.nll) == 5 and history.nll[-1] < history.nll[0] - 0.5
    loaded = load_flow_policy(tmp_path)
    assert loaded.trained_for["behaviour_cloning"] is True
    untrained, _ = train_flow_policy_bc(small, low, high, config, replace(train, epochs=1, lr=1e-9))
    obs, act = (torch.as_tensor(v, dtype=torch.float32) for v in demo_pairs(small))
    mid, half = (
        torch.as_tensor(v, dtype=torch.float32) for v in ((high + low) / 2, (high - low) / 2)
    )
    act = mid + torch.clamp(act - mid, -0.99 * half, 0.99 * half)  # off the faces
    with torch.no_grad():
        # the demonstrations' likelihood rose (measured here, not by the loss itself)
        gain = float(loaded.log_prob(obs, act).mean() - untrained.log_prob(obs, act).mean())
        assert gain > 0.5
        assert float(action_nll(loaded, obs, act)) == pytest.approx(
            -float(loaded.log_prob(obs, act).mean()), abs=1e-5
        )


def test_cloning_noise_spreads_the_density() -> None:
    """``noise_std``: the clone's density is less peaked at the demonstrated actions."""
    task = make_task("nav_two_obstacles")
    demos = task.load_demonstrations()
    small = DemoDataset(demos.episodes[:8], demos.meta)
    low, high = task.dynamics.action_low, task.dynamics.action_high
    train = TrainConfig(epochs=5, batch_size=128, lr=3e-3, warmup_steps=5)
    obs, act = (torch.as_tensor(v, dtype=torch.float32) for v in demo_pairs(small))
    fits = []
    for noise in (0.0, 0.3):
        config = FlowPolicyConfig(transforms=2, hidden=(32,), noise_std=noise)
        policy, _ = train_flow_policy_bc(small, low, high, config, train)
        with torch.no_grad():
            fits.append(-float(action_nll(policy, obs, act)))
    assert fits[1] < fits[0] - 0.3
    with pytest.raises(ValueError, match="noise_std"):
        FlowPolicyConfig(noise_std=-0.1)
