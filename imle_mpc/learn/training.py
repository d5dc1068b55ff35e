"""The optimisation every learned model here shares, and its resumable checkpoints.

``TrainingRun`` is AdamW with a linear warm-up and cosine decay, gradient
clipping and an EMA of the weights (the EMA network is the one saved and used),
driven epoch by epoch under a tqdm bar. Its ``checkpoint`` writes the model file,
the resumable training state and the history atomically; ``TrainingRun.resume``
reads them back after checking that the saved run had the same settings and the
same data. The RS-IMLE generator (``imle_mpc.learn.imle.train``) and the flow
(``imle_mpc.learn.flow.train``) differ only in their loss and their model file.

Every random draw (initial weights, shuffling, latents, noise) comes from one
``torch.Generator`` seeded by ``TrainConfig.seed``: same seed, same weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from imle_mpc.core.io import write_json_atomic
from imle_mpc.learn.config import TrainConfig
from imle_mpc.learn.model_file import CheckpointError, load_training_state, save_training_state

TRAINING_STATE_FILE = "training_state.pt"
HISTORY_FILE = "history.json"
RESUMABLE_FIELDS = frozenset({"epochs", "device", "checkpoint_every"})
"""``TrainConfig`` fields a resumed run may change; every other one must match."""


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


@torch.no_grad()
def ema_update(
    ema_params: Sequence[torch.Tensor], params: Sequence[torch.Tensor], decay: float
) -> None:
    """ema <- decay * ema + (1 - decay) * params."""
    torch._foreach_lerp_(list(ema_params), list(params), 1.0 - decay)


class TrainingRun:
    """One run's optimiser, schedule, EMA, counters and RNG; resumable from its out_dir.

    Args:
        net: the network being trained (on ``config.device``).
        ema: a network of the same shape; it starts as a copy of ``net`` and is frozen.
        config: the optimisation settings.
        steps_per_epoch: optimiser steps an epoch takes (for the schedule's length).
        rng: the run's only source of randomness (already used to initialise ``net``).
        out_dir: where checkpoints go (None: nowhere).
        identity: what the run was trained on and with besides ``config`` (configs,
            normalisers, the number of pairs, as JSON-able values). It is saved with the
            training state, and a resumed run must have the same.
        history: the per-epoch record object; it needs ``to_dict()`` and ``from_dict``.
    """

    def __init__(
        self,
        net: nn.Module,
        ema: nn.Module,
        config: TrainConfig,
        steps_per_epoch: int,
        rng: torch.Generator,
        out_dir: Path | None,
        identity: Mapping[str, Any],
        history: Any,
    ) -> None:
        self.net = net
        self.ema = ema
        ema.load_state_dict(net.state_dict())
        ema.requires_grad_(False)
        self.config = config
        self.rng = rng
        self.out = out_dir
        self.identity = dict(identity)
        self.history = history
        self.optimizer = torch.optim.AdamW(
            net.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.total_steps = steps_per_epoch * config.epochs
        self.step = 0
        self.epoch = 0
        self._params = list(net.parameters())
        self._ema_params = list(ema.parameters())

    # ---- resuming ---------------------------------------------------------------------------
    def resume(self) -> None:
        """Continue from ``out_dir``'s training state (same settings and data, else refused)."""
        if self.out is None:
            raise ValueError("resume=True needs the out_dir of the run to resume.")
        where = self.out / TRAINING_STATE_FILE
        state = load_training_state(where)
        check_same_run(where, state, self.config, self.identity)
        self.net.load_state_dict(state["network"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng_state"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.history = type(self.history).from_dict(state["history"])

    # ---- the loop ---------------------------------------------------------------------------
    def epochs(self, desc: str, progress: bool) -> Iterator[int]:
        """The epochs still to run, under a tqdm bar (``set_postfix`` on ``self.bar``)."""
        self.bar = tqdm(
            range(self.epoch, self.config.epochs),
            desc=desc,
            unit="epoch",
            disable=not progress,
            initial=self.epoch,
            total=self.config.epochs,
        )
        self.net.train()
        try:
            for epoch in self.bar:
                yield epoch
                self.epoch = epoch + 1
        finally:
            self.bar.close()

    @property
    def lr(self) -> float:
        """The learning rate of the last step taken (the first one's before any)."""
        return learning_rate(max(self.step - 1, 0), self.config, self.total_steps)

    def optimise(self, loss: torch.Tensor) -> None:
        """One optimiser step on ``loss``: scheduled lr, clipped gradient, EMA update."""
        lr = learning_rate(self.step, self.config, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if math.isfinite(self.config.grad_clip):
            nn.utils.clip_grad_norm_(self._params, self.config.grad_clip)
        self.optimizer.step()
        self.step += 1
        ema_update(self._ema_params, self._params, ema_decay(self.step - 1, self.config))

    def checkpoint_due(self, epoch: int) -> bool:
        """Whether ``epoch`` (0-based, just finished) is saved: every few, and the last."""
        last = epoch + 1 == self.config.epochs
        return self.out is not None and ((epoch + 1) % self.config.checkpoint_every == 0 or last)

    def checkpoint(self, epoch: int, write_model: Callable[[Path], Path]) -> None:
        """Save the model (``write_model(out_dir)``), the training state and the history."""
        assert self.out is not None
        write_model(self.out)
        save_training_state(
            self.out / TRAINING_STATE_FILE,
            {
                "network": self.net.state_dict(),
                "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "rng_state": self.rng.get_state(),
                "step": self.step,
                "epoch": epoch + 1,
                "history": self.history.to_dict(),
                "train_config": self.config.to_dict(),
                **self.identity,
            },
        )
        write_json_atomic(self.out / HISTORY_FILE, self.history.to_dict())


def check_same_run(
    where: Path, state: Mapping[str, Any], config: TrainConfig, identity: Mapping[str, Any]
) -> None:
    """Raise CheckpointError if ``state`` was trained with other settings or on other data.

    ``epochs`` may be raised (the cosine schedule stretches), and ``device`` and
    ``checkpoint_every`` may change; every other ``TrainConfig`` field and every entry
    of ``identity`` must be what was saved. Entries whose key ends in ``_config`` are
    settings, the others describe the data.
    """
    try:
        theirs = TrainConfig.from_dict(state["train_config"]).to_dict()
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where} has invalid metadata: {exc!r}.") from exc
    mine = config.to_dict()
    diff = sorted(k for k in mine if k not in RESUMABLE_FIELDS and mine[k] != theirs[k])
    if diff:
        raise CheckpointError(
            f"cannot resume {where}: TrainConfig fields {diff} differ from the saved run "
            f"({ {k: theirs[k] for k in diff} }); only {sorted(RESUMABLE_FIELDS)} may change."
        )
    for key, value in identity.items():
        if state.get(key) == value:
            continue
        if key.endswith("_config"):
            raise CheckpointError(
                f"cannot resume {where}: it was trained with {key} {state.get(key)}, not {value}."
            )
        raise CheckpointError(
            f"cannot resume {where}: the dataset differs from the one it was trained on "
            f"({key} changed). Train from scratch (resume=False)."
        )
