"""The box the offline agent acts in, and how its points map to and from real actions.

Both spaces are [-1, 1]^d, so the same agent (a tanh actor) runs in either:

* ``RawBox``: the actuator box, scaled affinely; the actor can emit any action in it,
  those no demonstration took included;
* ``FlowLatent``: the latent box of a ``ChunkFlow`` of one action (``horizon = 1``),
  conditioned on the observation. The flow is a bijection between the box and the
  demonstrations' action range, with the latent uniform under the data, so every point
  the actor emits decodes in support (``from_box``) and a dataset action has an exact
  latent (``to_box``, the flow's inverse).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.validation import FloatArray
from imle_mpc.learn.flow.chunk_flow import ChunkFlow


class ActionSpace(Protocol):
    """A map between real actions Shape=(N, nu) and points of the box Shape=(N, dim)."""

    name: str

    @property
    def dim(self) -> int: ...

    def to_box(self, obs: ArrayLike, actions: ArrayLike) -> FloatArray:
        """Box points of ``actions`` Shape=(N, nu) taken at ``obs`` Shape=(N, obs_dim)."""
        ...

    def from_box(self, obs: ArrayLike, u: ArrayLike) -> FloatArray:
        """Real actions Shape=(N, nu) of box points ``u`` Shape=(N, dim) at ``obs``."""
        ...


class RawBox:
    """The actuator box ``[low, high]`` as [-1, 1]^nu (affine)."""

    name = "raw"

    def __init__(self, low: ArrayLike, high: ArrayLike) -> None:
        self.low = np.asarray(low, dtype=np.float64).ravel()
        self.high = np.asarray(high, dtype=np.float64).ravel()
        if self.low.shape != self.high.shape or np.any(self.high <= self.low):
            raise ValueError(f"RawBox needs low < high of one shape, got {self.low}, {self.high}.")
        self._center = 0.5 * (self.high + self.low)
        self._half = 0.5 * (self.high - self.low)

    @property
    def dim(self) -> int:
        return int(self.low.size)

    def to_box(self, obs: ArrayLike, actions: ArrayLike) -> FloatArray:
        u = (np.asarray(actions, dtype=np.float64) - self._center) / self._half
        return np.clip(u, -1.0, 1.0)

    def from_box(self, obs: ArrayLike, u: ArrayLike) -> FloatArray:
        return np.clip(np.asarray(u, dtype=np.float64), -1.0, 1.0) * self._half + self._center


class FlowLatent:
    """A one-action ``ChunkFlow``'s latent box, conditioned on the observation.

    Raises:
        ValueError: the flow's chunks are longer than one action or it conditions on
            more than one observation.
    """

    name = "flow_latent"

    def __init__(self, flow: ChunkFlow) -> None:
        if flow.horizon != 1 or flow.obs_horizon != 1:
            raise ValueError(
                f"FlowLatent needs a flow over single actions given one observation "
                f"(FlowConfig(horizon=1, action_horizon=1, obs_horizon=1)); this one has "
                f"horizon={flow.horizon}, obs_horizon={flow.obs_horizon}."
            )
        self.flow = flow

    @property
    def dim(self) -> int:
        return int(self.flow.latent_dim)

    def to_box(self, obs: ArrayLike, actions: ArrayLike) -> FloatArray:
        o = np.asarray(obs, dtype=np.float64)
        a = np.asarray(actions, dtype=np.float64)
        out = np.empty((a.shape[0], self.dim))
        for s in range(0, a.shape[0], 4096):  # bounded torch batches
            out[s : s + 4096] = self.flow.encode(o[s : s + 4096, None, :], a[s : s + 4096, None, :])
        return out

    def from_box(self, obs: ArrayLike, u: ArrayLike) -> FloatArray:
        o = np.asarray(obs, dtype=np.float64)
        z = np.clip(np.asarray(u, dtype=np.float64), -1.0, 1.0)
        chunks = self.flow.decode_batch(o[:, None, :], z[:, None, :])  # (N, 1, 1, nu)
        return np.ascontiguousarray(chunks[:, 0, 0, :])
