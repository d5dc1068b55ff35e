"""Configs of the IMLE generator, of the flow and of their training: frozen, validated.

No torch here, so a config can be built, compared and serialised without
loading a deep-learning backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from imle_mpc.core.validation import require_int_at_least, require_non_negative, require_positive
from imle_mpc.learn.records import JsonRecord, known_fields

Architecture = Literal["mlp", "unet"]
ARCHITECTURES: tuple[str, ...] = ("mlp", "unet")
Activation = Literal["silu", "mish", "relu"]
ACTIVATIONS: tuple[str, ...] = ("silu", "mish", "relu")


def _int_tuple(owner: str, field: str, value: Any, minimum: int) -> tuple[int, ...]:
    """Validate a non-empty sequence of integers >= ``minimum``; return it as a tuple."""
    try:
        items = tuple(value)
    except TypeError:
        raise ValueError(
            f"{owner}.{field} must be a non-empty sequence of integers >= {minimum}, got {value!r}."
        ) from None
    if not items:
        raise ValueError(f"{owner}.{field} must not be empty, got {value!r}.")
    for item in items:
        require_int_at_least(owner, field, item, minimum)
    return tuple(int(i) for i in items)


@dataclass(frozen=True)
class GeneratorConfig(JsonRecord):
    """Shape and network of a generator ``G(z, obs_history) -> action chunk``.

    The latent ``z`` has the chunk's size (``latent_dim = horizon * nu``), as in
    IMLE Policy where the U-Net is fed noise in place of the noisy action.

    Attributes:
        architecture: ``"mlp"`` (small and fast on CPU, the default) or
            ``"unet"`` (Diffusion Policy's 1-D temporal conv U-Net with FiLM).
        obs_horizon: past observations the generator is conditioned on (>= 1).
        horizon: H, actions per predicted chunk (>= 1).
        action_horizon: actions of a chunk meant to be executed before
            re-planning (1 <= action_horizon <= horizon).
        mlp_hidden: widths of the MLP's hidden layers (the default, ~140k
            parameters, decodes 1024 chunks in a few ms on one CPU core).
        mlp_activation: the MLP's nonlinearity, ``"silu"`` (default: about 3x
            cheaper than Mish on CPU), ``"mish"`` or ``"relu"``. The U-Net
            always uses Mish, as Diffusion Policy does.
        unet_down_dims: channels of the U-Net's levels; ``horizon`` must be
            divisible by ``2 ** (len(unet_down_dims) - 1)``.
        unet_kernel_size: odd temporal kernel size of the U-Net's convolutions.
        unet_groups: GroupNorm groups; must divide every entry of ``unet_down_dims``.
        unet_timestep_embed_dim: 0 for IMLE (no timestep). > 0 adds Diffusion
            Policy's sinusoidal timestep embedding to the FiLM input, so the
            identical network can be run as a denoising loop (benchmarks only).
    """

    architecture: Architecture = "mlp"
    obs_horizon: int = 2
    horizon: int = 16
    action_horizon: int = 8
    mlp_hidden: tuple[int, ...] = (128, 128, 128)
    mlp_activation: Activation = "silu"
    unet_down_dims: tuple[int, ...] = (32, 64, 128)
    unet_kernel_size: int = 5
    unet_groups: int = 8
    unet_timestep_embed_dim: int = 0

    def __post_init__(self) -> None:
        owner = type(self).__name__
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"{owner}.architecture must be one of {ARCHITECTURES}, got {self.architecture!r}."
            )
        require_int_at_least(owner, "obs_horizon", self.obs_horizon, 1)
        require_int_at_least(owner, "horizon", self.horizon, 1)
        require_int_at_least(owner, "action_horizon", self.action_horizon, 1)
        if self.action_horizon > self.horizon:
            raise ValueError(
                f"{owner}.action_horizon={self.action_horizon} must be <= horizon="
                f"{self.horizon}: only actions of the predicted chunk can be executed."
            )
        if self.mlp_activation not in ACTIVATIONS:
            raise ValueError(
                f"{owner}.mlp_activation must be one of {ACTIVATIONS}, got {self.mlp_activation!r}."
            )
        # Lists from JSON or user code become tuples so the config stays hashable.
        object.__setattr__(self, "mlp_hidden", _int_tuple(owner, "mlp_hidden", self.mlp_hidden, 1))
        down = _int_tuple(owner, "unet_down_dims", self.unet_down_dims, 1)
        object.__setattr__(self, "unet_down_dims", down)
        require_int_at_least(owner, "unet_kernel_size", self.unet_kernel_size, 1)
        if self.unet_kernel_size % 2 == 0:
            raise ValueError(
                f"{owner}.unet_kernel_size must be odd (same-length convolutions), "
                f"got {self.unet_kernel_size}."
            )
        require_int_at_least(owner, "unet_groups", self.unet_groups, 1)
        bad = [d for d in down if d % self.unet_groups]
        if bad:
            raise ValueError(
                f"{owner}.unet_groups={self.unet_groups} must divide every entry of "
                f"unet_down_dims={down}; {bad} are not multiples of it."
            )
        require_int_at_least(owner, "unet_timestep_embed_dim", self.unet_timestep_embed_dim, 0)
        if self.unet_timestep_embed_dim % 2:
            raise ValueError(
                f"{owner}.unet_timestep_embed_dim must be even (sin and cos halves), "
                f"got {self.unet_timestep_embed_dim}."
            )
        if self.architecture == "unet":
            factor = 2 ** (len(down) - 1)
            if self.horizon % factor:
                raise ValueError(
                    f"{owner}.horizon={self.horizon} must be divisible by {factor} = 2 ** "
                    f"(len(unet_down_dims) - 1) for the U-Net's down/up sampling; change "
                    "horizon or use fewer unet_down_dims."
                )

    @classmethod
    def paper_unet(cls, **overrides: Any) -> GeneratorConfig:
        """The paper-sized U-Net (Diffusion Policy's widths (256, 512, 1024), kernel 5).

        About 61M parameters for a low-dimensional observation (counted in
        the tests, never run there).
        """
        values: dict[str, Any] = {
            "architecture": "unet",
            "unet_down_dims": (256, 512, 1024),
            "unet_kernel_size": 5,
            "unet_groups": 8,
        }
        values.update(overrides)
        return cls(**values)

    def latent_dim(self, nu: int) -> int:
        """Size of the latent ``z`` for actions of size ``nu``: ``horizon * nu``."""
        return self.horizon * nu


@dataclass(frozen=True)
class TrainConfig(JsonRecord):
    """Settings of conditional RS-IMLE training (and of the flow's: the same optimiser).

    The flow (``imle_mpc.learn.flow.train_flow``) uses every field but the two of
    RS-IMLE, ``num_candidates`` and ``epsilon``.

    The defaults are the ones that work on the few-demonstration tasks here (and the
    ``imle-mpc train`` defaults, read from this class): 400 epochs at lr 1e-3 with
    100 warm-up steps. IMLE Policy's (100 epochs, lr 1e-4, 500 warm-up steps) left
    a three-route task with 30 demonstrations mode-collapsed (route shares 19/57/24 %,
    final loss 0.46) where these kept all three (39/31/30 %).

    Attributes:
        epochs: passes over the training pairs (>= 1).
        batch_size: data points per optimiser step (>= 1).
        num_candidates: m, latents drawn per data point per step (>= 1).
        epsilon: rejection radius in the normalised, flattened chunk space;
            candidates within this distance of their data point are discarded
            (>= 0; 0 is plain conditional IMLE). Keep it below the spread of the
            demonstrations within one mode: when every candidate near a
            demonstration is rejected, the nearest remaining one may come from
            another mode and gets pulled over, so modes stay covered but their
            sample shares drift apart.
        lr: peak AdamW learning rate (> 0).
        weight_decay: AdamW weight decay (>= 0).
        warmup_steps: optimiser steps of linear warm-up before the cosine
            decay to 0 (>= 0).
        grad_clip: max global gradient norm (> 0; ``inf`` disables clipping).
        ema_power: EMA warm-up power: decay at step k is
            ``min(ema_max_decay, 1 - (1 + k) ** -ema_power)`` (> 0).
        ema_max_decay: upper bound of the EMA decay, in [0, 1).
        seed: seed of the torch generator behind init, shuffling and latents.
        checkpoint_every: epochs between checkpoints when an ``out_dir`` is
            given (>= 1); the last epoch is always saved.
        device: torch device to train on (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    """

    epochs: int = 400
    batch_size: int = 256
    num_candidates: int = 20
    epsilon: float = 0.03
    lr: float = 1e-3
    weight_decay: float = 1e-6
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_power: float = 0.75
    ema_max_decay: float = 0.9999
    seed: int = 0
    checkpoint_every: int = 10
    device: str = "cpu"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        require_int_at_least(owner, "epochs", self.epochs, 1)
        require_int_at_least(owner, "batch_size", self.batch_size, 1)
        require_int_at_least(owner, "num_candidates", self.num_candidates, 1)
        require_non_negative(owner, "epsilon", self.epsilon)
        require_positive(owner, "lr", self.lr)
        require_non_negative(owner, "weight_decay", self.weight_decay)
        require_int_at_least(owner, "warmup_steps", self.warmup_steps, 0)
        if not (self.grad_clip > 0):  # inf allowed: no clipping
            raise ValueError(
                f"{owner}.grad_clip must be > 0 (inf disables clipping), got {self.grad_clip!r}."
            )
        require_positive(owner, "ema_power", self.ema_power)
        if not (0.0 <= self.ema_max_decay < 1.0):
            raise ValueError(
                f"{owner}.ema_max_decay must be in [0, 1), got {self.ema_max_decay!r}."
            )
        require_int_at_least(owner, "seed", self.seed, 0)
        require_int_at_least(owner, "checkpoint_every", self.checkpoint_every, 1)
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(
                f"{owner}.device must be a torch device string such as 'cpu' or 'cuda', "
                f"got {self.device!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict; ``inf`` grad_clip is stored as the string "inf"."""
        data = super().to_dict()
        if math.isinf(data["grad_clip"]):
            data["grad_clip"] = "inf"
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_dict``; unknown keys are an error naming them."""
        values = known_fields(cls, data)
        if values.get("grad_clip") == "inf":
            values["grad_clip"] = math.inf
        return cls(**values)


@dataclass(frozen=True)
class FlowConfig(JsonRecord):
    """Shape of a conditional normalizing flow over action chunks, and what its training adds.

    The flow maps a chunk (min-max normalised onto the box [-1, 1]^(H*nu)) onto a
    latent uniformly distributed on the same box, through ``transforms`` coupling
    layers of monotonic rational-quadratic splines defined on [-1, 1] (zuko's
    ``GeneralCouplingTransform`` and ``MonotonicRQSTransform``). Each spline maps
    the interval onto itself, so the flow is a bijection of the box: every latent
    in it decodes to a chunk inside the demonstrations' action range, and the
    density is exact (change of variables).

    Attributes:
        obs_horizon: past observations the flow is conditioned on (>= 1). The density
            guard conditions on the state a plan starts from, so it needs 1 (the default).
        horizon: H, actions per chunk (>= 1).
        action_horizon: actions of a chunk meant to be executed before re-planning.
        transforms: coupling layers (>= 1); each splits the chunk's entries at random
            (seeded) into the half that conditions and the half that is transformed.
        bins: spline bins per entry (>= 2).
        hidden: widths of each coupling layer's hyper-network (ReLU MLP).
        noise_std: std of the noise added to the normalised training chunks (>= 0),
            reflected at the faces of the box. Demonstrated chunks are smooth and lie
            near a low-dimensional set; without it the density collapses onto them and
            held-out demonstrations look unlikely.
        held_out_fraction: share of the episodes (per route, where the data names
            them) kept out of training to calibrate the density threshold, in (0, 1).
    """

    obs_horizon: int = 1
    horizon: int = 16
    action_horizon: int = 8
    transforms: int = 6
    bins: int = 8
    hidden: tuple[int, ...] = (128, 128)
    noise_std: float = 0.01
    held_out_fraction: float = 0.2

    def __post_init__(self) -> None:
        owner = type(self).__name__
        require_int_at_least(owner, "obs_horizon", self.obs_horizon, 1)
        require_int_at_least(owner, "horizon", self.horizon, 1)
        require_int_at_least(owner, "action_horizon", self.action_horizon, 1)
        if self.action_horizon > self.horizon:
            raise ValueError(
                f"{owner}.action_horizon={self.action_horizon} must be <= horizon="
                f"{self.horizon}: only actions of the predicted chunk can be executed."
            )
        require_int_at_least(owner, "transforms", self.transforms, 1)
        require_int_at_least(owner, "bins", self.bins, 2)
        object.__setattr__(self, "hidden", _int_tuple(owner, "hidden", self.hidden, 1))
        require_non_negative(owner, "noise_std", self.noise_std)
        if not (0.0 < self.held_out_fraction < 1.0):
            raise ValueError(
                f"{owner}.held_out_fraction must be in (0, 1) (some episodes to calibrate "
                f"on, the rest to train on), got {self.held_out_fraction!r}."
            )

    def latent_dim(self, nu: int) -> int:
        """Size of the latent for actions of size ``nu``: ``horizon * nu`` (a bijection)."""
        return self.horizon * nu


@dataclass(frozen=True)
class ResidualSACConfig(JsonRecord):
    """Online SAC for a residual on a frozen base (``imle_mpc.learn.residual``).

    The defaults are Policy Decorator's reference settings where they carry over
    (gamma 0.97, tau 0.01, 0.25 gradient updates per environment step, rounds of
    updates every 64 steps, the actor's last layer initialised with std 0.01 so the
    residual starts near zero) and stable-baselines3's otherwise (2 x 256 networks,
    learning rate 3e-4, the entropy coefficient tuned to an entropy of -nu). The
    reference's 3 x 256 networks at batch 1024 cost 158 ms an update on one loaded
    CPU core (50k updates in a 200k-step run: over two hours); 2 x 256 at batch 512
    fits a run into well under an hour on two cores. Two departures, measured on
    ``push_block``'s ``heavy`` setting (the reward only at the episode's end): gSDE
    exploration and 8-step returns (with per-step Gaussian noise and one-step targets
    40k steps left the residual at ~0; with both, 100k steps took the evaluation's
    success from 0.63 to 0.93).

    Attributes:
        total_steps: environment steps of the run, over all environments.
        num_envs: environments stepped together (one batched actor call a step).
        gamma: discount.
        tau: soft target-update rate.
        batch_size: transitions per gradient step.
        learning_rate: Adam's for actor, critics and the entropy coefficient.
        update_to_data: gradient steps per environment step.
        train_every: environment steps (over all envs) between rounds of updates;
            a multiple of ``num_envs``, with ``train_every * update_to_data`` whole.
        learning_starts: environment steps before the first update (the residual's
            exploration noise around ~0 in episodes the schedule switches on;
            uniformly random residuals without ``sde``).
        buffer_size: replay transitions kept (0: ``total_steps``).
        hidden: widths of the actor's and the critics' hidden layers (ReLU).
        sde: explore with SB3's generalized state-dependent noise (gSDE): the noise
            is a function of the state whose weights are drawn anew at each round of
            updates (every ``train_every / num_envs`` steps of an env), so a residual
            explored keeps its direction for a while. False: fresh Gaussian noise
            every step, as the reference.
        actor_init_std: gain of the orthogonal init of the actor's last layers
            (mean, and log-std without ``sde``), so ``r = tanh(mean) ~ 0`` at the start.
        initial_log_std: the exploration noise's initial log std: the log-std
            layer's bias without ``sde`` (-1: noise of std 0.37 before the tanh),
            the noise weights' with it (SB3's ``log_std_init``, -3).
        ent_coef: ``"auto"`` (tuned) or a fixed entropy coefficient as a string number.
        n_steps: the critic's targets are n-step returns (SB3's ``NStepReplayBuffer``);
            1: one-step targets, as the reference. With the reward only at the
            episode's end, 8 steps (as long as gSDE keeps a noise draw) carry it
            back faster.
        checkpoint_every: environment steps between resumable checkpoints.
        seed: seed of the networks, the random warm-up and the environments.
        device: torch device.
    """

    total_steps: int = 100_000
    num_envs: int = 8
    gamma: float = 0.97
    tau: float = 0.01
    batch_size: int = 512
    learning_rate: float = 3e-4
    update_to_data: float = 0.25
    train_every: int = 64
    learning_starts: int = 5_000
    buffer_size: int = 0
    hidden: tuple[int, ...] = (256, 256)
    sde: bool = True
    actor_init_std: float = 0.01
    initial_log_std: float = -3.0
    ent_coef: str = "auto"
    n_steps: int = 8
    checkpoint_every: int = 10_000
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name in (
            "total_steps",
            "num_envs",
            "batch_size",
            "train_every",
            "checkpoint_every",
            "n_steps",
        ):
            require_int_at_least(owner, name, getattr(self, name), 1)
        for name in ("learning_starts", "buffer_size", "seed"):
            require_int_at_least(owner, name, getattr(self, name), 0)
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"{owner}.gamma must be in (0, 1], got {self.gamma!r}.")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"{owner}.tau must be in (0, 1], got {self.tau!r}.")
        require_positive(owner, "learning_rate", self.learning_rate)
        require_positive(owner, "update_to_data", self.update_to_data)
        require_positive(owner, "actor_init_std", self.actor_init_std)
        if not math.isfinite(self.initial_log_std):
            raise ValueError(f"{owner}.initial_log_std must be finite, got {self.initial_log_std}.")
        if self.train_every % self.num_envs:
            raise ValueError(
                f"{owner}.train_every={self.train_every} must be a multiple of num_envs="
                f"{self.num_envs} (the envs step together)."
            )
        updates = self.train_every * self.update_to_data
        if updates < 1 or not float(updates).is_integer():
            raise ValueError(
                f"{owner}: train_every * update_to_data = {updates:g} must be a whole number "
                ">= 1 of gradient steps; change train_every."
            )
        object.__setattr__(self, "hidden", _int_tuple(owner, "hidden", self.hidden, 1))
        if self.ent_coef != "auto":
            try:
                require_positive(owner, "ent_coef", float(self.ent_coef))
            except ValueError:
                raise ValueError(
                    f"{owner}.ent_coef must be 'auto' or a number > 0, got {self.ent_coef!r}."
                ) from None

    @property
    def gradient_steps(self) -> int:
        """Gradient steps per round of updates (``train_every * update_to_data``)."""
        return round(self.train_every * self.update_to_data)


@dataclass(frozen=True)
class OfflineRLConfig(JsonRecord):
    """Offline TD3+BC (``imle_mpc.learn.offline``): the published defaults (Fujimoto and
    Gu, 2021) at a smaller budget.

    The actor maximises ``lam * Q(s, pi(s)) - (pi(s) - a)^2`` with
    ``lam = alpha / mean |Q|`` over the batch; the twin critics learn from clipped
    double-Q targets with target-policy smoothing. Actions (raw, or the flow's latents)
    are in [-1, 1]^d, the actor's output a tanh.

    Attributes:
        steps: gradient steps of the critics (the actor is updated every ``policy_delay``).
        batch_size: transitions per step.
        gamma: discount.
        tau: soft target-update rate.
        learning_rate: Adam's, actor and critics.
        hidden: widths of the actor's and the critics' hidden layers (ReLU).
        alpha: weight of the Q term against the behaviour-cloning term; 0: behaviour
            cloning alone (the actor ignores the critics, which are not trained).
        bc_weight: weight of the behaviour-cloning term; 0: TD3 alone (the actor
            maximises Q, scaled by ``alpha / mean |Q|``), the CNF paper's agent, which
            relies on the flow's bounded latent for conservatism instead.
        policy_noise: std of the target-policy smoothing noise (action units of the box).
        noise_clip: that noise is clipped to +-this.
        policy_delay: critic steps per actor step.
        seed: seed of the networks and the batches.
        device: torch device.
    """

    steps: int = 20_000
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005
    learning_rate: float = 3e-4
    hidden: tuple[int, ...] = (256, 256)
    alpha: float = 2.5
    bc_weight: float = 1.0
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_delay: int = 2
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name in ("steps", "batch_size", "policy_delay"):
            require_int_at_least(owner, name, getattr(self, name), 1)
        require_int_at_least(owner, "seed", self.seed, 0)
        if not 0.0 < self.gamma < 1.0:
            raise ValueError(f"{owner}.gamma must be in (0, 1), got {self.gamma!r}.")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"{owner}.tau must be in (0, 1], got {self.tau!r}.")
        require_positive(owner, "learning_rate", self.learning_rate)
        for name in ("alpha", "bc_weight", "policy_noise", "noise_clip"):
            require_non_negative(owner, name, getattr(self, name))
        if self.alpha == 0.0 and self.bc_weight == 0.0:
            raise ValueError(f"{owner}: alpha and bc_weight are both 0: the actor learns nothing.")
        object.__setattr__(self, "hidden", _int_tuple(owner, "hidden", self.hidden, 1))
