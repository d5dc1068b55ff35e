"""2-D point mass (double integrator) with linear drag: the navigation model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numba as nb
import numpy as np

from imle_mpc.core.model import AnalyticModel
from imle_mpc.core.validation import FloatArray, require_non_negative, require_positive


@nb.njit(cache=True)
def point_mass_step(x, u, p, out):  # pragma: no cover - compiled
    """Semi-implicit Euler. x = (px, py, vx, vy), u = (fx, fy). p = (mass, drag, dt)."""
    m, c, dt = p[0], p[1], p[2]
    vx = x[2] + dt * (u[0] - c * x[2]) / m
    vy = x[3] + dt * (u[1] - c * x[3]) / m
    out[0] = x[0] + dt * vx
    out[1] = x[1] + dt * vy
    out[2] = vx
    out[3] = vy


@dataclass(frozen=True)
class PointMass2D(AnalyticModel):
    """A mass pushed by a force in the plane, with linear drag ``-drag * v``."""

    mass: float = 1.0
    drag: float = 0.5
    dt: float = 0.05
    max_force: float = 2.0

    nx: ClassVar[int] = 4
    nu: ClassVar[int] = 2
    step_function: ClassVar = point_mass_step
    state_names: ClassVar[tuple[str, ...]] = ("px", "py", "vx", "vy")
    action_names: ClassVar[tuple[str, ...]] = ("fx", "fy")

    def __post_init__(self) -> None:
        for name in ("mass", "dt", "max_force"):
            require_positive("PointMass2D", name, getattr(self, name))
        require_non_negative("PointMass2D", "drag", self.drag)

    def params_vector(self) -> FloatArray:
        return np.array([self.mass, self.drag, self.dt])

    @property
    def action_low(self) -> FloatArray:
        return np.full(2, -self.max_force)

    @property
    def action_high(self) -> FloatArray:
        return np.full(2, self.max_force)
