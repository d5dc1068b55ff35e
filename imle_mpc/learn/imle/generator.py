"""``IMLEGenerator``: a trained network plus its normalisation, as a ``ChunkGenerator``.

The boundary between torch and the float64 NumPy hot path: observations and
latents go in as NumPy, chunks come out as float64, C-contiguous NumPy.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from imle_mpc.core.validation import FloatArray, require_int_at_least
from imle_mpc.learn.config import GeneratorConfig, TrainConfig
from imle_mpc.learn.imle.data import MinMaxNormalizer
from imle_mpc.learn.imle.networks import build_network
from imle_mpc.learn.imle.trained_for import TrainedFor


class IMLEGenerator:
    """Action chunks ``G(z, obs_history)`` from ONE batched forward pass.

    Implements ``imle_mpc.core.protocols.ChunkGenerator``. Latents are drawn from
    the caller's ``np.random.Generator``, so the planner's RNG governs every
    sample. The network runs under ``torch.inference_mode`` on ``device``; the
    process-wide torch thread count is left alone.

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
        self._config = config
        self._trained_for = TrainedFor() if trained_for is None else trained_for
        self._obs_norm = obs_normalizer
        self._act_norm = action_normalizer
        self._train_config = train_config
        self._device = torch.device(device)
        self._network = network.to(self._device).eval()
        for p in self._network.parameters():
            p.requires_grad_(False)
        self._obs_dim = obs_normalizer.dim
        self._nu = action_normalizer.dim
        self._latent_dim = config.latent_dim(self._nu)
        # Chunk-shaped un-normalisation, broadcast over (n, H, nu).
        self._act_center = action_normalizer.center.reshape(1, 1, -1)
        self._act_half = action_normalizer.half_range.reshape(1, 1, -1)

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

    # ---- ChunkGenerator properties -------------------------------------------------
    @property
    def horizon(self) -> int:
        """H, steps per chunk."""
        return self._config.horizon

    @property
    def action_horizon(self) -> int:
        """Steps of a chunk meant to be executed before re-planning."""
        return self._config.action_horizon

    @property
    def nu(self) -> int:
        return self._nu

    @property
    def obs_horizon(self) -> int:
        """Past observations the generator is conditioned on."""
        return self._config.obs_horizon

    @property
    def obs_dim(self) -> int:
        return self._obs_dim

    @property
    def latent_dim(self) -> int:
        """Size of one latent: horizon * nu."""
        return self._latent_dim

    @property
    def config(self) -> GeneratorConfig:
        return self._config

    @property
    def train_config(self) -> TrainConfig | None:
        return self._train_config

    @property
    def trained_for(self) -> TrainedFor:
        """The model the generator was trained for (fields None where not recorded)."""
        return self._trained_for

    def check_fits(self, dynamics: object, where: str = "the generator") -> None:
        """Raise ``InputError`` if ``dynamics`` is not the model this generator was trained for."""
        self._trained_for.check(dynamics, self.obs_dim, where)

    @property
    def obs_normalizer(self) -> MinMaxNormalizer:
        return self._obs_norm

    @property
    def action_normalizer(self) -> MinMaxNormalizer:
        return self._act_norm

    @property
    def network(self) -> nn.Module:
        """The torch module (eval mode, frozen)."""
        return self._network

    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device: str | torch.device) -> IMLEGenerator:
        """A generator sharing nothing mutable with this one, running on ``device``."""
        net = build_network(self._config, self._obs_dim, self._nu)
        net.load_state_dict(self._network.state_dict())
        return IMLEGenerator(
            net,
            self._config,
            self._obs_norm,
            self._act_norm,
            device,
            self._train_config,
            self._trained_for,
        )

    # ---- sampling -----------------------------------------------------------------
    def sample(self, obs_history: ArrayLike, n: int, rng: np.random.Generator) -> FloatArray:
        """Draw ``n`` chunks for one observation history.

        Args:
            obs_history: Shape=(obs_horizon, obs_dim), oldest first, raw units.
            n: number of chunks (>= 1).
            rng: source of the latents ``z ~ N(0, I)``.

        Returns:
            Chunks Shape=(n, H, nu), float64, C-contiguous, raw action units.
        """
        require_int_at_least("IMLEGenerator.sample", "n", n, 1)
        z = rng.standard_normal((n, self._latent_dim), dtype=np.float32)
        return self._run(self._cond(obs_history), z, 1, n)[0]

    def decode(self, obs_history: ArrayLike, z: ArrayLike) -> FloatArray:
        """Chunks for given latents.

        Args:
            obs_history: Shape=(obs_horizon, obs_dim), oldest first.
            z: latents, Shape=(n, latent_dim).

        Returns:
            Chunks Shape=(n, H, nu), float64, C-contiguous.
        """
        zf = self._check_latents(z, 2)
        return self._run(self._cond(obs_history), zf, 1, zf.shape[0])[0]

    def sample_batch(
        self, obs_histories: ArrayLike, n: int, rng: np.random.Generator
    ) -> FloatArray:
        """``n`` chunks for each of ``B`` observation histories, in one forward pass.

        Args:
            obs_histories: Shape=(B, obs_horizon, obs_dim).
            n: chunks per history.
            rng: source of the latents.

        Returns:
            Chunks Shape=(B, n, H, nu), float64, C-contiguous.
        """
        require_int_at_least("IMLEGenerator.sample_batch", "n", n, 1)
        cond = self._cond_batch(obs_histories)
        B = cond.shape[0]
        z = rng.standard_normal((B * n, self._latent_dim), dtype=np.float32)
        return self._run(np.repeat(cond, n, axis=0), z, B, n)

    def decode_batch(self, obs_histories: ArrayLike, z: ArrayLike) -> FloatArray:
        """Chunks for latents ``z`` Shape=(B, n, latent_dim) under B histories.

        Returns:
            Chunks Shape=(B, n, H, nu), float64, C-contiguous.
        """
        cond = self._cond_batch(obs_histories)
        zf = self._check_latents(z, 3)
        if zf.shape[0] != cond.shape[0]:
            raise ValueError(
                f"decode_batch: z has {zf.shape[0]} groups of latents but there are "
                f"{cond.shape[0]} observation histories; Shape=(B, n, latent_dim) is needed."
            )
        B, n = zf.shape[:2]
        return self._run(np.repeat(cond, n, axis=0), zf.reshape(B * n, -1), B, n)

    # ---- internals ----------------------------------------------------------------
    def _cond(self, obs_history: ArrayLike) -> np.ndarray:
        obs = np.asarray(obs_history, dtype=np.float64)
        want = (self.obs_horizon, self._obs_dim)
        if obs.shape != want:
            raise ValueError(
                f"obs_history must have Shape={want} (obs_horizon, obs_dim), oldest first; got "
                f"{obs.shape}. At an episode start repeat the first observation."
            )
        if not np.all(np.isfinite(obs)):
            raise ValueError("obs_history contains NaN/inf; check the observation source.")
        return self._obs_norm.normalize(obs).astype(np.float32).reshape(1, -1)

    def _cond_batch(self, obs_histories: ArrayLike) -> np.ndarray:
        obs = np.asarray(obs_histories, dtype=np.float64)
        want = (self.obs_horizon, self._obs_dim)
        if obs.ndim != 3 or obs.shape[1:] != want or obs.shape[0] == 0:
            raise ValueError(
                f"obs_histories must have Shape=(B, {want[0]}, {want[1]}) with B >= 1; got "
                f"{obs.shape}."
            )
        if not np.all(np.isfinite(obs)):
            raise ValueError("obs_histories contain NaN/inf; check the observation source.")
        return self._obs_norm.normalize(obs).astype(np.float32).reshape(obs.shape[0], -1)

    def _check_latents(self, z: ArrayLike, ndim: int) -> np.ndarray:
        arr = np.asarray(z)
        if arr.ndim != ndim or arr.shape[-1] != self._latent_dim or arr.size == 0:
            lead = "n" if ndim == 2 else "B, n"
            raise ValueError(
                f"z must have Shape=({lead}, {self._latent_dim}) (latent_dim = horizon * nu), "
                f"got {arr.shape}."
            )
        return np.ascontiguousarray(arr, dtype=np.float32)

    def _run(self, cond: np.ndarray, z: np.ndarray, B: int, n: int) -> FloatArray:
        """One forward pass; ``cond`` has 1 row (broadcast) or one per latent."""
        with torch.inference_mode():
            zt = torch.from_numpy(z).to(self._device)
            ct = torch.from_numpy(cond).to(self._device)
            y = self._network(zt, ct)
            y_np = y.cpu().numpy()
        out = np.empty((B * n, self.horizon, self._nu), dtype=np.float64)
        np.multiply(y_np, self._act_half, out=out)
        out += self._act_center
        return out.reshape(B, n, self.horizon, self._nu)

    def __repr__(self) -> str:
        return (
            f"IMLEGenerator({self._config.architecture}, H={self.horizon}, nu={self._nu}, "
            f"obs_horizon={self.obs_horizon}, obs_dim={self._obs_dim}, device={self._device})"
        )
