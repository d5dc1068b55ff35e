"""The second exact-likelihood policy kind for PPO: a conditional normalizing flow.

``FlowPolicy`` is pi(a | obs) over ONE action (no dummy half), built from the flow
issue's network (``imle_mpc.learn.flow.network.build_box_flow`` with
``FlowConfig(horizon=1)``, as the offline agent's ``FlowLatent``): zuko's coupling layers
of rational-quadratic splines, a bijection of the box [-1, 1]^nu with the uniform base.
Its density is zuko's change of variables, exact; where GenPO's construction needs the
doubled action to make a denoising process invertible, a flow is invertible already.

* ``x`` Shape=(B, nu) in [-1, 1]^nu is the action normalised onto the ACTUATOR box
  (``a = mid + half * x``; not the demonstrations' range as ``ChunkFlow``'s: PPO may
  move the policy to actions no demonstration took), ``log pi(a) = log p(x) - sum log half``;
* the PPO wrapper (``GenPOActorCritic``) acts in the pre-squash latent
  ``u = atanh(x)`` (``sample_latent``/``log_prob_latent``, the ``LatentPolicy``
  protocol it shares with ``GenerativePolicy``): ratios are the same there, and ``u``
  keeps its precision in float32 where an ``x`` pressed against a face does not.
  ``log p(u) = log p(x) + sum log(1 - tanh(u)^2)``.
  Draws of ``x`` are kept ``_EDGE`` inside the faces (atanh of a face is infinite).

Behaviour cloning: maximum likelihood of the demonstrated actions
(``imle_mpc.learn.genpo.bc.train_flow_policy_bc``). File: the library's model file,
kind ``flow_policy`` (``save_flow_policy``/``load_flow_policy``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from imle_mpc.core.validation import require_int_at_least
from imle_mpc.learn.config import FlowConfig
from imle_mpc.learn.flow.network import build_box_flow
from imle_mpc.learn.genpo.policy import (
    _log_one_minus_tanh_sq,
    read_policy_file,
    register_box_and_normaliser,
    write_policy_file,
)
from imle_mpc.learn.model_file import (
    ModelKind,
)
from imle_mpc.learn.records import JsonRecord

FLOW_POLICY_FILE = "flow_policy.safetensors"
_RETRAIN = "Train it again with `imle-mpc finetune --policy flow` (or train_flow_policy_bc)."
FLOW_POLICY_KIND = ModelKind(
    kind="flow_policy",
    noun="flow policy",
    default_file=FLOW_POLICY_FILE,
    retrain=_RETRAIN,
    missing="Train one with `imle-mpc finetune --policy flow --task NAME --out DIR` or pass "
    "the path of an existing flow_policy.safetensors.",
)

_EDGE = 1e-6
"""Draws are kept this far (normalised units) inside the box's faces: atanh(1) is infinite."""


@dataclass(frozen=True)
class FlowPolicyConfig(JsonRecord):
    """The flow policy's shape (``FlowConfig``'s network fields, horizon 1).

    Attributes:
        transforms: coupling layers (for nu = 1 zuko's coupling conditions on the
            observation alone, each layer a spline of the one entry).
        bins: spline bins per entry.
        hidden: hyper-network widths.
        noise_std: behaviour cloning's noise on the normalised demonstrated actions
            (``FlowConfig.noise_std``'s role, reflected at the faces): without it the
            cloned density is sharp at the nearly deterministic demonstrations, and on
            ``nav_two_obstacles`` (seed 0, 150 epochs) the clone succeeded in 2 % of
            the episodes, PPO's first KL estimate was 0.74 and the adaptive rate fell
            to its floor (2 % after 300k steps); at 0.05: 26 %, 0.021, 60 %.
    """

    transforms: int = 4
    bins: int = 8
    hidden: tuple[int, ...] = (64, 64)
    noise_std: float = 0.05

    def __post_init__(self) -> None:
        require_int_at_least("FlowPolicyConfig", "transforms", self.transforms, 1)
        require_int_at_least("FlowPolicyConfig", "bins", self.bins, 2)
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"FlowPolicyConfig.hidden needs positive widths, got {self.hidden!r}.")
        if not self.noise_std >= 0:
            raise ValueError(f"FlowPolicyConfig.noise_std must be >= 0, got {self.noise_std!r}.")

    def flow_config(self) -> FlowConfig:
        """The flow issue's config of this network: one action given one observation."""
        return FlowConfig(
            obs_horizon=1, horizon=1, action_horizon=1, transforms=self.transforms,
            bins=self.bins, hidden=self.hidden,
        )  # fmt: skip


class FlowPolicy(nn.Module):
    """pi(a | obs) as a zuko box flow with exact density; see the module docstring.

    Args:
        obs_dim: observation width.
        nu: action width.
        action_low: the actuator box's lower corner, Shape=(nu,).
        action_high: the actuator box's upper corner, Shape=(nu,).
        config: the network's shape.
        obs_shift: the observation's normalisation ``(obs - shift) / scale``,
            Shape=(obs_dim,) (None: identity).
        obs_scale: its scale, Shape=(obs_dim,) (None: identity).
        seed: draws the coupling masks and initial weights (zuko's init, forked RNG).
    """

    model_kind: ClassVar[str] = FLOW_POLICY_KIND.kind
    box_mid: torch.Tensor
    box_half: torch.Tensor
    obs_shift: torch.Tensor
    obs_scale: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        nu: int,
        action_low: ArrayLike,
        action_high: ArrayLike,
        config: FlowPolicyConfig | None = None,
        obs_shift: ArrayLike | None = None,
        obs_scale: ArrayLike | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.config = config or FlowPolicyConfig()
        self.obs_dim, self.nu = int(obs_dim), int(nu)
        register_box_and_normaliser(
            self, obs_dim, nu, action_low, action_high, obs_shift, obs_scale
        )
        rng = torch.Generator().manual_seed(int(seed))
        self.flow = build_box_flow(self.config.flow_config(), self.obs_dim, self.nu, rng)
        self.trained_for: dict[str, Any] = {}
        self.float()

    @property
    def latent_dim(self) -> int:
        """Width of the PPO wrapper's action ``u``: nu (one action, no dummy)."""
        return self.nu

    def _condition(self, obs: torch.Tensor) -> torch.Tensor:
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"obs must have Shape=(B, {self.obs_dim}), got {tuple(obs.shape)}.")
        return (obs.to(self.obs_shift.dtype) - self.obs_shift) / self.obs_scale

    # ---- the density in the normalised box ----------------------------------------------------
    def log_prob_normalised(self, obs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | obs) Shape=(B,) of normalised actions ``x`` Shape=(B, nu) in [-1, 1]."""
        return self.flow.log_prob(x.to(self.box_mid.dtype), self._condition(obs))

    def sample_normalised(
        self, obs: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Normalised actions Shape=(B, nu), strictly inside the box (``_EDGE``)."""
        z = 2.0 * torch.rand(
            obs.shape[0], self.nu, generator=generator, dtype=self.box_mid.dtype,
            device=obs.device,
        ) - 1.0  # fmt: skip
        return self._decode_base(obs, z)

    def _decode_base(self, obs: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Normalised actions of uniform base draws ``base`` Shape=(B, nu) in [-1, 1]."""
        x = self.flow.decode(base, self._condition(obs))
        return x.clamp(-1.0 + _EDGE, 1.0 - _EDGE)

    # ---- the policy (actions in the actuator box) ---------------------------------------------
    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """log pi(action | obs) Shape=(B,), ``action`` Shape=(B, nu) in the actuator box
        (-inf outside it)."""
        if action.ndim != 2 or action.shape[1] != self.nu:
            raise ValueError(f"action must have Shape=(B, {self.nu}), got {tuple(action.shape)}.")
        x = (action.to(self.box_mid.dtype) - self.box_mid) / self.box_half
        out = self.log_prob_normalised(obs, x) - torch.log(self.box_half).sum()
        outside = (x.abs() > 1.0).any(dim=1)
        return torch.where(outside, torch.full_like(out, -math.inf), out)

    def sample(
        self, obs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(action Shape=(B, nu), log_prob Shape=(B,))``, the action in the box."""
        return self._in_box(obs, self.sample_normalised(obs, generator))

    def _in_box(self, obs: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised actions ``x`` Shape=(B, nu) as actions in the box, log-densities (B,)."""
        a = self.box_mid + self.box_half * x
        return a, self.log_prob_normalised(obs, x) - torch.log(self.box_half).sum()

    def draw_from_normal(
        self, obs: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions in the box Shape=(B, nu) of standard-normal draws ``z`` Shape=(B, nu),
        and their exact log-densities Shape=(B,).

        The flow's base is uniform on [-1, 1]^nu: ``2 Phi(z) - 1`` (the normal's CDF) is
        a uniform draw, so a normal latent replays a sample as the IMLE planners' latents do.
        """
        base = 2.0 * torch.special.ndtr(z.to(self.box_mid.dtype)) - 1.0
        return self._in_box(obs, self._decode_base(obs, base))

    # ---- LatentPolicy (what GenPOActorCritic uses) --------------------------------------------
    def sample_latent(
        self, obs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-squash actions ``u = atanh(x)`` Shape=(B, nu) and their log-densities (B,)."""
        u = torch.atanh(self.sample_normalised(obs, generator))
        return u, self.log_prob_latent(obs, u)

    def log_prob_latent(self, obs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """log density of pre-squash actions ``u`` Shape=(B, nu), Shape=(B,)."""
        u = u.to(self.box_mid.dtype)
        x = torch.tanh(u).clamp(-1.0 + _EDGE, 1.0 - _EDGE)
        return self.log_prob_normalised(obs, x) + _log_one_minus_tanh_sq(u).sum(dim=1)

    def executed_latent(self, u: torch.Tensor) -> torch.Tensor:
        """The action sent to the plant for a pre-squash ``u``, Shape=(B, nu)."""
        return self.box_mid + self.box_half * torch.tanh(u.to(self.box_mid.dtype))

    def act(self, obs: ArrayLike, generator: torch.Generator | None = None) -> np.ndarray:
        """Sampled actions for observations Shape=(B, obs_dim) (numpy in, numpy out)."""
        with torch.no_grad():
            o = torch.as_tensor(
                np.asarray(obs), dtype=self.box_mid.dtype, device=self.box_mid.device
            )
            a, _ = self.sample(o, generator)
        return a.cpu().numpy().astype(np.float64)


# ---- the model file -----------------------------------------------------------------------
def save_flow_policy(policy: FlowPolicy, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``policy`` (a file, or a directory: its ``flow_policy.safetensors``) with
    ``meta`` (what it was trained for)."""
    return write_policy_file(policy, path, FLOW_POLICY_KIND, "flow_policy_config", meta)


def load_flow_policy(path: str | Path) -> FlowPolicy:
    """The flow policy in ``path``; errors name the file and what to do."""

    def build(meta: dict[str, Any]) -> FlowPolicy:
        return FlowPolicy(
            int(meta["obs_dim"]), int(meta["nu"]), meta["action_low"], meta["action_high"],
            FlowPolicyConfig.from_dict(meta["flow_policy_config"]), meta["obs_shift"],
            meta["obs_scale"],
        )  # fmt: skip

    return read_policy_file(path, FLOW_POLICY_KIND, build)
