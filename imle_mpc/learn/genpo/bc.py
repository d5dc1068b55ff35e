"""Behaviour cloning of the generative policy: maximum likelihood of demonstrated steps.

Each demonstrated step gives one pair ``(observation, action)``. The policy's density is
over the action AND its dummy, and the dummy is not demonstrated; its marginal is not
tractable exactly. The choice here: fit the pair ``(a, y)`` with ``y`` drawn afresh each
step from a fixed law, the squashed base ``mid + half * tanh(N(0, I))``. The maximiser of
``E log pi(a, y | o)`` over such data is ``p_data(a | o) * q(y)``, whose ``x`` marginal
is the demonstrations' action law: the executed half (``GenerativePolicy.executed``) is
fitted without bias, and the dummy is taught to stay a base-like nuisance. (The
executed-action likelihood ``log int pi(a, y) dy`` would need an estimate per step.)
Demonstrated actions on the box's faces (saturated motors) are pulled 0.5 % of the half
range inside, where ``atanh`` is finite.

The optimisation is ``imle_mpc.learn.training.TrainingRun`` (AdamW, warm-up + cosine,
EMA, atomic resumable checkpoints; the EMA policy is the one returned and saved) and the
file ``imle_mpc.learn.genpo.policy``'s model file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imle_mpc.learn.config import TrainConfig
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.genpo.policy import GenerativePolicy, GenPOConfig, save_policy
from imle_mpc.learn.records import JsonRecord
from imle_mpc.learn.training import TrainingRun

DATA_MARGIN = 0.005
"""Share of the half range a demonstrated action is kept inside the box's faces."""


@dataclass
class BCHistory(JsonRecord):
    """Mean training NLL (nats per step, the pair's) of each epoch."""

    nll: list[float] = field(default_factory=list)


def demo_pairs(dataset: DemoDataset) -> tuple[np.ndarray, np.ndarray]:
    """Every demonstrated step's ``(observations Shape=(N, obs_dim), actions Shape=(N, nu))``."""
    obs = np.concatenate([ep.observations for ep in dataset.episodes])
    act = np.concatenate([ep.actions for ep in dataset.episodes])
    return obs, act


def observation_normaliser(dataset: DemoDataset) -> tuple[np.ndarray, np.ndarray]:
    """``(shift, scale)`` of the demonstrations' observations (mean, std floored at 1e-3)."""
    obs, _ = demo_pairs(dataset)
    return obs.mean(axis=0), np.maximum(obs.std(axis=0), 1e-3)


def pair_nll(
    policy: GenerativePolicy, obs: torch.Tensor, actions: torch.Tensor, rng: torch.Generator
) -> torch.Tensor:
    """Mean ``-log pi(a, y | o)`` with ``y`` the squashed base draw (see the module)."""
    mid, half = policy.box_mid[: policy.nu], policy.box_half[: policy.nu]
    inside = (1.0 - DATA_MARGIN) * half
    a = torch.clamp(actions - mid, -inside, inside) + mid
    noise = torch.randn(a.shape, generator=rng, dtype=a.dtype)
    y = mid + half * torch.tanh(noise)
    return -policy.log_prob(obs, torch.cat([a, y], dim=1)).mean()


def train_genpo_bc(
    dataset: DemoDataset,
    action_low: np.ndarray,
    action_high: np.ndarray,
    config: GenPOConfig | None = None,
    train_config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    meta: dict[str, Any] | None = None,
) -> tuple[GenerativePolicy, BCHistory]:
    """Behaviour-clone a ``GenerativePolicy`` on ``dataset``'s steps.

    Args:
        dataset: demonstrations (observations and actions per step).
        action_low: the actuator box's lower corner, Shape=(nu,).
        action_high: the actuator box's upper corner, Shape=(nu,).
        config: the policy's shape (default ``GenPOConfig()``).
        train_config: the optimisation (default: 150 epochs, batch 256, lr 1e-3, 50
            warm-up steps); ``num_candidates`` and ``epsilon`` are unused.
        out_dir: where the policy file, training state and history go (None: nowhere).
        resume: continue the run in ``out_dir``.
        progress: show a tqdm bar.
        meta: stored in the policy file as what it was trained for.

    Returns:
        The EMA policy (float32, eval mode) and the per-epoch NLL.
    """
    config = config or GenPOConfig()
    train_config = train_config or TrainConfig(epochs=150, lr=1e-3, warmup_steps=50)
    obs_np, act_np = demo_pairs(dataset)
    shift, scale = observation_normaliser(dataset)
    rng = torch.Generator().manual_seed(train_config.seed)
    torch.manual_seed(train_config.seed)  # nn.Linear's init draws from the global RNG

    def build() -> GenerativePolicy:
        return GenerativePolicy(
            dataset.obs_dim, dataset.nu, action_low, action_high, config, shift, scale
        )

    policy, ema = build(), build()
    obs = torch.as_tensor(obs_np, dtype=torch.float32)
    act = torch.as_tensor(act_np, dtype=torch.float32)
    n, batch = obs.shape[0], train_config.batch_size
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    identity = {
        "genpo_config": config.to_dict(),
        "demo_steps": int(n),
        "demo_action_sum": float(act_np.sum()),
    }
    run = TrainingRun(
        policy, ema, train_config, math.ceil(n / batch), rng, out, identity, BCHistory()
    )
    if resume:
        run.resume()
    file_meta = {"behaviour_cloning": True, **(meta or {})}
    for epoch in run.epochs("GenPO BC", progress):
        order = torch.randperm(n, generator=rng)
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            loss = pair_nll(policy, obs[idx], act[idx], rng)
            run.optimise(loss)
            total += float(loss.detach()) * int(idx.shape[0])
        run.history.nll.append(total / n)
        run.bar.set_postfix(nll=f"{run.history.nll[-1]:.3f}")
        if run.checkpoint_due(epoch):
            run.checkpoint(epoch, lambda d: save_policy(ema, d, file_meta))
    ema.eval()
    ema.trained_for = file_meta
    return ema, run.history
