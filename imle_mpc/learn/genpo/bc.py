"""Behaviour cloning of the exact-likelihood policies: maximum likelihood of demonstrated steps.

``train_genpo_bc`` clones the ``GenerativePolicy`` (below), ``train_flow_policy_bc`` the
``FlowPolicy`` (the likelihood of the demonstrated action itself: a flow has no dummy);
both run the one loop ``clone_by_likelihood``.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from imle_mpc.learn.config import TrainConfig
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.flow.train import _reflect as reflect
from imle_mpc.learn.genpo.flow_policy import FlowPolicy, FlowPolicyConfig, save_flow_policy
from imle_mpc.learn.genpo.policy import GenerativePolicy, GenPOConfig, save_policy
from imle_mpc.learn.records import JsonRecord
from imle_mpc.learn.training import TrainingRun

DATA_MARGIN = 0.005
"""Share of the half range a demonstrated action is kept inside the box's faces."""

P = TypeVar("P", bound=torch.nn.Module)


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


def action_nll(
    policy: FlowPolicy,
    obs: torch.Tensor,
    actions: torch.Tensor,
    rng: torch.Generator | None = None,
    noise_std: float = 0.0,
) -> torch.Tensor:
    """Mean ``-log pi(a | o)`` of demonstrated actions (pulled ``DATA_MARGIN`` inside),
    each first moved by ``noise_std`` (normalised units, reflected at the box's faces,
    as the flow issue's training does) when ``noise_std > 0``."""
    x = (actions.to(policy.box_mid.dtype) - policy.box_mid) / policy.box_half
    if noise_std > 0:
        x = reflect(x + noise_std * torch.randn(x.shape, generator=rng, dtype=x.dtype))
    x = x.clamp(-(1.0 - DATA_MARGIN), 1.0 - DATA_MARGIN)
    return -policy.log_prob(obs, policy.box_mid + policy.box_half * x).mean()


def _default_train() -> TrainConfig:
    return TrainConfig(epochs=150, lr=1e-3, warmup_steps=50)


def clone_by_likelihood(
    dataset: DemoDataset,
    build: Callable[[np.ndarray, np.ndarray], P],
    nll: Callable[[P, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor],
    save: Callable[[P, Path, dict[str, Any]], Path],
    identity: dict[str, Any],
    train_config: TrainConfig,
    out_dir: str | Path | None,
    resume: bool,
    progress: bool,
    meta: dict[str, Any] | None,
    name: str,
) -> tuple[P, BCHistory]:
    """The behaviour-cloning loop of any policy with a likelihood (``TrainingRun``).

    Args:
        dataset: demonstrations.
        build: ``build(obs_shift, obs_scale)`` a fresh policy (called twice: net, EMA).
        nll: ``nll(policy, obs Shape=(B, obs_dim), actions Shape=(B, nu), rng)``, the loss.
        save: ``save(policy, dir, meta)`` writes the policy file.
        identity: what makes two runs the same run (the policy's config), for resuming.
        train_config: as ``train_genpo_bc``'s.
        out_dir: as ``train_genpo_bc``'s.
        resume: as ``train_genpo_bc``'s.
        progress: as ``train_genpo_bc``'s.
        meta: as ``train_genpo_bc``'s.
        name: the progress bar's.

    Returns:
        The EMA policy (eval mode; the caller sets its ``trained_for``: the file's
        ``{"behaviour_cloning": True, **meta}``) and the per-epoch NLL.
    """
    obs_np, act_np = demo_pairs(dataset)
    shift, scale = observation_normaliser(dataset)
    rng = torch.Generator().manual_seed(train_config.seed)
    torch.manual_seed(train_config.seed)  # nn.Linear's init draws from the global RNG
    policy, ema = build(shift, scale), build(shift, scale)
    obs = torch.as_tensor(obs_np, dtype=torch.float32)
    act = torch.as_tensor(act_np, dtype=torch.float32)
    n, batch = obs.shape[0], train_config.batch_size
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    identity = {**identity, "demo_steps": int(n), "demo_action_sum": float(act_np.sum())}
    run = TrainingRun(
        policy, ema, train_config, math.ceil(n / batch), rng, out, identity, BCHistory()
    )
    if resume:
        run.resume()
    file_meta = {"behaviour_cloning": True, **(meta or {})}
    for epoch in run.epochs(name, progress):
        order = torch.randperm(n, generator=rng)
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            loss = nll(policy, obs[idx], act[idx], rng)
            run.optimise(loss)
            total += float(loss.detach()) * int(idx.shape[0])
        run.history.nll.append(total / n)
        run.bar.set_postfix(nll=f"{run.history.nll[-1]:.3f}")
        if run.checkpoint_due(epoch):
            run.checkpoint(epoch, lambda d: save(ema, d, file_meta))
    ema.eval()
    return ema, run.history


def train_flow_policy_bc(
    dataset: DemoDataset,
    action_low: np.ndarray,
    action_high: np.ndarray,
    config: FlowPolicyConfig | None = None,
    train_config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    meta: dict[str, Any] | None = None,
) -> tuple[FlowPolicy, BCHistory]:
    """Behaviour-clone a ``FlowPolicy`` by maximum likelihood (``action_nll``).

    The arguments are ``train_genpo_bc``'s; ``config`` the flow's shape (default
    ``FlowPolicyConfig()``), its weights seeded by ``train_config.seed``. Returns the
    EMA policy and the per-epoch NLL (nats per step, of the action in its units).
    """
    config = config or FlowPolicyConfig()
    train_config = train_config or _default_train()

    def build(shift: np.ndarray, scale: np.ndarray) -> FlowPolicy:
        return FlowPolicy(
            dataset.obs_dim, dataset.nu, action_low, action_high, config, shift, scale,
            seed=train_config.seed,
        )  # fmt: skip

    def nll(p: FlowPolicy, o: torch.Tensor, a: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        return action_nll(p, o, a, rng, config.noise_std)

    policy, history = clone_by_likelihood(
        dataset, build, nll, save_flow_policy, {"flow_policy_config": config.to_dict()},
        train_config, out_dir, resume, progress, meta, "flow policy BC",
    )  # fmt: skip
    policy.trained_for = {"behaviour_cloning": True, **(meta or {})}
    return policy, history


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
    train_config = train_config or _default_train()

    def build(shift: np.ndarray, scale: np.ndarray) -> GenerativePolicy:
        return GenerativePolicy(
            dataset.obs_dim, dataset.nu, action_low, action_high, config, shift, scale
        )

    policy, history = clone_by_likelihood(
        dataset, build, pair_nll, save_policy, {"genpo_config": config.to_dict()},
        train_config, out_dir, resume, progress, meta, "GenPO BC",
    )  # fmt: skip
    policy.trained_for = {"behaviour_cloning": True, **(meta or {})}
    return policy, history
