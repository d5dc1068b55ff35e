"""``arm_reach_around``: a planar two-link arm folds its forearm past a post.

The arm under gravity (torque limits 25/10 N m) sweeps from straight down-left
(shoulder at -150 deg) to straight down-right (-30 deg) past a post (a disc of
radius 0.2 at (0, -1.7), below the shoulder, within reach of the forearm). No
link may touch the post. The straight arm cannot pass it: the forearm must fold
out of the way, either counter-clockwise (``fold_ccw``: elbow angle q2 > 0 as
the arm passes the post, the tip leads) or clockwise (``fold_cw``: q2 < 0, the
tip trails). Here the dynamics matter (inertia coupling, gravity, torque limits).
``dt = 0.05`` s; a 16-step chunk spans 0.8 s of a ~3 s sweep.

The expert (``arm_expert``): computed-torque tracking (the model's own inverse
dynamics, PD gains 150/s^2 and 25/s) of a joint-space reference: fold the
forearm by ~110 deg, sweep the shoulder, unfold. ``fold_ccw`` folds before the
sweep; ``fold_cw`` is its mirror image in time. Each demonstration jitters the
start by 0.03 rad, the fold by 5 % and the sweep time by 7 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
from numpy.typing import ArrayLike

from cost import ControlEffort, CostSum, StageCost, StateTracking, Term, TerminalState
from cost.sdf import capsule_distance, known_position
from dynamics import TwoLinkArm
from imle_mpc.core.validation import FloatArray
from imle_mpc.loop.faults import FaultConfig
from imle_mpc.tasks.base import Demonstrations, PlannerHints, Routes, Task
from imle_mpc.tasks.experts import Controller, DemoPushes, ScriptedDemos

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
def arm_post_distance(q1, q2, p):  # pragma: no cover - compiled
    """Signed distance from both links of the arm to the post (negative: a link is inside).

    Args:
        q1: shoulder angle (rad).
        q2: elbow angle (rad).
        p: ``(link1_length, link2_length, cx, cy, radius, ...)``.

    NaN for a NaN or infinite angle: the minimum over the links alone kept the other
    link's distance and read an arm nobody can place as clear.
    """
    if not known_position(q1, q2):  # both angles finite
        return np.nan
    l1, l2, cx, cy, r = p[0], p[1], p[2], p[3], p[4]
    ex = l1 * np.cos(q1)
    ey = l1 * np.sin(q1)
    tx = ex + l2 * np.cos(q1 + q2)
    ty = ey + l2 * np.sin(q1 + q2)
    d1 = capsule_distance(cx, cy, 0.0, 0.0, ex, ey, 0.0)
    d2 = capsule_distance(cx, cy, ex, ey, tx, ty, 0.0)
    return min(d1, d2) - r


@nb.njit(cache=True)
def _arm_proximity_stage(x, u, t, p):  # pragma: no cover - compiled
    """``max(0, margin - d)^2`` for one state; p = (l1, l2, cx, cy, radius, margin)."""
    d = arm_post_distance(x[0], x[1], p)
    if d != d:  # an arm nobody can place costs NaN (max(NaN, 0) would make it free)
        return np.nan
    v = max(p[5] - d, 0.0)
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
guarded IMLE-MPC with the offset estimate (``planners.safety.offset_free``, the
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


# --- the expert ---------------------------------------------------------------------------------

ARM_FOLD_ANGLE = 1.9
"""Nominal fold of the forearm (rad, ~109 deg) while the arm passes the post."""
ARM_SWEEP_TIME = 2.9
"""Nominal duration (s) of the fold-sweep-unfold reference."""
ARM_KP = 150.0
ARM_KD = 25.0


def _min_jerk(s: float, a: float, b: float) -> FloatArray:
    """Min-jerk 0 -> 1 as ``s`` goes from ``a`` to ``b``: (value, d/ds, d2/ds2)."""
    d = b - a
    u = min(max((s - a) / d, 0.0), 1.0)
    return np.array(
        [
            10 * u**3 - 15 * u**4 + 6 * u**5,
            (30 * u**2 - 60 * u**3 + 30 * u**4) / d,
            (60 * u - 180 * u**2 + 120 * u**3) / d**2,
        ]
    )


def arm_reference(t: float, route: str, fold: float, duration: float) -> FloatArray:
    """Joint reference at time ``t`` (s): rows (q, dq, ddq), columns (q1, q2), Shape=(3, 2).

    ``fold_ccw``: fold q2 to ``+fold`` in s in [0, 0.35], sweep q1 in
    [0.2, 0.85], unfold in [0.6, 1] (s = t / duration). ``fold_cw`` is the same
    motion mirrored about the vertical and played backwards: q1 -> q1_start +
    q1_goal - q1(1 - s), q2 -> -q2(1 - s).
    """
    if route not in ("fold_ccw", "fold_cw"):
        raise ValueError(f"route {route!r} is not one of ('fold_ccw', 'fold_cw').")
    q1s, q1g = ARM_START_Q[0], ARM_GOAL_Q[0]
    s = t / duration
    u = s if route == "fold_ccw" else 1.0 - s
    q1 = (q1g - q1s) * _min_jerk(u, 0.2, 0.85)
    q2 = fold * (_min_jerk(u, 0.0, 0.35) - _min_jerk(u, 0.6, 1.0))
    if route == "fold_ccw":
        q1[0] += q1s
    else:  # mirror in time: d/ds flips sign twice for q1 (value reflected), once for q2
        q1 = np.array([q1s + q1g - (q1s + q1[0]), q1[1], -q1[2]])
        q2 = np.array([-q2[0], q2[1], -q2[2]])
    scale = np.array([1.0, 1.0 / duration, 1.0 / duration**2])
    return np.stack([q1 * scale, q2 * scale], axis=1)


@dataclass
class ArmExpert:
    """Computed-torque tracking of ``arm_reference`` with the model's own dynamics.

    The start offset from the nominal start decays along a min-jerk over the
    first 40 % of the motion, so a jittered start needs no jump.
    """

    model: Any
    route: str
    start: FloatArray
    fold: float = ARM_FOLD_ANGLE
    duration: float = ARM_SWEEP_TIME
    kp: float = ARM_KP
    kd: float = ARM_KD

    def reset(self) -> None:
        """Stateless: nothing to reset."""

    def __call__(self, state: FloatArray, step: int) -> FloatArray:
        t = step * self.model.dt
        ref = arm_reference(t, self.route, self.fold, self.duration)
        offset = self.start[:2] - np.asarray(ARM_START_Q)
        fade = _min_jerk(t, 0.0, 0.4 * self.duration)
        ref[0] += offset * (1.0 - fade[0])
        ref[1] -= offset * fade[1]
        ref[2] -= offset * fade[2]
        qdd = ref[2] + self.kp * (ref[0] - state[:2]) + self.kd * (ref[1] - state[2:4])
        return self.model.inverse_dynamics(state, qdd)


def arm_expert(
    task: Task, route: str, rng: np.random.Generator | None
) -> tuple[FloatArray, Controller]:
    """A start state and the tracking controller for one route (``experts.ExpertFactory``)."""
    x0 = np.array(task.initial_state, dtype=np.float64)
    fold, duration = ARM_FOLD_ANGLE, ARM_SWEEP_TIME
    if rng is not None:
        x0[:2] += rng.uniform(-0.03, 0.03, size=2)
        fold *= rng.uniform(0.95, 1.05)
        duration *= rng.uniform(0.93, 1.07)
    return x0, ArmExpert(task.dynamics, route, x0.copy(), fold=fold, duration=duration)


ARM_PUSHES = DemoPushes(0.05, (0.1, 0.1, 0.5, 0.5))
"""The arm's demonstrations are pushed: from clean ones the generator proposes only the
gravity torque of wherever the arm rests, and a small offset from the goal stays."""


def arm_reach_around() -> Task:
    """Two-link arm under gravity sweeps 120 deg past a post: fold the forearm ccw or cw."""
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
        routes=Routes(ARM_ROUTES, classify_arm_route),
        clearance=lambda states: float(arm_clearance(states).min()),
        demos=Demonstrations(
            generate=ScriptedDemos(
                arm_expert,
                "computed-torque tracking of a fold-sweep-unfold reference",
                ARM_PUSHES,
            ),
            num_demos=30,
            dataset_file="arm_reach_around_demos.npz",
            generator_file="arm_reach_around_generator.safetensors",
        ),
    )
