"""``IMLEGenerator``: a trained network plus its normalisation, as a ``ChunkGenerator``.

The plumbing (shapes, conditioning, batching, un-normalisation) is
``imle_mpc.learn.chunk_model.ChunkModel``'s; here are the Gaussian latents and
the generator network ``G(z, obs_history)``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from imle_mpc.core.validation import require_int_at_least
from imle_mpc.learn.chunk_model import ChunkModel
from imle_mpc.learn.config import GeneratorConfig, TrainConfig
from imle_mpc.learn.imle.networks import build_network
from imle_mpc.learn.pairs import MinMaxNormalizer
from imle_mpc.learn.trained_for import TrainedFor


class IMLEGenerator(ChunkModel):
    """Action chunks ``G(z, obs_history)``, ``z ~ N(0, I)``, from ONE batched forward pass.

    Implements ``imle_mpc.core.protocols.ChunkGenerator`` (see ``ChunkModel``).

    Args:
        network: the (EMA) generator network, outputs normalised chunks.
        config: the generator's shape.
        obs_normalizer: normalisation of one observation, dim = obs_dim.
        action_normalizer: normalisation of one action, dim = nu.
        device: torch device to run on.
        train_config: how the network was trained (kept for the checkpoint).
        trained_for: the model the demonstrations came from (dt, observation,
            action box; kept for the checkpoint and checked by ``check_fits``).
    """

    def __init__(
        self,
        network: nn.Module,
        config: GeneratorConfig,
        obs_normalizer: MinMaxNormalizer,
        action_normalizer: MinMaxNormalizer,
        device: str | torch.device = "cpu",
        train_config: TrainConfig | None = None,
        trained_for: TrainedFor | None = None,
    ) -> None:
        super().__init__(
            network, config, obs_normalizer, action_normalizer, device, train_config, trained_for
        )
        self._gen_config = config

    @classmethod
    def untrained(
        cls,
        config: GeneratorConfig,
        obs_dim: int,
        nu: int,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> IMLEGenerator:
        """A randomly initialised generator with identity normalisation (benchmarks, tests)."""
        require_int_at_least("IMLEGenerator.untrained", "obs_dim", obs_dim, 1)
        require_int_at_least("IMLEGenerator.untrained", "nu", nu, 1)
        net = build_network(config, obs_dim, nu, torch.Generator().manual_seed(seed))
        return cls(
            net,
            config,
            MinMaxNormalizer.identity(obs_dim),
            MinMaxNormalizer.identity(nu),
            device=device,
        )

    @property
    def config(self) -> GeneratorConfig:
        return self._gen_config

    def _draw_latents(self, rng: np.random.Generator, count: int) -> np.ndarray:
        return rng.standard_normal((count, self._latent_dim), dtype=np.float32)

    def _decode_normalized(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self._network(z, cond)

    def _new_network(self) -> nn.Module:
        return build_network(self._gen_config, self._obs_dim, self._nu)

    def _with_network(self, network: nn.Module, device: str | torch.device) -> IMLEGenerator:
        return IMLEGenerator(
            network,
            self._gen_config,
            self._obs_norm,
            self._act_norm,
            device,
            self._train_config,
            self._trained_for,
        )

    def to(self, device: str | torch.device) -> IMLEGenerator:
        """A generator sharing nothing mutable with this one, running on ``device``."""
        model: IMLEGenerator = super().to(device)
        return model

    def __repr__(self) -> str:
        return (
            f"IMLEGenerator({self._gen_config.architecture}, H={self.horizon}, nu={self._nu}, "
            f"obs_horizon={self.obs_horizon}, obs_dim={self._obs_dim}, device={self._device})"
        )
