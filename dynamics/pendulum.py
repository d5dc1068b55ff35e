"""Torque-limited pendulum (the classic swing-up benchmark)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numba as nb
import numpy as np

from imle_mpc.core.kernels.trig import needs_libm, sincos
from imle_mpc.core.model import AnalyticModel
from imle_mpc.core.validation import FloatArray, require_non_negative, require_positive


@nb.njit(inline="always")
def _sin(q):  # pragma: no cover - compiled
    """``sin(q)``: branch-free polynomial (``core.kernels.trig``), libm beyond its range.

    The fused MPPI plan (``bench/planner_speed.py``'s problem, one thread, alternating in
    one process) took 8 % less time at K = 1000 and 13 % less at K = 16384 than with
    libm's ``sin``; the values are within 1.2e-16 of libm's (``core.kernels.trig``).
    """
    if needs_libm(q):
        return np.sin(q)
    return sincos(q)[0]


@nb.njit(inline="always")
def _euler(theta, omega, sin_theta, u, p):  # pragma: no cover - compiled
    """One semi-implicit Euler step given ``sin(theta)``: ``(theta', omega')``."""
    m, length, g, b, dt, vmax = p[0], p[1], p[2], p[3], p[4], p[5]
    theta_ddot = g / length * sin_theta + (u - b * omega) / (m * length * length)
    w = omega + dt * theta_ddot
    w = min(max(w, -vmax), vmax)
    return theta + dt * w, w


@nb.njit(cache=True)
def pendulum_step(x, u, p, out):  # pragma: no cover - compiled
    """Semi-implicit Euler step. x = (theta, theta_dot), theta = 0 is upright.

    p = (mass, length, gravity, damping, dt, max_speed).
    """
    out[0], out[1] = _euler(x[0], x[1], _sin(x[0]), u[0], p)


@nb.njit(cache=True)
def pendulum_lanes(X, U, p, out):  # pragma: no cover - compiled
    """``pendulum_step`` for a block of lanes: X, out Shape=(2, L), U Shape=(1, L).

    Three loops over the lanes, so the first and last run as packed vector code
    (``imle_mpc.core.kernels.lanes``): the polynomial ``sin``, libm's where the
    polynomial is not accurate (a branch, kept out of the packed loops), then the step.
    """
    L = X.shape[1]
    for ln in range(L):  # out[1] holds sin(theta) until the step overwrites it
        out[1, ln] = sincos(X[0, ln])[0]
    for ln in range(L):
        if needs_libm(X[0, ln]):
            out[1, ln] = np.sin(X[0, ln])
    for ln in range(L):
        out[0, ln], out[1, ln] = _euler(X[0, ln], X[1, ln], out[1, ln], U[0, ln], p)


@dataclass(frozen=True)
class Pendulum(AnalyticModel):
    """Point mass on a massless rod, torque at the pivot. ``theta = 0`` is upright.

    With the defaults the motor (2 N m) cannot lift the mass (9.81 N m) directly:
    the controller must pump energy, as in Gymnasium's ``Pendulum-v1``.
    """

    mass: float = 1.0
    length: float = 1.0
    gravity: float = 9.81
    damping: float = 0.0
    dt: float = 0.05
    max_torque: float = 2.0
    max_speed: float = 8.0

    nx: ClassVar[int] = 2
    nu: ClassVar[int] = 1
    step_function: ClassVar = pendulum_step
    lane_step_function: ClassVar = pendulum_lanes
    state_names: ClassVar[tuple[str, ...]] = ("theta", "theta_dot")
    action_names: ClassVar[tuple[str, ...]] = ("torque",)

    def __post_init__(self) -> None:
        for name in ("mass", "length", "dt", "max_torque", "max_speed"):
            require_positive("Pendulum", name, getattr(self, name))
        require_non_negative("Pendulum", "damping", self.damping)
        require_non_negative("Pendulum", "gravity", self.gravity)

    def params_vector(self) -> FloatArray:
        return np.array(
            [self.mass, self.length, self.gravity, self.damping, self.dt, self.max_speed]
        )

    @property
    def action_low(self) -> FloatArray:
        return np.array([-self.max_torque])

    @property
    def action_high(self) -> FloatArray:
        return np.array([self.max_torque])
