"""PPO fine-tuning of the exact-likelihood policies (and of a Gaussian one) with stable-baselines3.

Stable-baselines3 supplies PPO (the clipped objective, GAE, minibatch epochs, value
loss, the rollout buffer and the truncation bootstrap through
``infos[i]["terminal_observation"]``). What GenPO needs and SB3 lacks, written here:

* ``GenPOActorCritic``: an ``ActorCriticPolicy`` whose action distribution is an
  exact-likelihood ``LatentPolicy`` of ``policy_kind`` (``POLICY_KINDS``): the
  ``GenerativePolicy`` (``"genpo"``) or the zuko ``FlowPolicy`` (``"flow"``, one action,
  no dummy: its latent is ``nu`` wide; what follows for the pair holds for it).
  SB3's action is the doubled pair (action and dummy, ``2 nu``)
  before the squash into the box (``GenerativePolicy.sample_latent``; a Box of +-30,
  as SB3 wants finite bounds, beyond which tanh is 1 in float64; the env's
  ``action_map`` squashes and drops the dummy): the ratio of two policies is the same
  there, and SB3 stores actions in float32, in which a pair pressed against the box's
  faces loses its precision (measured: with the squashed pair as SB3's action the KL
  estimate stayed at 0.04-0.1 per update at the learning rate's floor of 1e-5).
  ``forward`` samples and gives the log-density, ``evaluate_actions`` the exact
  log-density of stored pairs through the inverse and no entropy, on which SB3 uses
  ``-mean(log_prob)`` of the batch: the entropy bonus is GenPO's estimate without code.
  The log-density of a sample is recomputed from the stored (float32) pair, as
  ``evaluate_actions`` will, so the first ratio is 1 exactly.
* ``AdaptivePPO``: the KL-adaptive learning rate of rsl_rl / the reference (lr / 1.5
  when the KL estimate exceeds twice ``desired_kl``, x 1.5 below half of it, within
  [1e-5, 1e-2]). SB3 has only a fixed schedule and ``target_kl`` early stopping. The
  KL is the log-prob estimate ``mean(log pi_old - log pi_new)`` over the rollout,
  measured after each ``train`` (the reference adapts after every minibatch; one
  adaptation per rollout keeps SB3's ``train`` untouched). The critic may keep a
  fixed rate of its own (``PPOConfig.critic_learning_rate``): the optimiser has an
  actor and a critic parameter group (``split_optimizer``).
* The Gaussian baseline is SB3's own ``MlpPolicy`` through the same code path; its
  mean network is behaviour-cloned (MSE) on the same demonstrations (``bc_gaussian``).
* Both see the observation normalised by the demonstrations' statistics
  (``NormalisedObservation``, SB3 has only the env-side ``VecNormalize``, whose running
  statistics would move under a cloned policy).
* Atomic, resumable checkpoints (as ``imle_mpc.learn.residual.sac``): every
  ``checkpoint_every`` steps, at the start of a rollout, the SB3 model goes to a
  step-numbered zip and ``checkpoint.json`` commits it; ``resume=True`` continues.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from imle_mpc.learn.genpo.flow_policy import FlowPolicy, FlowPolicyConfig
from imle_mpc.learn.genpo.policy import GenerativePolicy, GenPOConfig, LatentPolicy, kl_estimate
from imle_mpc.learn.genpo.vec_env import BatchedVecEnv
from imle_mpc.learn.model_file import CheckpointError
from imle_mpc.learn.records import JsonRecord
from imle_mpc.learn.sb3_run import CHECKPOINT_FILE, RunFile, RunHooks, read_checkpoint

LR_BOUNDS = (1e-5, 1e-2)
"""The adaptive learning rate's range (the reference's)."""


@dataclass(frozen=True)
class PPOConfig(JsonRecord):
    """The PPO run's settings (shared by both policies).

    Attributes:
        total_steps: environment steps of the run.
        n_steps: steps per environment per rollout.
        batch_size: minibatch size (at most a rollout's ``n_steps * num_envs``).
        n_epochs: passes over a rollout.
        learning_rate: the initial learning rate (adapted if ``desired_kl``).
        desired_kl: the KL target of the adaptive learning rate (None: fixed rate).
        critic_learning_rate: the value network's fixed rate (None: the actor's,
            adapted with it). The KL adaptation reads the actor alone, and the
            generative policy's KL estimates held its rate at 2e-5-2e-4 (the Gaussian's
            rose to 1e-3), so its critic learnt 5-50x slower: with the critic at 1e-3,
            GenPO seed 0 went 11 % -> 70 % success in 300k steps (1 % before), seed 1
            0 % -> 6 % (1 % before).
        gamma, gae_lambda, clip_range, ent_coef, vf_coef, max_grad_norm: SB3's PPO.
        critic_hidden: the value network's hidden widths.
        gaussian_log_std: the Gaussian baseline's initial log-std (in the action's units).
        checkpoint_every: environment steps between checkpoints.
        seed: SB3's seed (networks, sampling); the envs' first reset uses it too.
        device: torch device.
    """

    total_steps: int = 200_000
    n_steps: int = 90
    batch_size: int = 1440
    n_epochs: int = 5
    learning_rate: float = 3e-4
    desired_kl: float | None = 0.01
    critic_learning_rate: float | None = 1e-3
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 1.0
    critic_hidden: tuple[int, ...] = (64, 64)
    gaussian_log_std: float = -0.5
    checkpoint_every: int = 20_000
    seed: int = 0
    device: str = "cpu"


class NormalisedObservation(BaseFeaturesExtractor):
    """``(obs - shift) / scale`` with fixed statistics (the demonstrations')."""

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, observation_space: gym.spaces.Box, shift: Any, scale: Any) -> None:
        super().__init__(observation_space, int(np.prod(observation_space.shape)))
        self.register_buffer("shift", torch.as_tensor(np.asarray(shift), dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale), dtype=torch.float32))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return (observations - self.shift) / self.scale


CRITIC_GROUP = "critic"
"""The name of the optimiser's parameter group of the value network."""


def split_optimizer(policy: ActorCriticPolicy, lr: float) -> None:
    """Rebuild ``policy.optimizer`` with two parameter groups: the actor's, then the
    critic's (``name`` ``CRITIC_GROUP``: ``mlp_extractor.value_net`` and ``value_net``),
    so the critic may have a rate of its own (``AdaptivePPO``). Adam is per parameter:
    with equal rates the two groups are the one group's update."""
    critic = [*policy.mlp_extractor.value_net.parameters(), *policy.value_net.parameters()]
    ids = {id(q) for q in critic}
    actor = [q for q in policy.parameters() if id(q) not in ids]
    groups: list[dict[str, Any]] = [{"params": actor}, {"params": critic, "name": CRITIC_GROUP}]
    policy.optimizer = policy.optimizer_class(  # type: ignore[call-arg]
        groups, lr=lr,
        **policy.optimizer_kwargs,
    )  # fmt: skip


class GaussianActorCritic(ActorCriticPolicy):
    """SB3's ``MlpPolicy`` with the optimiser split into actor and critic groups
    (``split_optimizer``)."""

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        split_optimizer(self, lr_schedule(1))


def build_latent_policy(
    kind: str,
    obs_dim: int,
    low: Sequence[float],
    high: Sequence[float],
    config: dict[str, Any],
    obs_shift: Sequence[float],
    obs_scale: Sequence[float],
) -> LatentPolicy:
    """The exact-likelihood policy of ``kind`` (``POLICY_KINDS``) from its config dict."""
    if kind == "genpo":
        return GenerativePolicy(
            obs_dim, len(low), low, high, GenPOConfig.from_dict(config), obs_shift, obs_scale
        )
    if kind == "flow":
        return FlowPolicy(
            obs_dim, len(low), low, high, FlowPolicyConfig.from_dict(config), obs_shift, obs_scale
        )
    raise ValueError(f"policy kind {kind!r} is not one of {POLICY_KINDS}.")


POLICY_KINDS = ("genpo", "flow")
"""The exact-likelihood policies ``GenPOActorCritic`` takes."""


class GenPOActorCritic(ActorCriticPolicy):
    """SB3's actor-critic with an exact-likelihood policy as its distribution (module docstring).

    Extra keyword arguments (``policy_kwargs``): ``policy_kind`` (``POLICY_KINDS``;
    ``"genpo"`` by default, as runs saved before the flow kind), ``genpo_config`` (the
    kind's config as a dict: ``GenPOConfig`` or ``FlowPolicyConfig``; the name is from
    when GenPO was the only kind, kept so older runs load), ``action_low``/``action_high``
    (the plant's box, Shape=(nu,)), ``obs_shift``/``obs_scale`` (the normalisation),
    ``critic_hidden``.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Space[Any],
        action_space: gym.spaces.Space[Any],
        lr_schedule: Schedule,
        *,
        genpo_config: dict[str, Any],
        action_low: list[float],
        action_high: list[float],
        obs_shift: list[float],
        obs_scale: list[float],
        critic_hidden: tuple[int, ...] = (64, 64),
        policy_kind: str = "genpo",
        **kwargs: Any,
    ) -> None:
        self._genpo: dict[str, Any] = dict(
            policy_kind=policy_kind, genpo_config=genpo_config, action_low=list(action_low),
            action_high=list(action_high), obs_shift=list(obs_shift), obs_scale=list(obs_scale),
        )  # fmt: skip
        kwargs.setdefault("net_arch", {"pi": [], "vf": list(critic_hidden)})
        kwargs.setdefault("features_extractor_class", NormalisedObservation)
        kwargs.setdefault("features_extractor_kwargs", {"shift": obs_shift, "scale": obs_scale})
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        g = self._genpo
        space = self.observation_space
        assert space.shape is not None
        self.actor: LatentPolicy = build_latent_policy(
            g["policy_kind"], int(np.prod(space.shape)), g["action_low"], g["action_high"],
            g["genpo_config"], g["obs_shift"], g["obs_scale"],
        )  # fmt: skip
        assert isinstance(self.actor, nn.Module)
        if self.action_space.shape != (self.actor.latent_dim,):
            raise ValueError(
                f"the {g['policy_kind']} policy acts in a latent of {self.actor.latent_dim}; "
                f"the env's action space is {self.action_space}: build the env with "
                f"make_vec_env(task, n, {g['policy_kind']!r})."
            )
        self._build_mlp_extractor()
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        split_optimizer(self, lr_schedule(1))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self._genpo)
        return data

    def _values(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.extract_features(obs)
        assert isinstance(features, torch.Tensor)
        return self.value_net(self.mlp_extractor.forward_critic(features))

    def forward(
        self, obs: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # deterministic has no meaning for a generative policy: it always samples
        obs = obs.float()
        u = self.actor.sample_latent(obs)[0].detach().float()  # float32, as SB3 stores it
        return u, self._values(obs), self.actor.log_prob_latent(obs, u)

    def evaluate_actions(
        self, obs: PyTorchObs, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        o = _tensor(obs)
        return self._values(o), self.actor.log_prob_latent(o, actions.float()), None

    def predict_values(self, obs: PyTorchObs) -> torch.Tensor:
        return self._values(_tensor(obs))

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> torch.Tensor:
        return self.actor.sample_latent(_tensor(observation))[0]


def _tensor(obs: PyTorchObs) -> torch.Tensor:
    """A flat Box observation as float32 (the generative policy takes no dict spaces)."""
    if not isinstance(obs, torch.Tensor):
        raise TypeError("GenPOActorCritic needs a Box observation space, not a Dict one.")
    return obs.float()


class _AdaptiveRate:
    """SB3's ``lr_schedule``: the adaptive rate's current value, whatever the progress."""

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def __call__(self, progress_remaining: float) -> float:
        return self.value


class AdaptivePPO(PPO):
    """SB3's PPO with the KL-adaptive learning rate (module docstring).

    Args:
        desired_kl: the KL target (None: SB3's fixed ``learning_rate``).
        critic_learning_rate: the critic group's fixed rate (None: the actor's).
        *args: SB3's ``PPO``.
        **kwargs: SB3's ``PPO``.
    """

    def __init__(
        self,
        *args: Any,
        desired_kl: float | None = 0.01,
        critic_learning_rate: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.desired_kl = desired_kl
        self.critic_learning_rate = critic_learning_rate
        self.adaptive_lr = float(kwargs.get("learning_rate", 3e-4))
        super().__init__(*args, **kwargs)

    def _setup_lr_schedule(self) -> None:
        if self.desired_kl is None:
            super()._setup_lr_schedule()
        else:
            self.lr_schedule = _AdaptiveRate(self.adaptive_lr)

    def _update_learning_rate(
        self, optimizers: list[torch.optim.Optimizer] | torch.optim.Optimizer
    ) -> None:
        super()._update_learning_rate(optimizers)
        if self.critic_learning_rate is None:
            return
        for group in self.policy.optimizer.param_groups:
            if group.get("name") == CRITIC_GROUP:
                group["lr"] = self.critic_learning_rate
        self.logger.record("train/critic_learning_rate", self.critic_learning_rate)

    def train(self) -> None:
        super().train()
        kl = self.rollout_kl()
        self.logger.record("train/kl_logprob", kl)
        if self.desired_kl is not None and isinstance(self.lr_schedule, _AdaptiveRate):
            lr = self.adaptive_lr
            if kl > 2.0 * self.desired_kl:
                lr = max(LR_BOUNDS[0], lr / 1.5)
            elif kl < self.desired_kl / 2.0:
                lr = min(LR_BOUNDS[1], lr * 1.5)
            self.adaptive_lr = self.lr_schedule.value = lr
        self.logger.record("train/adaptive_lr", self.adaptive_lr)
        self.last_kl = kl

    @torch.no_grad()
    def rollout_kl(self) -> float:
        """``kl_estimate`` of the rollout's actions: the policy that sampled them vs now."""
        total, count = 0.0, 0
        for data in self.rollout_buffer.get(self.batch_size):
            _, log_prob, _ = self.policy.evaluate_actions(data.observations, data.actions)
            n = int(log_prob.shape[0])
            total += float(kl_estimate(data.old_log_prob, log_prob.flatten())) * n
            count += n
        return total / max(count, 1)


def build_ppo(
    kind: str,
    env: BatchedVecEnv,
    config: PPOConfig,
    obs_shift: np.ndarray,
    obs_scale: np.ndarray,
    genpo_config: GenPOConfig | None = None,
    flow_config: FlowPolicyConfig | None = None,
) -> AdaptivePPO:
    """The learner of ``kind`` (``"genpo"``, ``"flow"`` or ``"gaussian"``) on ``env``.

    For ``genpo`` ``env``'s action space must be the doubled pre-squash pair (a
    wide Box of ``2 nu``, ``genpo_action_map`` its ``action_map``), for ``flow`` the
    pre-squash action (``nu``, the same map); for ``gaussian`` the plant's box.
    """
    common: dict[str, Any] = dict(
        n_steps=config.n_steps, n_epochs=config.n_epochs,
        batch_size=min(config.batch_size, config.n_steps * env.num_envs),  # at most a rollout
        learning_rate=config.learning_rate, gamma=config.gamma, gae_lambda=config.gae_lambda,
        clip_range=config.clip_range, ent_coef=config.ent_coef, vf_coef=config.vf_coef,
        max_grad_norm=config.max_grad_norm, seed=config.seed, device=config.device, verbose=0,
        desired_kl=config.desired_kl, critic_learning_rate=config.critic_learning_rate,
    )  # fmt: skip
    low = env.env.dynamics.action_low
    high = env.env.dynamics.action_high
    if kind in POLICY_KINDS:
        shape: GenPOConfig | FlowPolicyConfig = genpo_config or GenPOConfig()
        if kind == "flow":
            shape = flow_config or FlowPolicyConfig()
        policy_kwargs: dict[str, Any] = dict(
            policy_kind=kind, genpo_config=shape.to_dict(),
            action_low=np.asarray(low, float).tolist(),
            action_high=np.asarray(high, float).tolist(),
            obs_shift=np.asarray(obs_shift, float).tolist(),
            obs_scale=np.asarray(obs_scale, float).tolist(),
            critic_hidden=tuple(config.critic_hidden),
        )  # fmt: skip
        return AdaptivePPO(GenPOActorCritic, env, policy_kwargs=policy_kwargs, **common)
    if kind == "gaussian":
        policy_kwargs = dict(
            net_arch={"pi": list(genpo_config.hidden if genpo_config else (64, 64)),
                      "vf": list(config.critic_hidden)},
            features_extractor_class=NormalisedObservation,
            features_extractor_kwargs={"shift": np.asarray(obs_shift, float).tolist(),
                                       "scale": np.asarray(obs_scale, float).tolist()},
            log_std_init=config.gaussian_log_std,
        )  # fmt: skip
        return AdaptivePPO(GaussianActorCritic, env, policy_kwargs=policy_kwargs, **common)
    raise ValueError(f"policy kind {kind!r} is not one of {(*POLICY_KINDS, 'gaussian')}.")


def genpo_action_map(low: Any, high: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The plant's action of a pre-squash pair (N, 2nu): its first half squashed into
    the box, ``mid + half * tanh(u_x)`` (``GenerativePolicy.executed_latent``)."""
    lo, hi = np.asarray(low, np.float64), np.asarray(high, np.float64)
    mid, half, nu = (lo + hi) / 2, (hi - lo) / 2, lo.shape[0]

    def action_map(u: np.ndarray) -> np.ndarray:
        return mid + half * np.tanh(np.asarray(u, np.float64)[:, :nu])

    return action_map


def load_genpo_weights(model: AdaptivePPO, policy: nn.Module) -> None:
    """Start ``model``'s exact-likelihood actor from ``policy`` (the behaviour-cloned one,
    of the model's kind)."""
    assert isinstance(model.policy, GenPOActorCritic)
    actor = model.policy.actor
    assert isinstance(actor, nn.Module)
    actor.load_state_dict(policy.state_dict())


def bc_gaussian(
    model: AdaptivePPO,
    obs: np.ndarray,
    actions: np.ndarray,
    epochs: int = 150,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
) -> list[float]:
    """Behaviour-clone the Gaussian policy's mean (MSE to the demonstrated actions).

    Only the mean network (``mlp_extractor.policy_net`` and ``action_net``) is trained;
    the log-std stays ``PPOConfig.gaussian_log_std``. Returns the mean loss per epoch.
    """
    policy = model.policy
    params = [*policy.mlp_extractor.policy_net.parameters(), *policy.action_net.parameters()]
    optimizer = torch.optim.Adam(params, lr=lr)
    o = torch.as_tensor(obs, dtype=torch.float32)
    a = torch.as_tensor(actions, dtype=torch.float32)
    rng = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(o.shape[0], generator=rng)
        total = 0.0
        for start in range(0, o.shape[0], batch_size):
            idx = order[start : start + batch_size]
            features = policy.extract_features(o[idx])
            assert isinstance(features, torch.Tensor)
            mean = policy.action_net(policy.mlp_extractor.forward_actor(features))
            loss = ((mean - a[idx]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * int(idx.shape[0])
        losses.append(total / o.shape[0])
    return losses


# ---- the resumable run --------------------------------------------------------------------
@dataclass
class FinetuneHistory(JsonRecord):
    """What a fine-tuning run did, kept across resumed runs.

    Attributes:
        updates: one entry per PPO update: ``step``, the recent training episodes'
            mean return and success, the KL estimate, the learning rate.
        evaluations: ``step`` and the evaluator's figures (the learning curve).
        seconds: wall time (resumed parts added up).
    """

    updates: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


Evaluator = Callable[[AdaptivePPO], dict[str, Any]]
"""``evaluate(model) -> figures`` (success, return, route shares of seeded episodes)."""
Writer = Callable[[AdaptivePPO, Path], None]
"""``write(model, out_dir)``: the policy file of the current model."""


def finetune_ppo(
    make_model: Callable[[], AdaptivePPO],
    env: BatchedVecEnv,
    config: PPOConfig,
    out_dir: str | Path,
    meta: dict[str, Any],
    *,
    resume: bool = False,
    progress: bool = True,
    evaluate: Evaluator | None = None,
    eval_every: int = 0,
    write_policy: Writer | None = None,
    callback: Callable[[int, FinetuneHistory], None] | None = None,
) -> tuple[AdaptivePPO, FinetuneHistory]:
    """Run PPO from ``make_model()`` (the cloned start) on ``env``; checkpoint to ``out_dir``.

    Args:
        make_model: builds the learner at its start (called unless resuming).
        env: the environments (``BatchedVecEnv``).
        config: the settings; ``total_steps`` may grow on resume.
        out_dir: checkpoints, ``history.json`` and the policy file.
        meta: what the run is (task, policy kind, ...); a resumed run must have the same.
        resume: continue the run committed in ``out_dir/checkpoint.json``.
        progress: a tqdm bar (steps; recent return and success, KL, lr).
        evaluate: the learning curve's point, every ``eval_every`` steps and at the end.
        write_policy: writes the current policy's file at every checkpoint.
        callback: ``callback(step, history)`` at the start of each rollout after any
            checkpoint; an exception there stops the run (a test "kills" it so).

    Raises:
        CheckpointError: ``out_dir`` holds a run and not ``resume``; or resuming, no
            committed checkpoint or one of another config or ``meta``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = json.loads(json.dumps(meta))
    committed = out / CHECKPOINT_FILE
    if committed.exists() and not resume:
        raise CheckpointError(
            f"{out} holds a fine-tuning run already ({committed}); continue it with --resume "
            "(resume=True) or choose another --out."
        )
    if resume:
        state = read_checkpoint(out, config, PPOConfig.from_dict, meta, trains="fine-tunes")
        model = AdaptivePPO.load(out / state["model"], env=env, device=config.device)
        history = FinetuneHistory.from_dict(state["history"])
        env.seed(config.seed + model.num_timesteps)  # new episodes, not the first ones again
    else:
        env.seed(config.seed)
        model = make_model()
        history = FinetuneHistory()
    hooks = _Hooks(
        out, config, meta, history, evaluate, eval_every, progress, callback,
        write_policy=write_policy,
    )  # fmt: skip
    hooks.last_checkpoint = model.num_timesteps if resume else -1
    remaining = config.total_steps - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, callback=hooks, reset_num_timesteps=not resume)
    hooks.finish(model)
    return model, history


class _Hooks(RunHooks[PPOConfig, FinetuneHistory]):
    """``RunHooks`` plus a record of each PPO update (return, success, KL, rate)."""

    description = "PPO fine-tuning"

    def __init__(self, *args: Any, write_policy: Writer | None = None) -> None:
        super().__init__(*args)
        self.write_policy = write_policy
        self._episodes: list[dict[str, Any]] = []
        self._start_step = 0

    def started(self) -> None:
        self._start_step = self.num_timesteps

    def collect(self, infos: Sequence[dict[str, Any]]) -> None:
        self._episodes.extend(info["episode"] for info in infos if "episode" in info)

    def before_rollout(self, model: BaseAlgorithm) -> None:
        assert isinstance(model, AdaptivePPO)
        if model.num_timesteps <= self._start_step:
            return
        # The update that just ran, and the rollout before it.
        eps = self._episodes
        entry: dict[str, Any] = {
            "step": int(model.num_timesteps),
            "episodes": len(eps),
            "mean_return": float(np.mean([e["r"] for e in eps])) if eps else None,
            "kl": float(getattr(model, "last_kl", math.nan)),
            "lr": float(model.adaptive_lr),
        }
        if eps and "success" in eps[0]:
            entry["success"] = float(np.mean([e["success"] for e in eps]))
        self.history.updates.append(entry)
        self._episodes = []

    def postfix(self) -> dict[str, str]:
        if not self.history.updates:
            return {}
        last = self.history.updates[-1]
        postfix = {"kl": f"{last['kl']:.4f}", "lr": f"{last['lr']:.1e}"}
        if last["mean_return"] is not None:
            postfix["return"] = f"{last['mean_return']:.1f}"
        if "success" in last:
            postfix["success"] = f"{last['success']:.2f}"
        return postfix

    def files(self, model: BaseAlgorithm) -> dict[str, RunFile]:
        """SB3's model (the policy file is written beside it)."""
        assert isinstance(model, AdaptivePPO)
        if self.write_policy is not None:
            self.write_policy(model, self.out)
        return {"model": RunFile("ppo", "zip", lambda fh: model.save(fh))}  # type: ignore[arg-type]
