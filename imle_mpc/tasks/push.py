"""Pushing through contact: a pusher moves a block to a goal past a post, in MuJoCo.

``push_block``: MuJoCo is both the planner's model (``MujocoDynamics``, the
``mujoco.rollout`` pool) and the plant. The scene (``data/push_block.xml``) is a
table, a square block (8 cm, 0.2 kg) on two slide joints (it translates, never
rotates; its table friction is the joints' damping, 3 N s/m, and Coulomb
``frictionloss``, 0.02 N), a
sphere pusher (radius 1.5 cm) driven by two velocity actuators (``ctrl`` = the
commanded velocity, m/s, within +-0.3) and a post (radius 4 cm) at (0.3, 0),
right between the block's start (0, 0) and its goal (0.6, 0). Two routes: push
the block around the post on its ``left`` (y > 0) or its ``right`` (y < 0).

State ``x = (pusher x, pusher y, block x, block y, and their velocities)``,
``nx = 8``; action ``u = (pusher vx, pusher vy)``. ``dt = 0.05`` s (20 Hz:
physics at 0.01 s, ``frame_skip = 5``).

Constraints (hard, checked by the guard): the pusher never enters the post
(a disc of the post's radius plus the pusher's on the pusher's x-y), pusher and
block stay on the table, the pusher's speed stays within ``PUSH_MAX_SPEED``.
The planner keeps margins (``PUSH_POST_MARGIN``, a 10 % lower speed) inside the
safety limits judged on the executed path. The actuators' ``forcerange`` (10 N)
bounds the pusher's force in the model itself.

The expert (``push_expert``): pure pursuit of a three-segment path for the block
(out to the chosen side at 35 degrees, along, back in to the goal); the pusher
keeps behind the block's -x face and moves along the path's direction (the
pusher-block friction, 1.0, holds the push for directions within 45 degrees of
the face's normal; the block never turns, so any point of the face pushes
alike), slowing on the last 10 cm.

The demonstrations (20, ten a side) and a generator trained on them ship; the
task's demonstration recipe rebuilds them (``Task.demos``). Model mismatch is a
copied MuJoCo model with named arrays scaled (``MujocoDynamics.with_scaled_parameters``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from cost import (
    ControlEffort,
    CostSum,
    ObstacleConstraint,
    Scene,
    StateBox,
    StateTracking,
    Term,
    TerminalState,
)
from imle_mpc.core.validation import FloatArray
from imle_mpc.loop.faults import FaultConfig
from imle_mpc.tasks.base import DATA_DIR, Demonstrations, PlannerHints, Refinement, Routes, Task
from imle_mpc.tasks.experts import Controller, ScriptedDemos, simulate
from imle_mpc.tasks.navigation import Detour, NavLayout, classify_nav_route

PUSH_XML = DATA_DIR / "push_block.xml"
"""The MJCF of the scene, shipped with the package."""
PUSH_FRAME_SKIP = 5
"""Physics steps (0.01 s) per control step: dt = 0.05 s."""
PUSH_START = (0.0, 0.0)
PUSH_PUSHER_START = (-0.12, 0.0)
PUSH_GOAL = (0.6, 0.0)
PUSH_POST = (0.3, 0.0, 0.04)
"""The post (cx, cy, radius) in m, as in the MJCF."""
PUSH_BLOCK_HALF = 0.04
PUSH_PUSHER_RADIUS = 0.015
PUSH_TABLE = ((-0.4, 1.0), (-0.4, 0.4))
"""The table's x and y extent (m); block and pusher centres stay on it."""
PUSH_MAX_SPEED = 0.4
"""The pusher's speed limit per axis (m/s); the actuators command at most 0.3."""
PUSH_POST_MARGIN = 0.01
"""The planner's clearance (m) between the pusher and the post."""
PUSH_GOAL_TOLERANCE = 0.05
"""Success: the block's centre ends within this distance (m) of the goal."""
PUSH_STEPS = 120
"""Episode length in control steps (6 s)."""

PUSHER_DIMS = (0, 1)
BLOCK_DIMS = (2, 3)
PUSHER_VELOCITY_DIMS = (4, 5)
BLOCK_VELOCITY_DIMS = (6, 7)

_ROUTE_LAYOUT = NavLayout(
    name="push_block",
    start=PUSH_START,
    goal=PUSH_GOAL,
    obstacles=(PUSH_POST,),
    steps=PUSH_STEPS,
    # The block passes the post's line x = 0.3 more than post radius + half block
    # away, or it ran into the post ("through").
    detours=(Detour(PUSH_POST[0], PUSH_POST[1], 0.14, PUSH_POST[2] + PUSH_BLOCK_HALF),),
)
_SIDE = {"above": "left", "below": "right"}


def classify_push_route(states: FloatArray) -> str:
    """Which side of the post the block passed, Shape=(T, 8) -> ``left``/``right``.

    ``through`` (the block met the post's line within the post's radius plus half the
    block) or ``none`` (the block never reached the post's line) otherwise.
    """
    label = classify_nav_route(np.asarray(states)[:, BLOCK_DIMS], _ROUTE_LAYOUT)
    return _SIDE.get(label, label)


def push_scene() -> Scene:
    """The post as the pusher sees it: a disc of the post's radius plus the pusher's."""
    cx, cy, radius = PUSH_POST
    return Scene(circles=[[cx, cy, radius + PUSH_PUSHER_RADIUS]], position_dims=PUSHER_DIMS)


def _on_table_box(speed: float) -> StateBox:
    (x0, x1), (y0, y1) = PUSH_TABLE
    low = [x0, y0, x0, y0, -speed, -speed, -np.inf, -np.inf]
    high = [x1, y1, x1, y1, speed, speed, np.inf, np.inf]
    return StateBox(low, high, name="table_and_speed")


def _pusher_behind_block(X: FloatArray, U: FloatArray) -> FloatArray:
    """Shaping: squared distance (beyond contact) from the pusher to the block, Shape=(K,)."""
    gap = np.linalg.norm(X[:, 1:, 0:2] - X[:, 1:, 2:4], axis=2)
    excess = np.maximum(gap - (PUSH_BLOCK_HALF + PUSH_PUSHER_RADIUS), 0.0)
    return np.asarray(np.sum(excess**2, axis=1))


def push_cost() -> CostSum:
    """Block to the goal (running and terminal), pusher near the block, little effort."""
    goal = np.array([0.0, 0.0, *PUSH_GOAL, 0.0, 0.0, 0.0, 0.0])
    weights = np.array([0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    return CostSum(
        Term("block_goal", StateTracking(goal, weights), 10.0),
        Term("block_terminal", TerminalState(goal, weights), 100.0),
        Term("pusher_near_block", _pusher_behind_block, 10.0),
        Term("effort", ControlEffort(), 0.01),
    )


def push_success(states: FloatArray, tolerance: float = PUSH_GOAL_TOLERANCE) -> bool:
    """The block's centre ends within ``tolerance`` (m) of the goal."""
    final = np.asarray(states)[-1, BLOCK_DIMS]
    return bool(np.linalg.norm(final - np.asarray(PUSH_GOAL)) < tolerance)


PUSH_FAULTS = FaultConfig(
    observation_noise=(0.002, 0.002, 0.002, 0.002, 0.01, 0.01, 0.01, 0.01),
    model_mismatch={
        "body_mass:block": 1.5,
        "dof_damping:block": 1.3,
        "dof_frictionloss:block": 1.3,
        "geom_friction:pusher": 0.8,
    },
    push_probability=0.05,
    push_magnitude=0.05,
    push_dims=BLOCK_VELOCITY_DIMS,
    drop_probability=0.1,
)
"""Faults stated for ``push_block``: 2 mm position and 1 cm/s velocity noise (std); a
plant whose block is 50 % heavier, slides with 30 % more table friction (the block
joints' damping and Coulomb friction) and grips the pusher with 20 % less friction
(1.0 -> 0.8; MuJoCo takes the larger of the two geoms' coefficients);
a 5 cm/s push on the block on 5 % of the steps; 10 % of the plans dropped."""


PUSH_REFINEMENTS = (
    Refinement(
        "heavy",
        "the block twice as heavy and sliding with 5x the table friction (its joints' damping "
        "and Coulomb friction) of the demonstrations: the IMLE policy's push runs out short",
        faults=FaultConfig(
            model_mismatch={
                "body_mass:block": 2.0,
                "dof_damping:block": 5.0,
                "dof_frictionloss:block": 5.0,
            }
        ),
    ),
    Refinement(
        "precise",
        "the block within 2 cm of the goal, not 5 cm (the expert's demonstrations end 2.4 cm "
        "off on the nominal run)",
        success=partial(push_success, tolerance=0.02),
    ),
)
"""Where the frozen IMLE policy is short (``imle-mpc eval --task push_block --planner
imle_policy --setting NAME --episodes 20``, guarded, seeds 0-19): ``heavy`` 55 %
success (the block stops 3.6-6.5 cm short; 95 % on the nominal plant), ``precise``
45 %. Guarded IMLE-MPC re-plans on the cost and stays at 100 % in ``heavy``."""


def push_block() -> Task:
    """The block-pushing task in MuJoCo (see the module docstring)."""
    # Imported here: only this task loads mujoco, not ``import imle_mpc.tasks``.
    from dynamics.mujoco_model import MujocoDynamics

    model = MujocoDynamics(PUSH_XML, frame_skip=PUSH_FRAME_SKIP)
    scene = push_scene()
    x0 = np.array([*PUSH_PUSHER_START, *PUSH_START, 0.0, 0.0, 0.0, 0.0])
    return Task(
        name="push_block",
        dynamics=model,
        cost=push_cost(),
        constraints=[
            ObstacleConstraint(scene, margin=PUSH_POST_MARGIN),
            _on_table_box(0.9 * PUSH_MAX_SPEED),
        ],
        safety_constraints=[ObstacleConstraint(scene, margin=0.0), _on_table_box(PUSH_MAX_SPEED)],
        initial_state=x0,
        steps=PUSH_STEPS,
        success=push_success,
        hints=PlannerHints(num_samples=256, horizon=25, noise_sigma=0.15, temperature=0.1),
        scene=scene,
        goal=PUSH_GOAL,
        velocity_dims=PUSHER_VELOCITY_DIMS,
        faults=PUSH_FAULTS,
        refinements=PUSH_REFINEMENTS,
        routes=Routes(("left", "right"), classify_push_route),
        # Rebuild both: python -m imle_mpc.tasks.shipped (the dataset), then
        # imle-mpc train --data imle_mpc/tasks/data/push_block_demos.npz --out DIR.
        demos=Demonstrations(
            generate=ScriptedDemos(
                push_expert,
                "pure pursuit of a three-segment block path (out at 35 degrees, along, "
                "back in), pushing the block's -x face at 0.25 m/s, starts jittered 1 cm, "
                "detour 10 %",
                min_clearance=PUSH_EXPERT_MIN_CLEARANCE,
            ),
            num_demos=PUSH_NUM_DEMOS,
            dataset_file="push_block_demos.npz",
            generator_file="push_block_generator.safetensors",
        ),
    )


# --- the scripted expert ------------------------------------------------------------------

PUSH_EXPERT_SPEED = 0.25
"""The expert's pushing speed (m/s)."""
PUSH_EXPERT_DETOUR = 0.14
"""How far (m) to the side of the post the expert's block path runs."""
PUSH_EXPERT_MIN_CLEARANCE = 0.05
"""Every kept demonstration keeps the pusher this far (m) from the post (they keep ~9 cm)."""
PUSH_NUM_DEMOS = 20
"""Demonstrations the recipe makes by default (the shipped dataset has these)."""


def push_reference_path(
    route: str, start: Any = PUSH_START, detour: float = PUSH_EXPERT_DETOUR
) -> FloatArray:
    """The block's path for ``route``: corner points Shape=(4, 2), start to goal.

    Out at 35 degrees to ``detour`` on the route's side, along, and back in to the goal.
    """
    if route not in ("left", "right"):
        raise ValueError(f"route must be 'left' or 'right', got {route!r}.")
    side = detour if route == "left" else -detour
    run = detour / np.tan(np.radians(35.0))
    (sx, sy), (gx, gy) = start, PUSH_GOAL
    return np.array([[sx, sy], [sx + run, side], [gx - run, side], [gx, gy]], dtype=np.float64)


@dataclass
class PushExpert:
    """Pushes the block along a polyline path from behind its -x face.

    Call ``reset()`` before a new episode (the progress along the path is state).
    """

    path: FloatArray
    speed: float = PUSH_EXPERT_SPEED
    lookahead: float = 0.06
    gain: float = 5.0
    _segment: int = 0

    def reset(self) -> None:
        self._segment = 0

    def _carrot(self, block: FloatArray) -> FloatArray:
        """A point ``lookahead`` ahead of the block's projection on its current segment."""
        while self._segment < len(self.path) - 2:
            a, b = self.path[self._segment], self.path[self._segment + 1]
            if np.dot(block - a, b - a) / np.dot(b - a, b - a) < 1.0 - 1e-9:
                break
            self._segment += 1
        a, b = self.path[self._segment], self.path[self._segment + 1]
        length = float(np.linalg.norm(b - a))
        s = float(np.clip(np.dot(block - a, b - a) / length, 0.0, length)) + self.lookahead
        while s > length and self._segment < len(self.path) - 2:
            s -= length
            a, b = self.path[self._segment + 1], self.path[self._segment + 2]
            length = float(np.linalg.norm(b - a))
        return np.asarray(a + min(s, length) * (b - a) / length)

    def __call__(self, state: FloatArray, step: int = 0) -> FloatArray:
        pusher, block = state[0:2], state[2:4]
        contact = block - np.array([PUSH_BLOCK_HALF + PUSH_PUSHER_RADIUS, 0.0])
        if pusher[0] > contact[0] + 0.01:
            # Ahead of the pushing face: go round the block's side first.
            away = 1.0 if pusher[1] >= block[1] else -1.0
            target = np.array([contact[0] - 0.03, block[1] + away * (2 * PUSH_BLOCK_HALF)])
            if abs(pusher[1] - block[1]) > PUSH_BLOCK_HALF + PUSH_PUSHER_RADIUS + 0.01:
                target[1] = pusher[1]
            return np.asarray(np.clip(self.gain * (target - pusher), -self.speed, self.speed))
        to_goal = float(np.linalg.norm(self.path[-1] - block))
        heading = self._carrot(block) - block
        direction = heading / max(float(np.linalg.norm(heading)), 1e-9)
        speed = self.speed * min(1.0, to_goal / 0.1)
        # Move along the path, pressing 3 mm into the face; the block does not turn, so
        # any point of the face pushes alike: pull back only off its middle half.
        offset = pusher[1] - block[1]
        slide = np.sign(offset) * max(abs(offset) - 0.5 * PUSH_BLOCK_HALF, 0.0)
        error = np.array([contact[0] + 0.003 - pusher[0], -slide])
        velocity = speed * direction + self.gain * error
        if to_goal < 0.01:
            velocity = np.zeros(2)
        return velocity


def push_expert(
    task: Task, route: str, rng: np.random.Generator | None
) -> tuple[FloatArray, Controller]:
    """A start state and the pushing controller for one route (``experts.ExpertFactory``).

    ``rng`` jitters the block's start (1 cm), the pusher's (1 cm) and the detour (10 %);
    None: the nominal run.
    """
    x0 = np.array(task.initial_state, dtype=np.float64)
    detour = PUSH_EXPERT_DETOUR
    if rng is not None:
        x0[0:4] += rng.uniform(-0.01, 0.01, size=4)
        detour *= rng.uniform(0.9, 1.1)
    return x0, PushExpert(push_reference_path(route, start=x0[2:4], detour=detour))


def run_push_expert(
    task: Task, route: str, rng: np.random.Generator | None = None
) -> tuple[FloatArray, FloatArray]:
    """Run the expert on the task's MuJoCo model (``rng``: jittered as ``push_expert``).

    Returns:
        ``(states Shape=(T+1, 8), actions Shape=(T, 2))``.
    """
    x0, controller = push_expert(task, route, rng)
    run = simulate(task, x0, controller)
    return run.states, run.actions
