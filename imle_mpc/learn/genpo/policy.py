"""An invertible generative policy with an exact log-likelihood (GenPO's construction).

A diffusion or generator policy has no tractable density, which PPO's ratio needs.
GenPO (Ding et al., 2025) makes the denoising process exactly invertible:

* the action ``x`` Shape=(B, nu) is doubled with a dummy ``y`` Shape=(B, nu); both start
  from the base N(0, I);
* each of the ``T`` denoising steps is two additive couplings and a mixing,

      x <- x + dt * v_x(y, t, obs)          (volume preserving)
      y <- y + dt * v_y(x, t, obs)          (volume preserving)
      x <- p x + (1 - p) y;  y <- p y + (1 - p) x      (the new x; |det| = p^2 per entry)

  with ``dt = 1 / T``; every step has a closed-form inverse, so the density of the pair
  follows from the change of variables: the couplings add nothing to the log-det, the
  mixing ``2 nu log p`` per step (the reference computes the Jacobian's determinant
  numerically with ``jacrev``; here it is the constant above; ``GenPOConfig.mix`` says
  which p suits which task);
* the pair is squashed into the actuator box, ``a = mid + half * tanh(u)`` entry by
  entry, with its log-Jacobian ``sum log(half * (1 - tanh(u)^2))``: every sampled action
  is inside the box.

Departures from the reference (wadx2019/genpo, an rsl_rl fork), and why: two velocity
networks (the reference shares one between the two halves) so the dummy's dynamics are
not tied to the action's; a fixed sinusoidal time feature (no time MLP); the squash
into the box (the reference leaves the action unbounded); the executed action is the
first half ``x`` (the reference executes the mean of the halves): the dummy is then a
pure auxiliary variable, and behaviour cloning of the pair ``(a, y)`` with ``y`` drawn
from a fixed law has the demonstrations' action law as the optimum of its ``x``
marginal (``imle_mpc.learn.genpo.bc``). The velocity networks' last layers start at
zero, so an untrained policy is the base through the mixing and the final map alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from imle_mpc.core.validation import require_int_at_least
from imle_mpc.learn.model_file import (
    CheckpointError,
    ModelKind,
    check_weights,
    read_model_file,
    write_model_file,
)
from imle_mpc.learn.records import JsonRecord

POLICY_FILE = "policy.safetensors"
_RETRAIN = "Train it again with `imle-mpc finetune` (or train_genpo_bc)."
GENPO_KIND = ModelKind(
    kind="genpo_policy",
    noun="generative policy",
    default_file=POLICY_FILE,
    retrain=_RETRAIN,
    missing="Train one with `imle-mpc finetune --task NAME --out DIR` or pass the path "
    "of an existing policy.safetensors.",
)

_EDGE = 1e-6
PolicyT = TypeVar("PolicyT", bound=nn.Module)
"""Actions are kept this far (as a share of the half range) inside the box's faces:
``atanh`` of a face is infinite."""


@dataclass(frozen=True)
class GenPOConfig(JsonRecord):
    """The generative policy's shape.

    Attributes:
        steps: T, denoising steps (the reference's 5).
        mix: p in (0, 1], the mixing weight (the reference's 0.95; 1 is no mixing). One
            mixing step keeps the direction ``x = y`` and shrinks the other by ``p^2``
            (its eigenvalues), ``p^(2T)`` over the flow (0.11 at p = 0.8). Which is best
            differs by task (``bench/genpo.py``, success after PPO): on
            ``nav_two_obstacles`` (seeds 0-3) 57.5 % at p = 0.8, 89.5 % at 0.95, 94.75 %
            at 1: cloning asks for a dummy independent of the action, the velocity
            networks undo the squeeze, the pair's density grows steep across it and the
            KL-adaptive rate stays low; on ``push_block`` (seeds 0-2) 51 % at 0.8, 26 %
            at 0.95, 1 % at 1, whose clone without mixing succeeds in 1-6 % of the
            episodes (36-57 % with it). 0.8 here; the bench runs nav at 1
            (``imle-mpc finetune --genpo-mix``).
        hidden: hidden widths of each velocity network.
        time_dim: width of the sinusoidal time feature (even).
        affine: end the flow with a per-observation elementwise affine map
            ``u <- m(obs) + exp(s(obs)) * u`` (log-det ``sum s``), an addition to the
            reference: behaviour cloning on ``nav_two_obstacles``' demonstrations reached a
            pair NLL of 3.76 nats after 100 epochs without it, 1.63 with it.
        min_log_scale: a smooth floor under that map's log-scale
            (``min + softplus(s - min)``): cloning sharpens the law of nearly
            deterministic (saturated) demonstrated actions without bound, and PPO's
            log-ratio of such a law moves by nats in one step (the first update's KL
            estimate was 7.7 at lr 3e-4 without the floor, 0.09 with it). -1.2 here; the
            bench runs ``nav_two_obstacles`` at -2.3 (``--genpo-min-log-scale``), where the
            clone fits closer (53.5 % success against 36 %) and PPO ends at 99 % (94.75 %
            at -1.2; seeds 0-3, the first update's KL estimate 0.018-0.093).
    """

    steps: int = 5
    mix: float = 0.8
    hidden: tuple[int, ...] = (64, 64)
    time_dim: int = 8
    affine: bool = True
    min_log_scale: float = -1.2

    def __post_init__(self) -> None:
        require_int_at_least("GenPOConfig", "steps", self.steps, 1)
        require_int_at_least("GenPOConfig", "time_dim", self.time_dim, 2)
        if self.time_dim % 2:
            raise ValueError(f"GenPOConfig.time_dim must be even, got {self.time_dim}.")
        if not 0.0 < self.mix <= 1.0:
            raise ValueError(f"GenPOConfig.mix must be in (0, 1], got {self.mix!r}.")
        if not self.hidden or any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"GenPOConfig.hidden needs positive widths, got {self.hidden!r}.")


def _mlp(n_in: int, hidden: tuple[int, ...], n_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.SiLU()]
        width = h
    last = nn.Linear(width, n_out)
    nn.init.zeros_(last.weight)  # the untrained flow is the mixing alone
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


def _time_features(steps: int, dim: int) -> torch.Tensor:
    """Sinusoidal features of t = i / T, Shape=(T, dim)."""
    t = torch.arange(steps, dtype=torch.float64) / steps
    freqs = torch.exp(torch.arange(dim // 2, dtype=torch.float64) * -(math.log(100.0) / dim))
    angles = 2 * math.pi * t[:, None] * freqs[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def _log_one_minus_tanh_sq(u: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(u)^2), stable for large |u|."""
    return 2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))


def register_box_and_normaliser(
    policy: nn.Module,
    obs_dim: int,
    nu: int,
    action_low: ArrayLike,
    action_high: ArrayLike,
    obs_shift: ArrayLike | None,
    obs_scale: ArrayLike | None,
    copies: int = 1,
) -> None:
    """Check a policy's actuator box and observation normaliser and register them as its
    buffers ``box_mid``/``box_half`` Shape=(copies * nu,) and ``obs_shift``/``obs_scale``
    Shape=(obs_dim,) (by default 0 and 1); float64, both policy kinds (GenPO: 2 copies,
    the action and its dummy).

    Raises:
        ValueError: a box that is not ``low < high`` of Shape=(nu,), or a normaliser of
            another shape or with a scale <= 0.
    """
    low = torch.as_tensor(np.asarray(action_low, np.float64).reshape(-1))
    high = torch.as_tensor(np.asarray(action_high, np.float64).reshape(-1))
    if low.shape != (nu,) or high.shape != (nu,) or not bool((high > low).all()):
        raise ValueError(
            f"the action box needs low < high, both Shape=({nu},); got {low.tolist()}, "
            f"{high.tolist()}."
        )
    shift = np.zeros(obs_dim) if obs_shift is None else np.asarray(obs_shift, np.float64)
    scale = np.ones(obs_dim) if obs_scale is None else np.asarray(obs_scale, np.float64)
    if shift.shape != (obs_dim,) or scale.shape != (obs_dim,) or not np.all(scale > 0):
        raise ValueError(f"obs_shift and obs_scale must be Shape=({obs_dim},), the scale positive.")
    policy.register_buffer("box_mid", (low + high).repeat(copies) / 2)
    policy.register_buffer("box_half", (high - low).repeat(copies) / 2)
    policy.register_buffer("obs_shift", torch.as_tensor(shift))
    policy.register_buffer("obs_scale", torch.as_tensor(scale))


class GenerativePolicy(nn.Module):
    """pi(a_pair | obs) with exact density; see the module docstring.

    Args:
        obs_dim: observation width.
        nu: action width (the pair is 2 * nu wide).
        action_low: the actuator box's lower corner, Shape=(nu,).
        action_high: the actuator box's upper corner, Shape=(nu,).
        config: the network's shape.
        obs_shift: the shift of the observation's normalisation ``(obs - shift) / scale``,
            Shape=(obs_dim,) (None: identity); part of the policy and of its file.
        obs_scale: its scale, Shape=(obs_dim,) (None: identity).
    """

    model_kind: ClassVar[str] = GENPO_KIND.kind
    box_mid: torch.Tensor
    box_half: torch.Tensor
    obs_shift: torch.Tensor
    obs_scale: torch.Tensor
    time: torch.Tensor

    def __init__(
        self,
        obs_dim: int,
        nu: int,
        action_low: ArrayLike,
        action_high: ArrayLike,
        config: GenPOConfig | None = None,
        obs_shift: ArrayLike | None = None,
        obs_scale: ArrayLike | None = None,
    ) -> None:
        super().__init__()
        self.config = config or GenPOConfig()
        self.obs_dim, self.nu = int(obs_dim), int(nu)
        register_box_and_normaliser(
            self, obs_dim, nu, action_low, action_high, obs_shift, obs_scale, copies=2
        )
        cfg = self.config
        self.register_buffer("time", _time_features(cfg.steps, cfg.time_dim))
        n_in = nu + obs_dim + cfg.time_dim
        self.v_x = _mlp(n_in, cfg.hidden, nu)
        self.v_y = _mlp(n_in, cfg.hidden, nu)
        # location and log-scale of both halves, from the observation alone
        self.out = _mlp(obs_dim, cfg.hidden, 4 * nu) if cfg.affine else None
        self.trained_for: dict[str, Any] = {}
        self.float()

    # ---- the flow ---------------------------------------------------------------------------
    def _condition(self, obs: torch.Tensor) -> torch.Tensor:
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"obs must have Shape=(B, {self.obs_dim}), got {tuple(obs.shape)}.")
        return (obs.to(self.obs_shift.dtype) - self.obs_shift) / self.obs_scale

    def _velocity(
        self, net: nn.Module, other: torch.Tensor, cond: torch.Tensor, i: int
    ) -> torch.Tensor:
        t = self.time[i].expand(other.shape[0], -1)
        return net(torch.cat([other, cond, t], dim=1))

    def _affine(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The final affine map's location and log-scale, Shape=(B, 2nu) each (0 if off)."""
        if self.out is None:
            zero = torch.zeros(cond.shape[0], 2 * self.nu, dtype=cond.dtype, device=cond.device)
            return zero, zero
        loc, raw = self.out(cond).chunk(2, dim=1)
        floor = self.config.min_log_scale
        return loc, floor + nn.functional.softplus(raw - floor)

    def flow(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The pre-squash pair ``u`` Shape=(B, 2nu) of base draws ``z`` Shape=(B, 2nu)."""
        return self._flow(obs, z)[0]

    def _flow(self, obs: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u, log|det du/dz|)``, Shape=(B, 2nu) and Shape=(B,)."""
        cond, p, dt, nu = self._condition(obs), self.config.mix, 1.0 / self.config.steps, self.nu
        x, y = z[:, :nu], z[:, nu:]
        for i in range(self.config.steps):
            x = x + dt * self._velocity(self.v_x, y, cond, i)
            y = y + dt * self._velocity(self.v_y, x, cond, i)
            x = p * x + (1 - p) * y
            y = p * y + (1 - p) * x
        loc, log_scale = self._affine(cond)
        u = loc + torch.exp(log_scale) * torch.cat([x, y], dim=1)
        return u, self.flow_log_det + log_scale.sum(dim=1)

    def flow_inverse(self, obs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The base draws ``z`` whose ``flow`` is ``u`` (the exact inverse), Shape=(B, 2nu)."""
        return self._flow_inverse(obs, u)[0]

    def _flow_inverse(
        self, obs: torch.Tensor, u: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log|det du/dz|)`` at the ``z`` that maps to ``u``."""
        cond, p, dt, nu = self._condition(obs), self.config.mix, 1.0 / self.config.steps, self.nu
        loc, log_scale = self._affine(cond)
        v = (u - loc) * torch.exp(-log_scale)
        x, y = v[:, :nu], v[:, nu:]
        for i in reversed(range(self.config.steps)):
            y = (y - (1 - p) * x) / p
            x = (x - (1 - p) * y) / p
            y = y - dt * self._velocity(self.v_y, x, cond, i)
            x = x - dt * self._velocity(self.v_x, y, cond, i)
        return torch.cat([x, y], dim=1), self.flow_log_det + log_scale.sum(dim=1)

    @property
    def flow_log_det(self) -> float:
        """The mixing's part of log|det d flow / d z|: ``2 nu log p`` per step (the
        couplings: 0; the final affine map adds ``sum s(obs)``)."""
        return 2.0 * self.nu * self.config.steps * math.log(self.config.mix)

    def squash(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a, log|det da/du|)``: the pair in the box, Shape=(B, 2nu), and Shape=(B,)."""
        a = self.box_mid + self.box_half * torch.tanh(u)
        return a, (torch.log(self.box_half) + _log_one_minus_tanh_sq(u)).sum(dim=1)

    def unsquash(self, a: torch.Tensor) -> torch.Tensor:
        """The pre-squash ``u`` of a pair ``a`` in the box (faces pulled in by ``_EDGE``)."""
        s = ((a.to(self.box_mid.dtype) - self.box_mid) / self.box_half).clamp(-1 + _EDGE, 1 - _EDGE)
        return torch.atanh(s)

    def base_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; 0, I), Shape=(B,)."""
        return -0.5 * (z**2).sum(dim=1) - 0.5 * z.shape[1] * math.log(2 * math.pi)

    def forward_map(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The action pair of base draws ``z``: ``squash(flow(obs, z))``, Shape=(B, 2nu)."""
        return self.squash(self.flow(obs, z))[0]

    @property
    def latent_dim(self) -> int:
        """Width of the PPO wrapper's action ``u``: 2 nu (the action and its dummy)."""
        return 2 * self.nu

    # ---- the policy -------------------------------------------------------------------------
    def sample(
        self, obs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw action pairs and their exact log-densities.

        Args:
            obs: Shape=(B, obs_dim).
            generator: the draws' source (None: torch's global one).

        Returns:
            ``(action_pair Shape=(B, 2nu), log_prob Shape=(B,))``; the pair is in the box
            (``executed`` gives the action to send).
        """
        cond_dtype = self.box_mid.dtype
        z = torch.randn(
            obs.shape[0], 2 * self.nu, generator=generator, dtype=cond_dtype, device=obs.device
        )
        u, log_det_flow = self._flow(obs, z)
        a, log_det_squash = self.squash(u)
        return a, self.base_log_prob(z) - log_det_flow - log_det_squash

    def log_prob(self, obs: torch.Tensor, action_pair: torch.Tensor) -> torch.Tensor:
        """log pi(action_pair | obs) Shape=(B,) through the exact inverse.

        Args:
            obs: Shape=(B, obs_dim).
            action_pair: Shape=(B, 2nu), inside the box.
        """
        if action_pair.ndim != 2 or action_pair.shape[1] != 2 * self.nu:
            raise ValueError(
                f"action_pair must have Shape=(B, {2 * self.nu}) (action and dummy), got "
                f"{tuple(action_pair.shape)}."
            )
        u = self.unsquash(action_pair)
        z, log_det_flow = self._flow_inverse(obs, u)
        _, log_det_squash = self.squash(u)
        return self.base_log_prob(z) - log_det_flow - log_det_squash

    def sample_latent(
        self, obs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw pre-squash pairs ``u`` Shape=(B, 2nu) and their log-densities Shape=(B,).

        ``squash(u)[0]`` is the action pair of ``sample``. A ratio of two policies'
        densities is the same in ``u`` as in the box (the squash's Jacobian does not
        depend on the policy), and ``u`` keeps its precision in float32 where a pair
        pressed against the box's faces does not (PPO stores its actions in float32):
        the PPO wrapper acts in ``u``.
        """
        z = torch.randn(
            obs.shape[0], 2 * self.nu, generator=generator, dtype=self.box_mid.dtype,
            device=obs.device,
        )  # fmt: skip
        u, log_det_flow = self._flow(obs, z)
        return u, self.base_log_prob(z) - log_det_flow

    def log_prob_latent(self, obs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """log density of pre-squash pairs ``u`` Shape=(B, 2nu), Shape=(B,)."""
        z, log_det_flow = self._flow_inverse(obs, u.to(self.box_mid.dtype))
        return self.base_log_prob(z) - log_det_flow

    def executed_latent(self, u: torch.Tensor) -> torch.Tensor:
        """The action sent to the plant for a pre-squash pair, Shape=(B, nu)."""
        return self.executed(self.squash(u)[0])

    def executed(self, action_pair: torch.Tensor) -> torch.Tensor:
        """The action sent to the plant, Shape=(B, nu): the pair's first half."""
        return action_pair[..., : self.nu]

    def draw_from_normal(
        self, obs: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The executed actions of base draws ``z`` Shape=(B, 2nu) (standard normal),
        Shape=(B, nu), and the exact log-density of the pair drawn, in the box, Shape=(B,)."""
        u, log_det_flow = self._flow(obs, z)
        pair, log_det_squash = self.squash(u)
        return self.executed(pair), self.base_log_prob(z) - log_det_flow - log_det_squash

    def act(self, obs: ArrayLike, generator: torch.Generator | None = None) -> np.ndarray:
        """Executed actions for observations Shape=(B, obs_dim) (numpy in, numpy out)."""
        with torch.no_grad():
            o = torch.as_tensor(
                np.asarray(obs), dtype=self.box_mid.dtype, device=self.box_mid.device
            )
            pair, _ = self.sample(o, generator)
        return self.executed(pair).cpu().numpy().astype(np.float64)


class LatentPolicy(Protocol):
    """What the PPO wrapper (``GenPOActorCritic``) needs of an exact-likelihood policy.

    Its action is a pre-squash latent ``u`` Shape=(B, latent_dim), unbounded, whose
    density is exact; ``executed_latent`` maps it into the actuator box. Implemented by
    ``GenerativePolicy`` (GenPO, the doubled action) and ``FlowPolicy`` (a zuko flow).
    """

    obs_dim: int
    nu: int
    trained_for: dict[str, Any]
    model_kind: ClassVar[str]  # its model file's kind: "genpo_policy", "flow_policy"
    box_mid: torch.Tensor  # the actuator box's centre (its dtype is the policy's)

    @property
    def latent_dim(self) -> int:
        """Width of ``u``."""
        ...

    def sample_latent(
        self, obs: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draws ``u`` Shape=(B, latent_dim) at ``obs`` Shape=(B, obs_dim), log-densities (B,)."""
        ...

    def log_prob_latent(self, obs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The exact log-density of ``u`` Shape=(B, latent_dim), Shape=(B,)."""
        ...

    def executed_latent(self, u: torch.Tensor) -> torch.Tensor:
        """The plant's action of ``u``, Shape=(B, nu), in the actuator box."""
        ...

    def act(self, obs: ArrayLike, generator: torch.Generator | None = None) -> np.ndarray:
        """Sampled plant actions for observations Shape=(B, obs_dim), numpy."""
        ...

    def draw_from_normal(
        self, obs: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Plant actions Shape=(B, nu) of standard-normal draws ``z`` Shape=(B, latent_dim),
        a deterministic map (a replayable sample), and the exact log-density of what was
        drawn, in the box, Shape=(B,) (GenPO: the pair; the flow: the action)."""
        ...


def entropy_estimate(log_prob: torch.Tensor) -> torch.Tensor:
    """H(pi) ~ -mean(log pi(a)) over samples ``a`` of pi: the entropy bonus's estimate."""
    return -log_prob.mean()


def kl_estimate(old_log_prob: torch.Tensor, new_log_prob: torch.Tensor) -> torch.Tensor:
    """KL(pi_old || pi_new) ~ mean(log pi_old(a) - log pi_new(a)) over a ~ pi_old.

    The reference's estimator (what its KL-adaptive learning rate reads); unbiased,
    may be negative on a finite sample.
    """
    return (old_log_prob - new_log_prob).mean()


# ---- the model file -----------------------------------------------------------------------
def write_policy_file(
    policy: Any, path: str | Path, kind: ModelKind, config_key: str, meta: dict[str, Any]
) -> Path:
    """Write an exact-likelihood policy of either kind (``GenerativePolicy``, ``FlowPolicy``):
    its weights, its config under ``config_key``, its actuator box and observation
    normaliser, and ``meta`` (what it was trained for)."""
    document = {
        "obs_dim": policy.obs_dim,
        "nu": policy.nu,
        config_key: policy.config.to_dict(),
        # GenPO's buffers cover the doubled action: the box is their first nu entries
        "action_low": (policy.box_mid - policy.box_half)[: policy.nu].tolist(),
        "action_high": (policy.box_mid + policy.box_half)[: policy.nu].tolist(),
        "obs_shift": policy.obs_shift.tolist(),
        "obs_scale": policy.obs_scale.tolist(),
        "trained_for": meta,
    }
    return write_model_file(path, kind, policy.state_dict(), document)


def read_policy_file(
    path: str | Path, kind: ModelKind, build: Callable[[dict[str, Any]], PolicyT]
) -> PolicyT:
    """The policy in ``path``: ``build(metadata)`` makes it, the file's weights fill it
    (checked), its ``trained_for`` is the file's; errors name the file and what to do."""
    p, meta, tensors = read_model_file(path, kind)
    try:
        policy = build(meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{p} has invalid metadata: {exc!r}. {kind.retrain}") from exc
    check_weights(p, policy.state_dict(), tensors, kind.retrain)
    policy.load_state_dict(tensors)
    policy.trained_for = dict(meta.get("trained_for") or {})  # type: ignore[assignment]  # both kinds declare it
    return policy


def save_policy(policy: GenerativePolicy, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``policy`` (a file, or a directory: its ``policy.safetensors``) with ``meta``
    (what it was trained for: task, steps, ...)."""
    return write_policy_file(policy, path, GENPO_KIND, "genpo_config", meta)


def load_policy(path: str | Path) -> GenerativePolicy:
    """The policy in ``path`` (its ``meta`` under ``policy.trained_for``); errors name the file."""

    def build(meta: dict[str, Any]) -> GenerativePolicy:
        return GenerativePolicy(
            int(meta["obs_dim"]), int(meta["nu"]), meta["action_low"], meta["action_high"],
            GenPOConfig.from_dict(meta["genpo_config"]), meta["obs_shift"], meta["obs_scale"],
        )  # fmt: skip

    return read_policy_file(path, GENPO_KIND, build)
