"""A tiny two-route demonstration set and a small flow for the flow tests (helpers, not tests)."""

from __future__ import annotations

import numpy as np

from imle_mpc.learn.config import FlowConfig, TrainConfig
from imle_mpc.learn.demos import DemoDataset, Episode

T = 12
"""Steps per toy episode."""


def toy_action(sign: float, t: np.ndarray) -> np.ndarray:
    """The noise-free action of route ``sign`` (+1 up, -1 down) at steps t, Shape=(len(t), 2)."""
    ay = sign * (0.6 + 0.3 * np.sin(np.pi * t / T))
    return np.stack([np.ones_like(ay), ay], axis=1)


def make_toy_dataset(n_demos: int = 16, noise: float = 0.05, seed: int = 0) -> DemoDataset:
    """Demonstrations that pass an obstacle above (ay > 0) or below (ay < 0), half each.

    The observation is (progress t/T, lateral position py): at the start both routes
    are open, later py says which one is taken. The state is (t/T, py, 0, 0).
    """
    rng = np.random.default_rng(seed)
    episodes, modes = [], []
    t = np.arange(T, dtype=np.float64)
    for i in range(n_demos):
        sign = 1.0 if i % 2 == 0 else -1.0
        actions = toy_action(sign, t) + noise * rng.uniform(-1, 1, (T, 2))
        py = np.concatenate([[0.0], np.cumsum(0.1 * actions[:-1, 1])])
        obs = np.stack([t / T, py], axis=1)
        states = np.concatenate([obs, np.zeros((T, 2))], axis=1)
        episodes.append(Episode(obs, states, actions))
        modes.append("up" if sign > 0 else "down")
    meta = {
        "task": "flow-toy",
        "dt": 0.1,
        "observation": "progress-and-height",
        "action_low": [-2.0, -2.0],
        "action_high": [2.0, 2.0],
        "modes": modes,
    }
    return DemoDataset(tuple(episodes), meta)


def toy_observation(state: np.ndarray) -> np.ndarray:
    """The toy's observation of a state (t/T, py, ...): its first two entries."""
    return np.array(state[:2], dtype=np.float64)


SMALL_FLOW = FlowConfig(horizon=4, action_horizon=2, transforms=3, bins=6, hidden=(32, 32))
TOY_FLOW_TRAIN = TrainConfig(epochs=60, batch_size=64, lr=3e-3, warmup_steps=10, seed=0)
