"""An offline RL dataset: transitions with their actions already in the agent's box.

NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imle_mpc.core.validation import FloatArray


@dataclass(frozen=True)
class Transitions:
    """``(s, u, r, s', done)`` rows; ``u`` is the action in the agent's box [-1, 1]^d.

    Attributes:
        obs: Shape=(N, obs_dim).
        actions: Shape=(N, d), in [-1, 1].
        rewards: Shape=(N,).
        next_obs: Shape=(N, obs_dim).
        dones: Shape=(N,), 1 where the episode terminated (no bootstrap from ``next_obs``);
            0 where it went on or was only cut off by a time limit.
    """

    obs: FloatArray
    actions: FloatArray
    rewards: FloatArray
    next_obs: FloatArray
    dones: FloatArray

    def __post_init__(self) -> None:
        n = self.obs.shape[0]
        shapes = {
            k: getattr(self, k).shape for k in ("obs", "actions", "rewards", "next_obs", "dones")
        }
        ok = (
            n > 0
            and self.obs.ndim == 2
            and self.next_obs.shape == self.obs.shape
            and self.actions.ndim == 2
            and self.actions.shape[0] == n
            and self.rewards.shape == (n,)
            and self.dones.shape == (n,)
        )
        if not ok:
            raise ValueError(
                f"Transitions need obs and next_obs Shape=(N, obs_dim), actions Shape=(N, d), "
                f"rewards and dones Shape=(N,) with N >= 1; got {shapes}."
            )
        for name in ("obs", "actions", "rewards", "next_obs", "dones"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"Transitions.{name} contains NaN/inf.")
        if np.any(np.abs(self.actions) > 1.0 + 1e-6):
            raise ValueError(
                "Transitions.actions must lie in the box [-1, 1]^d (map them with the agent's "
                "action space: RawBox or FlowLatent .to_box)."
            )

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(self.obs.shape[1])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])
