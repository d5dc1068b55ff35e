"""Planar two-link arm driven by joint torques (manipulator equations, uniform rods)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numba as nb
import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.model import AnalyticModel
from imle_mpc.core.validation import (
    FloatArray,
    require_int_at_least,
    require_non_negative,
    require_positive,
)


@nb.njit(cache=True)
def end_effector_position(x, link1_length, link2_length):  # pragma: no cover - compiled
    """Forward kinematics of the tip: ``(ex, ey)`` in the arm's plane, the shoulder at the origin.

    Usable inside ``@njit`` stage costs (``cost.StageCost``).

    Args:
        x: arm state (q1, q2, ...), Shape=(>=2,); only the joint angles are read.
        link1_length: first link's length, m.
        link2_length: second link's length, m.
    """
    a1 = x[0]
    a12 = x[0] + x[1]
    return (
        link1_length * np.cos(a1) + link2_length * np.cos(a12),
        link1_length * np.sin(a1) + link2_length * np.sin(a12),
    )


@nb.njit(cache=True)
def _arm_accelerations(q1, q2, dq1, dq2, tau1, tau2, p):  # pragma: no cover - compiled
    """Joint accelerations ``M(q)^-1 (tau - damping dq - C(q, dq) dq - G(q))``."""
    m1, m2, l1, l2, g, b = p[0], p[1], p[2], p[3], p[4], p[5]
    r1 = 0.5 * l1  # centres of mass at mid-link
    r2 = 0.5 * l2
    i1 = m1 * l1 * l1 / 12.0  # rod inertia about its centre
    i2 = m2 * l2 * l2 / 12.0
    c2 = np.cos(q2)
    s2 = np.sin(q2)
    m11 = i1 + i2 + m1 * r1 * r1 + m2 * (l1 * l1 + r2 * r2 + 2.0 * l1 * r2 * c2)
    m12 = i2 + m2 * (r2 * r2 + l1 * r2 * c2)
    m22 = i2 + m2 * r2 * r2
    h = m2 * l1 * r2 * s2
    # Coriolis/centrifugal torques C(q, dq) dq and gravity torques G(q) (gravity along -y).
    cor1 = -h * (2.0 * dq1 * dq2 + dq2 * dq2)
    cor2 = h * dq1 * dq1
    g2 = m2 * r2 * g * np.cos(q1 + q2)
    g1 = (m1 * r1 + m2 * l1) * g * np.cos(q1) + g2
    rhs1 = tau1 - b * dq1 - cor1 - g1
    rhs2 = tau2 - b * dq2 - cor2 - g2
    det = m11 * m22 - m12 * m12  # > 0: M is positive definite
    return (m22 * rhs1 - m12 * rhs2) / det, (m11 * rhs2 - m12 * rhs1) / det


@nb.njit(cache=True)
def two_link_arm_step(x, u, p, out):  # pragma: no cover - compiled
    """RK4 with ``substeps`` equal sub-steps, the torques held constant over dt.

    x = (q1, q2, dq1, dq2), u = (tau1, tau2).
    p = (link1_mass, link2_mass, link1_length, link2_length, gravity, damping, dt, substeps).
    """
    n = int(p[7])
    h = p[6] / n
    t1, t2 = u[0], u[1]
    q1, q2, w1, w2 = x[0], x[1], x[2], x[3]
    for _ in range(n):
        a1, b1 = _arm_accelerations(q1, q2, w1, w2, t1, t2, p)
        w1b, w2b = w1 + 0.5 * h * a1, w2 + 0.5 * h * b1
        a2, b2 = _arm_accelerations(q1 + 0.5 * h * w1, q2 + 0.5 * h * w2, w1b, w2b, t1, t2, p)
        w1c, w2c = w1 + 0.5 * h * a2, w2 + 0.5 * h * b2
        a3, b3 = _arm_accelerations(q1 + 0.5 * h * w1b, q2 + 0.5 * h * w2b, w1c, w2c, t1, t2, p)
        w1d, w2d = w1 + h * a3, w2 + h * b3
        a4, b4 = _arm_accelerations(q1 + h * w1c, q2 + h * w2c, w1d, w2d, t1, t2, p)
        q1 = q1 + h / 6.0 * (w1 + 2.0 * w1b + 2.0 * w1c + w1d)
        q2 = q2 + h / 6.0 * (w2 + 2.0 * w2b + 2.0 * w2c + w2d)
        w1 = w1 + h / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
        w2 = w2 + h / 6.0 * (b1 + 2.0 * b2 + 2.0 * b3 + b4)
    out[0] = q1
    out[1] = q2
    out[2] = w1
    out[3] = w2


@dataclass(frozen=True)
class TwoLinkArm(AnalyticModel):
    """Planar two-link arm with a torque motor at each joint; the links are uniform rods.

    State ``x = (q1, q2, dq1, dq2)`` in rad and rad/s. ``q1`` is the shoulder
    angle measured counter-clockwise from the +x axis, ``q2`` the elbow angle
    relative to link 1 (``q2 = 0`` is a straight arm). Gravity acts along -y,
    so the arm hangs straight down at ``q = (-pi/2, 0)``; set ``gravity = 0``
    for an arm moving in a horizontal plane. Angles are not wrapped.

    Action ``u = (tau1, tau2)``, joint torques in N m, ``|tau_i| <= max_torque_i``.

    Equations of motion (the manipulator equations)::

        M(q) q'' + C(q, q') q' + G(q) = tau - damping * q'

    with each link a uniform rod (centre of mass at mid-link, inertia
    ``m l^2 / 12`` about it). Integrated with classic RK4 in ``substeps``
    equal sub-steps per ``dt``, the torques held constant. The default of two
    sub-steps (25 ms each) is for fast motion: an undamped arm dropped from
    horizontal (joint speeds up to 17 rad/s) drifts in energy by 0.007 J in 2 s
    with two sub-steps, 0.1 J with one and 3e-4 J with four (out of a 29 J
    swing); slow motion (< 4 rad/s) drifts by 3e-4 J even with one.

    The defaults can hold the straight arm horizontal (19.6 N m at the shoulder,
    4.9 N m at the elbow) with some torque to spare.

    Attributes:
        link1_mass, link2_mass: kg.
        link1_length, link2_length: m.
        gravity: m/s^2 along -y (>= 0; 0 for a horizontal arm).
        damping: viscous joint friction, N m s/rad (>= 0), the same at both joints.
        dt: seconds per step.
        max_torque1, max_torque2: actuator limits of the shoulder and the elbow, N m.
        substeps: RK4 sub-steps per ``dt`` (>= 1).
    """

    link1_mass: float = 1.0
    link2_mass: float = 1.0
    link1_length: float = 1.0
    link2_length: float = 1.0
    gravity: float = 9.81
    damping: float = 0.1
    dt: float = 0.05
    max_torque1: float = 25.0
    max_torque2: float = 10.0
    substeps: int = 2

    nx: ClassVar[int] = 4
    nu: ClassVar[int] = 2
    step_function: ClassVar = two_link_arm_step
    state_names: ClassVar[tuple[str, ...]] = ("q1", "q2", "dq1", "dq2")
    action_names: ClassVar[tuple[str, ...]] = ("tau1", "tau2")

    def __post_init__(self) -> None:
        for name in (
            "link1_mass",
            "link2_mass",
            "link1_length",
            "link2_length",
            "dt",
            "max_torque1",
            "max_torque2",
        ):
            require_positive("TwoLinkArm", name, getattr(self, name))
        require_non_negative("TwoLinkArm", "gravity", self.gravity)
        require_non_negative("TwoLinkArm", "damping", self.damping)
        require_int_at_least("TwoLinkArm", "substeps", self.substeps, 1)

    def params_vector(self) -> FloatArray:
        return np.array(
            [
                self.link1_mass,
                self.link2_mass,
                self.link1_length,
                self.link2_length,
                self.gravity,
                self.damping,
                self.dt,
                float(self.substeps),
            ]
        )

    def end_effector(self, x: ArrayLike) -> FloatArray:
        """Tip position in the plane, the shoulder at the origin.

        Args:
            x: states, Shape=(..., 4) (e.g. a rollout ``X`` Shape=(K, H+1, 4)).

        Returns:
            ``(ex, ey)`` per state, Shape=(..., 2).
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 0 or x.shape[-1] != self.nx:
            raise ValueError(f"x must have Shape=(..., {self.nx}), got {x.shape}.")
        q1, q12 = x[..., 0], x[..., 0] + x[..., 1]
        l1, l2 = self.link1_length, self.link2_length
        return np.stack(
            (l1 * np.cos(q1) + l2 * np.cos(q12), l1 * np.sin(q1) + l2 * np.sin(q12)), axis=-1
        )

    def inverse_dynamics(self, x: ArrayLike, qdd: ArrayLike) -> FloatArray:
        """Torques that give joint accelerations ``qdd`` Shape=(2,) in state ``x`` Shape=(4,).

        The forward dynamics are affine in the torques, ``qdd = a0 + M^-1 tau``:
        three calls of the model's own acceleration function give ``a0`` and
        ``M^-1``, so a controller built on this cannot disagree with the model.
        """
        p = self.params_vector()
        q1, q2, w1, w2 = (float(v) for v in np.asarray(x, dtype=np.float64)[:4])
        a0 = np.array(_arm_accelerations(q1, q2, w1, w2, 0.0, 0.0, p))
        m_inv = np.stack(
            [
                np.array(_arm_accelerations(q1, q2, w1, w2, 1.0, 0.0, p)) - a0,
                np.array(_arm_accelerations(q1, q2, w1, w2, 0.0, 1.0, p)) - a0,
            ],
            axis=1,
        )
        return np.asarray(np.linalg.solve(m_inv, np.asarray(qdd, dtype=np.float64) - a0))

    @property
    def action_low(self) -> FloatArray:
        return np.array([-self.max_torque1, -self.max_torque2])

    @property
    def action_high(self) -> FloatArray:
        return np.array([self.max_torque1, self.max_torque2])
