"""Run a named task with a named planner: the wiring shared by the CLI, examples and tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from imle_mpc.plant import DynamicsEnv, EnvRobot
from imle_mpc.runner import EpisodeRecord, LoopConfig, Progress, run_closed_loop
from imle_mpc.tasks import Task

PLANNERS = ("mppi", "cem", "predictive_sampling", "imle_mpc", "latent_imle", "imle_policy")
LEARNED = ("imle_mpc", "latent_imle", "imle_policy")


def make_planner(
    kind: str,
    task: Task,
    seed: int = 0,
    num_samples: int | None = None,
    record_samples: bool = False,
    generator: Any = None,
) -> Any:
    """Build a planner for ``task`` from its hints. ``kind`` is one of ``PLANNERS``.

    The learned kinds use ``generator`` (default: the one shipped for the task);
    for them ``num_samples`` is the number of generator chunks N per step.
    """
    if kind in LEARNED:
        return _make_learned_planner(kind, task, seed, num_samples, record_samples, generator)
    from planners import (
        CEM,
        MPPI,
        CEMConfig,
        MPPIConfig,
        PredictiveSampling,
        PredictiveSamplingConfig,
    )

    hints = task.hints
    if num_samples is not None:
        hints = replace(hints, num_samples=num_samples)
    common: dict[str, Any] = {
        "num_samples": hints.num_samples,
        "horizon": hints.horizon,
        "noise_sigma": hints.noise_sigma,
        "seed": seed,
        "record_samples": record_samples,
    }
    if kind == "mppi":
        config = MPPIConfig(temperature=hints.temperature, **common)
        return MPPI(task.dynamics, task.cost, config, task.constraints)
    if kind == "cem":
        elites = max(2, hints.num_samples // 16)
        return CEM(
            task.dynamics, task.cost, CEMConfig(num_elites=elites, **common), task.constraints
        )
    if kind == "predictive_sampling":
        return PredictiveSampling(
            task.dynamics, task.cost, PredictiveSamplingConfig(**common), task.constraints
        )
    raise ValueError(f"unknown planner {kind!r}; choose one of {list(PLANNERS)}.")


def _make_learned_planner(
    kind: str,
    task: Task,
    seed: int,
    num_samples: int | None,
    record_samples: bool,
    generator: Any,
) -> Any:
    from imle_mpc.experts import observation
    from imle_mpc.pretrained import load_task_generator
    from planners.imle import IMLEMPC, IMLEMPCConfig, IMLEPolicy, LatentIMLEMPC, LatentPlanConfig

    gen = generator if generator is not None else load_task_generator(task.name)
    n = num_samples or 16
    if kind == "imle_policy":
        return IMLEPolicy(gen, observation, num_samples=n, seed=seed)
    if kind == "latent_imle":
        latent_config = LatentPlanConfig(
            horizon=gen.horizon, num_samples=n + 1, num_elites=max(2, n // 4), seed=seed,
            record_samples=record_samples, cost_to_go_steps=task.hints.policy_lookahead,
        )  # fmt: skip
        return LatentIMLEMPC(
            task.dynamics, task.cost, gen, observation, latent_config, task.constraints
        )
    # N generator chunks, N perturbations of them, and the warm start.
    config = IMLEMPCConfig(
        horizon=gen.horizon, num_samples=2 * n + 1, num_imle=n, seed=seed,
        record_samples=record_samples, cost_to_go_steps=task.hints.policy_lookahead,
    )  # fmt: skip
    return IMLEMPC(task.dynamics, task.cost, gen, observation, config, task.constraints)


def run_episode(
    task: Task,
    planner: Any,
    seed: int = 0,
    steps: int | None = None,
    progress: Progress | None = None,
    real_time: bool = False,
) -> EpisodeRecord:
    """Simulate one episode of ``task`` with ``planner`` on a ``DynamicsEnv`` plant.

    ``real_time`` holds the model's control period on the wall clock (as on a
    robot) instead of running as fast as possible.
    """
    robot = EnvRobot(DynamicsEnv(task.dynamics, task.initial_state), seed=seed)
    config = LoopConfig(
        steps=steps or task.steps, control_period=task.dynamics.dt, real_time=real_time
    )
    record = run_closed_loop(robot, planner, config, success=task.success, progress=progress)
    record.info.update({"task": task.name, "seed": seed})
    return record
