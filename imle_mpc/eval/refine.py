"""Residual refinement of a frozen base in a task's refinement setting: train, load, evaluate.

``refine(RefineConfig(...), out)`` learns ``r`` for ``a = a_base + alpha * r`` online
(``imle_mpc.learn.residual.sac``, stable-baselines3's SAC) on ``sac.num_envs``
``ResidualEnv``s of the setting (``Task.refinement``: its plant, its success
test), every executed action checked by the guard, and writes
``OUT/residual.safetensors`` (the actor and, as JSON, what it refines) plus the
resumable checkpoints. Every ``eval_every`` steps it runs ``eval_episodes`` seeded
guarded episodes of base + residual: the learning curve.

``load_refined(path)`` rebuilds the decorated controller from that file alone
(the task, the setting, the base and alpha are in it), and ``evaluate_refined``
runs it through ``evaluate``, the same runner as any planner: ``imle-mpc eval
--residual OUT``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from imle_mpc.core.validation import require_int_at_least
from imle_mpc.eval.evaluation import EvalConfig, evaluate
from imle_mpc.eval.factory import PLANNERS, make_planner
from imle_mpc.eval.residual_env import (
    DEFAULT_EXPLORE_STEPS,
    ExplorationSchedule,
    PolicyResidual,
    ResidualEnv,
)
from imle_mpc.learn.config import ResidualSACConfig
from imle_mpc.tasks.base import Refinement, Task
from imle_mpc.tasks.registry import load_task
from planners.residual import ResidualPlanner, residual_scale

OBSERVATION = (
    "state, the base action scaled to [-1, 1] by the actuator box, the share of the episode left"
)
"""The residual's observation (``imle_mpc.eval.residual_env.residual_observation``)."""


@dataclass(frozen=True)
class RefineConfig:
    """One refinement run.

    Attributes:
        task: a registered task's name, or your own as ``module:function``.
        setting: the task's refinement setting (None: its first).
        base: the frozen base's kind (``imle_mpc.eval.factory.PLANNERS``).
        num_samples: the base's samples (generator chunks for the learned ones).
        generator: the learned base's generator checkpoint (None: the task's shipped one).
        fraction: alpha as a fraction of the actuator box's half range (0.03-0.3 in
            the paper; 0.3, 0.09 m/s for ``push_block``'s pusher, measured).
        explore_steps: the controlled exploration's horizon H (environment steps
            until the residual acts in every episode; 0: the schedule off).
        guard: train behind the safety guard (with the offset estimate), as evaluated.
        eval_every: environment steps between evaluations (0: none).
        eval_episodes: seeded episodes per evaluation.
        eval_seed: the first evaluation seed (training episodes draw their own).
        episode_steps: episode length (None: the task's).
        sac: the SAC settings and the run's length.
    """

    task: str = "push_block"
    setting: str | None = None
    base: str = "imle_policy"
    num_samples: int | None = None
    generator: str | None = None
    fraction: float = 0.3
    explore_steps: int = DEFAULT_EXPLORE_STEPS
    guard: bool = True
    eval_every: int = 10_000
    eval_episodes: int = 20
    eval_seed: int = 1000
    episode_steps: int | None = None
    sac: ResidualSACConfig = field(default_factory=ResidualSACConfig)

    def __post_init__(self) -> None:
        if self.base not in PLANNERS:
            raise ValueError(f"RefineConfig.base {self.base!r} is not one of {list(PLANNERS)}.")
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"RefineConfig.fraction must be in (0, 1], got {self.fraction!r}.")
        require_int_at_least("RefineConfig", "explore_steps", self.explore_steps, 0)
        require_int_at_least("RefineConfig", "eval_every", self.eval_every, 0)
        require_int_at_least("RefineConfig", "eval_episodes", self.eval_episodes, 1)
        require_int_at_least("RefineConfig", "eval_seed", self.eval_seed, 0)
        if self.episode_steps is not None:
            require_int_at_least("RefineConfig", "episode_steps", self.episode_steps, 1)


@dataclass(frozen=True)
class Refined:
    """A decorated controller and where it is judged.

    Attributes:
        task: the task, judged by the setting's success test.
        setting: the refinement setting (its ``faults`` are the plant's).
        planner: base + residual (``ResidualPlanner``), to be guarded like any planner.
        meta: what the residual's file says it refines.
    """

    task: Task
    setting: Refinement
    planner: ResidualPlanner
    meta: dict[str, Any]


def setting_of(task_spec: str | Task, setting: str | None) -> tuple[Task, Refinement]:
    """The task judged by its refinement ``setting`` (None: the first), and the setting."""
    task = load_task(task_spec) if isinstance(task_spec, str) else task_spec
    chosen = task.refinement(setting)
    return chosen.apply(task), chosen


def _meta(config: RefineConfig, task: Task, setting: Refinement) -> dict[str, Any]:
    return {
        "task": config.task,
        "setting": setting.name,
        "base": config.base,
        "num_samples": config.num_samples,
        "generator": config.generator,
        "fraction": config.fraction,
        "scale": residual_scale(task.dynamics, config.fraction).tolist(),
        "explore_steps": config.explore_steps,
        "guard": config.guard,
        "episode_steps": config.episode_steps,
        "observation": OBSERVATION,
    }


def _base(meta: dict[str, Any], task: Task, seed: int) -> Any:
    return make_planner(
        meta["base"], task, seed=seed, num_samples=meta["num_samples"],
        generator=meta["generator"],
    )  # fmt: skip


def refine(
    config: RefineConfig, out_dir: str | Path, resume: bool = False, progress: bool = True
) -> tuple[Any, Any]:
    """Learn a residual for ``config``; see the module docstring.

    Returns:
        ``(actor, history)``: the ``ResidualActor`` and the run's ``RefineHistory``.
    """
    # stable-baselines3 only for training (the rl extra): evaluating needs torch alone.
    try:
        from imle_mpc.learn.residual.sac import train_residual
    except ModuleNotFoundError as err:
        if err.name != "stable_baselines3":
            raise
        raise ModuleNotFoundError(
            "imle-mpc refine needs stable-baselines3: pip install -e '.[rl]'", name=err.name
        ) from None
    task, setting = setting_of(config.task, config.setting)
    meta = _meta(config, task, setting)
    scale = residual_scale(task.dynamics, config.fraction)
    schedule = ExplorationSchedule(config.explore_steps)

    def make_env(index: int) -> ResidualEnv:
        base = _base(meta, task, seed=config.sac.seed + index)
        return ResidualEnv(
            task, base, scale, setting.faults, schedule, guard=config.guard,
            steps=config.episode_steps,
        )  # fmt: skip

    def curve_point(actor: Any) -> dict[str, Any]:
        residual = PolicyResidual(actor, task, config.episode_steps)
        planner = ResidualPlanner(_base(meta, task, 0), residual, task.dynamics, scale)
        summary = evaluate_refined(
            Refined(task, setting, planner, meta), config.eval_episodes, config.eval_seed,
            guard=config.guard, steps=config.episode_steps,
        )  # fmt: skip
        keys = ("success_rate", "violation_steps", "fallback_steps", "episodes")
        return {k: summary[k] for k in keys}

    return train_residual(
        make_env, config.sac, out_dir, meta, resume=resume, progress=progress,
        evaluate=curve_point if config.eval_every else None, eval_every=config.eval_every,
    )  # fmt: skip


def load_refined(path: str | Path) -> Refined:
    """The decorated controller of a residual file (or an ``imle-mpc refine --out`` DIR)."""
    from imle_mpc.learn.residual import load_residual  # torch: only when a residual is used

    actor = load_residual(path)
    meta = actor.meta.get("refinement")
    if not isinstance(meta, dict):
        raise ValueError(
            f"{path} is a residual without a refinement record (task, setting, base); "
            "it was not written by imle-mpc refine."
        )
    task, setting = setting_of(meta["task"], meta["setting"])
    residual = PolicyResidual(actor, task, meta["episode_steps"])
    planner = ResidualPlanner(_base(meta, task, 0), residual, task.dynamics, meta["scale"])
    return Refined(task, setting, planner, {**meta, "steps": actor.meta.get("steps")})


def evaluate_refined(
    refined: Refined,
    episodes: int,
    seed: int = 0,
    guard: bool = True,
    offset_free: bool = True,
    steps: int | None = None,
) -> dict[str, Any]:
    """Seeded episodes of base + residual on the setting's plant; ``evaluate``'s summary.

    ``steps`` shortens the episodes (tests); otherwise this is ``evaluate`` itself.
    """
    config = EvalConfig(
        task=refined.meta["task"], planner=refined.meta["base"], episodes=episodes,
        faults=refined.setting.faults, guard=guard, offset_free=offset_free, seed=seed,
    )  # fmt: skip
    task = refined.task if steps is None else replace(refined.task, steps=steps)
    summary, _ = evaluate(config, planner=refined.planner, task=task)
    summary.update(planner=f"{refined.meta['base']}+residual", setting=refined.setting.name)
    return summary
