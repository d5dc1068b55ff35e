"""CasADi versions of the analytic models' step functions, for gradient-based optimisers.

Each builder writes the same arithmetic as the model's ``@njit`` step (same
integrator, same operation order) on CasADi expressions, with the model's
parameter values baked in as constants. They work on ``SX`` and ``MX`` alike,
so an optimiser can inline them into its NLP (``symbolic_step``) or call the
compiled ``casadi.Function`` (``casadi_step``).

Two places where the Numba step branches are written branch-free:

* ``Pendulum`` clips the angular speed with ``fmin``/``fmax`` (exact; the
  derivative is zero where the clip is active, as it is for the Numba step).
* ``Unicycle`` uses the same Taylor series for ``sin(a)/a`` below
  ``|a| < 1e-4`` through ``if_else``, with a safe denominator so neither branch
  produces a NaN (a NaN in the branch not taken would still poison derivatives).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import casadi as ca

from dynamics.cartpole import CartPole
from dynamics.pendulum import Pendulum
from dynamics.point_mass import PointMass2D
from dynamics.two_link_arm import TwoLinkArm
from dynamics.unicycle import Unicycle

Expr = Any
"""A CasADi expression (``SX`` or ``MX``); column vectors for states and actions."""


def _point_mass(model: PointMass2D, x: Expr, u: Expr) -> Expr:
    m, c, dt = model.mass, model.drag, model.dt
    vx = x[2] + dt * (u[0] - c * x[2]) / m
    vy = x[3] + dt * (u[1] - c * x[3]) / m
    return ca.vertcat(x[0] + dt * vx, x[1] + dt * vy, vx, vy)


def _unicycle(model: Unicycle, x: Expr, u: Expr) -> Expr:
    dt = model.dt
    v, w = u[0], u[1]
    half = 0.5 * w * dt
    small = ca.fabs(half) < 1e-4
    safe_half = ca.if_else(small, 1.0, half)
    sinc = ca.if_else(small, 1.0 - half * half / 6.0, ca.sin(half) / safe_half)
    chord = v * dt * sinc
    mid = x[2] + half
    return ca.vertcat(x[0] + chord * ca.cos(mid), x[1] + chord * ca.sin(mid), x[2] + w * dt)


def _pendulum(model: Pendulum, x: Expr, u: Expr) -> Expr:
    m, length, g, b = model.mass, model.length, model.gravity, model.damping
    dt, vmax = model.dt, model.max_speed
    theta_ddot = g / length * ca.sin(x[0]) + (u[0] - b * x[1]) / (m * length * length)
    w = ca.fmin(ca.fmax(x[1] + dt * theta_ddot, -vmax), vmax)
    return ca.vertcat(x[0] + dt * w, w)


def _cartpole_accelerations(
    model: CartPole, theta: Expr, x_dot: Expr, theta_dot: Expr, force: Expr
) -> tuple[Expr, Expr]:
    """``dynamics.cartpole._cartpole_accelerations`` on expressions."""
    mc, mp, ell, g = model.cart_mass, model.pole_mass, model.pole_length, model.gravity
    bc, bp = model.cart_friction, model.pole_friction
    s = ca.sin(theta)
    c = ca.cos(theta)
    a11 = mc + mp
    a12 = mp * ell * c
    a22 = (4.0 / 3.0) * mp * ell * ell
    r1 = force - bc * x_dot + mp * ell * s * theta_dot * theta_dot
    r2 = mp * g * ell * s - bp * theta_dot
    det = a11 * a22 - a12 * a12
    return (a22 * r1 - a12 * r2) / det, (a11 * r2 - a12 * r1) / det


def _cartpole(model: CartPole, x: Expr, u: Expr) -> Expr:
    n = int(model.substeps)
    h = model.dt / n
    f = u[0]
    pos, th, vel, om = x[0], x[1], x[2], x[3]
    for _ in range(n):
        vel1, om1 = vel, om
        acc1, alp1 = _cartpole_accelerations(model, th, vel1, om1, f)
        vel2, om2 = vel + 0.5 * h * acc1, om + 0.5 * h * alp1
        acc2, alp2 = _cartpole_accelerations(model, th + 0.5 * h * om1, vel2, om2, f)
        vel3, om3 = vel + 0.5 * h * acc2, om + 0.5 * h * alp2
        acc3, alp3 = _cartpole_accelerations(model, th + 0.5 * h * om2, vel3, om3, f)
        vel4, om4 = vel + h * acc3, om + h * alp3
        acc4, alp4 = _cartpole_accelerations(model, th + h * om3, vel4, om4, f)
        pos = pos + h / 6.0 * (vel1 + 2.0 * vel2 + 2.0 * vel3 + vel4)
        th = th + h / 6.0 * (om1 + 2.0 * om2 + 2.0 * om3 + om4)
        vel = vel + h / 6.0 * (acc1 + 2.0 * acc2 + 2.0 * acc3 + acc4)
        om = om + h / 6.0 * (alp1 + 2.0 * alp2 + 2.0 * alp3 + alp4)
    return ca.vertcat(pos, th, vel, om)


def _arm_accelerations(
    model: TwoLinkArm, q1: Expr, q2: Expr, dq1: Expr, dq2: Expr, tau1: Expr, tau2: Expr
) -> tuple[Expr, Expr]:
    """``dynamics.two_link_arm._arm_accelerations`` on expressions."""
    m1, m2, l1, l2 = model.link1_mass, model.link2_mass, model.link1_length, model.link2_length
    g, b = model.gravity, model.damping
    r1 = 0.5 * l1
    r2 = 0.5 * l2
    i1 = m1 * l1 * l1 / 12.0
    i2 = m2 * l2 * l2 / 12.0
    c2 = ca.cos(q2)
    s2 = ca.sin(q2)
    m11 = i1 + i2 + m1 * r1 * r1 + m2 * (l1 * l1 + r2 * r2 + 2.0 * l1 * r2 * c2)
    m12 = i2 + m2 * (r2 * r2 + l1 * r2 * c2)
    m22 = i2 + m2 * r2 * r2
    h = m2 * l1 * r2 * s2
    cor1 = -h * (2.0 * dq1 * dq2 + dq2 * dq2)
    cor2 = h * dq1 * dq1
    g2 = m2 * r2 * g * ca.cos(q1 + q2)
    g1 = (m1 * r1 + m2 * l1) * g * ca.cos(q1) + g2
    rhs1 = tau1 - b * dq1 - cor1 - g1
    rhs2 = tau2 - b * dq2 - cor2 - g2
    det = m11 * m22 - m12 * m12
    return (m22 * rhs1 - m12 * rhs2) / det, (m11 * rhs2 - m12 * rhs1) / det


def _two_link_arm(model: TwoLinkArm, x: Expr, u: Expr) -> Expr:
    n = int(model.substeps)
    h = model.dt / n
    t1, t2 = u[0], u[1]
    q1, q2, w1, w2 = x[0], x[1], x[2], x[3]

    def acc(a: Expr, b: Expr, c: Expr, d: Expr) -> tuple[Expr, Expr]:
        return _arm_accelerations(model, a, b, c, d, t1, t2)

    for _ in range(n):
        a1, b1 = acc(q1, q2, w1, w2)
        w1b, w2b = w1 + 0.5 * h * a1, w2 + 0.5 * h * b1
        a2, b2 = acc(q1 + 0.5 * h * w1, q2 + 0.5 * h * w2, w1b, w2b)
        w1c, w2c = w1 + 0.5 * h * a2, w2 + 0.5 * h * b2
        a3, b3 = acc(q1 + 0.5 * h * w1b, q2 + 0.5 * h * w2b, w1c, w2c)
        w1d, w2d = w1 + h * a3, w2 + h * b3
        a4, b4 = acc(q1 + h * w1c, q2 + h * w2c, w1d, w2d)
        q1 = q1 + h / 6.0 * (w1 + 2.0 * w1b + 2.0 * w1c + w1d)
        q2 = q2 + h / 6.0 * (w2 + 2.0 * w2b + 2.0 * w2c + w2d)
        w1 = w1 + h / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
        w2 = w2 + h / 6.0 * (b1 + 2.0 * b2 + 2.0 * b3 + b4)
    return ca.vertcat(q1, q2, w1, w2)


_BUILDERS: dict[type, Callable[[Any, Expr, Expr], Expr]] = {
    PointMass2D: _point_mass,
    Unicycle: _unicycle,
    Pendulum: _pendulum,
    CartPole: _cartpole,
    TwoLinkArm: _two_link_arm,
}

SUPPORTED_MODELS: tuple[str, ...] = tuple(cls.__name__ for cls in _BUILDERS)
"""Names of the models ``casadi_step`` knows."""


def symbolic_step(model: Any, x: Expr, u: Expr) -> Expr:
    """The model's next state as a CasADi expression of ``x`` and ``u``.

    Args:
        model: one of the analytic models (``SUPPORTED_MODELS``); its parameter
            values become constants of the expression.
        x: state, a CasADi column, Shape=(nx, 1).
        u: action, a CasADi column, Shape=(nu, 1).

    Returns:
        The next state, Shape=(nx, 1), the same arithmetic as ``model.step``.
        Actions are not clipped (neither are they in ``model.rollout``).

    Raises:
        TypeError: ``model`` is not one of the supported models.
    """
    builder = _BUILDERS.get(type(model))
    if builder is None:
        raise TypeError(
            f"no CasADi form for the model {type(model).__name__}; supported models: "
            f"{', '.join(SUPPORTED_MODELS)}. For another model, build a casadi.Function "
            "(x, u) -> x_next yourself and pass it as step= to the optimiser."
        )
    return builder(model, x, u)


def casadi_step(model: Any) -> ca.Function:
    """The model's step as a ``casadi.Function`` ``(x Shape=(nx,), u Shape=(nu,)) -> x_next``.

    Built on ``SX`` (scalar expressions: cheap to evaluate and to differentiate).

    Examples:
        >>> from dynamics import PointMass2D
        >>> f = casadi_step(PointMass2D())
        >>> [round(v, 6) for v in f([0, 0, 1, 0], [0, 0]).full().ravel()]
        [0.04875, 0.0, 0.975, 0.0]

    Raises:
        TypeError: ``model`` is not one of the supported models.
    """
    x = ca.SX.sym("x", int(model.nx))
    u = ca.SX.sym("u", int(model.nu))
    x_next = symbolic_step(model, x, u)
    return ca.Function(f"{type(model).__name__}_step", [x, u], [x_next], ["x", "u"], ["x_next"])


__all__ = ["SUPPORTED_MODELS", "casadi_step", "symbolic_step"]
