"""Bad demonstrations of the navigation tasks, mixed into a clean dataset on purpose.

A demonstration-quality check needs data whose bad episodes are known. Each kind here
is the navigation expert (``navigation.nav_expert``) spoilt one way, run on the task's
model with the expert's own start jitter:

* ``noisy``: every action gets Gaussian noise (``noise_std`` N per entry), clipped to
  the actuator box: a shaky teleoperator;
* ``hesitant``: the expert stops and goes, braking to a standstill for ``pause`` steps
  after every ``every`` steps of driving: a demonstrator who keeps hesitating;
* ``through_obstacle``: the expert follows the straight line from start to goal with
  no detour, so it drives through the obstacles (a demonstration that was never
  checked);
* ``stop_short``: the expert drives along its route but aims at a goal ``short`` of the
  way, then stops there: a failing episode (used by the offline-RL comparison).

``mixed_dataset`` appends such episodes to a clean dataset and records every
episode's kind in ``meta["quality"]`` (``"expert"`` for the clean ones), so a check
can be scored against the truth. The bad episodes are not filtered by the expert's
checks (success, clearance, route): that is what makes them bad. ``meta["modes"]``
holds each bad episode's intended route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from imle_mpc.core.validation import FloatArray
from imle_mpc.learn.demos import DemoDataset, Episode
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.experts import Controller, balanced_routes, observation, simulate
from imle_mpc.tasks.navigation import NavigationExpert, nav_expert, nav_layout, nav_reference_path

BAD_KINDS = ("noisy", "hesitant", "through_obstacle", "stop_short")
"""The kinds of bad demonstration ``bad_demonstration`` makes."""


@dataclass(frozen=True)
class BadDemoConfig:
    """How bad each kind is.

    Attributes:
        noise_std: ``noisy``: std (N) of the noise on each action entry.
        every: ``hesitant``: steps of driving between two pauses.
        pause: ``hesitant``: steps of braking in each pause.
        short: ``stop_short``: share of the start-to-goal distance where it stops.
    """

    noise_std: float = 0.8
    every: int = 8
    pause: int = 6
    short: float = 0.5


def _braking(mass: float, drag: float, gain: float) -> Controller:
    """The expert's velocity loop with zero desired velocity (brakes to a standstill)."""
    return lambda x, t: np.asarray(-mass * gain * x[2:4] + drag * x[2:4])


def bad_demonstration(
    task: Task,
    kind: str,
    route: str,
    rng: np.random.Generator,
    config: BadDemoConfig | None = None,
) -> tuple[FloatArray, FloatArray]:
    """One bad demonstration of a navigation task.

    Args:
        task: a navigation task (``nav_one_obstacle``, ``nav_two_obstacles``, ``nav_trap``).
        kind: one of ``BAD_KINDS``.
        route: the route the spoilt expert was meant to take.
        rng: draws the expert's jitter and the noise.
        config: the kinds' magnitudes.

    Returns:
        ``(states Shape=(T+1, nx), actions Shape=(T, nu))``, T = ``task.steps``.

    Raises:
        ValueError: an unknown kind, or a task that is not a navigation task.
    """
    cfg = BadDemoConfig() if config is None else config
    if kind not in BAD_KINDS:
        raise ValueError(f"unknown bad-demonstration kind {kind!r}; choose one of {BAD_KINDS}.")
    layout = nav_layout(task.name)
    x0, expert = nav_expert(layout, task, route, rng)
    assert isinstance(expert, NavigationExpert)
    model: Any = task.dynamics
    if kind == "through_obstacle":
        path = nav_reference_path(
            layout, route, start=x0[:2], heights=[0.0] * len(route.split("-"))
        )
        expert = NavigationExpert(path, expert.goal, expert.mass, expert.drag, speed=expert.speed)
    elif kind == "stop_short":
        goal = x0[:2] + cfg.short * (np.asarray(layout.goal) - x0[:2])
        keep = expert.path[:, 0] <= goal[0]
        path = expert.path[keep]
        goal = path[-1]
        expert = NavigationExpert(path, goal, expert.mass, expert.drag, speed=expert.speed)
    brake = _braking(model.mass, model.drag, expert.velocity_gain)
    noise = rng.normal(0.0, cfg.noise_std, (task.steps, model.nu))

    def controller(x: FloatArray, t: int) -> FloatArray:
        if kind == "hesitant" and t % (cfg.every + cfg.pause) >= cfg.every:
            expert(x, t)  # keep its progress along the path up to date
            return brake(x, t)
        u = expert(x, t)
        return u + noise[t] if kind == "noisy" else u

    run = simulate(task, x0, controller)
    return run.states, run.actions


def mixed_dataset(
    task: Task,
    clean: DemoDataset,
    counts: Mapping[str, int],
    seed: int = 0,
    config: BadDemoConfig | None = None,
) -> DemoDataset:
    """``clean``'s episodes followed by ``counts[kind]`` bad ones of each kind.

    Args:
        task: the navigation task ``clean`` demonstrates.
        clean: the expert's demonstrations (e.g. ``task.load_demonstrations()``).
        counts: bad episodes per kind, e.g. ``{"noisy": 2, "through_obstacle": 2}``.
        seed: seeds the bad episodes' routes, jitter and noise.
        config: the kinds' magnitudes.

    Returns:
        The dataset, ``meta["quality"]`` the kind of each episode (``"expert"`` for the
        clean ones), ``meta["modes"]`` each episode's (intended) route.
    """
    rng = np.random.default_rng(seed)
    episodes = list(clean.episodes)
    modes = list(clean.meta.get("modes", ["?"] * len(episodes)))
    quality = ["expert"] * len(episodes)
    for kind, count in counts.items():
        for route in balanced_routes(task, int(count), rng):
            X, U = bad_demonstration(task, kind, route, rng, config)
            episodes.append(Episode(observation(X[:-1]), X[:-1].copy(), U.copy()))
            modes.append(route)
            quality.append(kind)
    meta = {**clean.meta, "modes": modes, "quality": quality, "num_demos": len(episodes)}
    meta["bad_demos"] = {kind: int(n) for kind, n in counts.items()}
    return DemoDataset(tuple(episodes), meta)
