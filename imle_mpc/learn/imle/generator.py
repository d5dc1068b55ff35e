"""``IMLEGenerator``: a trained network plus its normalisation, as a ``ChunkGenerator``.

The plumbing (shapes, conditioning, batching, un-normalisation) is
``imle_mpc.learn.chunk_model.ChunkModel``'s; here are the Gaussian latents, the
generator network ``G(z, obs_history)`` and the choice of the path that evaluates it
(torch, or the MLP's NumPy pass for small CPU batches: ``inference``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from imle_mpc.core.blas import blas_threads_controllable
from imle_mpc.core.kernels.pcg64 import generator_normals
from imle_mpc.core.validation import require_int_at_least
from imle_mpc.learn.chunk_model import ChunkModel
from imle_mpc.learn.config import GeneratorConfig, TrainConfig
from imle_mpc.learn.imle.fast_mlp import (
    INFERENCE_PATHS,
    NUMPY_MAX_BATCH,
    InferencePath,
    NumpyMLP,
)
from imle_mpc.learn.imle.networks import MLPGenerator, build_network
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
        inference: which path evaluates the network in ``sample`` / ``decode`` /
            ``decode_batch``: ``"auto"`` (default) the NumPy pass
            (``imle_mpc.learn.imle.fast_mlp``) for an MLP on the CPU at up to
            ``NUMPY_MAX_BATCH`` rows where NumPy's BLAS threads can be held to one,
            torch otherwise; ``"torch"`` or ``"numpy"`` force one. Training and
            gradients always use the torch module itself. The two paths agree to
            about 1e-6 (float32 in both).
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
        inference: InferencePath = "auto",
    ) -> None:
        super().__init__(
            network, config, obs_normalizer, action_normalizer, device, train_config, trained_for
        )
        self._gen_config = config
        self._numpy_mlp: NumpyMLP | None = None
        self._inference: InferencePath = "auto"
        self.set_inference(inference)

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

    @property
    def inference(self) -> InferencePath:
        """The evaluation path: ``"auto"``, ``"torch"`` or ``"numpy"`` (see the class)."""
        return self._inference

    def set_inference(self, path: InferencePath) -> None:
        """Choose the evaluation path (``"auto"``, ``"torch"``, ``"numpy"``).

        Raises:
            ValueError: an unknown name, or ``"numpy"`` for a U-Net or a model off the CPU.
        """
        if path not in INFERENCE_PATHS:
            raise ValueError(
                f"IMLEGenerator inference must be one of {INFERENCE_PATHS}, got {path!r}."
            )
        if path == "numpy" and not self._numpy_possible():
            raise ValueError(
                "IMLEGenerator inference='numpy' evaluates the MLP generator on the CPU only; "
                f"this one is a {self._gen_config.architecture!r} on {self._device}. Use "
                "inference='torch' (or 'auto', which picks torch here)."
            )
        self._inference = path

    def uses_numpy_path(self, rows: int) -> bool:
        """Whether a pass over ``rows`` latents runs on the NumPy path."""
        if self._inference != "auto":
            return self._inference == "numpy"
        return rows <= NUMPY_MAX_BATCH and self._numpy_possible() and blas_threads_controllable()

    def _numpy_possible(self) -> bool:
        return isinstance(self._network, MLPGenerator) and self._device.type == "cpu"

    def _decode_fast(self, z: np.ndarray, cond: np.ndarray) -> np.ndarray | None:
        if not self.uses_numpy_path(z.shape[0]):
            return None
        if self._numpy_mlp is None:
            assert isinstance(self._network, MLPGenerator)
            self._numpy_mlp = NumpyMLP(self._network)
        return self._numpy_mlp(z, cond)

    def _draw_latents(self, rng: np.random.Generator, count: int) -> np.ndarray:
        # rng.standard_normal(..., dtype=np.float32)'s numbers, compiled (139 -> 38 us for
        # the Panda's 127 x 112 latents)
        return generator_normals(rng, np.empty((count, self._latent_dim), np.float32))

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
            inference=self._inference,
        )

    def to(self, device: str | torch.device) -> IMLEGenerator:
        """A generator sharing nothing mutable with this one, running on ``device``."""
        model: IMLEGenerator = super().to(device)
        return model

    def __repr__(self) -> str:
        return (
            f"IMLEGenerator({self._gen_config.architecture}, H={self.horizon}, nu={self._nu}, "
            f"obs_horizon={self.obs_horizon}, obs_dim={self._obs_dim}, device={self._device}, "
            f"inference={self._inference})"
        )
