"""``panda_reach_around``: a 7-DoF Franka Panda sweeps its hand past a ball, over it or around it.

The arm (``example_robot_data``'s Panda, fingers locked) starts with its hand
pointing down at the table to the left front (joint 1 at +0.9 rad) and must
reach the mirror-image pose to the right front (joint 1 at -0.9 rad). A ball of
radius 0.1 m sits on the straight sweep of the hand, so the hand must leave it:

* ``over``: lift the hand above the ball (shoulder up, elbow opened);
* ``around``: pull the hand in, between the ball and the robot's base
  (elbow folded), at about the ball's height.

(Around one ball in 3-D every path can be deformed into every other; what
separates the two routes is the ball: their average, a path half up and half
in, goes through it. ``classify_panda_route`` labels a path by where the tool
centre point passes the ball's vertical plane.)

Model and limits. Joint-acceleration control (``PinocchioDynamics(...,
control="acceleration")``, u = joint accelerations in a box of half the
Franka datasheet limits, ``PANDA_ACCEL_LIMIT``), ``dt = 0.05`` s, a 16-step
(0.8 s) planning horizon = the generator's chunk. Torques stay available
through inverse dynamics (``joint_torques``, ``pin.rnea``) to check the motor
limits of an executed trajectory. Hard constraints of the planner: joint
positions 0.05 rad inside the URDF limits, speeds within 90 % of the URDF
limits, and 11 robot spheres (``PANDA_COLLISION_SPHERES``) 3 cm clear of the
ball. The executed trajectory is judged at the exact limits with zero margin
(``Task.safety_constraints``).

Why acceleration control: a K = 256, H = 16 rollout is two NumPy updates per
step (0.35 ms) where torque control needs ABA (``abaInParallel``, ~10 ms on
2 cores; ``bench/rollout_throughput.py``), and the trajectory optimiser of the
demonstrations (``imle_mpc.tasks.panda.demos``) has linear dynamics, so IPOPT
solves a move in ~0.5 s. A Panda takes joint-acceleration (or velocity)
references through its joint impedance loop; the torque limits are checked
on the executed trajectory (peak 44 % of the URDF limits in the runs below).

Routes taken. The cost tracks the goal configuration in joint space, which
makes ``over`` the cheaper route from this start: guarded IMLE-MPC takes it
in every seeded episode, while the generator proposes both (the IMLE policy
alone, no model, takes both across seeds; a test).

Forward kinematics of the spheres, batched over the K x (H+1) predicted
states of a control step, runs in ``dynamics.kinematics.ChainKinematics`` (one
Numba kernel from the joint placements read once from Pinocchio; see there
for why, with figures).

This module imports ``pinocchio`` (through ``dynamics.pinocchio_model``) only when
a function that needs the model is called, so importing the task registry stays light.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cost import JointLimits
from cost.constraints import clearance_proximity, clearance_violation
from dynamics.kinematics import ChainKinematics
from imle_mpc.core.errors import InputError
from imle_mpc.core.kernels.compare import key_copy, same_values
from imle_mpc.core.validation import FloatArray
from imle_mpc.loop.faults import FaultConfig

PANDA_TASK = "panda_reach_around"
PANDA_DT = 0.05
"""Seconds per control step."""
PANDA_HORIZON = 16
"""Planning horizon (steps) = the generator's chunk length (0.8 s)."""
PANDA_STEPS = 80
"""Episode length in control steps (4 s)."""
PANDA_ROUTES = ("over", "around")

_ARM = (0.2, 0.0, -2.0, 0.0, 2.2, np.pi / 4)
PANDA_START_Q = (0.9, *_ARM)
"""Start joint angles (rad): hand pointing down at the table, to the left front."""
PANDA_GOAL_Q = (-0.9, *_ARM)
"""Goal joint angles (rad): the mirror image, to the right front."""
PANDA_OBSTACLE = (0.55, 0.0, 0.28, 0.1)
"""The ball ``(cx, cy, cz, radius)`` in the robot's base frame (m)."""
PANDA_ACCEL_LIMIT = (7.5, 3.75, 5.0, 6.25, 7.5, 10.0, 10.0)
"""Joint acceleration box (rad/s^2): half of Franka's datasheet limits."""
PANDA_POSITION_MARGIN = 0.05
"""The planner keeps joint positions this far (rad) inside the URDF limits."""
PANDA_VELOCITY_FRACTION = 0.9
"""The planner keeps joint speeds within this share of the URDF limits."""
PANDA_OBSTACLE_MARGIN = 0.03
"""The planner's clearance (m) of every robot sphere to the ball; the executed path keeps > 0."""
PANDA_GOAL_TOLERANCE = 0.03
"""Success: the final tool centre point lies within this distance (m) of the target."""
PANDA_TCP = "panda_hand_tcp"

PANDA_COLLISION_SPHERES: tuple[tuple[str, tuple[float, float, float], float], ...] = (
    ("panda_joint2", (0.0, 0.0, 0.0), 0.09),  # shoulder
    ("panda_joint2", (0.0, -0.16, 0.0), 0.07),  # upper arm
    ("panda_joint4", (0.0, 0.0, 0.0), 0.08),  # elbow
    ("panda_joint4", (-0.04, 0.13, 0.0), 0.07),  # forearm
    ("panda_joint4", (-0.07, 0.26, 0.0), 0.07),
    ("panda_joint5", (0.0, 0.0, -0.02), 0.08),  # wrist
    ("panda_joint7", (0.0, 0.0, 0.0), 0.07),  # flange side of link 6
    ("panda_hand", (0.0, 0.0, 0.02), 0.06),  # hand body
    ("panda_hand", (0.0, 0.06, 0.05), 0.045),  # hand, finger sides
    ("panda_hand", (0.0, -0.06, 0.05), 0.045),
    ("panda_hand_tcp", (0.0, 0.0, -0.02), 0.035),  # fingertips
)
"""Coarse collision model: ``(Pinocchio frame, centre in that frame (m), radius (m))``.

Radii are conservative for the links' meshes; the hand is 3 spheres across
its width plus one at the fingertips."""

PANDA_FAULTS = FaultConfig(
    observation_noise=(0.001,) * 7 + (0.005,) * 7,
    action_delay=1,
    model_mismatch={},
    push_probability=0.05,
    push_magnitude=0.1,
    push_dims=tuple(range(7, 14)),
    drop_probability=0.1,
)
"""Faults the guard is sized for: joint noise 1 mrad and 5 mrad/s (std), one step
(0.05 s) of actuation delay, a 0.1 rad/s push (norm over the 7 joint speeds) on 5 %
of the steps and 10 % of the planning steps dropped. One step of delay at the
full acceleration difference moves a joint by dt^2 * 2 * 10 rad/s^2 = 0.05 rad at
most, about 1-3 cm at the hand for the joints that matter here; the 3 cm sphere
margin and the 0.05 rad position margin cover it. No model mismatch: under
acceleration control the robot's own torque loop absorbs inertia errors, and
``PinocchioDynamics`` is not a dataclass ``imle_mpc.loop.faults.mismatched_model`` can
scale (an acceleration-tracking gain would be the fault to add)."""


# --- model and kinematics (cached: built once per process) -----------------------------------


@functools.lru_cache(maxsize=1)
def panda_model() -> Any:
    """The planner's model: the Panda under joint-acceleration control in ``PANDA_ACCEL_LIMIT``."""
    try:
        from dynamics.pinocchio_model import PinocchioDynamics
    except ImportError as err:
        raise InputError(
            f"{PANDA_TASK} needs Pinocchio and example_robot_data ({err}): "
            "pip install 'imle-mpc[pinocchio]'."
        ) from None

    arm = PinocchioDynamics.from_example_robot("panda", PANDA_DT, control="acceleration")
    return PinocchioDynamics(
        arm.model, PANDA_DT, control="acceleration", action_limit=PANDA_ACCEL_LIMIT
    )


@functools.lru_cache(maxsize=1)
def panda_collision_kinematics() -> Any:
    """``ChainKinematics`` of the centres of ``PANDA_COLLISION_SPHERES``."""
    points = [(frame, offset) for frame, offset, _ in PANDA_COLLISION_SPHERES]
    return ChainKinematics.from_pinocchio(panda_model().model, points)


@functools.lru_cache(maxsize=1)
def panda_tcp_kinematics() -> Any:
    """``ChainKinematics`` of the tool centre point (between the fingertips)."""
    return ChainKinematics.from_pinocchio(panda_model().model, [(PANDA_TCP, (0.0, 0.0, 0.0))])


def panda_sphere_radii() -> FloatArray:
    """Radii of ``PANDA_COLLISION_SPHERES``, Shape=(P,)."""
    return np.array([r for _, _, r in PANDA_COLLISION_SPHERES])


def panda_tcp(states: ArrayLike) -> FloatArray:
    """Tool centre point of each state (or configuration), Shape=(..., >=7) -> (..., 3)."""
    return np.asarray(panda_tcp_kinematics()(states)[..., 0, :])


def panda_target() -> FloatArray:
    """The target: the tool centre point at ``PANDA_GOAL_Q``, Shape=(3,)."""
    return panda_tcp(np.asarray(PANDA_GOAL_Q))


@dataclass(frozen=True)
class FusedSphereConstraint:
    """``cost.SphereConstraint`` with the kinematics fused in: the same numbers, ~10x faster.

    Robot spheres (``kinematics`` points with ``radii``) stay ``margin`` clear
    of obstacle spheres; ``violation = max(0, margin - min d)`` over the states
    X[:, 1:] and, with ``swept`` (the default), over every robot sphere's straight
    path between consecutive states (``cost.constraints.clearance_slack``).
    ``SphereConstraint(kinematics, spheres, radii, margin)`` computes the
    (K, T, P, 3) points and then the distances in NumPy (10-11 ms for K x T =
    256 x 17, P = 11, on the shared 2-core machine); one Numba pass
    (``ChainKinematics.path_clearance``) does both, the swept gaps included. Tested equal.

    The last result is kept with a copy of its configurations: the cost term
    (``SphereProximity``) and the hard constraint ask for the same batch in one
    control step, and an exact comparison (``core.kernels.compare.same_values``: ~26 us, ~1 us
    on a new batch) is much cheaper than the kinematics.
    """

    kinematics: Any
    spheres: Any
    radii: Any
    margin: float = 0.0
    name: str = "spheres"
    hard: bool = True
    weight: float = 1e3
    swept: bool = True
    _last: list[tuple[FloatArray, FloatArray, FloatArray | None]] = field(
        default_factory=list, init=False, repr=False, compare=False
    )

    def _path(self, X: FloatArray, swept: bool) -> tuple[FloatArray, FloatArray | None]:
        """Point gaps Shape=(K, T), and with ``swept`` the swept gaps Shape=(K, T-1).

        Read-only, maybe the cached ones; one FK pass for both.
        """
        Q = np.asarray(X, dtype=np.float64)[..., : self.kinematics.nq]
        last = self._last[0] if self._last else None  # one read: safe across threads
        hit = last is not None and same_values(last[0], Q)
        if last is not None and hit and (not swept or last[2] is not None):
            return last[1], last[2]
        moved: FloatArray | None = None
        Q = key_copy(Q)  # one copy: the kinematics' input and the cache key
        if swept:
            d, moved = self.kinematics.path_clearance(Q, self.spheres, self.radii)
            moved.flags.writeable = False
        else:
            d = np.asarray(self.kinematics.clearance(Q, self.spheres, self.radii))
        d.flags.writeable = False
        self._last[:] = [(Q, d, moved)]
        return d, moved

    def distances(self, X: FloatArray) -> FloatArray:
        """Smallest signed clearance of any robot sphere to any obstacle, Shape=(K, T).

        The result is read-only (it may be the cached one).
        """
        return self._path(X, self.swept)[0]

    def swept_distances(self, X: FloatArray) -> FloatArray:
        """Smallest signed clearance over each step's motion, Shape=(K, T-1) (read-only)."""
        moved = self._path(X, True)[1]
        assert moved is not None  # asked for
        return moved

    def violation(self, X: FloatArray, U: FloatArray) -> FloatArray:
        return clearance_violation(self.margin, *self._path(X, self.swept))


def panda_collision_constraint(
    margin: float = PANDA_OBSTACLE_MARGIN, name: str = "ball", swept: bool = True
) -> FusedSphereConstraint:
    """Every robot sphere ``margin`` clear of the ball (a ``FusedSphereConstraint``)."""
    return FusedSphereConstraint(
        panda_collision_kinematics(), np.array([PANDA_OBSTACLE]), panda_sphere_radii(), margin,
        name, swept=swept,
    )  # fmt: skip


def panda_joint_limits(
    position_margin: float = PANDA_POSITION_MARGIN,
    velocity_fraction: float = PANDA_VELOCITY_FRACTION,
    name: str = "joint_limits",
) -> Any:
    """``cost.JointLimits`` from the URDF, shrunk by a position margin and a speed share."""
    model = panda_model()
    low, high = model.position_limits
    return JointLimits(
        low + position_margin, high - position_margin,
        velocity_fraction * model.velocity_limit, name=name,
    )  # fmt: skip


def panda_clearance(states: ArrayLike) -> FloatArray:
    """Smallest signed distance of any robot sphere to the ball, per state, Shape=(...,)."""
    s = np.asarray(states, dtype=np.float64)
    flat = s.reshape(1, -1, s.shape[-1])
    return np.asarray(panda_collision_constraint(0.0).distances(flat).reshape(s.shape[:-1]))


def panda_path_clearance(states: ArrayLike) -> float:
    """Smallest signed distance of any robot sphere to the ball along a trajectory.

    Over the states Shape=(T, nx) and every sphere's straight path between
    consecutive states (what the evaluation counts as a collision).
    """
    s = np.asarray(states, dtype=np.float64)
    ball = panda_collision_constraint(0.0)
    d, swept = ball.distances(s[None]), ball.swept_distances(s[None])  # one FK pass (cache)
    return float(min(d.min(), swept.min(initial=np.inf)))


@dataclass(frozen=True)
class SphereProximity:
    """Soft clearance cost ``sum_t max(0, margin - d_t)^2`` over X[:, 1:] of a ``SphereConstraint``.

    ``d_t`` is the constraint's smallest sphere-to-obstacle distance at step t;
    it pushes plans away from the ball before the hard constraint bites.
    """

    constraint: Any
    margin: float

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        # distances of all of X, then dropped: the same batch as the hard constraint's (cache)
        return clearance_proximity(self.margin, self.constraint.distances(np.asarray(X)))


def joint_torques(states: ArrayLike, accelerations: ArrayLike) -> FloatArray:
    """Inverse dynamics (``pin.rnea``): the torques that give ``accelerations`` in ``states``.

    Args:
        states: ``(q, v)``, Shape=(T, 14) (extra rows are ignored).
        accelerations: Shape=(T, 7).

    Returns:
        Shape=(T, 7), N m (compare with ``panda_model().effort_limit``).
    """
    import pinocchio as pin

    model = panda_model().model
    data = model.createData()
    A = np.asarray(accelerations, dtype=np.float64)
    X = np.asarray(states, dtype=np.float64)[: A.shape[0]]
    return np.array([pin.rnea(model, data, x[:7], x[7:], a) for x, a in zip(X, A, strict=True)])


def classify_panda_route(states: ArrayLike) -> str:
    """``over`` or ``around``: where the tool centre point passes the ball's vertical plane.

    At the first step where the hand's azimuth ``atan2(y, x)`` reaches the
    ball's (interpolated between samples), with ``dz`` its height above the
    ball's centre and ``dr`` its horizontal distance from the base minus the
    ball's: ``over`` if ``dz > 0`` and ``dz >= -dr`` (above the inward
    diagonal), ``around`` if ``dr < 0`` below it; ``none`` if it never passes
    or passes below and beyond the ball.
    """
    tcp = panda_tcp(np.asarray(states, dtype=np.float64)[:, :7])
    cx, cy, cz, _ = PANDA_OBSTACLE
    azimuth = np.arctan2(tcp[:, 1], tcp[:, 0]) - np.arctan2(cy, cx)
    ahead = np.flatnonzero(azimuth <= 0.0)
    if ahead.size == 0 or ahead[0] == 0:
        return "none"
    i = int(ahead[0])
    w = azimuth[i - 1] / (azimuth[i - 1] - azimuth[i])
    p = tcp[i - 1] + w * (tcp[i] - tcp[i - 1])
    dr = float(np.hypot(p[0], p[1]) - np.hypot(cx, cy))
    dz = float(p[2] - cz)
    if dz > 0.0 and dz >= -dr:
        return "over"
    return "around" if dr < 0.0 else "none"


__all__ = [
    "PANDA_ACCEL_LIMIT",
    "PANDA_COLLISION_SPHERES",
    "PANDA_DT",
    "PANDA_FAULTS",
    "PANDA_GOAL_Q",
    "PANDA_HORIZON",
    "PANDA_OBSTACLE",
    "PANDA_ROUTES",
    "PANDA_START_Q",
    "PANDA_STEPS",
    "PANDA_TASK",
    "FusedSphereConstraint",
    "SphereProximity",
    "classify_panda_route",
    "joint_torques",
    "panda_clearance",
    "panda_collision_constraint",
    "panda_collision_kinematics",
    "panda_joint_limits",
    "panda_model",
    "panda_path_clearance",
    "panda_sphere_radii",
    "panda_target",
    "panda_tcp",
    "panda_tcp_kinematics",
]
