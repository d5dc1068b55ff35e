"""Multi-modal navigation tasks: several distinct correct ways around the obstacles.

These are the tasks that motivate learned proposals. Each is symmetric enough
that all of its routes (modes) are equally good, so a planner that averages
samples from different routes drives into the obstacle, and a short-horizon
sampler started on the symmetry line has no reason to prefer a side.

* ``nav_one_obstacle``: a 2-D point mass from (0, 0) to (4, 0) around a disc of
  radius 0.7 at (2, 0). Two routes: ``above`` or ``below``.
* ``nav_two_obstacles``: from (0, 0) to (6.5, 0) past two discs of radius 0.5
  at (2, 0) and (4.5, 0). Four routes: above/below each, labelled
  ``above-above``, ``above-below``, ``below-above``, ``below-below`` (first
  obstacle first).
* ``nav_trap``: from (0, 0) to (5, 0) past a cup of three walls (capsules)
  whose open side faces the start, right on the straight line. Two routes:
  ``above`` or ``below`` the cup. The goal is behind the cup's back wall, so a
  planner that follows the goal cost greedily drives into the cup and stays
  there (a local minimum for any horizon that cannot see around the cup); the
  demonstrations never enter it.

Timing: ``dt = 0.1`` s and ``max_force = 2`` N on a 1 kg mass with
drag 0.5 N s/m (top speed 4 m/s, but the demonstrations cruise at ~1.2 m/s),
so a 16-step action chunk spans 1.6 s, about 2 m of a ~4.6 m detour.

The expert (``nav_expert``): pure pursuit of a smooth detour path. The path is
the straight line from start to goal plus one Gaussian bump per detour point,
up for ``above`` and down for ``below``; the controller steers the velocity
towards a carrot 0.5 m ahead on the path at a cruise speed (~1.2 m/s), slows
down on the last 1.5 m and ends with a P-controller on the goal. Force =
``mass * 3/s * (v_desired - v) + drag * v``, clipped to the actuator box. Each
demonstration jitters the start by up to 5 cm, the bump heights by 10 % and
the cruise speed by 10 %.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

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
from imle_mpc.core.validation import FloatArray
from imle_mpc.loop.faults import FaultConfig
from imle_mpc.tasks.base import Demonstrations, PlannerHints, Routes, Task
from imle_mpc.tasks.experts import Controller, DemoPushes, ScriptedDemos

# --- 2-D navigation -----------------------------------------------------------------------

NAV_DT = 0.1
"""Seconds per control step of the navigation tasks."""
NAV_MASS = 1.0
NAV_DRAG = 0.5
NAV_MAX_FORCE = 2.0
"""Actuator box of the navigation tasks: each force component in [-2, 2] N."""
NAV_GOAL_TOLERANCE = 0.25
"""Success: the final position lies within this distance (m) of the goal."""


class Detour(NamedTuple):
    """A place the routes pass above or below.

    Attributes:
        cx, cy: the point (m); routes are told apart where they cross ``x = cx``.
        height: nominal height (m) of the demonstrations' detour bump there.
        extent: half the height (m) of what blocks the way there: a path that
            crosses ``x = cx`` within ``extent`` of ``cy`` went through (or into) it.
    """

    cx: float
    cy: float
    height: float
    extent: float


@dataclass(frozen=True)
class NavLayout:
    """Geometry of a navigation task.

    Attributes:
        name: task name.
        start: nominal start position (m); the start velocity is zero.
        goal: goal position (m); the goal velocity is zero.
        obstacles: discs ``(cx, cy, radius)``, ordered along the way from start to goal.
        steps: episode length in control steps.
        walls: capsules ``(ax, ay, bx, by, radius)`` (segments thickened by a radius).
        detours: the points the routes pass above or below (``Detour``), in
            order from start to goal. Empty: one per disc, at its centre,
            ``radius + 0.5`` high, the radius as its half extent.
        detour_width: std (m) of the demonstrations' Gaussian detour bumps.
    """

    name: str
    start: tuple[float, float]
    goal: tuple[float, float]
    obstacles: tuple[tuple[float, float, float], ...]
    steps: int
    walls: tuple[tuple[float, float, float, float, float], ...] = ()
    detours: tuple[Detour, ...] = ()
    detour_width: float = 0.8

    @property
    def detour_points(self) -> tuple[Detour, ...]:
        """``detours``, or one per disc: ``Detour(cx, cy, radius + 0.5, radius)``."""
        if self.detours:
            return self.detours
        return tuple(Detour(cx, cy, r + 0.5, r) for cx, cy, r in self.obstacles)

    @property
    def routes(self) -> tuple[str, ...]:
        """All route labels: ``above``/``below`` for each detour point, joined by ``-``."""
        return tuple(
            "-".join(sides)
            for sides in itertools.product(("above", "below"), repeat=len(self.detour_points))
        )

    @property
    def initial_state(self) -> FloatArray:
        return np.array([*self.start, 0.0, 0.0])

    @property
    def goal_state(self) -> FloatArray:
        return np.array([*self.goal, 0.0, 0.0])

    def scene(self) -> Scene:
        """The obstacles as a ``cost.Scene`` (discs and walls)."""
        return Scene(
            circles=[list(c) for c in self.obstacles], capsules=[list(w) for w in self.walls]
        )

    def clearance(self, positions: ArrayLike) -> FloatArray:
        """Signed distance of each position to the nearest obstacle or wall, Shape=(...,)."""
        p = np.asarray(positions, dtype=np.float64)
        flat = np.zeros((1, p[..., 0].size, 2))
        flat[0] = p.reshape(-1, p.shape[-1])[:, :2]
        return np.asarray(self.scene().distances(flat)[0].reshape(p.shape[:-1]))


TRAP_WALLS = (
    (1.8, 1.0, 3.0, 1.0, 0.1),
    (3.0, -1.0, 3.0, 1.0, 0.1),
    (1.8, -1.0, 3.0, -1.0, 0.1),
)
"""The cup of ``nav_trap``: two side walls and a back wall, 0.2 m thick, open toward the start."""

NAV_LAYOUTS: dict[str, NavLayout] = {
    "nav_one_obstacle": NavLayout(
        name="nav_one_obstacle",
        start=(0.0, 0.0),
        goal=(4.0, 0.0),
        obstacles=((2.0, 0.0, 0.7),),
        steps=60,
    ),
    "nav_two_obstacles": NavLayout(
        name="nav_two_obstacles",
        start=(0.0, 0.0),
        goal=(6.5, 0.0),
        obstacles=((2.0, 0.0, 0.5), (4.5, 0.0, 0.5)),
        steps=90,
    ),
    "nav_trap": NavLayout(
        name="nav_trap",
        start=(0.0, 0.0),
        goal=(5.0, 0.0),
        obstacles=(),
        walls=TRAP_WALLS,
        detours=(Detour(2.4, 0.0, height=2.0, extent=1.1),),
        detour_width=1.1,
        steps=90,
    ),
}


def nav_layout(name: str) -> NavLayout:
    """The layout of a navigation task; the error lists the known names."""
    try:
        return NAV_LAYOUTS[name]
    except KeyError:
        raise ValueError(
            f"unknown navigation task {name!r}; choose one of {sorted(NAV_LAYOUTS)}."
        ) from None


def classify_nav_route(positions: ArrayLike, layout: NavLayout) -> str:
    """The route a path took: which side of each obstacle it passed.

    For each detour point (``layout.detour_points``: by default the discs'
    centres), the path's height where it first crosses the vertical line
    through it (interpolated between samples) decides ``above`` or ``below``;
    within the point's ``extent`` it is ``through`` (into the obstacle or the
    cup). A path that never crosses that line is ``none``.

    Args:
        positions: the path, Shape=(T, >=2) (states work: only columns 0 and 1 are read).
        layout: the task's geometry.

    Returns:
        A label from ``layout.routes``, or one containing ``none`` or ``through``.
    """
    p = np.asarray(positions, dtype=np.float64)
    sides = []
    for cx, cy, _, extent in layout.detour_points:
        ahead = np.flatnonzero(p[:, 0] >= cx)
        if ahead.size == 0:
            sides.append("none")
            continue
        i = int(ahead[0])
        if i == 0:
            y = p[0, 1]
        else:
            x0, x1 = p[i - 1, 0], p[i, 0]
            w = (cx - x0) / (x1 - x0) if x1 != x0 else 1.0
            y = p[i - 1, 1] + w * (p[i, 1] - p[i - 1, 1])
        if abs(y - cy) < extent:
            sides.append("through")
        else:
            sides.append("above" if y >= cy else "below")
    return "-".join(sides)


NAV_FAULTS = FaultConfig(
    observation_noise=(0.01, 0.01, 0.02, 0.02),
    action_delay=1,
    model_mismatch={"mass": 1.1, "drag": 0.9},
    push_probability=0.05,
    push_magnitude=0.2,
    push_dims=(2, 3),
    drop_probability=0.1,
)
"""Faults the guard keeps the navigation tasks safe under (``--faults all``).

Position noise 1 cm and velocity noise 2 cm/s (std), one step (0.1 s) of
actuation delay, a plant 10 % heavier with 10 % less drag than the model, a
0.2 m/s push on 5 % of the steps, and 10 % of the planning steps dropped, all
at once. The planner's obstacle margin (``NAV_OBSTACLE_MARGIN``) is sized for
them: one step of delay at full force difference (4 N) moves the robot
dt^2 * 4 N / 1.1 kg = 3.6 cm off its prediction, a push 2 cm more within the
step, and the noise 1 cm (std); 0.1 m covers their sum. Measured
(``bench/fault_sweep.py --task nav_two_obstacles``, 30 episodes a point): with
the guard and the offset estimate, no episode with a violation up to 2x, 13 %
at 3x; without the guard 22 % of 200 episodes already at 1x.
"""

NAV_OBSTACLE_MARGIN = 0.1
"""The planner's clearance (m) to the obstacles; the executed path must keep > 0."""


# --- Navigation expert ----------------------------------------------------------------------

NAV_CRUISE_SPEED = 1.2
NAV_LOOKAHEAD = 0.5
NAV_VELOCITY_GAIN = 3.0
NAV_GOAL_GAIN = 1.5
NAV_SLOWDOWN = 1.5


def nav_reference_path(
    layout: NavLayout,
    route: str,
    start: ArrayLike | None = None,
    heights: ArrayLike | None = None,
    width: float | None = None,
    samples: int = 1500,
) -> FloatArray:
    """A smooth detour ``y(x)`` from ``start`` to the goal along ``route``.

    The straight line plus, per detour point of the layout
    (``layout.detour_points``), a Gaussian bump of ``heights[i]`` (default: the
    point's nominal height) and std ``width`` (default ``layout.detour_width``), up for ``above``
    and down for ``below``; the bumps' values at both ends are subtracted
    linearly so the path starts exactly at ``start`` and ends at the goal.

    Returns:
        Points along the path, Shape=(samples, 2).
    """
    sides = route.split("-")
    points = layout.detour_points
    if len(sides) != len(points) or not set(sides) <= {"above", "below"}:
        raise ValueError(f"route {route!r} is not one of {layout.routes} of {layout.name}.")
    p0 = np.asarray(layout.start if start is None else start, dtype=np.float64)
    p1 = np.asarray(layout.goal, dtype=np.float64)
    h = np.asarray(
        [d.height for d in points] if heights is None else heights,
        dtype=np.float64,
    )
    std = layout.detour_width if width is None else width
    x = np.linspace(p0[0], p1[0], samples)
    frac = (x - p0[0]) / (p1[0] - p0[0])

    def bumps(xs: FloatArray) -> FloatArray:
        total = np.zeros_like(xs)
        for detour, side, height in zip(points, sides, h, strict=True):
            sign = 1.0 if side == "above" else -1.0
            total += sign * height * np.exp(-0.5 * ((xs - detour.cx) / std) ** 2)
        return total

    ends = bumps(np.array([p0[0], p1[0]]))
    y = p0[1] + (p1[1] - p0[1]) * frac + bumps(x) - (ends[0] + (ends[1] - ends[0]) * frac)
    return np.stack([x, y], axis=1)


@dataclass
class NavigationExpert:
    """Pure pursuit of a path with a cruise speed, a slow-down and a final goal P-controller.

    Call ``reset()`` before a new episode (the progress along the path is state).
    """

    path: FloatArray
    goal: FloatArray
    mass: float
    drag: float
    speed: float = NAV_CRUISE_SPEED
    lookahead: float = NAV_LOOKAHEAD
    velocity_gain: float = NAV_VELOCITY_GAIN
    goal_gain: float = NAV_GOAL_GAIN
    slowdown: float = NAV_SLOWDOWN
    _arc: FloatArray = field(init=False, repr=False)
    _index: int = field(init=False, default=0, repr=False)

    def __post_init__(self) -> None:
        seg = np.linalg.norm(np.diff(self.path, axis=0), axis=1)
        self._arc = np.concatenate([[0.0], np.cumsum(seg)])

    def reset(self) -> None:
        self._index = 0

    def __call__(self, state: FloatArray, step: int = 0) -> FloatArray:
        p, v = state[:2], state[2:4]
        window = self.path[self._index : self._index + 100]
        self._index += int(np.argmin(np.linalg.norm(window - p, axis=1)))
        remaining = self._arc[-1] - self._arc[self._index]
        carrot = int(np.searchsorted(self._arc, self._arc[self._index] + self.lookahead))
        if remaining < self.lookahead or carrot >= len(self.path) - 1:
            v_des = self.goal_gain * (self.goal - p)
            norm = float(np.linalg.norm(v_des))
            if norm > self.speed:
                v_des *= self.speed / norm
        else:
            heading = self.path[carrot] - p
            v_des = self.speed * heading / max(float(np.linalg.norm(heading)), 1e-9)
            if remaining < self.slowdown:
                v_des *= min(1.0, np.sqrt(2.0 * remaining) / self.speed)
        return np.asarray(self.mass * self.velocity_gain * (v_des - v) + self.drag * v)


def nav_expert(
    layout: NavLayout, task: Task, route: str, rng: np.random.Generator | None
) -> tuple[FloatArray, Controller]:
    """A start state and the path follower for one route (``experts.ExpertFactory``).

    ``rng`` jitters the start (5 cm), the bump heights (10 %) and the cruise
    speed (10 %); None: the nominal run.
    """
    x0 = np.array(task.initial_state, dtype=np.float64)
    heights = np.array([d.height for d in layout.detour_points])
    speed = NAV_CRUISE_SPEED
    if rng is not None:
        x0[:2] += rng.uniform(-0.05, 0.05, size=2)
        heights *= rng.uniform(0.9, 1.1, size=heights.size)
        speed *= rng.uniform(0.9, 1.1)
    path = nav_reference_path(layout, route, start=x0[:2], heights=heights)
    model: Any = task.dynamics
    goal = np.asarray(layout.goal, dtype=np.float64)
    return x0, NavigationExpert(path, goal, model.mass, model.drag, speed=speed)


NAV_DEMOS = {"nav_one_obstacle": 20, "nav_two_obstacles": 40, "nav_trap": 30}
"""Demonstrations in the shipped dataset of each navigation task."""

NAV_TRAP_PUSHES = DemoPushes(0.05, (0.1, 0.1, 0.3, 0.3))
"""nav_trap's demonstrations are pushed (the others ship clean ones): without
recoveries the generator drives into the cup from slow or off-route states at its mouth."""


def planar_goal_cost(goal: FloatArray, scene: Scene) -> CostSum:
    """The point mass's cost: track the goal state Shape=(4,), end there, keep 0.3 m clear."""
    return CostSum(
        Term("goal", StateTracking(goal, [1.0, 1.0, 0.05, 0.05]), 1.0),
        Term("terminal", TerminalState(goal, [1.0, 1.0, 0.5, 0.5]), 10.0),
        Term("clearance", ObstacleProximity(scene, margin=0.3), 100.0),
        Term("effort", ControlEffort(), 0.01),
    )


def arrived_clear(scene: Scene, goal_xy: FloatArray, tolerance: float) -> Any:
    """Success: no part of the path (states and the segments between them) inside an
    obstacle, and the last state within ``tolerance`` of the goal."""

    def success(states: FloatArray) -> bool:
        clear = scene.path_distances(np.asarray(states)[None])[0] > 0.0
        arrived = np.linalg.norm(states[-1, :2] - goal_xy) < tolerance
        return bool(clear and arrived)

    return success


def _navigation_task(layout: NavLayout) -> Task:
    model = PointMass2D(mass=NAV_MASS, drag=NAV_DRAG, dt=NAV_DT, max_force=NAV_MAX_FORCE)
    scene = layout.scene()
    goal = layout.goal_state
    goal_xy = goal[:2].copy()
    cost = planar_goal_cost(goal, scene)
    success = arrived_clear(scene, goal_xy, NAV_GOAL_TOLERANCE)

    return Task(
        name=layout.name,
        dynamics=model,
        cost=cost,
        constraints=(ObstacleConstraint(scene, margin=NAV_OBSTACLE_MARGIN),),
        initial_state=layout.initial_state,
        steps=layout.steps,
        success=success,
        # horizon 16 = the length of an IMLE action chunk (1.6 s): the MPC sees as
        # far ahead as its learned proposals reach.
        # policy_lookahead 32: IMLE-MPC charges each candidate what following the
        # generator for 3.2 s more would cost, which sees around nav_trap's cup (16 is
        # too short there: 3/20 episodes; 32: 20/20). It does not change the others.
        hints=PlannerHints(
            num_samples=256, horizon=16, noise_sigma=1.0, temperature=0.5, policy_lookahead=32
        ),
        scene=scene,
        goal=layout.goal,
        safety_constraints=(ObstacleConstraint(scene, margin=0.0, name="collision"),),
        velocity_dims=(2, 3),
        faults=NAV_FAULTS,
        routes=Routes(layout.routes, partial(classify_nav_route, layout=layout)),
        demos=Demonstrations(
            generate=ScriptedDemos(
                partial(nav_expert, layout),
                "pure pursuit of a detour path",
                NAV_TRAP_PUSHES if layout.name == "nav_trap" else None,
            ),
            num_demos=NAV_DEMOS[layout.name],
            dataset_file=f"{layout.name}_demos.npz",
            generator_file=f"{layout.name}_generator.safetensors",
        ),
    )


def nav_one_obstacle() -> Task:
    """Point mass from (0, 0) to (4, 0) around one disc on the straight line: 2 routes."""
    return _navigation_task(NAV_LAYOUTS["nav_one_obstacle"])


def nav_two_obstacles() -> Task:
    """Point mass from (0, 0) to (6.5, 0) past two discs in a row: 4 routes."""
    return _navigation_task(NAV_LAYOUTS["nav_two_obstacles"])


def nav_trap() -> Task:
    """Point mass from (0, 0) to (5, 0) around a cup that opens toward it: 2 routes."""
    return _navigation_task(NAV_LAYOUTS["nav_trap"])
