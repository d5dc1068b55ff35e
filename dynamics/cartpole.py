"""Cart-pole: a pole hinged on a cart that a force pushes along a rail (the swing-up benchmark)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numba as nb
import numpy as np

from imle_mpc.core.model import AnalyticModel
from imle_mpc.core.validation import (
    FloatArray,
    require_int_at_least,
    require_non_negative,
    require_positive,
)


@nb.njit(cache=True)
def _cartpole_accelerations(theta, x_dot, theta_dot, force, p):  # pragma: no cover - compiled
    """(x_ddot, theta_ddot) from the equations of motion; p as in ``cartpole_step``."""
    mc, mp, ell, g, bc, bp = p[0], p[1], p[2], p[3], p[4], p[5]
    s = np.sin(theta)
    c = np.cos(theta)
    # Mass matrix [[a11, a12], [a12, a22]] of (x, theta) for a uniform rod of
    # half-length ell: inertia about the hinge is (4/3) mp ell^2.
    a11 = mc + mp
    a12 = mp * ell * c
    a22 = (4.0 / 3.0) * mp * ell * ell
    r1 = force - bc * x_dot + mp * ell * s * theta_dot * theta_dot
    r2 = mp * g * ell * s - bp * theta_dot
    det = a11 * a22 - a12 * a12  # >= mp ell^2 (4 mc + mp) / 3 > 0
    return (a22 * r1 - a12 * r2) / det, (a11 * r2 - a12 * r1) / det


@nb.njit(cache=True)
def cartpole_step(x, u, p, out):  # pragma: no cover - compiled
    """RK4 with ``substeps`` equal sub-steps, the force held constant over dt.

    x = (cart_pos, pole_angle, cart_vel, pole_ang_vel), pole_angle = 0 is upright.
    p = (cart_mass, pole_mass, pole_length, gravity, cart_friction, pole_friction,
    dt, substeps).
    """
    n = int(p[7])
    h = p[6] / n
    f = u[0]
    pos, th, vel, om = x[0], x[1], x[2], x[3]
    for _ in range(n):
        # Classic RK4 on (pos, th, vel, om); the accelerations do not depend on pos.
        vel1, om1 = vel, om
        acc1, alp1 = _cartpole_accelerations(th, vel1, om1, f, p)
        vel2, om2 = vel + 0.5 * h * acc1, om + 0.5 * h * alp1
        acc2, alp2 = _cartpole_accelerations(th + 0.5 * h * om1, vel2, om2, f, p)
        vel3, om3 = vel + 0.5 * h * acc2, om + 0.5 * h * alp2
        acc3, alp3 = _cartpole_accelerations(th + 0.5 * h * om2, vel3, om3, f, p)
        vel4, om4 = vel + h * acc3, om + h * alp3
        acc4, alp4 = _cartpole_accelerations(th + h * om3, vel4, om4, f, p)
        pos = pos + h / 6.0 * (vel1 + 2.0 * vel2 + 2.0 * vel3 + vel4)
        th = th + h / 6.0 * (om1 + 2.0 * om2 + 2.0 * om3 + om4)
        vel = vel + h / 6.0 * (acc1 + 2.0 * acc2 + 2.0 * acc3 + acc4)
        om = om + h / 6.0 * (alp1 + 2.0 * alp2 + 2.0 * alp3 + alp4)
    out[0] = pos
    out[1] = th
    out[2] = vel
    out[3] = om


@dataclass(frozen=True)
class CartPole(AnalyticModel):
    """A uniform pole hinged on a cart; a horizontal force on the cart is the only input.

    State ``x = (cart_pos, pole_angle, cart_vel, pole_ang_vel)`` in m, rad, m/s,
    rad/s. ``pole_angle = 0`` is upright and ``pi`` hanging down; a positive
    angle leans the pole towards +x. The angle is not wrapped: pass
    ``angle_dims=[1]`` to ``cost.StateTracking``.

    Action ``u = (force,)`` in newtons along +x, ``|force| <= max_force``.

    Equations of motion (Barto, Sutton & Anderson 1983, in Florian's 2007
    corrected form), with the pole a uniform rod of *half*-length ``pole_length``
    (its centre of mass; full length ``2 * pole_length``, as in Gymnasium's
    ``CartPole``) and viscous rather than Coulomb friction::

        (mc + mp) x'' + mp l cos(th) th'' = F + mp l sin(th) th'^2 - cart_friction x'
        mp l cos(th) x'' + 4/3 mp l^2 th'' = mp g l sin(th) - pole_friction th'

    Integrated with classic RK4 in ``substeps`` equal sub-steps per ``dt``, the
    force held constant. At ``dt = 0.05`` one sub-step is enough: over 2 s of
    free swinging the energy drifts by about 3e-6 of the swing energy
    ``2 mp g l`` (1e-9 at ``dt = 0.01``).

    There is no rail limit in the model: keep the cart near the origin with a
    cost term (or a constraint) on ``cart_pos``.

    Attributes:
        cart_mass: kg.
        pole_mass: kg.
        pole_length: half-length of the pole (hinge to centre of mass), m.
        gravity: m/s^2, acting downwards (>= 0).
        dt: seconds per step.
        max_force: actuator limit on the cart force, N.
        cart_friction: viscous friction on the cart, N s/m (>= 0).
        pole_friction: viscous friction at the hinge, N m s/rad (>= 0).
        substeps: RK4 sub-steps per ``dt`` (>= 1).
    """

    cart_mass: float = 1.0
    pole_mass: float = 0.1
    pole_length: float = 0.5
    gravity: float = 9.81
    dt: float = 0.05
    max_force: float = 10.0
    cart_friction: float = 0.0
    pole_friction: float = 0.0
    substeps: int = 1

    nx: ClassVar[int] = 4
    nu: ClassVar[int] = 1
    step_function: ClassVar = cartpole_step
    state_names: ClassVar[tuple[str, ...]] = ("cart_pos", "pole_angle", "cart_vel", "pole_ang_vel")
    action_names: ClassVar[tuple[str, ...]] = ("force",)

    def __post_init__(self) -> None:
        for name in ("cart_mass", "pole_mass", "pole_length", "dt", "max_force"):
            require_positive("CartPole", name, getattr(self, name))
        for name in ("gravity", "cart_friction", "pole_friction"):
            require_non_negative("CartPole", name, getattr(self, name))
        require_int_at_least("CartPole", "substeps", self.substeps, 1)

    def params_vector(self) -> FloatArray:
        return np.array(
            [
                self.cart_mass,
                self.pole_mass,
                self.pole_length,
                self.gravity,
                self.cart_friction,
                self.pole_friction,
                self.dt,
                float(self.substeps),
            ]
        )

    def energy(self, x: FloatArray) -> FloatArray:
        """Total mechanical energy (J), zero-height at the hinge; x Shape=(..., 4) -> (...)."""
        x = np.asarray(x, dtype=np.float64)
        mc, mp, ell, g = self.cart_mass, self.pole_mass, self.pole_length, self.gravity
        th, xd, thd = x[..., 1], x[..., 2], x[..., 3]
        kinetic = (
            0.5 * (mc + mp) * xd**2
            + mp * ell * np.cos(th) * xd * thd
            + 0.5 * (4.0 / 3.0) * mp * ell**2 * thd**2
        )
        return kinetic + mp * g * ell * np.cos(th)

    @property
    def action_low(self) -> FloatArray:
        return np.array([-self.max_force])

    @property
    def action_high(self) -> FloatArray:
        return np.array([self.max_force])
