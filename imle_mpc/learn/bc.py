"""Plain behaviour cloning: regress the action chunk with MSE (the unimodal baseline).

The SAME network as the IMLE generator (``imle_mpc.learn.imle`` MLP or U-Net), the
SAME training pairs (``build_training_pairs``) and normalisers, the same optimiser
recipe (AdamW, warm-up + cosine, gradient clipping); only the loss differs. The
latent is pinned to zero; ``planners.bc.MSEPolicy`` runs the result as a controller.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.imle import GeneratorConfig, IMLEGenerator, TrainConfig, build_network
from imle_mpc.learn.pairs import build_training_pairs, fit_normalizers
from imle_mpc.learn.training import learning_rate


def train_mse_regressor(
    dataset: DemoDataset,
    gen_config: GeneratorConfig | None = None,
    train_config: TrainConfig | None = None,
    progress: bool = False,
) -> tuple[IMLEGenerator, list[float]]:
    """Fit the chunk regressor to ``dataset`` with plain MSE.

    Run it with ``planners.bc.MSEPolicy(model, observation_fn, action_horizon)``.

    Args:
        dataset: demonstrations; one training pair per demonstrated step.
        gen_config: the network and chunk shape (default: ``GeneratorConfig()``, the
            small MLP, as the shipped IMLE generators use).
        train_config: of its fields only ``epochs``, ``batch_size``, ``lr``,
            ``weight_decay``, ``warmup_steps``, ``grad_clip``, ``seed`` and
            ``device`` are used (no candidates, no epsilon, no EMA). Default:
            200 epochs, batch 256, lr 1e-3, 50 warm-up steps.
        progress: show a tqdm bar on stderr.

    Returns:
        The regressor (a generator whose latent is always zero) and the mean
        training loss of each epoch (normalised units).
    """
    gen_config = GeneratorConfig() if gen_config is None else gen_config
    if train_config is None:
        train_config = TrainConfig(epochs=200, lr=1e-3, warmup_steps=50)
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
    return IMLEGenerator(net, gen_config, obs_norm, act_norm, device, train_config), losses
