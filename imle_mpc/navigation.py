"""Multi-modal tasks: every one has several distinct correct ways to reach its goal.

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
* ``arm_reach_around``: a planar two-link arm under gravity (torque limits
  25/10 N m) sweeps from straight down-left (shoulder at -150 deg) to straight
  down-right (-30 deg) past a post (a disc of radius 0.2 at (0, -1.7), below
  the shoulder, within reach of the forearm). No link may touch the post. The
  straight arm cannot pass it: the forearm must fold out of the way, either
  counter-clockwise (``fold_ccw``: elbow angle q2 > 0 as the arm passes the
  post, the tip leads) or clockwise (``fold_cw``: q2 < 0, the tip trails).
  Here the dynamics matter (inertia coupling, gravity, torque limits).

Timing. Navigation: ``dt = 0.1`` s and ``max_force = 2`` N on a 1 kg mass with
drag 0.5 N s/m (top speed 4 m/s, but the demonstrations cruise at ~1.2 m/s),
so a 16-step action chunk spans 1.6 s, about 2 m of a ~4.6 m detour. The arm:
``dt = 0.05`` s, a 16-step chunk spans 0.8 s of a ~3 s sweep.

The builders return ``imle_mpc.tasks.Task`` and import ``dynamics`` and
``cost`` lazily, so this module stays free of the implementation packages.
``TASK_BUILDERS`` maps the task names to the builders.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba as nb
import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.faults import FaultConfig
from imle_mpc.tasks import PlannerHints, Task
from imle_mpc.validation import FloatArray

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

    def scene(self) -> Any:
        """The obstacles as a ``cost.Scene`` (discs and walls)."""
        from cost import Scene

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


def obstacle_clearance(positions: ArrayLike, obstacles: ArrayLike) -> FloatArray:
    """Signed distance of each position to the nearest disc (negative inside).

    Args:
        positions: Shape=(..., 2).
        obstacles: discs, rows ``(cx, cy, radius)``, Shape=(n, 3).

    Returns:
        Shape=(...,).
    """
    p = np.asarray(positions, dtype=np.float64)[..., None, :]
    obs = np.asarray(obstacles, dtype=np.float64).reshape(-1, 3)
    d = np.linalg.norm(p - obs[:, :2], axis=-1) - obs[:, 2]
    return np.asarray(d.min(axis=-1))


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


def _navigation_task(layout: NavLayout) -> Task:
    from cost import (
        ControlEffort,
        CostSum,
        ObstacleConstraint,
        ObstacleProximity,
        StateTracking,
        Term,
        TerminalState,
    )
    from dynamics import PointMass2D

    model = PointMass2D(mass=NAV_MASS, drag=NAV_DRAG, dt=NAV_DT, max_force=NAV_MAX_FORCE)
    scene = layout.scene()
    goal = layout.goal_state
    goal_xy = goal[:2].copy()
    cost = CostSum(
        Term("goal", StateTracking(goal, [1.0, 1.0, 0.05, 0.05]), 1.0),
        Term("terminal", TerminalState(goal, [1.0, 1.0, 0.5, 0.5]), 10.0),
        Term("clearance", ObstacleProximity(scene, margin=0.3), 100.0),
        Term("effort", ControlEffort(), 0.01),
    )

    def success(states: FloatArray) -> bool:
        clear = scene.distances(np.asarray(states)[None])[0].min() > 0.0
        arrived = np.linalg.norm(states[-1, :2] - goal_xy) < NAV_GOAL_TOLERANCE
        return bool(clear and arrived)

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
        safety_constraints=(ObstacleConstraint(scene, margin=0.0, name="collision"),),
        velocity_dims=(2, 3),
        faults=NAV_FAULTS,
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


# --- Two-link arm reaching around a post ----------------------------------------------------

ARM_DT = 0.05
"""Seconds per control step of ``arm_reach_around``."""
ARM_START_Q = (-5.0 * np.pi / 6.0, 0.0)
"""Start joint angles (rad): the straight arm pointing down-left, at rest."""
ARM_GOAL_Q = (-np.pi / 6.0, 0.0)
"""Goal joint angles (rad): the straight arm pointing down-right, at rest."""
ARM_POST = (0.0, -1.7, 0.2)
"""The post: a disc ``(cx, cy, radius)`` in the arm's plane (m), shoulder at the origin."""
ARM_LINK_LENGTHS = (1.0, 1.0)
ARM_STEPS = 80
ARM_GOAL_TOLERANCE = 0.1
"""Success: the final tip position lies within this distance (m) of the goal tip position."""
ARM_ROUTES = ("fold_ccw", "fold_cw")


@nb.njit(cache=True)
def _segment_distance(ax, ay, bx, by, cx, cy):  # pragma: no cover - compiled
    """Distance from point (cx, cy) to the segment from (ax, ay) to (bx, by)."""
    dx = bx - ax
    dy = by - ay
    den = dx * dx + dy * dy
    t = 0.0
    if den > 0.0:
        t = min(max(((cx - ax) * dx + (cy - ay) * dy) / den, 0.0), 1.0)
    ex = ax + t * dx - cx
    ey = ay + t * dy - cy
    return np.sqrt(ex * ex + ey * ey)


@nb.njit(cache=True)
def arm_post_distance(q1, q2, p):  # pragma: no cover - compiled
    """Signed distance from both links of the arm to the post (negative: a link is inside).

    Args:
        q1, q2: joint angles (rad).
        p: ``(link1_length, link2_length, cx, cy, radius, ...)``.
    """
    l1, l2, cx, cy, r = p[0], p[1], p[2], p[3], p[4]
    ex = l1 * np.cos(q1)
    ey = l1 * np.sin(q1)
    tx = ex + l2 * np.cos(q1 + q2)
    ty = ey + l2 * np.sin(q1 + q2)
    d1 = _segment_distance(0.0, 0.0, ex, ey, cx, cy)
    d2 = _segment_distance(ex, ey, tx, ty, cx, cy)
    return min(d1, d2) - r


@nb.njit(cache=True)
def _arm_proximity_stage(x, u, t, p):  # pragma: no cover - compiled
    """``max(0, margin - d)^2`` for one state; p = (l1, l2, cx, cy, radius, margin)."""
    v = max(p[5] - arm_post_distance(x[0], x[1], p), 0.0)
    return v * v


@nb.njit(parallel=True, cache=True)
def _arm_distances(X, p, out):  # pragma: no cover - compiled
    K, T, _ = X.shape
    for k in nb.prange(K):
        for t in range(T):
            out[k, t] = arm_post_distance(X[k, t, 0], X[k, t, 1], p)


def _arm_params(margin: float = 0.0) -> FloatArray:
    return np.array([*ARM_LINK_LENGTHS, *ARM_POST, margin])


def arm_clearance(states: ArrayLike) -> FloatArray:
    """Signed distance of the arm (both links) to the post for each state.

    Args:
        states: arm states ``(q1, q2, ...)``, Shape=(..., >=2).

    Returns:
        Shape=(...,), negative where a link is inside the post.
    """
    s = np.asarray(states, dtype=np.float64)
    flat = np.ascontiguousarray(s.reshape(1, -1, s.shape[-1]))
    out = np.empty(flat.shape[:2])
    _arm_distances(flat, _arm_params(), out)
    return out.reshape(s.shape[:-1])


def arm_tip(states: ArrayLike) -> FloatArray:
    """Tip (end-effector) position of each arm state, Shape=(..., 2)."""
    s = np.asarray(states, dtype=np.float64)
    q1, q12 = s[..., 0], s[..., 0] + s[..., 1]
    l1, l2 = ARM_LINK_LENGTHS
    return np.stack((l1 * np.cos(q1) + l2 * np.cos(q12), l1 * np.sin(q1) + l2 * np.sin(q12)), -1)


def classify_arm_route(states: ArrayLike) -> str:
    """``fold_ccw`` or ``fold_cw``: the sign of the elbow angle as the arm passes the post.

    Read where the shoulder angle first crosses the post's direction
    (``atan2(cy, cx)``, straight down); ``none`` if it never does.
    """
    s = np.asarray(states, dtype=np.float64)
    post_angle = np.arctan2(ARM_POST[1], ARM_POST[0])
    ahead = np.flatnonzero(s[:, 0] >= post_angle)
    if ahead.size == 0:
        return "none"
    return "fold_ccw" if s[int(ahead[0]), 1] > 0.0 else "fold_cw"


ARM_FAULTS = FaultConfig(
    observation_noise=(0.002, 0.002, 0.01, 0.01),
    action_delay=1,
    model_mismatch={"link2_mass": 1.1},
    push_probability=0.05,
    push_magnitude=0.2,
    push_dims=(2, 3),
    drop_probability=0.1,
)
"""Faults of ``arm_reach_around``: joint noise 2 mrad and 10 mrad/s (std), one step
(0.05 s) of delay, a forearm 10 % heavier than modelled, a 0.2 rad/s push on 5 % of
the steps, 10 % of the planning steps dropped.

Measured (``imle-mpc eval --task arm_reach_around --episodes 40 --faults all``):
guarded IMLE-MPC with the offset estimate (``planners.offset_free``, the
default) succeeds in 82.5 % with no violation; the guard alone
(``--no-offset-free``) in 5 %, with 19 episodes touching the post. The mass
mismatch is the fault that needs the estimate: the plant needs about 1 N m
more torque than the model says, and every plan checked on the nominal model
is wrong in the same direction."""


@dataclass(frozen=True)
class ArmPostConstraint:
    """Hard constraint: no link of the arm within ``margin`` of the post (0 = safe).

    ``violation = max_t max(0, margin - d_t)`` over the predicted states X[:, 1:].
    """

    margin: float = 0.0
    name: str = "post"
    hard: bool = True
    weight: float = 1e3

    def violation(self, X: FloatArray, U: FloatArray) -> FloatArray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        out = np.empty(X.shape[:2])
        _arm_distances(X, _arm_params(), out)
        return np.asarray(np.maximum(self.margin - out[:, 1:].min(axis=1), 0.0))


def arm_reach_around() -> Task:
    """Two-link arm under gravity sweeps 120 deg past a post: fold the forearm ccw or cw."""
    from cost import ControlEffort, CostSum, StageCost, StateTracking, Term, TerminalState
    from dynamics import TwoLinkArm

    l1, l2 = ARM_LINK_LENGTHS
    model = TwoLinkArm(link1_length=l1, link2_length=l2, dt=ARM_DT)
    goal = np.array([*ARM_GOAL_Q, 0.0, 0.0])
    goal_tip = arm_tip(goal)
    cost = CostSum(
        Term("goal", StateTracking(goal, [1.0, 1.0, 0.02, 0.02]), 1.0),
        Term("terminal", TerminalState(goal, [1.0, 1.0, 0.1, 0.1]), 10.0),
        Term("clearance", StageCost(_arm_proximity_stage, params=_arm_params(0.15)), 100.0),
        Term("effort", ControlEffort(), 1e-4),
    )

    def success(states: FloatArray) -> bool:
        clear = arm_clearance(states).min() > 0.0
        arrived = np.linalg.norm(arm_tip(states[-1]) - goal_tip) < ARM_GOAL_TOLERANCE
        return bool(clear and arrived)

    return Task(
        name="arm_reach_around",
        dynamics=model,
        cost=cost,
        constraints=(ArmPostConstraint(margin=0.02),),
        initial_state=np.array([*ARM_START_Q, 0.0, 0.0]),
        steps=ARM_STEPS,
        success=success,
        hints=PlannerHints(num_samples=256, horizon=16, noise_sigma=(8.0, 3.0), temperature=0.5),
        scene=None,  # the states are joint angles; see ARM_POST for the post in the plane
        safety_constraints=(ArmPostConstraint(margin=0.0, name="collision"),),
        velocity_dims=(2, 3),
        faults=ARM_FAULTS,
    )


# --- Registry -------------------------------------------------------------------------------

TASK_BUILDERS: dict[str, Callable[[], Task]] = {
    "nav_one_obstacle": nav_one_obstacle,
    "nav_two_obstacles": nav_two_obstacles,
    "nav_trap": nav_trap,
    "arm_reach_around": arm_reach_around,
}
"""The multi-modal tasks of this module, by name (for ``imle_mpc.tasks.TASKS``)."""


def task_routes(task_name: str) -> tuple[str, ...]:
    """The route (mode) labels of a multi-modal task (``panda_reach_around`` included)."""
    if task_name in NAV_LAYOUTS:
        return NAV_LAYOUTS[task_name].routes
    if task_name == "arm_reach_around":
        return ARM_ROUTES
    if task_name == "panda_reach_around":
        from imle_mpc.panda_task import PANDA_ROUTES

        return PANDA_ROUTES
    raise ValueError(
        f"unknown multi-modal task {task_name!r}; choose one of {sorted(TASK_BUILDERS)}."
    )


def classify_route(task_name: str, states: ArrayLike) -> str:
    """The route (mode) a trajectory of ``task_name`` took, read from its states Shape=(T, nx)."""
    if task_name in NAV_LAYOUTS:
        return classify_nav_route(states, NAV_LAYOUTS[task_name])
    if task_name == "arm_reach_around":
        return classify_arm_route(states)
    if task_name == "panda_reach_around":
        from imle_mpc.panda_task import classify_panda_route

        return classify_panda_route(states)
    raise ValueError(
        f"unknown multi-modal task {task_name!r}; choose one of {sorted(TASK_BUILDERS)}."
    )


def make_multimodal_task(name: str) -> Task:
    """Build one of this module's tasks by name; the error lists the known names."""
    try:
        return TASK_BUILDERS[name]()
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASK_BUILDERS)}.") from None


__all__ = [
    "ARM_DT",
    "ARM_GOAL_Q",
    "ARM_POST",
    "ARM_ROUTES",
    "ARM_START_Q",
    "NAV_DT",
    "NAV_LAYOUTS",
    "NAV_MAX_FORCE",
    "TASK_BUILDERS",
    "ArmPostConstraint",
    "Detour",
    "NavLayout",
    "arm_clearance",
    "arm_post_distance",
    "arm_reach_around",
    "arm_tip",
    "classify_route",
    "make_multimodal_task",
    "nav_layout",
    "nav_one_obstacle",
    "nav_trap",
    "nav_two_obstacles",
    "obstacle_clearance",
    "task_routes",
]
