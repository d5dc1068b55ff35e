"""Planners for a task from its hints, and the guarded loop around them.

The wiring shared by the CLI, ``evaluate``, sweeps, examples and benchmarks.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from imle_mpc.core.errors import InputError
from imle_mpc.core.validation import require_int_at_least
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.experts import observation
from planners import (
    CEM,
    MPPI,
    CEMConfig,
    MPPIConfig,
    PredictiveSampling,
    PredictiveSamplingConfig,
)
from planners.imle import (
    IMLEMPC,
    IMLEMPCConfig,
    IMLEPolicy,
    IMLEProposals,
    LatentIMLEMPC,
    LatentPlanConfig,
    Lookahead,
)
from planners.knots import Interpolation
from planners.risk import RiskScoring
from planners.safety.guard import GuardConfig, PassThrough, SafetyGuard
from planners.safety.offset_free import OffsetFree

PLANNERS = ("mppi", "cem", "predictive_sampling", "imle_mpc", "latent_imle", "imle_policy")
LEARNED = ("imle_mpc", "latent_imle", "imle_policy")


def make_planner(
    kind: str,
    task: Task,
    seed: int = 0,
    num_samples: int | None = None,
    record_samples: bool = False,
    generator: Any = None,
    knots: int | None = None,
    interpolation: Interpolation = "cubic",
    risk: RiskScoring | None = None,
) -> Any:
    """Build a planner for ``task`` from its hints. ``kind`` is one of ``PLANNERS``.

    The learned kinds use ``generator`` (a loaded one, a checkpoint path, or None for
    the one shipped with the task);
    for them ``num_samples`` is the number of generator chunks N per step.
    ``knots`` and ``interpolation`` make a sampling kind search spline knots
    (``SamplingConfig.knots``); the learned kinds take them from their own configs.
    ``risk``: score each sample over a model ensemble of the task's model
    (``planners.risk.RiskScoring``); the IMLE policy alone has no model to score on.
    """
    if kind in LEARNED:
        if knots is not None:
            raise ValueError(
                f"knots={knots} is for the sampling planners (mppi, cem, predictive_sampling); "
                f"{kind} proposes the generator's per-step chunks."
            )
        return _make_learned_planner(kind, task, seed, num_samples, record_samples, generator, risk)
    hints = task.hints
    if num_samples is not None:
        hints = replace(hints, num_samples=num_samples)
    common: dict[str, Any] = {
        "num_samples": hints.num_samples,
        "horizon": hints.horizon,
        "noise_sigma": hints.noise_sigma,
        "seed": seed,
        "record_samples": record_samples,
        "knots": knots,
        "interpolation": interpolation,
        "risk": risk,
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
    risk: RiskScoring | None = None,
) -> Any:
    # None: the task's shipped generator; a path: one of yours (imle-mpc train --out).
    gen = (
        task.load_generator(generator)
        if generator is None or isinstance(generator, str | Path)
        else generator
    )
    # One set of defaults: the config's. None only: 0 is an error, not "the default".
    n = IMLEMPCConfig().num_imle if num_samples is None else num_samples
    require_int_at_least("make_planner", "num_samples (generator chunks per step)", n, 1)
    if kind == "imle_policy":
        if risk is not None:
            raise InputError(
                "the IMLE policy alone plays the generator's chunks without a model, so there "
                "is nothing to score over an ensemble: drop --ensemble, or use --planner imle_mpc."
            )
        return IMLEPolicy(gen, observation, num_samples=n, seed=seed)
    if kind == "latent_imle":
        latent_config = LatentPlanConfig(
            horizon=gen.horizon, num_samples=n + 1, num_elites=max(2, n // 4), seed=seed,
            record_samples=record_samples, cost_to_go_steps=task.hints.policy_lookahead,
            risk=risk,
        )  # fmt: skip
        return LatentIMLEMPC(
            task.dynamics, task.cost, gen, observation, latent_config, task.constraints
        )
    # N generator chunks, N perturbations of them, and the warm start.
    config = IMLEMPCConfig(
        horizon=gen.horizon, num_samples=2 * n + 1, seed=seed, record_samples=record_samples,
        proposals=IMLEProposals(num_imle=n), lookahead=Lookahead(task.hints.policy_lookahead),
        risk=risk,
    )  # fmt: skip
    return IMLEMPC(task.dynamics, task.cost, gen, observation, config, task.constraints)


def build_guarded(
    task: Task,
    planner: Any,
    guard: bool,
    action_delay: int = 0,
    deadline: float | None = None,
    offset_free: bool = True,
    stale_timeout: int = 0,
) -> Any:
    """``planner`` wrapped in the safety guard (or the unguarded pass-through).

    The guard is told the robot's actuation delay (a latency is measured when
    a robot is commissioned) and compensates it; the unguarded loop does not.
    ``deadline`` (seconds) makes the guard run the planner on a worker thread
    and never wait longer for it. ``offset_free`` puts ``OffsetFree`` around the
    guard: the plant's action offset from the model (a heavier link, a weaker
    motor) is estimated from the measured states and undone in the commands;
    with an exact model the estimate stays at zero. ``stale_timeout`` (control steps) is
    how long the guard bridges a lost measurement before it stops the robot
    (``GuardConfig.stale_timeout``; the robot bridge sets it from its state timeout).
    """
    if not guard:
        return PassThrough(planner, task.dynamics)
    guarded = SafetyGuard(
        planner, task.dynamics, task.constraints,
        GuardConfig(deadline=deadline, stale_timeout=stale_timeout),
        velocity_dims=task.velocity_dims, action_delay=action_delay,
    )  # fmt: skip
    if not offset_free:
        return guarded
    return OffsetFree(guarded, task.dynamics, action_delay=action_delay)
