"""Plain behaviour cloning: regress the action chunk with MSE (the unimodal baseline).

The control experiment for IMLE: the SAME network (``imle_mpc.imle`` MLP or
U-Net), the SAME training pairs (``build_training_pairs``) and normalisers, the
same optimiser recipe (AdamW, warm-up + cosine, gradient clipping), only the
loss differs. The latent is pinned to zero, so the network is a deterministic
regressor ``obs_history -> chunk`` trained with mean squared error. Where the
demonstrations split into modes (pass above or below an obstacle) the MSE
optimum is their average, which is exactly what a multi-modal task punishes.

``MSEPolicy`` runs the regressor as a controller, like ``planners.imle.IMLEPolicy``:
it predicts a chunk, plays its first ``action_horizon`` actions open loop, then
predicts again. No model, no costs, no sampling.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np

from imle_mpc.plan_result import PlanResult
from imle_mpc.validation import FloatArray, require_int_at_least
from planners.imle import ObservationFn, ObservationHistory

if TYPE_CHECKING:
    from imle_mpc.demos import DemoDataset
    from imle_mpc.imle import GeneratorConfig, IMLEGenerator, TrainConfig


class MSEPolicy:
    """Deterministic chunk regressor as a controller (implements the ``Planner`` protocol).

    Args:
        model: the trained regressor: an ``IMLEGenerator`` whose latent is
            always zero (see ``train_mse_policy``).
        observation_fn: state -> observation (as in training).
        action_horizon: steps executed from each chunk before predicting again.
    """

    def __init__(
        self, model: IMLEGenerator, observation_fn: ObservationFn, action_horizon: int = 8
    ) -> None:
        if not 1 <= action_horizon <= model.horizon:
            raise ValueError(
                f"MSEPolicy.action_horizon must be in [1, {model.horizon}], got {action_horizon}."
            )
        self.model = model
        self.observation_fn = observation_fn
        self.action_horizon = action_horizon
        self.history = ObservationHistory(model.obs_horizon, model.obs_dim)
        self._zero = np.zeros((1, model.latent_dim), dtype=np.float32)
        self.reset()

    @property
    def horizon(self) -> int:
        return self.model.horizon

    def reset(self, seed: int | None = None) -> None:
        """Forget the history and the current chunk (``seed`` is unused: nothing is random)."""
        self.history.clear()
        self._chunk: FloatArray | None = None
        self._executed = 0

    def predict(self, obs_history: FloatArray) -> FloatArray:
        """The chunk for one observation history Shape=(obs_horizon, obs_dim): Shape=(H, nu)."""
        return self.model.decode(obs_history, self._zero)[0]

    def plan(self, state: FloatArray) -> PlanResult:
        t0 = time.perf_counter()
        self.history.push(np.asarray(self.observation_fn(state), dtype=np.float64))
        if self._chunk is None or self._executed >= self.action_horizon:
            self._chunk = self.predict(self.history.array)
            self._executed = 0
        remaining = self._chunk[self._executed :]
        # Pad with the last action so every plan has the full horizon.
        actions = np.concatenate([remaining, np.repeat(remaining[-1:], self._executed, axis=0)])
        self._executed += 1
        elapsed = time.perf_counter() - t0
        return PlanResult(
            actions=actions, cost=float("nan"), term_costs={}, num_feasible=1,
            best_index=0, predicted_states=np.empty((0, 0)), timings={"total": elapsed},
        )  # fmt: skip


def train_mse_policy(
    dataset: DemoDataset,
    observation_fn: ObservationFn,
    gen_config: GeneratorConfig | None = None,
    train_config: TrainConfig | None = None,
    action_horizon: int | None = None,
    progress: bool = False,
) -> tuple[MSEPolicy, list[float]]:
    """Fit the chunk regressor to ``dataset`` with plain MSE and wrap it in an ``MSEPolicy``.

    Args:
        dataset: demonstrations; one training pair per demonstrated step.
        observation_fn: the observation function the dataset was recorded with.
        gen_config: the network and chunk shape (default: ``GeneratorConfig()``, the
            small MLP, as the shipped IMLE generators use).
        train_config: of its fields only ``epochs``, ``batch_size``, ``lr``,
            ``weight_decay``, ``warmup_steps``, ``grad_clip``, ``seed`` and
            ``device`` are used (no candidates, no epsilon, no EMA). Default:
            200 epochs, batch 256, lr 1e-3, 50 warm-up steps.
        action_horizon: steps executed per chunk (default ``gen_config.action_horizon``).
        progress: show a tqdm bar on stderr.

    Returns:
        The policy and the mean training loss of each epoch (normalised units).
    """
    import torch
    from tqdm.auto import tqdm

    from imle_mpc.imle import GeneratorConfig, IMLEGenerator, TrainConfig, build_network
    from imle_mpc.imle.data import build_training_pairs, fit_normalizers
    from imle_mpc.imle.train import learning_rate

    gen_config = GeneratorConfig() if gen_config is None else gen_config
    if train_config is None:
        train_config = TrainConfig(epochs=200, lr=1e-3, warmup_steps=50)
    horizon_exec = gen_config.action_horizon if action_horizon is None else action_horizon
    require_int_at_least("train_mse_policy", "action_horizon", horizon_exec, 1)
    device = torch.device(train_config.device)

    pairs = build_training_pairs(dataset, gen_config.obs_horizon, gen_config.horizon)
    obs_norm, act_norm = fit_normalizers(dataset)
    n = len(pairs)
    obs_all = torch.from_numpy(obs_norm.normalize(pairs.obs).reshape(n, -1).astype(np.float32))
    act_all = torch.from_numpy(act_norm.normalize(pairs.actions).reshape(n, -1).astype(np.float32))
    obs_all, act_all = obs_all.to(device), act_all.to(device)

    gen = torch.Generator().manual_seed(train_config.seed)
    net = build_network(gen_config, dataset.obs_dim, dataset.nu, gen).to(device)
    latent_dim = gen_config.latent_dim(dataset.nu)
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=train_config.lr, weight_decay=train_config.weight_decay
    )
    batch = train_config.batch_size
    total_steps = math.ceil(n / batch) * train_config.epochs
    losses: list[float] = []
    step = 0
    net.train()
    bar = tqdm(range(train_config.epochs), desc="MSE BC", unit="epoch", disable=not progress)
    for _ in bar:
        order = torch.randperm(n, generator=gen).to(device)
        loss_sum = 0.0
        for start in range(0, n, batch):
            idx = order[start : start + batch]
            z = torch.zeros(int(idx.shape[0]), latent_dim, device=device)
            pred = net(z, obs_all[idx]).reshape(idx.shape[0], -1)
            loss = torch.mean((pred - act_all[idx]) ** 2)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, train_config, total_steps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if math.isfinite(train_config.grad_clip):
                torch.nn.utils.clip_grad_norm_(net.parameters(), train_config.grad_clip)
            optimizer.step()
            step += 1
            loss_sum += float(loss.detach()) * int(idx.shape[0])
        losses.append(loss_sum / n)
        bar.set_postfix(loss=f"{losses[-1]:.5f}")
    bar.close()
    model = IMLEGenerator(net, gen_config, obs_norm, act_norm, device, train_config)
    return MSEPolicy(model, observation_fn, horizon_exec), losses


__all__ = ["MSEPolicy", "train_mse_policy"]
