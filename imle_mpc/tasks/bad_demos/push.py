"""``push_block``'s bad demonstrations: ``push_expert`` spoilt one way.

* ``noisy``: every action gets Gaussian noise (``noise_std`` = 0.03 m/s per entry, 10 %
  of the 0.3 m/s actuator bound), clipped to the actuator box: a shaky teleoperator
  who mostly still gets there (6 of 8 seeds). Navigation's share (40 %, 0.12 m/s) loses
  the block in every episode (0 of 6): the expert does not recover a lost contact;
* ``through_post``: the expert pushes the block along the straight line from its start
  to the goal, with no detour, so the block runs into the post (never checked);
* ``stop_short``: the expert's path cut where it crosses ``short`` of the way to the
  goal (along x, beside the post), and the push ends there: a failing episode;
* ``lose_contact``: the expert pushes for ``lose_at`` steps, then the pusher slips off
  the block sideways (away from the post, at the expert's speed) for ``slide`` steps
  and stands still: the block is left halfway, a failing episode.
"""

from __future__ import annotations

import numpy as np

from imle_mpc.core.validation import FloatArray
from imle_mpc.tasks.bad_demos.base import BadDemoConfig, BadDemoFamily
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.experts import Controller
from imle_mpc.tasks.push import PUSH_GOAL, PushExpert, push_expert


def cut_path(path: FloatArray, x: float) -> FloatArray:
    """``path`` Shape=(P, 2) up to where it first reaches ``x`` (that point included)."""
    for i in range(1, len(path)):
        a, b = path[i - 1], path[i]
        if b[0] >= x > a[0]:
            point = a + (x - a[0]) / (b[0] - a[0]) * (b - a)
            return np.vstack([path[:i], point])
    return np.asarray(path)


def spoil_push(
    task: Task, kind: str, route: str, rng: np.random.Generator, cfg: BadDemoConfig
) -> tuple[FloatArray, Controller]:
    """The pushing expert of ``route`` spoilt as ``kind`` (``base.SpoiltExpert``)."""
    x0, expert = push_expert(task, route, rng)
    assert isinstance(expert, PushExpert)
    start = x0[2:4]
    if kind == "through_post":
        return x0, PushExpert(np.array([start, PUSH_GOAL]), speed=expert.speed)
    if kind == "stop_short":
        end = start[0] + cfg.short * (PUSH_GOAL[0] - start[0])
        return x0, PushExpert(cut_path(expert.path, end), speed=expert.speed)
    if kind != "lose_contact":
        return x0, expert
    away = np.array([0.0, expert.speed if route == "left" else -expert.speed])

    def lose_contact(x: FloatArray, t: int) -> FloatArray:
        if t < cfg.lose_at:
            return expert(x, t)
        return away.copy() if t < cfg.lose_at + cfg.slide else np.zeros(2)

    return x0, lose_contact


PUSH_BAD_DEMOS = BadDemoFamily(
    kinds=("noisy", "through_post", "stop_short", "lose_contact"),
    spoil=spoil_push,
    config=BadDemoConfig(noise_std=0.03, short=0.5, lose_at=30, slide=8),
    failing=("stop_short", "lose_contact"),
)
"""``push_block``'s family."""
