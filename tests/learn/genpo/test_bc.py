"""Behaviour cloning of the generative policy on the shipped navigation demonstrations."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from imle_mpc.learn.config import TrainConfig
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.genpo import GenPOConfig, load_policy
from imle_mpc.learn.genpo.bc import demo_pairs, pair_nll, train_genpo_bc
from imle_mpc.tasks.registry import make_task


def test_a_few_bc_updates_lower_the_nll_and_the_file_holds_the_policy(tmp_path: Path) -> None:
    task = make_task("nav_two_obstacles")
    demos = task.load_demonstrations()
    small = DemoDataset(demos.episodes[:8], demos.meta)
    low, high = task.dynamics.action_low, task.dynamics.action_high
    config = GenPOConfig(hidden=(32,))
    train = TrainConfig(epochs=6, batch_size=128, lr=3e-3, warmup_steps=5, checkpoint_every=3)
    policy, history = train_genpo_bc(small, low, high, config, train, out_dir=tmp_path)
    assert policy.trained_for["behaviour_cloning"] is True
    assert len(history.nll) == 6
    assert history.nll[-1] < history.nll[0] - 1.0
    # the saved (EMA) policy is the returned one, and it fits the data better than
    # an untrained policy of the same shape
    loaded = load_policy(tmp_path)
    obs, act = (torch.as_tensor(v, dtype=torch.float32) for v in demo_pairs(small))
    rng = torch.Generator().manual_seed(0)
    untrained, _ = train_genpo_bc(small, low, high, config, replace(train, epochs=1, lr=1e-9))
    with torch.no_grad():
        nll = float(pair_nll(loaded, obs, act, rng))
        base = float(pair_nll(untrained, obs, act, torch.Generator().manual_seed(0)))
    assert nll < base - 1.0
    assert loaded.trained_for["behaviour_cloning"] is True
    # resuming a finished run with more epochs continues from its epoch count
    _, more = train_genpo_bc(
        small, low, high, config, replace(train, epochs=7), out_dir=tmp_path, resume=True
    )
    assert len(more.nll) == 7 and more.nll[:6] == history.nll
