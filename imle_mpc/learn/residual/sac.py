"""Online SAC for a residual on a frozen base, with stable-baselines3; resumable after a kill.

``train_residual(make_env, config, out_dir, meta)`` runs stable-baselines3's SAC on
``config.num_envs`` environments stepped together (``DummyVecEnv``: one batched
actor call a step; the environments' MuJoCo models and planners run in this
process). An environment is any Gymnasium env whose action is the residual ``r``
in [-1, 1]^nu, that reports the residual it executed in ``info["executed_residual"]``
and an ``info["episode_summary"]`` at an episode's end, and that has
``set_global_step(step)`` (``imle_mpc.eval.residual_env.ResidualEnv``).

Stable-baselines3 supplies SAC, the replay buffer, the vectorised env and the
saving of model and buffer. What the method needs and it lacks, written here:

* The residual starts near zero. SB3 initialises the actor's mean layer like any
  ``nn.Linear`` (weights uniform in +-1/sqrt(fan_in)), so ``tanh(mean)`` is an
  arbitrary residual of order 0.1-1 from the first step (and, without gSDE, its
  log-std layer gives a std of about 1). ``init_small_residual`` re-initialises the
  last layers orthogonally with gain ``actor_init_std`` (0.01, the reference's).
* The buffer stores the residual that was executed. SB3 stores the action it
  sampled; where the schedule switched the residual off the env executed 0, and the
  sample would teach the critic the outcome of an action never taken.
  ``ResidualSAC._store_transition`` stores ``info["executed_residual"]`` instead.
* The schedule's clock: every step the envs are told the run's environment steps.
* The critic's inputs need nothing written: the observation holds the state and
  the base's action, so SB3's critic ``Q(observation, r)`` sees state, base action
  and residual (the reference's "concat" input; its default, "sum", sees
  ``a_base + alpha * r``, which is a function of these).
* Checkpoints are atomic and resumable: every ``checkpoint_every`` steps, at the start
  of a rollout (everything collected is stored and trained on), the SB3 model
  (networks, optimisers, entropy coefficient, step counter) and the replay buffer go
  to step-numbered files, the actor to ``residual.safetensors``, and then
  ``checkpoint.json`` names them: the one write that commits the checkpoint. A kill
  at any point leaves the last committed checkpoint whole; ``resume=True`` continues
  from it (the episodes under way are started afresh).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import nn

from imle_mpc.learn.config import ResidualSACConfig
from imle_mpc.learn.model_file import CheckpointError
from imle_mpc.learn.records import JsonRecord
from imle_mpc.learn.residual.actor import (
    RESIDUAL_FILE,
    ResidualActor,
    ResidualNetwork,
    save_residual,
)
from imle_mpc.learn.sb3_run import CHECKPOINT_FILE, RunFile, RunHooks, read_checkpoint

EnvFactory = Callable[[int], gym.Env[Any, Any]]
"""``make_env(index) -> env``, one per environment of the run."""
Evaluator = Callable[[ResidualActor], dict[str, Any]]
"""``evaluate(actor) -> figures`` (e.g. success rate and guard interventions of seeded
episodes of base + residual): a point of the learning curve."""


@dataclass
class RefineHistory(JsonRecord):
    """What a refinement run did, kept across resumed runs.

    Attributes:
        episodes: one entry per finished training episode: ``step`` (the run's
            environment steps when it ended) and the env's ``episode_summary``.
        evaluations: one entry per evaluation: ``step`` and the evaluator's figures.
        seconds: wall time of the run (its resumed parts added up).
    """

    episodes: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


class ResidualSAC(SAC):
    """SB3's SAC, storing the residual each env executed (``info["executed_residual"]``)."""

    def _store_transition(
        self,
        replay_buffer: ReplayBuffer,
        buffer_action: np.ndarray,
        new_obs: Any,
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        executed = np.array(
            [
                info.get("executed_residual", a)
                for info, a in zip(infos, buffer_action, strict=True)
            ],
            dtype=buffer_action.dtype,
        )
        super()._store_transition(replay_buffer, executed, new_obs, reward, dones, infos)


def _mean_layer(model: SAC) -> nn.Linear:
    """The actor's mean layer (with gSDE it sits before SB3's clip of the mean)."""
    mu = model.actor.mu
    layer = mu[0] if isinstance(mu, nn.Sequential) else mu
    assert isinstance(layer, nn.Linear)
    return layer


def _clip_mean(model: SAC) -> float:
    """Where SB3 clips the actor's mean before the tanh (gSDE), else inf."""
    mu = model.actor.mu
    if isinstance(mu, nn.Sequential) and isinstance(mu[-1], nn.Hardtanh):
        return float(mu[-1].max_val)
    return math.inf


def init_small_residual(model: SAC, std: float, log_std: float) -> None:
    """Re-initialise the actor's last layers so the residual starts at ~0.

    The mean layer gets an orthogonal init of gain ``std`` and a zero bias; the
    Gaussian's log-std layer the same with the bias ``log_std`` (gSDE's noise weights
    keep SB3's init, ``log_std_init``).
    """
    layers = [(_mean_layer(model), 0.0)]
    if isinstance(model.actor.log_std, nn.Linear):
        layers.append((model.actor.log_std, log_std))
    with torch.no_grad():
        for layer, bias in layers:
            nn.init.orthogonal_(layer.weight, gain=std)
            nn.init.constant_(layer.bias, bias)


def build_sac(env: DummyVecEnv, config: ResidualSACConfig) -> ResidualSAC:
    """The SAC learner for ``env`` with ``config``'s settings, its residual starting at ~0."""
    ent_coef: Any = config.ent_coef if config.ent_coef == "auto" else float(config.ent_coef)
    model = ResidualSAC(
        "MlpPolicy",
        env,
        learning_rate=config.learning_rate,
        buffer_size=config.buffer_size or config.total_steps,
        learning_starts=config.learning_starts,
        batch_size=config.batch_size,
        tau=config.tau,
        gamma=config.gamma,
        train_freq=(config.train_every // config.num_envs, "step"),
        gradient_steps=config.gradient_steps,
        ent_coef=ent_coef,
        n_steps=config.n_steps,
        use_sde=config.sde,
        use_sde_at_warmup=config.sde,
        policy_kwargs={"net_arch": list(config.hidden), "log_std_init": config.initial_log_std},
        seed=config.seed,
        device=config.device,
        verbose=0,
    )
    init_small_residual(model, config.actor_init_std, config.initial_log_std)
    return model


def actor_of(model: SAC, meta: dict[str, Any]) -> ResidualActor:
    """A copy of ``model``'s deterministic actor (``tanh(mean)``) as a ``ResidualActor``."""
    space = model.observation_space
    assert space is not None and space.shape is not None and model.action_space.shape is not None
    obs_dim, nu = int(np.prod(space.shape)), int(np.prod(model.action_space.shape))
    hidden = tuple(int(m.out_features) for m in model.actor.latent_pi if isinstance(m, nn.Linear))
    net = ResidualNetwork(obs_dim, nu, hidden, _clip_mean(model))
    net.latent.load_state_dict(model.actor.latent_pi.state_dict())
    net.mu.load_state_dict(_mean_layer(model).state_dict())
    return ResidualActor(net, {**meta, "steps": int(model.num_timesteps)})


def train_residual(
    make_env: EnvFactory,
    config: ResidualSACConfig,
    out_dir: str | Path,
    meta: dict[str, Any],
    *,
    resume: bool = False,
    progress: bool = True,
    evaluate: Evaluator | None = None,
    eval_every: int = 0,
    callback: Callable[[int, RefineHistory], None] | None = None,
) -> tuple[ResidualActor, RefineHistory]:
    """Learn a residual online with SAC; checkpoint to ``out_dir`` as it goes.

    Args:
        make_env: builds environment ``i`` of the run (see the module docstring).
        config: the SAC settings and the run's length.
        out_dir: where the checkpoints, ``residual.safetensors`` and ``history.json`` go.
        meta: what the residual is for (task, setting, base, scale...): stored in its
            file as ``refinement``; a resumed run must have the same.
        resume: continue the run committed in ``out_dir/checkpoint.json``.
        progress: show a tqdm bar (steps, recent success, last evaluation).
        evaluate: called with the current actor every ``eval_every`` steps (and at
            the start): the learning curve.
        eval_every: environment steps between evaluations (0: none).
        callback: called as ``callback(step, history)`` at the start of each rollout,
            after any checkpoint; an exception raised there stops the run (a test
            "kills" it so).

    Returns:
        The final actor and the history.

    Raises:
        CheckpointError: ``out_dir`` holds a run and ``resume`` is False; or resuming,
            no committed checkpoint, or one of another config or ``meta``.
    """
    out = Path(out_dir)
    meta = json.loads(json.dumps(meta))  # as it will read back from JSON
    committed = out / CHECKPOINT_FILE
    if committed.exists() and not resume:
        raise CheckpointError(
            f"{out} holds a refinement run already ({committed}); continue it with --resume "
            "(resume=True) or choose another --out."
        )
    env = DummyVecEnv([partial(make_env, i) for i in range(config.num_envs)])
    if resume:
        state = read_checkpoint(
            out,
            config,
            ResidualSACConfig.from_dict,
            meta,
            files=("model", "buffer"),
            trains="refines",
        )
        with warnings.catch_warnings():
            # SB3 warns that n_steps is "ignored" when the saved buffer class is its own
            # NStepReplayBuffer; the saved buffer kwargs carry the n-step setting.
            warnings.filterwarnings("ignore", message=".*n_steps=.* is ignored")
            model = ResidualSAC.load(out / state["model"], env=env, device=config.device)
        model.load_replay_buffer(out / state["buffer"])
        history = RefineHistory.from_dict(state["history"])
        env.seed(config.seed + model.num_timesteps)  # new episodes, not the first ones again
    else:
        env.seed(config.seed)
        model = build_sac(env, config)
        history = RefineHistory()
    hooks = _Hooks(out, config, meta, history, evaluate, eval_every, progress, callback)
    hooks.last_checkpoint = model.num_timesteps if resume else -1  # what is on disk
    remaining = config.total_steps - model.num_timesteps
    if remaining > 0:
        # log_interval None: SB3 dumps no episode logs (its type says int; None is handled).
        model.learn(
            remaining, callback=hooks, log_interval=None,  # type: ignore[arg-type]
            reset_num_timesteps=not resume,
        )  # fmt: skip
    hooks.finish(model)
    return actor_of(model, {"refinement": meta}), history


class _Hooks(RunHooks[ResidualSACConfig, RefineHistory]):
    """``RunHooks`` plus the schedule's clock and the training episodes' summaries."""

    description = "residual SAC"

    def started(self) -> None:
        self.training_env.env_method("set_global_step", self.num_timesteps)

    def collect(self, infos: Sequence[dict[str, Any]]) -> None:
        step = self.num_timesteps
        self.training_env.env_method("set_global_step", step)
        for info in infos:
            summary = info.get("episode_summary")
            if summary is not None:
                self.history.episodes.append({"step": step, **summary})

    def evaluated(self, model: BaseAlgorithm) -> ResidualActor:
        assert isinstance(model, SAC)
        return actor_of(model, {"refinement": self.meta})

    def postfix(self) -> dict[str, str]:
        recent = [e for e in self.history.episodes[-200:] if e["residual_on"]][-50:]
        postfix = {"decorated_success": "-", "guard": "-"}
        if recent:  # the decorated episodes' success, and the guard's interventions in them
            postfix["decorated_success"] = f"{np.mean([e['success'] for e in recent]):.2f}"
            postfix["guard"] = f"{np.mean([e['interventions'] for e in recent]):.1f}"
        return postfix

    def files(self, model: BaseAlgorithm) -> dict[str, RunFile]:
        """SB3's model and replay buffer (the actor's file is written beside them)."""
        assert isinstance(model, SAC)
        save_residual(self.evaluated(model), self.out / RESIDUAL_FILE)
        # SB3 writes to a binary file object as well as to a path.
        return {
            "model": RunFile("sac", "zip", lambda fh: model.save(fh)),  # type: ignore[arg-type]
            "buffer": RunFile("replay", "pkl", lambda fh: model.save_replay_buffer(fh)),  # type: ignore[arg-type]
        }
