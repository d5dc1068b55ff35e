"""Bad demonstrations of a task, mixed into a clean dataset on purpose.

A demonstration-quality check and an offline-RL comparison need data whose bad
episodes are known. Each kind is a task's own scripted expert spoilt one way, run on
the task's model with the expert's own start jitter. The kinds are per task family,
registered in ``FAMILIES`` by task name:

* navigation (``nav_one_obstacle``, ``nav_two_obstacles``, ``nav_trap``;
  ``bad_demos.navigation``): ``noisy``, ``hesitant``, ``through_obstacle``, ``stop_short``;
* pushing (``push_block``; ``bad_demos.push``): ``noisy``, ``through_post``,
  ``stop_short``, ``lose_contact``.

``noisy`` is the family's plain expert with Gaussian noise on every action, made
here for all of them; a family writes only its other kinds (``base.BadDemoFamily``).
``mixed_dataset`` appends such episodes to a clean dataset and records every
episode's kind in ``meta["quality"]`` (``"expert"`` for the clean ones), so a check
can be scored against the truth. The bad episodes are not filtered by the expert's
checks (success, clearance, route): that is what makes them bad. ``meta["modes"]``
holds each bad episode's intended route.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from imle_mpc.core.validation import FloatArray
from imle_mpc.learn.demos import DemoDataset, Episode
from imle_mpc.tasks.bad_demos.base import BadDemoConfig, BadDemoFamily
from imle_mpc.tasks.bad_demos.navigation import NAVIGATION_BAD_DEMOS
from imle_mpc.tasks.bad_demos.push import PUSH_BAD_DEMOS
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.experts import Controller, balanced_routes, observation, simulate
from imle_mpc.tasks.navigation import NAV_LAYOUTS

FAMILIES: dict[str, BadDemoFamily] = {
    **{name: NAVIGATION_BAD_DEMOS for name in NAV_LAYOUTS},
    "push_block": PUSH_BAD_DEMOS,
}
"""Each task with bad demonstrations, by name, and its family."""

__all__ = [
    "FAMILIES",
    "BadDemoConfig",
    "BadDemoFamily",
    "bad_demo_family",
    "bad_demonstration",
    "mixed_dataset",
]


def bad_demo_family(task: Task | str) -> BadDemoFamily:
    """The bad-demonstration family of ``task`` (a task or its name).

    Raises:
        ValueError: the task has none; the message lists those that do.
    """
    name = task if isinstance(task, str) else task.name
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"no bad demonstrations are defined for task {name!r}; choose one of "
            f"{sorted(FAMILIES)} (or register a BadDemoFamily in "
            "imle_mpc.tasks.bad_demos.FAMILIES)."
        ) from None


def bad_demonstration(
    task: Task,
    kind: str,
    route: str,
    rng: np.random.Generator,
    config: BadDemoConfig | None = None,
) -> tuple[FloatArray, FloatArray]:
    """One bad demonstration of ``task``.

    Args:
        task: a task of ``FAMILIES``.
        kind: one of its family's ``kinds``.
        route: the route the spoilt expert was meant to take.
        rng: draws the expert's jitter, then the noise (drawn for every kind, so a
            seed gives the same episodes whichever kinds come before).
        config: the kinds' magnitudes (default: the family's).

    Returns:
        ``(states Shape=(T+1, nx), actions Shape=(T, nu))``, T = ``task.steps``.

    Raises:
        ValueError: a task without bad demonstrations, or a kind its family lacks.
    """
    family = bad_demo_family(task)
    cfg = family.config if config is None else config
    if kind not in family.kinds:
        raise ValueError(
            f"unknown bad-demonstration kind {kind!r} for {task.name}; choose one of "
            f"{family.kinds}."
        )
    x0, spoilt = family.spoil(task, kind, route, rng, cfg)
    model: Any = task.dynamics
    noise = rng.normal(0.0, cfg.noise_std, (task.steps, model.nu))
    controller: Controller = spoilt
    if kind == "noisy":
        controller = lambda x, t: np.asarray(spoilt(x, t) + noise[t])  # noqa: E731
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
        task: the task ``clean`` demonstrates (one of ``FAMILIES``).
        clean: the expert's demonstrations (e.g. ``task.load_demonstrations()``).
        counts: bad episodes per kind, e.g. ``{"noisy": 2, "through_obstacle": 2}``.
        seed: seeds the bad episodes' routes, jitter and noise.
        config: the kinds' magnitudes (default: the family's).

    Returns:
        The dataset, ``meta["quality"]`` the kind of each episode (``"expert"`` for the
        clean ones), ``meta["modes"]`` each episode's (intended) route,
        ``meta["bad_demos"]`` the counts.

    Raises:
        ValueError: a task without bad demonstrations, or a kind its family lacks.
    """
    family = bad_demo_family(task)
    unknown = sorted(set(counts) - set(family.kinds))
    if unknown:
        raise ValueError(
            f"unknown bad-demonstration kinds {unknown} for {task.name}; choose from "
            f"{family.kinds}."
        )
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
