"""The trained residual: a small MLP ``observation -> r = tanh(mean)``, and its file.

``ResidualNetwork`` is the deterministic part of SAC's actor (what is executed at
evaluation: the mean, squashed), copied out of stable-baselines3's actor so that
evaluating a residual needs torch only. ``ResidualActor.act`` maps one
observation (NumPy, Shape=(obs_dim,)) to ``r`` Shape=(nu,) in (-1, 1).

``residual.safetensors`` is one model file (``imle_mpc.learn.model_file``): the
weights, and as JSON the network's sizes, the environment steps it was trained
for, and the caller's ``refinement`` document (for ``imle-mpc refine``: the task,
the setting, the base, the scale), written atomically.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from imle_mpc.learn.model_file import (
    CheckpointError,
    ModelKind,
    check_weights,
    read_model_file,
    write_model_file,
)

RESIDUAL_FILE = "residual.safetensors"
RESIDUAL_KIND = ModelKind(
    kind="imle_residual",
    noun="residual",
    default_file=RESIDUAL_FILE,
    retrain="Train it again with `imle-mpc refine --out DIR` (or --resume an interrupted run).",
    missing="Train one with `imle-mpc refine --out DIR`.",
)
"""How residual files are named in the file and in messages (``imle_mpc.learn.model_file``)."""


class ResidualNetwork(nn.Module):
    """``r = tanh(clip(mu(latent(obs)), -c, c))``: SAC's actor without the noise.

    Args:
        obs_dim: observation size.
        nu: action size.
        hidden: hidden-layer widths (ReLU after each), as the SAC actor's ``net_arch``.
        clip_mean: ``c``, where the mean is clipped before the tanh (SB3 does with
            gSDE: 2); inf: not clipped.
    """

    def __init__(
        self, obs_dim: int, nu: int, hidden: tuple[int, ...], clip_mean: float = math.inf
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.latent = nn.Sequential(*layers)
        self.mu = nn.Linear(width, nu)
        self.obs_dim, self.nu, self.hidden = obs_dim, nu, tuple(hidden)
        self.clip_mean = float(clip_mean)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``r`` Shape=(B, nu) for observations Shape=(B, obs_dim)."""
        mean = self.mu(self.latent(obs))
        return torch.tanh(mean.clamp(-self.clip_mean, self.clip_mean))


class ResidualActor:
    """A trained residual for the control loop: ``act(observation) -> r``.

    Args:
        network: the trained network (kept in eval mode, no gradients).
        meta: what it was trained for (``refinement``, ``steps``), from its file.
    """

    def __init__(self, network: ResidualNetwork, meta: dict[str, Any] | None = None) -> None:
        self.network = network.eval().requires_grad_(False)
        self.meta = dict(meta or {})

    @property
    def obs_dim(self) -> int:
        return self.network.obs_dim

    @property
    def nu(self) -> int:
        return self.network.nu

    def act(self, observation: np.ndarray) -> np.ndarray:
        """``r`` Shape=(nu,) float64 in (-1, 1) for ``observation`` Shape=(obs_dim,).

        Raises:
            ValueError: the observation has another size.
        """
        obs = np.asarray(observation, dtype=np.float32)
        if obs.shape != (self.obs_dim,):
            raise ValueError(
                f"the residual was trained on observations of Shape=({self.obs_dim},), "
                f"got {obs.shape}."
            )
        with torch.no_grad():
            r = self.network(torch.from_numpy(obs)[None])[0]
        return r.numpy().astype(np.float64)


def save_residual(actor: ResidualActor, path: str | Path) -> Path:
    """Write ``actor`` (weights and ``meta``) to ``path`` atomically; a directory means
    ``path / residual.safetensors``."""
    net = actor.network
    clip = None if math.isinf(net.clip_mean) else net.clip_mean  # JSON has no inf
    meta = {
        "obs_dim": net.obs_dim, "nu": net.nu, "hidden": list(net.hidden), "clip_mean": clip,
        **actor.meta,
    }  # fmt: skip
    return write_model_file(path, RESIDUAL_KIND, net.state_dict(), meta)


def load_residual(path: str | Path) -> ResidualActor:
    """The residual saved at ``path`` (its file, or the ``imle-mpc refine --out`` directory).

    Raises:
        CheckpointError: no such file, or one that is unreadable, of another kind or
            format version, with weights that do not fit its sizes or are not finite.
    """
    p, meta, tensors = read_model_file(path, RESIDUAL_KIND)
    try:
        obs_dim, nu = int(meta.pop("obs_dim")), int(meta.pop("nu"))
        hidden = tuple(int(h) for h in meta.pop("hidden"))
        clip = meta.pop("clip_mean", None)
        clip_mean = math.inf if clip is None else float(clip)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{p} has invalid metadata: {exc!r}. {RESIDUAL_KIND.retrain}"
        ) from exc
    net = ResidualNetwork(obs_dim, nu, hidden, clip_mean)
    check_weights(p, net.state_dict(), tensors, RESIDUAL_KIND.retrain)
    net.load_state_dict(tensors)
    for key in ("kind", "format_version", "library_version"):
        meta.pop(key, None)
    return ResidualActor(net, meta)
