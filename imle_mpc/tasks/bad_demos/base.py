"""What every task family's bad demonstrations share: their magnitudes and their maker.

A family (``bad_demos.navigation``, ``bad_demos.push``) writes only how its expert is
spoilt for each kind: ``spoil(task, kind, route, rng, config) -> (x0, controller)``.
``noisy`` is common to all: the family's plain expert, with ``config.noise_std``
Gaussian noise added to every action by ``bad_demos.bad_demonstration``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from imle_mpc.core.validation import FloatArray
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.experts import Controller


@dataclass(frozen=True)
class BadDemoConfig:
    """How bad each kind is; a family's ``BadDemoFamily.config`` holds its defaults.

    Attributes:
        noise_std: ``noisy``: std of the noise on each action entry (the action's unit:
            N for navigation, m/s for pushing).
        every: ``hesitant``: steps of driving between two pauses.
        pause: ``hesitant``: steps of braking in each pause.
        short: ``stop_short``: share of the start-to-goal distance (along x) where it stops.
        lose_at: ``lose_contact``: steps of pushing before the pusher slips off.
        slide: ``lose_contact``: steps the pusher moves sideways, away from the block,
            before it stands still.
    """

    noise_std: float = 0.8
    every: int = 8
    pause: int = 6
    short: float = 0.5
    lose_at: int = 30
    slide: int = 8


SpoiltExpert = Callable[
    [Task, str, str, np.random.Generator, BadDemoConfig], tuple[FloatArray, Controller]
]
"""``spoil(task, kind, route, rng, config) -> (x0 Shape=(nx,), controller)``: the
family's expert made bad one way (for ``noisy``: the plain expert)."""


@dataclass(frozen=True)
class BadDemoFamily:
    """A task family's bad demonstrations.

    Attributes:
        kinds: the kinds it makes, ``noisy`` among them.
        spoil: the spoilt expert of each kind (``SpoiltExpert``).
        config: the kinds' default magnitudes for this family.
        failing: the kinds that never reach the goal (the offline-RL comparison's
            failing episodes).
    """

    kinds: tuple[str, ...]
    spoil: SpoiltExpert
    config: BadDemoConfig
    failing: tuple[str, ...] = ()
