"""``ChunkModel``: a trained network that decodes latents into action chunks, given a history.

The boundary between torch and the float64 NumPy hot path, shared by the RS-IMLE
generator (``imle_mpc.learn.imle.IMLEGenerator``: Gaussian latents) and the flow
(``imle_mpc.learn.flow.ChunkFlow``: latents uniform on a box). Observations and
latents go in as NumPy, chunks come out as float64, C-contiguous NumPy in raw
action units. A subclass says how latents are drawn and how its network decodes
them; everything else (shapes, conditioning, batching, un-normalisation, what it
was trained for) is here once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from imle_mpc.core.kernels.affine import scale_and_shift
from imle_mpc.core.validation import FloatArray, require_int_at_least
from imle_mpc.learn.config import TrainConfig
from imle_mpc.learn.pairs import MinMaxNormalizer, condition_rows
from imle_mpc.learn.trained_for import TrainedFor


class ChunkModel:
    """Action chunks decoded from latents in ONE batched pass of a network.

    Implements ``imle_mpc.core.protocols.ChunkGenerator``, ``ChunkDecoder`` and
    ``ChunkSchedule``. Latents are drawn from the caller's ``np.random.Generator``,
    so the planner's RNG governs every sample. The network runs under
    ``torch.inference_mode`` on ``device``; the process-wide torch thread count is
    left alone.

    Args:
        network: the (EMA) network; frozen and put in eval mode here.
        config: the model's shape: ``horizon``, ``action_horizon``, ``obs_horizon`` and
            ``latent_dim(nu)`` (``GeneratorConfig``, ``FlowConfig``).
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
        config: Any,
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
        self._latent_dim = int(config.latent_dim(self._nu))
        # The un-normalisation of every (t, j) entry of a chunk: y * half_range + center.
        self._act_center_row = np.ascontiguousarray(action_normalizer.center, dtype=np.float64)
        self._act_half_row = np.ascontiguousarray(action_normalizer.half_range, dtype=np.float64)

    # ---- what a subclass provides ----------------------------------------------------------
    def _draw_latents(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` latents from the prior, Shape=(count, latent_dim), float32."""
        raise NotImplementedError

    def _decode_normalized(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Normalised chunks (``count`` rows of H * nu entries) for latents and condition rows."""
        raise NotImplementedError

    def _decode_fast(self, z: np.ndarray, cond: np.ndarray) -> np.ndarray | None:
        """Normalised chunks Shape=(count, H * nu) without torch, or None: use the network.

        A subclass with a faster path for some calls (the MLP generator's NumPy pass
        for small CPU batches) returns its result here; ``z`` float32
        Shape=(count, latent_dim), ``cond`` float32 Shape=(1 or count, C).
        """
        return None

    def _with_network(self, network: nn.Module, device: str | torch.device) -> ChunkModel:
        """The same model around ``network`` on ``device`` (for ``to``)."""
        raise NotImplementedError

    def _new_network(self) -> nn.Module:
        """An untrained network of this model's shape (``to`` loads the weights into it)."""
        raise NotImplementedError

    # ---- ChunkGenerator properties ---------------------------------------------------------
    @property
    def horizon(self) -> int:
        """H, steps per chunk."""
        return int(self._config.horizon)

    @property
    def action_horizon(self) -> int:
        """Steps of a chunk meant to be executed before re-planning."""
        return int(self._config.action_horizon)

    @property
    def nu(self) -> int:
        return self._nu

    @property
    def obs_horizon(self) -> int:
        """Past observations the model is conditioned on."""
        return int(self._config.obs_horizon)

    @property
    def obs_dim(self) -> int:
        return self._obs_dim

    @property
    def latent_dim(self) -> int:
        """Size of one latent: horizon * nu."""
        return self._latent_dim

    @property
    def train_config(self) -> TrainConfig | None:
        return self._train_config

    @property
    def trained_for(self) -> TrainedFor:
        """The model the network was trained for (fields None where not recorded)."""
        return self._trained_for

    def check_fits(self, dynamics: object, where: str = "the generator") -> None:
        """Raise ``InputError`` if ``dynamics`` is not the model this was trained for."""
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

    def to(self, device: str | torch.device) -> Any:
        """A model sharing nothing mutable with this one, running on ``device``."""
        net = self._new_network()
        net.load_state_dict(self._network.state_dict())
        return self._with_network(net, device)

    # ---- sampling --------------------------------------------------------------------------
    def sample(self, obs_history: ArrayLike, n: int, rng: np.random.Generator) -> FloatArray:
        """Draw ``n`` chunks for one observation history.

        Args:
            obs_history: Shape=(obs_horizon, obs_dim), oldest first, raw units.
            n: number of chunks (>= 1).
            rng: source of the latents.

        Returns:
            Chunks Shape=(n, H, nu), float64, C-contiguous, raw action units.
        """
        require_int_at_least(f"{type(self).__name__}.sample", "n", n, 1)
        z = self._draw_latents(rng, n)
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
        require_int_at_least(f"{type(self).__name__}.sample_batch", "n", n, 1)
        cond = self._cond_batch(obs_histories)
        B = cond.shape[0]
        z = self._draw_latents(rng, B * n)
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

    # ---- internals -------------------------------------------------------------------------
    def _cond(self, obs_history: ArrayLike) -> np.ndarray:
        return condition_rows(obs_history, self._obs_norm, self.obs_horizon, batch=False)

    def _cond_batch(self, obs_histories: ArrayLike) -> np.ndarray:
        return condition_rows(obs_histories, self._obs_norm, self.obs_horizon, batch=True)

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
        """One batched pass; ``cond`` has 1 row (broadcast) or one per latent."""
        y_np = self._decode_fast(z, cond)
        if y_np is None:
            with torch.inference_mode():
                zt = torch.from_numpy(z).to(self._device)
                ct = torch.from_numpy(cond).to(self._device)
                y_np = self._decode_normalized(zt, ct).cpu().numpy()
        out = np.empty((B * n, self.horizon, self._nu), dtype=np.float64)
        scale_and_shift(y_np.reshape(out.shape), self._act_half_row, self._act_center_row, out)
        return out.reshape(B, n, self.horizon, self._nu)
