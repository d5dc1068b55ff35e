"""Maximum-likelihood training of the chunk flow on demonstrations, and its calibration.

The demonstrations' episodes are split first: ``FlowConfig.held_out_fraction`` of
them (per route, where the data names routes) are never trained on; the rest give
one training pair per step (``build_training_pairs``, as for the generator). The
loss is the negative log-density of the normalised training chunks, each with a
little noise (``FlowConfig.noise_std``, reflected at the faces of the box). The
optimiser, schedule, EMA and the resumable checkpoints are the shared
``TrainingRun``'s. The EMA flow's log-densities of the held-out chunks are its
``DensityCalibration``, saved with it.

The normalisation, and so the flow's support (the action range), is fitted to all
episodes, held-out ones included: a held-out chunk outside the training range would
have density 0 and say nothing about the threshold.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from imle_mpc.learn.config import FlowConfig, TrainConfig
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.flow.calibration import DensityCalibration
from imle_mpc.learn.flow.checkpoint import FLOW_FILE, save_flow
from imle_mpc.learn.flow.chunk_flow import ChunkFlow
from imle_mpc.learn.flow.network import build_box_flow
from imle_mpc.learn.pairs import TrainingPairs, build_training_pairs, fit_normalizers
from imle_mpc.learn.records import JsonRecord
from imle_mpc.learn.trained_for import TrainedFor
from imle_mpc.learn.training import TrainingRun


@dataclass
class FlowHistory(JsonRecord):
    """Per-epoch record of flow training (resumed runs included).

    Attributes:
        loss: mean negative log-density of the (noisy) training chunks, normalised units.
        held_out_nll: mean negative log-density of the held-out chunks under the EMA
            flow, normalised units (what the calibration is made of).
        epoch_seconds: wall time of the epoch.
        lr: learning rate at the end of the epoch.
    """

    loss: list[float] = field(default_factory=list)
    held_out_nll: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        """Number of finished epochs."""
        return len(self.loss)


def held_out_episodes(dataset: DemoDataset, fraction: float, seed: int) -> tuple[int, ...]:
    """The episodes kept for calibration: ``fraction`` of each route's, at least one in all.

    Routes are ``dataset.meta["modes"]`` (one label per episode) where present; every
    route with two episodes or more gives at least one. The choice within a route is
    a seeded permutation.

    Raises:
        ValueError: fewer than two episodes (nothing would be left to train on).
    """
    E = len(dataset.episodes)
    if E < 2:
        raise ValueError(
            f"the flow needs at least 2 demonstration episodes (one to train on, one to "
            f"calibrate the density threshold on), got {E}."
        )
    modes = dataset.meta.get("modes")
    labels = list(modes) if isinstance(modes, list) and len(modes) == E else ["all"] * E
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for label in sorted(set(labels)):
        members = [i for i in range(E) if labels[i] == label]
        if len(members) < 2:
            continue
        take = max(1, round(fraction * len(members)))
        held += [members[i] for i in rng.permutation(len(members))[:take]]
    if not held:  # every route has a single episode
        held = [int(rng.integers(E))]
    if len(held) >= E:
        held = held[: E - 1]
    return tuple(sorted(held))


def _subset(dataset: DemoDataset, keep: list[int]) -> DemoDataset:
    return DemoDataset(tuple(dataset.episodes[i] for i in keep), dataset.meta)


def train_flow(
    dataset: DemoDataset,
    flow_config: FlowConfig | None = None,
    train_config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    callback: Callable[[int, FlowHistory], None] | None = None,
) -> tuple[ChunkFlow, FlowHistory]:
    """Fit a conditional flow to ``dataset``'s chunks and calibrate it on held-out episodes.

    Args:
        dataset: demonstrations (at least 2 episodes).
        flow_config: the flow's shape, training noise and held-out share.
        train_config: optimisation settings (``num_candidates`` and ``epsilon`` are
            RS-IMLE's, unused here). Default: ``TrainConfig()``.
        out_dir: where to write ``flow.safetensors`` (EMA weights and calibration),
            ``training_state.pt`` and ``history.json`` every ``checkpoint_every`` epochs
            and at the end; None writes nothing.
        resume: continue from ``out_dir/training_state.pt`` (same dataset and configs;
            ``epochs``, ``device`` and ``checkpoint_every`` may change).
        progress: show a tqdm bar (loss, held-out NLL, epoch time).
        callback: ``callback(epoch, history)`` after each epoch (and its checkpoint).

    Returns:
        The calibrated EMA flow and the per-epoch history.
    """
    flow_config = FlowConfig() if flow_config is None else flow_config
    train_config = TrainConfig() if train_config is None else train_config
    if resume and out_dir is None:
        raise ValueError("train_flow: resume=True needs the out_dir of the run to resume.")
    device = torch.device(train_config.device)
    held = held_out_episodes(dataset, flow_config.held_out_fraction, train_config.seed)
    kept = [i for i in range(len(dataset.episodes)) if i not in held]
    obs_norm, act_norm = fit_normalizers(dataset)
    trained_for = TrainedFor.from_meta(dataset.meta)
    horizons = (flow_config.obs_horizon, flow_config.horizon)
    train_pairs = build_training_pairs(_subset(dataset, kept), *horizons)
    held_pairs = build_training_pairs(_subset(dataset, list(held)), *horizons)

    def tensors(pairs: TrainingPairs) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(pairs)
        obs = obs_norm.normalize(pairs.obs).reshape(n, -1).astype(np.float32)
        act = np.clip(act_norm.normalize(pairs.actions).reshape(n, -1), -1.0, 1.0)
        return torch.from_numpy(obs).to(device), torch.from_numpy(act.astype(np.float32)).to(device)

    obs_all, act_all = tensors(train_pairs)
    obs_held, act_held = tensors(held_pairs)
    N = len(train_pairs)

    gen = torch.Generator().manual_seed(train_config.seed)
    net = build_box_flow(flow_config, dataset.obs_dim, dataset.nu, gen).to(device)
    ema = build_box_flow(flow_config, dataset.obs_dim, dataset.nu).to(device)
    run = TrainingRun(
        net,
        ema,
        train_config,
        math.ceil(N / train_config.batch_size),
        gen,
        None if out_dir is None else Path(out_dir),
        {
            "flow_config": flow_config.to_dict(),
            "obs_normalizer": obs_norm.to_dict(),
            "action_normalizer": act_norm.to_dict(),
            "num_pairs": N,
            "held_out_episodes": list(held),
        },
        FlowHistory(),
    )
    if resume:
        run.resume()

    def calibrated() -> ChunkFlow:
        flow = ChunkFlow(
            ema, flow_config, obs_norm, act_norm, None, device, train_config, trained_for
        )
        obs_hist = held_pairs.obs
        calibration = DensityCalibration.of(flow.log_prob(obs_hist, held_pairs.actions), len(held))
        return flow.with_calibration(calibration)

    noise = flow_config.noise_std
    for epoch in run.epochs("flow", progress):
        t0 = time.perf_counter()
        loss_sum = 0.0
        order = torch.randperm(N, generator=gen).to(device)
        for start in range(0, N, train_config.batch_size):
            idx = order[start : start + train_config.batch_size]
            x = act_all[idx]
            if noise > 0:
                x = _reflect(x + noise * torch.randn(x.shape, generator=gen).to(device))
            loss = -net.log_prob(x, obs_all[idx]).mean()
            run.optimise(loss)
            loss_sum += float(loss.detach()) * int(idx.shape[0])
        with torch.no_grad():
            held_nll = float(-ema.log_prob(act_held, obs_held).mean())
        history: FlowHistory = run.history
        history.loss.append(loss_sum / N)
        history.held_out_nll.append(held_nll)
        history.epoch_seconds.append(time.perf_counter() - t0)
        history.lr.append(run.lr)
        run.bar.set_postfix(
            nll=f"{history.loss[-1]:.2f}",
            held=f"{held_nll:.2f}",
            s=f"{history.epoch_seconds[-1]:.2f}",
        )
        if run.checkpoint_due(epoch):
            run.checkpoint(epoch, lambda out: save_flow(calibrated(), out / FLOW_FILE))
        if callback is not None:
            callback(epoch, history)
    return calibrated(), run.history


def _reflect(x: torch.Tensor) -> torch.Tensor:
    """Fold values that left [-1, 1] back in at the face they crossed (then clamp)."""
    x = torch.where(x > 1.0, 2.0 - x, x)
    x = torch.where(x < -1.0, -2.0 - x, x)
    return x.clamp(-1.0, 1.0)
