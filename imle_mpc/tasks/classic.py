"""The classic swing-up and obstacle tasks: pendulum, cart-pole, point mass."""

from __future__ import annotations

import numpy as np

from cost import (
    ControlEffort,
    CostSum,
    ObstacleConstraint,
    Scene,
    StateTracking,
    Term,
)
from dynamics import CartPole, Pendulum, PointMass2D
from imle_mpc.core.validation import FloatArray
from imle_mpc.tasks.base import PlannerHints, Task, wrap_angle
from imle_mpc.tasks.navigation import arrived_clear, planar_goal_cost


def _upright_for(states: FloatArray, angle_index: int, band: float, hold: int) -> bool:
    """True if the angle stayed within ``band`` of upright for the last ``hold`` states."""
    tail = states[-hold:, angle_index]
    return bool(np.all(np.abs(wrap_angle(tail)) < band))


def pendulum_swingup() -> Task:
    """Swing a torque-limited pendulum up from hanging; upright for the last 2 of 10 s."""

    model = Pendulum()
    cost = CostSum(
        Term("upright", StateTracking([0.0, 0.0], [1.0, 0.1], angle_dims=[0])),
        Term("effort", ControlEffort(), 0.001),
    )
    return Task(
        name="pendulum",
        dynamics=model,
        cost=cost,
        constraints=(),
        initial_state=np.array([np.pi, 0.0]),
        steps=200,
        success=lambda s: _upright_for(s, 0, 0.3, 40),
        hints=PlannerHints(num_samples=256, horizon=40, noise_sigma=1.0, temperature=0.1),
    )


def cartpole_swingup() -> Task:
    """Swing a cart-pole up from hanging and balance it, cart near the origin (4 s at 20 Hz)."""

    model = CartPole()
    cost = CostSum(
        Term("upright", StateTracking(np.zeros(4), [1.0, 10.0, 0.1, 0.1], angle_dims=[1])),
        Term("effort", ControlEffort(), 0.01),
    )

    def success(states: FloatArray) -> bool:
        on_rail = bool(np.all(np.abs(states[:, 0]) < 2.0))
        return on_rail and _upright_for(states, 1, 0.3, 20)

    return Task(
        name="cartpole",
        dynamics=model,
        cost=cost,
        constraints=(),
        initial_state=np.array([0.0, np.pi, 0.0, 0.0]),
        steps=80,
        success=success,
        hints=PlannerHints(num_samples=256, horizon=30, noise_sigma=5.0, temperature=1.0),
    )


POINT_MASS_GOAL = np.array([4.0, 0.0])


def point_mass_obstacle() -> Task:
    """Drive a 2-D point mass from (0, 0) to (4, 0) around a disc that blocks the line."""

    model = PointMass2D()
    scene = Scene(circles=[[2.0, 0.0, 0.6]])
    goal = np.array([*POINT_MASS_GOAL, 0.0, 0.0])
    cost = planar_goal_cost(goal, scene)
    success = arrived_clear(scene, POINT_MASS_GOAL, 0.25)

    return Task(
        name="point_mass",
        dynamics=model,
        cost=cost,
        constraints=(ObstacleConstraint(scene, margin=0.05),),
        initial_state=np.zeros(4),
        steps=120,
        success=success,
        hints=PlannerHints(num_samples=256, horizon=30, noise_sigma=1.0, temperature=0.5),
        scene=scene,
        goal=(float(POINT_MASS_GOAL[0]), float(POINT_MASS_GOAL[1])),
    )
