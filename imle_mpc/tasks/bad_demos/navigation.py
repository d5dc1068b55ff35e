"""The navigation tasks' bad demonstrations: ``nav_expert`` spoilt one way.

* ``noisy``: every action gets Gaussian noise (``noise_std`` = 0.8 N per entry, 40 %
  of the 2 N actuator bound), clipped to the actuator box: a shaky teleoperator;
* ``hesitant``: the expert stops and goes, braking to a standstill for ``pause`` steps
  after every ``every`` steps of driving: a demonstrator who keeps hesitating;
* ``through_obstacle``: the expert follows the straight line from start to goal with
  no detour, so it drives through the obstacles (a demonstration that was never
  checked);
* ``stop_short``: the expert drives along its route but aims at a goal ``short`` of the
  way, then stops there: a failing episode (used by the offline-RL comparison).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imle_mpc.core.validation import FloatArray
from imle_mpc.tasks.bad_demos.base import BadDemoConfig, BadDemoFamily
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.experts import Controller
from imle_mpc.tasks.navigation import NavigationExpert, nav_expert, nav_layout, nav_reference_path


def _braking(mass: float, drag: float, gain: float) -> Controller:
    """The expert's velocity loop with zero desired velocity (brakes to a standstill)."""
    return lambda x, t: np.asarray(-mass * gain * x[2:4] + drag * x[2:4])


def spoil_navigation(
    task: Task, kind: str, route: str, rng: np.random.Generator, cfg: BadDemoConfig
) -> tuple[FloatArray, Controller]:
    """The navigation expert of ``route`` spoilt as ``kind`` (``base.SpoiltExpert``)."""
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
        path = expert.path[expert.path[:, 0] <= goal[0]]
        expert = NavigationExpert(path, path[-1], expert.mass, expert.drag, speed=expert.speed)
    if kind != "hesitant":
        return x0, expert
    brake = _braking(model.mass, model.drag, expert.velocity_gain)
    period = cfg.every + cfg.pause

    def hesitant(x: FloatArray, t: int) -> FloatArray:
        u = expert(x, t)  # keeps its progress along the path up to date while braking
        return brake(x, t) if t % period >= cfg.every else u

    return x0, hesitant


NAVIGATION_BAD_DEMOS = BadDemoFamily(
    kinds=("noisy", "hesitant", "through_obstacle", "stop_short"),
    spoil=spoil_navigation,
    config=BadDemoConfig(noise_std=0.8),
    failing=("stop_short",),
)
"""The navigation tasks' family (``nav_one_obstacle``, ``nav_two_obstacles``, ``nav_trap``)."""
