"""On-policy fine-tuning of a behaviour-cloned policy with PPO on a task's batched envs.

``finetune(FinetuneConfig(...), out)`` clones a policy from the task's shipped
demonstrations (the GenPO generative policy, ``imle_mpc.learn.genpo.bc``; the zuko flow
policy, ``imle_mpc.learn.genpo.flow_policy``; or the mean of SB3's Gaussian
``MlpPolicy``), then fine-tunes it with PPO
(``imle_mpc.learn.genpo.ppo``, stable-baselines3) on ``num_envs`` batched environments
of the task (``vector_env``: one Numba call a step for all of them, or for a MuJoCo
task, ``push_block``, one ``rollout_from_states`` call of its rollout pool; reward minus
the task's cost, scaled). Every ``eval_every`` steps, ``eval_episodes`` seeded episodes
of the policy as it samples are judged by the task's success test and route
classifier (``evaluate_policy``): the learning curve, with the route shares. The
evaluation steps the same batched env as training (it replays ``DynamicsEnv`` seeded
``s + i`` exactly), not ``run_episode``: a policy without the guard, one step per
observation, over hundreds of episodes at once.

Writes the policy's model file, what it was trained for in it (GenPO:
``OUT/policy.safetensors``, the flow: ``OUT/flow_policy.safetensors``),
``OUT/history.json`` and the resumable checkpoint (``checkpoint.json`` and SB3's zip);
``resume=True`` continues a killed run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imle_mpc.core.validation import require_int_at_least
from imle_mpc.learn.config import TrainConfig
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.registry import load_task
from imle_mpc.tasks.vector_env import vector_env

POLICIES = ("genpo", "gaussian", "flow")
LATENT_POLICIES = ("genpo", "flow")
"""The exact-likelihood kinds, whose SB3 action is a pre-squash latent."""
DEFAULT_REWARD_SCALE = 1e-3
"""The task's cost is ~1e4 an episode on the navigation tasks; PPO's critic sees ~10."""


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run.

    Attributes:
        task: a registered task's name (its shipped demonstrations are the BC data).
        policy: ``"genpo"`` (the generative policy), ``"flow"`` (the zuko flow policy)
            or ``"gaussian"`` (SB3's MlpPolicy).
        num_envs: environments stepped together.
        bc_epochs: behaviour-cloning epochs before PPO. What suits a task differs
            (``bench/genpo.py``): on ``nav_two_obstacles`` GenPO's clone succeeded in
            4 % of the episodes after 150 epochs and in 29 % after 500 (seeds 0-3); on
            ``push_block`` (20 demonstrations) 500 epochs did worse than 150.
        reward_scale: the reward PPO sees is this times minus the task's cost, ...
        unsafe_penalty: ... minus this on a step that crosses a safety constraint, ...
        success_bonus: ... plus this at the end of a successful episode
            (``BatchedVecEnv``; the navigation model passes through its obstacles).
        eval_every: environment steps between learning-curve points (0: none).
        eval_episodes: seeded episodes a point.
        eval_seed: the first evaluation seed.
        ppo: PPO's settings (``PPOConfig``; None: its defaults).
        genpo: the generative policy's shape (a ``GenPOConfig``; None: its defaults;
            its hidden widths are the Gaussian's mean network's too).
        flow: the flow policy's shape (a ``FlowPolicyConfig``; None: its defaults).
    """

    task: str = "nav_two_obstacles"
    policy: str = "genpo"
    num_envs: int = 64
    bc_epochs: int = 150
    reward_scale: float = DEFAULT_REWARD_SCALE
    unsafe_penalty: float = 1.0
    success_bonus: float = 10.0
    eval_every: int = 20_000
    eval_episodes: int = 100
    eval_seed: int = 10_000
    ppo: Any = None
    genpo: Any = None
    flow: Any = None

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"FinetuneConfig.policy {self.policy!r} is not one of {POLICIES}.")
        require_int_at_least("FinetuneConfig", "num_envs", self.num_envs, 1)
        require_int_at_least("FinetuneConfig", "bc_epochs", self.bc_epochs, 1)
        require_int_at_least("FinetuneConfig", "eval_every", self.eval_every, 0)
        require_int_at_least("FinetuneConfig", "eval_episodes", self.eval_episodes, 1)
        if not self.reward_scale > 0:
            raise ValueError(f"FinetuneConfig.reward_scale must be > 0, got {self.reward_scale}.")


def episode_judge(task: Task) -> Any:
    """``judge(states) -> {"success", "route"}`` for ``BatchedVecEnv``."""

    def judge(states: np.ndarray) -> dict[str, Any]:
        figures: dict[str, Any] = {"success": bool(task.success(states))}
        if task.routes is not None:
            figures["route"] = task.route_of(states)
        return figures

    return judge


def make_vec_env(
    task: Task,
    num_envs: int,
    policy: str,
    reward_scale: float = 1.0,
    seed: int | None = None,
    unsafe_penalty: float = 0.0,
    success_bonus: float = 0.0,
) -> Any:
    """The task's batched envs as SB3's ``VecEnv``; the generative policy's action space is
    the doubled pre-squash pair (squashed into the box, the dummy half dropped, before
    stepping: ``genpo_action_map``), the flow policy's the pre-squash action (``nu``)."""
    import gymnasium as gym

    from imle_mpc.learn.genpo.ppo import genpo_action_map
    from imle_mpc.learn.genpo.vec_env import BatchedVecEnv

    env = vector_env(task, num_envs)
    nu = task.dynamics.nu
    space, action_map = None, None
    if policy in LATENT_POLICIES:
        # SB3 wants finite bounds; beyond 30, tanh is 1 in float64 (it clips only what it
        # sends, and stores the sampled pair)
        width = 2 * nu if policy == "genpo" else nu
        space = gym.spaces.Box(-30.0, 30.0, (width,), dtype=np.float64)
        action_map = genpo_action_map(task.dynamics.action_low, task.dynamics.action_high)
    return BatchedVecEnv(
        env, space, reward_scale, episode_judge(task), seed, unsafe_penalty, success_bonus,
        action_map,
    )  # fmt: skip


def evaluate_policy(
    model: Any, task: Task, episodes: int, seed: int, policy: str
) -> dict[str, Any]:
    """``episodes`` seeded episodes of ``model``'s policy as it samples, all at once.

    Returns success rate, mean return (minus the task's cost, unscaled, no penalty or
    bonus), unsafe steps and the route shares (label -> share of the episodes).
    """
    env = make_vec_env(task, episodes, policy, 1.0, seed)
    obs = env.reset()
    results: list[dict[str, Any]] = []
    unsafe = 0
    for _ in range(task.steps):
        actions, _ = model.predict(obs, deterministic=False)
        obs, _, _, infos = env.step(actions)
        unsafe += sum(1 for info in infos if info.get("unsafe"))
        results += [info["episode"] for info in infos if "episode" in info]
    routes = Counter(r.get("route", "-") for r in results)
    return {
        "episodes": len(results),
        "success_rate": float(np.mean([r["success"] for r in results])),
        "mean_return": float(np.mean([r["r"] for r in results])),
        "unsafe_steps": int(unsafe),
        "routes": {k: v / len(results) for k, v in sorted(routes.items())},
    }


def _meta(config: FinetuneConfig, genpo: Any, flow: Any) -> dict[str, Any]:
    meta = {
        "task": config.task, "policy": config.policy, "num_envs": config.num_envs,
        "bc_epochs": config.bc_epochs, "reward_scale": config.reward_scale,
        "unsafe_penalty": config.unsafe_penalty, "success_bonus": config.success_bonus,
        "genpo_config": genpo.to_dict(), "observation": "the task's state",
    }  # fmt: skip
    if config.policy == "flow":  # the genpo/gaussian runs' meta as before (resumable)
        meta["flow_policy_config"] = flow.to_dict()
    return meta


def finetune(
    config: FinetuneConfig,
    out_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    callback: Any = None,
) -> tuple[Any, Any]:
    """Clone, then fine-tune with PPO; see the module docstring.

    Returns:
        ``(model, history)``: SB3's ``AdaptivePPO`` and the run's ``FinetuneHistory``.
    """
    try:
        from imle_mpc.learn.genpo.ppo import PPOConfig, finetune_ppo
    except ModuleNotFoundError as err:
        if err.name != "stable_baselines3":
            raise
        raise ModuleNotFoundError(
            "imle-mpc finetune needs stable-baselines3: pip install -e '.[rl]'", name=err.name
        ) from None
    from imle_mpc.learn.genpo import GenPOConfig
    from imle_mpc.learn.genpo.flow_policy import FlowPolicyConfig

    task = load_task(config.task)
    ppo = config.ppo or PPOConfig()
    genpo = config.genpo or GenPOConfig()
    flow = config.flow or FlowPolicyConfig()
    meta = _meta(config, genpo, flow)
    env = make_vec_env(
        task, config.num_envs, config.policy, config.reward_scale, None,
        config.unsafe_penalty, config.success_bonus,
    )  # fmt: skip

    def make_model() -> Any:
        return cloned_start(task, config, env, ppo, genpo, flow)

    def curve_point(model: Any) -> dict[str, Any]:
        return evaluate_policy(model, task, config.eval_episodes, config.eval_seed, config.policy)

    write = _write_policy(config.policy, meta) if config.policy in LATENT_POLICIES else None
    return finetune_ppo(
        make_model, env, ppo, out_dir, meta, resume=resume, progress=progress,
        evaluate=curve_point if config.eval_every else None, eval_every=config.eval_every,
        write_policy=write, callback=callback,
    )  # fmt: skip


def cloned_start(
    task: Task, config: FinetuneConfig, env: Any, ppo: Any, genpo: Any, flow: Any = None
) -> Any:
    """The PPO learner whose policy is behaviour-cloned on the task's demonstrations."""
    from imle_mpc.learn.genpo.bc import (
        demo_pairs,
        observation_normaliser,
        train_flow_policy_bc,
        train_genpo_bc,
    )
    from imle_mpc.learn.genpo.ppo import bc_gaussian, build_ppo, load_genpo_weights

    demos = task.load_demonstrations()
    shift, scale = observation_normaliser(demos)
    model = build_ppo(config.policy, env, ppo, shift, scale, genpo, flow)
    if config.policy in LATENT_POLICIES:
        train = TrainConfig(epochs=config.bc_epochs, lr=1e-3, warmup_steps=50, seed=ppo.seed)
        low, high = task.dynamics.action_low, task.dynamics.action_high
        clone = train_genpo_bc if config.policy == "genpo" else train_flow_policy_bc
        policy, _ = clone(demos, low, high, genpo if config.policy == "genpo" else flow, train)
        load_genpo_weights(model, policy)
    else:
        obs, act = demo_pairs(demos)
        bc_gaussian(model, obs, act, epochs=config.bc_epochs, seed=ppo.seed)
    return model


def _write_policy(kind: str, meta: dict[str, Any]) -> Any:
    from imle_mpc.learn.genpo import save_policy
    from imle_mpc.learn.genpo.flow_policy import save_flow_policy

    save = save_policy if kind == "genpo" else save_flow_policy

    def write(model: Any, out: Path) -> None:
        save(model.policy.actor, out, {**meta, "steps": int(model.num_timesteps)})

    return write
