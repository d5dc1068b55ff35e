"""Kinematic unicycle (differential-drive robot): the simplest nonholonomic model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numba as nb
import numpy as np

from imle_mpc.core.model import AnalyticModel
from imle_mpc.core.validation import FloatArray, require_positive


@nb.njit(cache=True)
def unicycle_step(x, u, p, out):  # pragma: no cover - compiled
    """Exact step for constant (v, omega) over dt. x = (px, py, heading), u = (v, omega).

    p = (dt,). The robot moves along a circular arc; the chord is
    ``v dt sinc(omega dt / 2)`` long and points along the mid-step heading, which
    tends to the straight-line step as ``omega -> 0``.
    """
    dt = p[0]
    v, w = u[0], u[1]
    half = 0.5 * w * dt
    # sin(a)/a, by its Taylor series near 0 (truncation error < 1e-18 there).
    sinc = 1.0 - half * half / 6.0 if abs(half) < 1e-4 else np.sin(half) / half
    chord = v * dt * sinc
    mid = x[2] + half
    out[0] = x[0] + chord * np.cos(mid)
    out[1] = x[1] + chord * np.sin(mid)
    out[2] = x[2] + w * dt


@dataclass(frozen=True)
class Unicycle(AnalyticModel):
    """Kinematic unicycle: forward speed and turn rate are commanded directly.

    State ``x = (px, py, heading)``: position in metres and heading in radians,
    measured counter-clockwise from the +x axis. The heading is *not* wrapped, so
    a trajectory stays continuous; pass ``angle_dims=[2]`` to
    ``cost.StateTracking`` to compare headings modulo 2 pi.

    Action ``u = (v, omega)``: forward speed in m/s (negative drives backwards),
    turn rate in rad/s (positive turns left). Bounds are symmetric,
    ``|v| <= max_speed`` and ``|omega| <= max_turn_rate``.

    The step integrates the kinematics exactly for an action held constant over
    ``dt`` (the robot drives along a circular arc), so there is no
    discretisation error to tune away.

    Attributes:
        dt: seconds per step.
        max_speed: forward/backward speed limit, m/s.
        max_turn_rate: turn-rate limit, rad/s.
    """

    dt: float = 0.05
    max_speed: float = 1.0
    max_turn_rate: float = 2.0

    nx: ClassVar[int] = 3
    nu: ClassVar[int] = 2
    step_function: ClassVar = unicycle_step
    state_names: ClassVar[tuple[str, ...]] = ("px", "py", "heading")
    action_names: ClassVar[tuple[str, ...]] = ("v", "omega")

    def __post_init__(self) -> None:
        for name in ("dt", "max_speed", "max_turn_rate"):
            require_positive("Unicycle", name, getattr(self, name))

    def params_vector(self) -> FloatArray:
        return np.array([self.dt])

    @property
    def action_low(self) -> FloatArray:
        return np.array([-self.max_speed, -self.max_turn_rate])

    @property
    def action_high(self) -> FloatArray:
        return np.array([self.max_speed, self.max_turn_rate])
