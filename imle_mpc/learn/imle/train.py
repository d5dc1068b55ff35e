"""Conditional RS-IMLE training of a chunk generator from demonstrations.

Per data point ``(o_i, a_i)``: draw m latents, generate m candidate chunks
``G(z_ij, o_i)``, reject the candidates within epsilon of ``a_i`` (L2 on the
normalised, flattened chunk), and pull the nearest remaining one onto ``a_i``.
A point with no remaining candidate is skipped and counted. AdamW with linear
warm-up and cosine decay, gradient clipping, and an EMA of the weights; the EMA
network is the one saved and sampled from.

Every random draw (initial weights, shuffling, latents) comes from one
``torch.Generator`` seeded by ``TrainConfig.seed``: same seed, same weights.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from imle_mpc.learn.config import GeneratorConfig, TrainConfig
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.imle.checkpoint import GENERATOR_FILE, save_generator
from imle_mpc.learn.imle.generator import IMLEGenerator
from imle_mpc.learn.imle.loss import rs_imle_loss
from imle_mpc.learn.imle.networks import build_network
from imle_mpc.learn.pairs import build_training_pairs, fit_normalizers
from imle_mpc.learn.records import JsonRecord
from imle_mpc.learn.trained_for import TrainedFor
from imle_mpc.learn.training import (
    HISTORY_FILE,
    TrainingRun,
    ema_decay,
    ema_update,
    learning_rate,
)

logger = logging.getLogger(__name__)

__all__ = [
    "HISTORY_FILE",
    "TrainHistory",
    "ema_decay",
    "ema_update",
    "learning_rate",
    "train_generator",
]


@dataclass
class TrainHistory(JsonRecord):
    """Per-epoch training record (one entry per finished epoch, resumed runs included).

    Attributes:
        loss: mean nearest-candidate L2 distance over the data points that were
            used (skipped points are not averaged in); NaN if none was used.
        rejected_fraction: share of candidates discarded for lying within epsilon.
        skipped: data points whose every candidate was within epsilon.
        skipped_steps: batches in which every point was skipped (no optimiser step).
        epoch_seconds: wall time of the epoch.
        lr: learning rate at the end of the epoch.
    """

    loss: list[float] = field(default_factory=list)
    rejected_fraction: list[float] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    skipped_steps: list[int] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        """Number of finished epochs."""
        return len(self.loss)


def train_generator(
    dataset: DemoDataset,
    gen_config: GeneratorConfig | None = None,
    train_config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    callback: Callable[[int, TrainHistory], None] | None = None,
) -> tuple[IMLEGenerator, TrainHistory]:
    """Train a chunk generator with conditional RS-IMLE.

    Args:
        dataset: demonstrations; one training pair per demonstrated step.
        gen_config: the generator's shape and network (default: small MLP).
        train_config: optimisation settings (default: IMLE Policy's).
        out_dir: where to write ``generator.safetensors`` (EMA weights),
            ``training_state.pt`` and ``history.json`` every
            ``checkpoint_every`` epochs and at the end; None writes nothing.
        resume: continue from ``out_dir/training_state.pt`` (same dataset and
            configs; ``epochs`` may be raised to train longer, which stretches
            the cosine schedule, and ``device``/``checkpoint_every`` may change).
        progress: show a tqdm bar (loss, rejected fraction, skipped, epoch time).
        callback: called as ``callback(epoch, history)`` after each epoch
            (and its checkpoint); an exception raised there stops training.

    Returns:
        The EMA generator and the per-epoch history.
    """
    gen_config = GeneratorConfig() if gen_config is None else gen_config
    train_config = TrainConfig() if train_config is None else train_config
    if resume and out_dir is None:
        raise ValueError("train_generator: resume=True needs the out_dir of the run to resume.")
    device = torch.device(train_config.device)

    pairs = build_training_pairs(dataset, gen_config.obs_horizon, gen_config.horizon)
    obs_norm, act_norm = fit_normalizers(dataset)
    trained_for = TrainedFor.from_meta(dataset.meta)
    N = len(pairs)
    obs_all = torch.from_numpy(obs_norm.normalize(pairs.obs).reshape(N, -1).astype(np.float32)).to(
        device
    )
    act_all = torch.from_numpy(
        act_norm.normalize(pairs.actions).reshape(N, -1).astype(np.float32)
    ).to(device)

    gen = torch.Generator().manual_seed(train_config.seed)
    net = build_network(gen_config, dataset.obs_dim, dataset.nu, gen).to(device)
    ema = build_network(gen_config, dataset.obs_dim, dataset.nu).to(device)
    run = TrainingRun(
        net,
        ema,
        train_config,
        math.ceil(N / train_config.batch_size),
        gen,
        None if out_dir is None else Path(out_dir),
        {
            "generator_config": gen_config.to_dict(),
            "obs_normalizer": obs_norm.to_dict(),
            "action_normalizer": act_norm.to_dict(),
            "num_pairs": N,
        },
        TrainHistory(),
    )
    if resume:
        run.resume()
        logger.info("resuming %s at epoch %d (step %d)", out_dir, run.epoch, run.step)

    def generator() -> IMLEGenerator:
        return IMLEGenerator(ema, gen_config, obs_norm, act_norm, device, train_config, trained_for)

    m = train_config.num_candidates
    latent_dim = gen_config.latent_dim(dataset.nu)
    for epoch in run.epochs("RS-IMLE", progress):
        t0 = time.perf_counter()
        loss_sum, used, skipped, rejected, candidates, skipped_steps = 0.0, 0, 0, 0, 0, 0
        order = torch.randperm(N, generator=gen).to(device)
        for start in range(0, N, train_config.batch_size):
            idx = order[start : start + train_config.batch_size]
            B = int(idx.shape[0])
            z = torch.randn(B * m, latent_dim, generator=gen).to(device)
            cond = obs_all[idx].repeat_interleave(m, dim=0)
            cand = net(z, cond).reshape(B, m, latent_dim)
            stats = rs_imle_loss(cand, act_all[idx], train_config.epsilon)
            loss_sum += stats.loss_sum
            used += stats.num_used
            skipped += stats.num_skipped
            rejected += stats.num_rejected
            candidates += stats.num_candidates
            if stats.num_used == 0:
                skipped_steps += 1  # nothing to learn from: no step, no schedule/EMA advance
                continue
            run.optimise(stats.loss)
        seconds = time.perf_counter() - t0
        history: TrainHistory = run.history
        history.loss.append(loss_sum / used if used else math.nan)
        history.rejected_fraction.append(rejected / candidates)
        history.skipped.append(skipped)
        history.skipped_steps.append(skipped_steps)
        history.epoch_seconds.append(seconds)
        history.lr.append(run.lr)
        run.bar.set_postfix(
            loss=f"{history.loss[-1]:.4f}",
            rej=f"{history.rejected_fraction[-1]:.3f}",
            skip=skipped,
            s=f"{seconds:.2f}",
        )
        if skipped:
            logger.info(
                "epoch %d: %d of %d data points skipped (all %d candidates within epsilon=%g)",
                epoch,
                skipped,
                N,
                m,
                train_config.epsilon,
            )
        logger.debug(
            "epoch %d loss %.5f rejected %.4f",
            epoch,
            history.loss[-1],
            history.rejected_fraction[-1],
        )
        if run.checkpoint_due(epoch):
            run.checkpoint(epoch, lambda out: save_generator(generator(), out / GENERATOR_FILE))
        if callback is not None:
            callback(epoch, history)
    return generator(), run.history
