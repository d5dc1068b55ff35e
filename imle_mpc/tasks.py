"""Ready-made control tasks: a model, a cost, constraints, a start and a success test.

A task is data; any planner can be pointed at it. The builders import the
``dynamics`` and ``cost`` packages lazily so that ``import imle_mpc`` stays
free of them (the core depends on no implementation package).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from imle_mpc.faults import FaultConfig
from imle_mpc.protocols import Constraint, Dynamics
from imle_mpc.validation import FloatArray


def wrap_angle(angle: FloatArray | float) -> Any:
    """Wrap angles to [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2.0 * np.pi) - np.pi


@dataclass(frozen=True)
class PlannerHints:
    """Planner settings known to work for a task (a starting point, not a limit).

    Attributes:
        num_samples, horizon, noise_sigma, temperature: for the sampling planners.
        policy_lookahead: for IMLE-MPC, steps of the generator's own continuation
            past each candidate whose cost is added (``IMLEMPCConfig.cost_to_go_steps``;
            0 = none). Tasks whose greedy goal cost has a dead end need it.
    """

    num_samples: int = 256
    horizon: int = 30
    noise_sigma: float | tuple[float, ...] = 1.0
    temperature: float = 1.0
    policy_lookahead: int = 0


@dataclass(frozen=True)
class Task:
    """A control problem.

    Attributes:
        name: registry name.
        dynamics: the planner's model (and, by default, the simulated plant).
        cost: ``CostSum`` or ``fn(X, U) -> (K,)``.
        constraints: hard constraints (violation > 0 rejects a sample).
        initial_state: start state, Shape=(nx,).
        steps: episode length in control steps.
        success: ``fn(states Shape=(T+1, nx)) -> bool``.
        hints: planner settings that work.
        scene: obstacles, for plots and collision counts (``cost.Scene`` or None).
        goal: goal position in the plane, for plots (None if not planar).
        safety_constraints: the limits the robot must never cross, judged on the
            executed trajectory (e.g. obstacles with zero margin). ``None``:
            the planner's ``constraints``. The planner's margins are the buffer
            between the two.
        velocity_dims: state entries that are velocities (for the guard's brake).
        faults: the fault magnitudes the guard is meant to keep this task safe
            under (``imle_mpc.faults.FaultConfig``; ``None``: not stated).
    """

    name: str
    dynamics: Dynamics
    cost: Any
    constraints: Sequence[Constraint]
    initial_state: FloatArray
    steps: int
    success: Callable[[FloatArray], bool]
    hints: PlannerHints = field(default_factory=PlannerHints)
    scene: Any = None
    goal: tuple[float, float] | None = None
    safety_constraints: Sequence[Constraint] | None = None
    velocity_dims: tuple[int, ...] = ()
    faults: FaultConfig | None = None

    @property
    def safety(self) -> Sequence[Constraint]:
        """The constraints an executed trajectory is judged by (see ``safety_constraints``)."""
        return self.constraints if self.safety_constraints is None else self.safety_constraints


def _upright_for(states: FloatArray, angle_index: int, band: float, hold: int) -> bool:
    """True if the angle stayed within ``band`` of upright for the last ``hold`` states."""
    tail = states[-hold:, angle_index]
    return bool(np.all(np.abs(wrap_angle(tail)) < band))


def pendulum_swingup() -> Task:
    """Swing a torque-limited pendulum up from hanging; upright for the last 2 of 10 s."""
    from cost import ControlEffort, CostSum, StateTracking, Term
    from dynamics import Pendulum

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
    from cost import ControlEffort, CostSum, StateTracking, Term
    from dynamics import CartPole

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
    from cost import (
        ControlEffort,
        CostSum,
        ObstacleConstraint,
        ObstacleProximity,
        Scene,
        StateTracking,
        Term,
        TerminalState,
    )
    from dynamics import PointMass2D

    model = PointMass2D()
    scene = Scene(circles=[[2.0, 0.0, 0.6]])
    goal = np.array([*POINT_MASS_GOAL, 0.0, 0.0])
    cost = CostSum(
        Term("goal", StateTracking(goal, [1.0, 1.0, 0.05, 0.05]), 1.0),
        Term("terminal", TerminalState(goal, [1.0, 1.0, 0.5, 0.5]), 10.0),
        Term("clearance", ObstacleProximity(scene, margin=0.3), 100.0),
        Term("effort", ControlEffort(), 0.01),
    )

    def success(states: FloatArray) -> bool:
        clear = scene.distances(states[None])[0].min() > 0.0
        arrived = np.linalg.norm(states[-1, :2] - POINT_MASS_GOAL) < 0.25
        return bool(clear and arrived)

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


def _multimodal(name: str) -> Callable[[], Task]:
    def build() -> Task:
        from imle_mpc.navigation import NAV_LAYOUTS, TASK_BUILDERS

        task = TASK_BUILDERS[name]()
        layout = NAV_LAYOUTS.get(name)
        return task if layout is None else replace(task, goal=layout.goal)

    build.__doc__ = f"The multi-modal demonstration task {name!r} (see imle_mpc.navigation)."
    return build


def panda_reach_around() -> Task:
    """A 7-DoF Panda sweeps its hand past a ball, over or around it (``imle_mpc.panda_task``)."""
    from imle_mpc.panda_task import panda_reach_around as build

    return build()


TASKS: dict[str, Callable[[], Task]] = {
    "pendulum": pendulum_swingup,
    "cartpole": cartpole_swingup,
    "point_mass": point_mass_obstacle,
    "nav_one_obstacle": _multimodal("nav_one_obstacle"),
    "nav_two_obstacles": _multimodal("nav_two_obstacles"),
    "nav_trap": _multimodal("nav_trap"),
    "arm_reach_around": _multimodal("arm_reach_around"),
    "panda_reach_around": panda_reach_around,
}


def make_task(name: str) -> Task:
    """Build a task by name; the error lists the known names."""
    try:
        return TASKS[name]()
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}.") from None
