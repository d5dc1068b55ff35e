"""Batched Numba rollouts against plain-NumPy references written independently here.

Each reference restates a model's equations in matrix form (mass matrix and
``np.linalg.solve`` instead of the kernels' closed-form inverses, a generic
RK4 instead of the unrolled one) and steps one state at a time. Every test in
this file has "reference" in its node id, so ``pytest -k reference`` selects
exactly this file; ``test_dynamics_nojit.py`` runs it again with
``NUMBA_DISABLE_JIT=1``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from dynamics import CartPole, Pendulum, PointMass2D, TwoLinkArm, Unicycle

K, H = 4, 25
ATOL = 1e-12


def _rk4(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dt: float, n: int) -> np.ndarray:
    h = dt / n
    for _ in range(n):
        k1 = f(x)
        k2 = f(x + 0.5 * h * k1)
        k3 = f(x + 0.5 * h * k2)
        k4 = f(x + h * k3)
        x = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return x


def pendulum_reference(m: Pendulum, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    theta, omega = x
    inertia = m.mass * m.length**2
    torque = u[0] + m.mass * m.gravity * m.length * np.sin(theta) - m.damping * omega
    omega = np.clip(omega + m.dt * torque / inertia, -m.max_speed, m.max_speed)
    return np.array([theta + m.dt * omega, omega])


def point_mass_reference(m: PointMass2D, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    v = x[2:] + m.dt / m.mass * (u - m.drag * x[2:])
    return np.concatenate([x[:2] + m.dt * v, v])


def unicycle_reference(m: Unicycle, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    px, py, th = x
    v, w = u
    th1 = th + w * m.dt
    if w == 0.0:
        return np.array([px + v * m.dt * np.cos(th), py + v * m.dt * np.sin(th), th])
    # Circular arc of radius v / w about the instantaneous centre of rotation.
    r = v / w
    return np.array([px + r * (np.sin(th1) - np.sin(th)), py - r * (np.cos(th1) - np.cos(th)), th1])


def cartpole_reference(m: CartPole, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    mc, mp, ell, g = m.cart_mass, m.pole_mass, m.pole_length, m.gravity

    def f(s: np.ndarray) -> np.ndarray:
        _, th, xd, thd = s
        mass = np.array(
            [[mc + mp, mp * ell * np.cos(th)], [mp * ell * np.cos(th), 4.0 / 3.0 * mp * ell**2]]
        )
        rhs = np.array(
            [
                u[0] - m.cart_friction * xd + mp * ell * np.sin(th) * thd**2,
                mp * g * ell * np.sin(th) - m.pole_friction * thd,
            ]
        )
        return np.concatenate([[xd, thd], np.linalg.solve(mass, rhs)])

    return _rk4(f, x, m.dt, m.substeps)


def arm_reference(m: TwoLinkArm, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    m1, m2, l1, l2, g = m.link1_mass, m.link2_mass, m.link1_length, m.link2_length, m.gravity
    c1, c2 = l1 / 2, l2 / 2
    i1, i2 = m1 * l1**2 / 12, m2 * l2**2 / 12

    def f(s: np.ndarray) -> np.ndarray:
        q, qd = s[:2], s[2:]
        cos2, sin2 = np.cos(q[1]), np.sin(q[1])
        mass = np.array(
            [
                [
                    m1 * c1**2 + i1 + m2 * (l1**2 + c2**2 + 2 * l1 * c2 * cos2) + i2,
                    m2 * (c2**2 + l1 * c2 * cos2) + i2,
                ],
                [m2 * (c2**2 + l1 * c2 * cos2) + i2, m2 * c2**2 + i2],
            ]
        )
        hh = m2 * l1 * c2 * sin2
        coriolis = np.array([[-hh * qd[1], -hh * (qd[0] + qd[1])], [hh * qd[0], 0.0]])
        grav = g * np.array(
            [
                (m1 * c1 + m2 * l1) * np.cos(q[0]) + m2 * c2 * np.cos(q[0] + q[1]),
                m2 * c2 * np.cos(q[0] + q[1]),
            ]
        )
        qdd = np.linalg.solve(mass, u - m.damping * qd - coriolis @ qd - grav)
        return np.concatenate([qd, qdd])

    return _rk4(f, x, m.dt, m.substeps)


CASES = [
    pytest.param(Pendulum(damping=0.1), pendulum_reference, id="pendulum"),
    pytest.param(Pendulum(max_speed=1.0), pendulum_reference, id="pendulum-speed-clamped"),
    pytest.param(PointMass2D(mass=1.3, drag=0.4), point_mass_reference, id="point_mass"),
    pytest.param(Unicycle(), unicycle_reference, id="unicycle"),
    pytest.param(CartPole(), cartpole_reference, id="cartpole"),
    pytest.param(
        CartPole(pole_mass=0.3, cart_friction=0.2, pole_friction=0.01, substeps=3),
        cartpole_reference,
        id="cartpole-friction",
    ),
    pytest.param(TwoLinkArm(), arm_reference, id="arm"),
    pytest.param(
        TwoLinkArm(link1_mass=2.0, link2_length=0.6, gravity=0.0, damping=0.5, substeps=1),
        arm_reference,
        id="arm-horizontal",
    ),
]


def _random_problem(model, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1.0, 1.0, model.nx)
    U = rng.uniform(model.action_low, model.action_high, (K, H, model.nu))
    return x0, U


@pytest.mark.parametrize(("model", "reference"), CASES)
def test_rollout_matches_numpy_reference(model, reference) -> None:
    x0, U = _random_problem(model, seed=7)
    X = model.rollout(x0, U)
    for k in range(K):
        x = x0.copy()
        for t in range(H):
            x = reference(model, x, U[k, t])
            np.testing.assert_allclose(
                X[k, t + 1], x, rtol=0, atol=ATOL, err_msg=f"sample {k}, step {t}"
            )


@pytest.mark.parametrize(("model", "reference"), CASES)
def test_single_step_matches_numpy_reference(model, reference) -> None:
    x0, U = _random_problem(model, seed=11)
    np.testing.assert_allclose(model.step(x0, U[0, 0]), reference(model, x0, U[0, 0]), atol=ATOL)


def test_unicycle_reference_straight_line() -> None:
    model = Unicycle(dt=0.1)
    x0 = np.array([1.0, -2.0, 0.3])
    U = np.tile([0.8, 0.0], (1, 10, 1))
    X = model.rollout(x0, U)
    for t in range(10):
        x0 = unicycle_reference(model, x0, U[0, t])
        np.testing.assert_allclose(X[0, t + 1], x0, atol=ATOL)
