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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from imle_mpc.core.io import write_json_atomic
from imle_mpc.learn.config import GeneratorConfig, TrainConfig
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.imle.checkpoint import (
    GENERATOR_FILE,
    TRAINING_STATE_FILE,
    CheckpointError,
    load_training_state,
    save_generator,
    save_training_state,
)
from imle_mpc.learn.imle.data import MinMaxNormalizer, build_training_pairs, fit_normalizers
from imle_mpc.learn.imle.generator import IMLEGenerator
from imle_mpc.learn.imle.loss import rs_imle_loss
from imle_mpc.learn.imle.networks import build_network
from imle_mpc.learn.imle.trained_for import TrainedFor

logger = logging.getLogger(__name__)

HISTORY_FILE = "history.json"


@dataclass
class TrainHistory:
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

    def to_dict(self) -> dict[str, list[Any]]:
        return {
            "loss": list(self.loss),
            "rejected_fraction": list(self.rejected_fraction),
            "skipped": list(self.skipped),
            "skipped_steps": list(self.skipped_steps),
            "epoch_seconds": list(self.epoch_seconds),
            "lr": list(self.lr),
        }

    @classmethod
    def from_dict(cls, data: dict[str, list[Any]]) -> TrainHistory:
        return cls(
            loss=[float(v) for v in data["loss"]],
            rejected_fraction=[float(v) for v in data["rejected_fraction"]],
            skipped=[int(v) for v in data["skipped"]],
            skipped_steps=[int(v) for v in data["skipped_steps"]],
            epoch_seconds=[float(v) for v in data["epoch_seconds"]],
            lr=[float(v) for v in data["lr"]],
        )


def learning_rate(step: int, config: TrainConfig, total_steps: int) -> float:
    """Linear warm-up to ``config.lr`` over ``warmup_steps``, then cosine decay to 0.

    Args:
        step: optimiser steps taken so far (0-based index of the next step).
        config: holds ``lr`` and ``warmup_steps``.
        total_steps: steps of the whole run.
    """
    warmup = config.warmup_steps
    if step < warmup:
        return config.lr * (step + 1) / warmup
    span = max(total_steps - warmup, 1)
    progress = min((step - warmup) / span, 1.0)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def ema_decay(step: int, config: TrainConfig) -> float:
    """EMA decay after ``step`` optimiser steps (0 at the first: the EMA starts as a copy)."""
    if step <= 0:
        return 0.0
    return min(config.ema_max_decay, 1.0 - (1.0 + step) ** -config.ema_power)


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
    out = None if out_dir is None else Path(out_dir)
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
    ema.load_state_dict(net.state_dict())
    ema.requires_grad_(False)
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay
    )
    steps_per_epoch = math.ceil(N / train_config.batch_size)
    total_steps = steps_per_epoch * train_config.epochs
    history = TrainHistory()
    step = 0
    start_epoch = 0

    if resume:
        assert out is not None
        state = load_training_state(out / TRAINING_STATE_FILE)
        _check_resumable(out, state, gen_config, train_config, obs_norm, act_norm, N)
        net.load_state_dict(state["network"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        gen.set_state(state["rng_state"])
        step = int(state["step"])
        start_epoch = int(state["epoch"])
        history = TrainHistory.from_dict(state["history"])
        logger.info("resuming %s at epoch %d (step %d)", out, start_epoch, step)

    m = train_config.num_candidates
    latent_dim = gen_config.latent_dim(dataset.nu)
    ema_params = list(ema.parameters())
    net_params = list(net.parameters())
    bar = tqdm(
        range(start_epoch, train_config.epochs),
        desc="RS-IMLE",
        unit="epoch",
        disable=not progress,
        initial=start_epoch,
        total=train_config.epochs,
    )
    net.train()
    for epoch in bar:
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
            lr = learning_rate(step, train_config, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            stats.loss.backward()
            if math.isfinite(train_config.grad_clip):
                nn.utils.clip_grad_norm_(net_params, train_config.grad_clip)
            optimizer.step()
            step += 1
            _ema_update(ema_params, net_params, ema_decay(step - 1, train_config))
        seconds = time.perf_counter() - t0
        history.loss.append(loss_sum / used if used else math.nan)
        history.rejected_fraction.append(rejected / candidates)
        history.skipped.append(skipped)
        history.skipped_steps.append(skipped_steps)
        history.epoch_seconds.append(seconds)
        history.lr.append(learning_rate(max(step - 1, 0), train_config, total_steps))
        bar.set_postfix(
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
        last = epoch + 1 == train_config.epochs
        if out is not None and ((epoch + 1) % train_config.checkpoint_every == 0 or last):
            generator = IMLEGenerator(
                ema, gen_config, obs_norm, act_norm, device, train_config, trained_for
            )
            save_generator(generator, out / GENERATOR_FILE)
            save_training_state(
                out / TRAINING_STATE_FILE,
                {
                    "network": net.state_dict(),
                    "ema": ema.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "rng_state": gen.get_state(),
                    "step": step,
                    "epoch": epoch + 1,
                    "history": history.to_dict(),
                    "generator_config": gen_config.to_dict(),
                    "train_config": train_config.to_dict(),
                    "obs_normalizer": obs_norm.to_dict(),
                    "action_normalizer": act_norm.to_dict(),
                    "num_pairs": N,
                },
            )
            write_json_atomic(out / HISTORY_FILE, history.to_dict())
        if callback is not None:
            callback(epoch, history)
    bar.close()
    generator = IMLEGenerator(
        ema, gen_config, obs_norm, act_norm, device, train_config, trained_for
    )
    return generator, history


@torch.no_grad()
def _ema_update(
    ema_params: Sequence[torch.Tensor], params: Sequence[torch.Tensor], decay: float
) -> None:
    """ema <- decay * ema + (1 - decay) * params."""
    torch._foreach_lerp_(list(ema_params), list(params), 1.0 - decay)


def _check_resumable(
    out: Path,
    state: dict[str, Any],
    gen_config: GeneratorConfig,
    train_config: TrainConfig,
    obs_norm: MinMaxNormalizer,
    act_norm: MinMaxNormalizer,
    num_pairs: int,
) -> None:
    """Raise CheckpointError if ``state`` was trained on other data or another setup."""
    where = out / TRAINING_STATE_FILE
    try:
        saved_gen = GeneratorConfig.from_dict(state["generator_config"])
        saved_train = TrainConfig.from_dict(state["train_config"])
        saved_obs = MinMaxNormalizer.from_dict(state["obs_normalizer"])
        saved_act = MinMaxNormalizer.from_dict(state["action_normalizer"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where} has invalid metadata: {exc!r}.") from exc
    if saved_gen != gen_config:
        raise CheckpointError(
            f"cannot resume {where}: it was trained with {saved_gen}, not {gen_config}."
        )
    # Training longer, on another device or with other checkpoint spacing is
    # allowed; every other setting must match.
    theirs = saved_train.to_dict()
    mine = train_config.to_dict()
    free = {"epochs", "device", "checkpoint_every"}
    diff = sorted(k for k in mine if k not in free and mine[k] != theirs[k])
    if diff:
        raise CheckpointError(
            f"cannot resume {where}: TrainConfig fields {diff} differ from the saved run "
            f"({ {k: theirs[k] for k in diff} }); only {sorted(free)} may change."
        )
    if state.get("num_pairs") != num_pairs or saved_obs != obs_norm or saved_act != act_norm:
        raise CheckpointError(
            f"cannot resume {where}: the dataset differs from the one it was trained on "
            "(number of steps or value ranges changed). Train from scratch (resume=False)."
        )
