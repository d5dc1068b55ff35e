"""``ChunkFlow``: a conditional normalizing flow over action chunks, as proposals and density.

One trained flow is three things the planners use:

* a proposal sampler (``ChunkGenerator``): latents uniform on the box [-1, 1]^D
  (D = H * nu) decode to chunks in one batched pass, as the IMLE generator's do;
* a bounded latent space (``BoundedLatent``): every latent in the box decodes to a
  chunk inside the demonstrations' action range, so a latent search (CEM, MPPI)
  is in support by construction;
* a density (``ChunkDensity``): ``log_prob(obs_history, U)`` is the exact
  log-density of each chunk under the flow (raw action units), -inf outside the
  demonstrations' action range; ``threshold(q)`` is the ``q``-quantile of the
  held-out demonstrations' log-densities (``DensityCalibration``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from imle_mpc.core.protocols import BoundedLatent, ChunkDensity
from imle_mpc.core.validation import FloatArray
from imle_mpc.learn.chunk_model import ChunkModel
from imle_mpc.learn.config import FlowConfig, TrainConfig
from imle_mpc.learn.flow.calibration import DensityCalibration
from imle_mpc.learn.flow.network import BoxFlow, build_box_flow
from imle_mpc.learn.pairs import MinMaxNormalizer
from imle_mpc.learn.trained_for import TrainedFor

SUPPORT_TOLERANCE = 1e-9
"""How far (normalised units) a chunk may lie outside the data's range by rounding and
still count as inside; the data's own extremes normalise to +-1 up to rounding."""


class ChunkFlow(ChunkModel, BoundedLatent, ChunkDensity):
    """A flow ``x = f^-1(z; obs_history)`` between chunks and the latent box, exact both ways.

    Args:
        network: the (EMA) ``BoxFlow``.
        config: the flow's shape.
        obs_normalizer: normalisation of one observation, dim = obs_dim.
        action_normalizer: the demonstrations' action range, dim = nu: the box the
            flow's chunks fill (its normalised form is [-1, 1]).
        calibration: the held-out demonstrations' log-densities (None: not calibrated,
            ``threshold`` raises).
        device: torch device to run on.
        train_config: how the network was trained (kept for the checkpoint).
        trained_for: the model the demonstrations came from.
    """

    def __init__(
        self,
        network: BoxFlow,
        config: FlowConfig,
        obs_normalizer: MinMaxNormalizer,
        action_normalizer: MinMaxNormalizer,
        calibration: DensityCalibration | None = None,
        device: str | torch.device = "cpu",
        train_config: TrainConfig | None = None,
        trained_for: TrainedFor | None = None,
    ) -> None:
        super().__init__(
            network, config, obs_normalizer, action_normalizer, device, train_config, trained_for
        )
        self._flow: BoxFlow = network
        self._flow_config = config
        self._calibration = calibration
        # log p(U) = log p(x) + log |dx/dU|, with x = (U - center) / half_range per entry.
        self._log_scale = -float(config.horizon * np.sum(np.log(action_normalizer.half_range)))

    @property
    def config(self) -> FlowConfig:
        return self._flow_config

    @property
    def latent_bound(self) -> float:
        """1: the latent box is [-1, 1]^latent_dim, the uniform prior's support."""
        return 1.0

    @property
    def calibration(self) -> DensityCalibration | None:
        """The held-out log-densities the threshold is a quantile of (None: not calibrated)."""
        return self._calibration

    def with_calibration(self, calibration: DensityCalibration) -> ChunkFlow:
        """This flow (the same network) with another calibration."""
        return ChunkFlow(
            self._flow, self._flow_config, self._obs_norm, self._act_norm, calibration,
            self._device, self._train_config, self._trained_for,
        )  # fmt: skip

    def threshold(self, quantile: float) -> float:
        """The log-density below which a share ``quantile`` of held-out demonstrations lie.

        Raises:
            ValueError: the flow has no calibration, or the quantile is outside [0, 1].
        """
        if self._calibration is None:
            raise ValueError(
                "this flow has no calibration: train it with train_flow (which holds "
                "episodes out for it), or pass a DensityCalibration."
            )
        return self._calibration.threshold(quantile)

    # ---- density ---------------------------------------------------------------------------
    def log_prob(self, obs_history: ArrayLike, U: ArrayLike) -> FloatArray:
        """Exact log-density of each chunk, raw action units.

        Args:
            obs_history: Shape=(obs_horizon, obs_dim), shared by all chunks, or
                Shape=(K, obs_horizon, obs_dim), one per chunk.
            U: chunks, Shape=(K, H, nu).

        Returns:
            Shape=(K,), float64; -inf for a chunk with an entry outside the
            demonstrations' action range (density 0 there) or a non-finite one.
        """
        x, inside = self._normalized_chunks(U)
        cond = self._conditions(obs_history, x.shape[0])
        with torch.inference_mode():
            xt = torch.from_numpy(x).to(self._device)
            ct = torch.from_numpy(cond).to(self._device).expand(xt.shape[0], -1)
            out = self._flow.log_prob(xt, ct).cpu().numpy().astype(np.float64)
        out += self._log_scale
        out[~inside] = -math.inf
        return out

    def encode(self, obs_history: ArrayLike, U: ArrayLike) -> FloatArray:
        """The latents of chunks inside the action range: ``decode(obs_history, encode(...)) == U``.

        Args:
            obs_history: as in ``log_prob``.
            U: chunks, Shape=(K, H, nu); entries outside the range are clipped onto it.

        Returns:
            Latents Shape=(K, latent_dim) in the box, float64.
        """
        x, _ = self._normalized_chunks(U)
        cond = self._conditions(obs_history, x.shape[0])
        with torch.inference_mode():
            xt = torch.from_numpy(x).to(self._device)
            ct = torch.from_numpy(cond).to(self._device).expand(xt.shape[0], -1)
            z = self._flow.bijection(ct)(xt)
            return np.asarray(z.clamp(-1.0, 1.0).cpu().numpy(), dtype=np.float64)

    def _normalized_chunks(self, U: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Chunks as normalised float32 rows Shape=(K, D), and which lie in the range."""
        arr = np.asarray(U, dtype=np.float64)
        if arr.ndim != 3 or arr.shape[1:] != (self.horizon, self.nu) or arr.shape[0] == 0:
            raise ValueError(
                f"U must have Shape=(K, {self.horizon}, {self.nu}) (chunks of the flow's horizon "
                f"and action size), got {arr.shape}."
            )
        x = self._act_norm.normalize(arr).reshape(arr.shape[0], -1)
        inside = np.all(np.abs(x) <= 1.0 + SUPPORT_TOLERANCE, axis=1)  # NaN: outside
        x = np.clip(np.nan_to_num(x), -1.0, 1.0)
        return np.ascontiguousarray(x, dtype=np.float32), inside

    def _conditions(self, obs_history: ArrayLike, K: int) -> np.ndarray:
        """Condition rows Shape=(1 or K, context) for one history or one per chunk."""
        obs = np.asarray(obs_history, dtype=np.float64)
        per_chunk = obs.ndim == 3
        cond = self._cond_batch(obs) if per_chunk else self._cond(obs)
        if per_chunk and cond.shape[0] != K:
            raise ValueError(
                f"obs_history has {cond.shape[0]} histories for {K} chunks; give one history "
                "Shape=(obs_horizon, obs_dim) or one per chunk."
            )
        return cond

    # ---- ChunkModel ------------------------------------------------------------------------
    def _draw_latents(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return rng.uniform(-1.0, 1.0, (count, self._latent_dim)).astype(np.float32)

    def _decode_normalized(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self._flow.decode(z, cond.expand(z.shape[0], -1))

    def _new_network(self) -> nn.Module:
        return build_box_flow(self._flow_config, self._obs_dim, self._nu)

    def _with_network(self, network: nn.Module, device: str | torch.device) -> ChunkFlow:
        assert isinstance(network, BoxFlow)
        return ChunkFlow(
            network, self._flow_config, self._obs_norm, self._act_norm, self._calibration,
            device, self._train_config, self._trained_for,
        )  # fmt: skip

    def to(self, device: str | torch.device) -> ChunkFlow:
        """A flow sharing nothing mutable with this one, running on ``device``."""
        model: ChunkFlow = super().to(device)
        return model

    def __repr__(self) -> str:
        return (
            f"ChunkFlow(transforms={self._flow_config.transforms}, H={self.horizon}, "
            f"nu={self._nu}, obs_horizon={self.obs_horizon}, obs_dim={self._obs_dim}, "
            f"device={self._device})"
        )
