"""A tiny bimodal demonstration set for the IMLE tests (helpers, not tests)."""

from __future__ import annotations

import numpy as np

from imle_mpc.learn.demos import DemoDataset, Episode
from imle_mpc.learn.imle import GeneratorConfig, TrainConfig

H = 8
UP = np.array([1.0, 1.0])  # (vx, vy) of the "up" mode: forward and to the left
DOWN = np.array([1.0, -1.0])  # forward and to the right


def make_bimodal_dataset(
    n_demos: int = 20, n_up_only: int = 6, length: int = 4, noise: float = 0.05, seed: int = 0
) -> DemoDataset:
    """Demonstrations of passing an obstacle on either side.

    Context observation 0: half the demonstrations go "up" (velocity (1, +1),
    the position ramps up) and half go "down" (velocity (1, -1)), each with its
    own speeds within +-``noise``. Context observation 1: ``n_up_only``
    demonstrations, all "up" (a unimodal state, to check the conditioning).
    """
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(n_demos + n_up_only):
        context = 0.0 if i < n_demos else 1.0
        sign = -1.0 if (i < n_demos and i % 2) else 1.0
        vx = 1.0 + noise * rng.uniform(-1, 1)
        vy = sign * (1.0 + noise * rng.uniform(-1, 1))
        actions = np.tile([vx, vy], (length, 1))
        obs = np.full((length, 1), context)
        states = np.cumsum(actions, axis=0)
        episodes.append(Episode(obs, states, actions))
    return DemoDataset(tuple(episodes), {"task": "bimodal-toy"})


def mode_distances(chunks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RMS distance of each chunk Shape=(n, H, 2) to the nominal up and down chunks."""
    d_up = np.sqrt(((chunks - UP) ** 2).mean(axis=(1, 2)))
    d_down = np.sqrt(((chunks - DOWN) ** 2).mean(axis=(1, 2)))
    return d_up, d_down


SMALL_GEN = GeneratorConfig(horizon=H, action_horizon=4, mlp_hidden=(64, 64))
TOY_TRAIN = TrainConfig(epochs=400, batch_size=128, lr=1e-2, warmup_steps=10, seed=0)
