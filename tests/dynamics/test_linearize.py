"""``dynamics.linearize``: Jacobians of one step against closed forms and against each other,
the equilibrium search, and ``MujocoDynamics``' own Jacobians and multi-start rollouts."""

from __future__ import annotations

import numpy as np
import pytest

from dynamics import Pendulum, PointMass2D
from dynamics.linearize import equilibrium, finite_difference_jacobians, linearize
from imle_mpc.core.errors import InputError


def test_the_point_mass_jacobians_are_its_closed_form() -> None:
    model = PointMass2D(mass=2.0, drag=0.5, dt=0.1)
    A, B = linearize(model, [0.3, -0.2, 0.5, 1.0], [0.4, -0.1])
    damp = 1.0 - model.dt * model.drag / model.mass  # semi-implicit Euler, linear drag
    expected_A = np.array(
        [[1, 0, model.dt * damp, 0], [0, 1, 0, model.dt * damp], [0, 0, damp, 0], [0, 0, 0, damp]]
    )
    gain = model.dt / model.mass
    expected_B = np.array([[model.dt * gain, 0], [0, model.dt * gain], [gain, 0], [0, gain]])
    np.testing.assert_allclose(A, expected_A, atol=1e-9)
    np.testing.assert_allclose(B, expected_B, atol=1e-9)


def test_the_pendulum_jacobians_are_its_closed_form_away_from_rest() -> None:
    model = Pendulum(mass=1.5, length=0.8, damping=0.2, dt=0.05)
    theta, speed, torque = 0.7, -1.2, 0.3  # the speed clip (8 rad/s) is inactive here
    A, B = linearize(model, [theta, speed], [torque])
    dt, inertia = model.dt, model.mass * model.length**2
    dw_dtheta = dt * model.gravity / model.length * np.cos(theta)
    dw_dspeed = 1.0 - dt * model.damping / inertia
    expected_A = np.array([[1.0 + dt * dw_dtheta, dt * dw_dspeed], [dw_dtheta, dw_dspeed]])
    expected_B = np.array([[dt * dt / inertia], [dt / inertia]])
    np.testing.assert_allclose(A, expected_A, atol=1e-8)
    np.testing.assert_allclose(B, expected_B, atol=1e-8)


def test_the_equilibrium_of_a_pendulum_held_by_a_torque() -> None:
    """A constant torque holds the pendulum where gravity balances it: sin(theta) = -u/(m g l)."""
    model = Pendulum(mass=1.0, length=1.0)
    x, u = equilibrium(model, [0.0, 0.0], [0.5], free=[0])
    assert x[0] == pytest.approx(-np.arcsin(0.5 / model.gravity), abs=1e-9)
    assert u == pytest.approx([0.5])
    # ... or, the angle fixed, the torque that holds it.
    x, u = equilibrium(model, [0.1, 0.0], [0.0], free=[], free_action=True)
    assert x[0] == 0.1 and u[0] == pytest.approx(-model.gravity * np.sin(0.1), abs=1e-9)
    with pytest.raises(InputError, match="no equilibrium"):
        equilibrium(model, [0.1, 0.0], [0.0], free=[1])  # the speed cannot stop gravity


mujoco = pytest.importorskip("mujoco", reason="the MuJoCo backend needs `pip install mujoco`")

from dynamics.mujoco_model import MujocoDynamics  # noqa: E402

# A cart with a pole on a hinge: a coupled, non-linear, under-actuated model.
CART_POLE = """
<mujoco>
  <option timestep="0.01" integrator="{integrator}"/>
  <worldbody>
    <body name="cart">
      <joint name="slider" type="slide" axis="1 0 0" damping="0.1"/>
      <geom type="box" size="0.1 0.05 0.05" mass="1"/>
      <body name="pole">
        <joint name="hinge" type="hinge" axis="0 1 0" damping="0.02"/>
        <geom type="capsule" fromto="0 0 0 0 0 0.6" size="0.03" mass="0.3"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="slider" gear="10" ctrllimited="true" ctrlrange="-1 1"/></actuator>
</mujoco>
"""


def test_mujoco_own_jacobians_compose_over_the_frame_skip() -> None:
    """Protects: ``mjd_transitionFD`` per physics step, chained along the path over
    ``frame_skip`` (not one physics step, not taken at the start state only), in the
    state layout of the rollout. Off equilibrium, against differences of the whole step."""
    model = MujocoDynamics(CART_POLE.format(integrator="Euler"), frame_skip=4)
    x, u = np.array([0.1, 0.4, -0.3, 1.5]), np.array([0.35])
    A, B = model.linearize(x, u)
    A_fd, B_fd = finite_difference_jacobians(model, x, u)
    np.testing.assert_allclose(A, A_fd, atol=1e-7)
    np.testing.assert_allclose(B, B_fd, atol=1e-7)
    assert np.abs(A - np.eye(4)).max() > 0.05  # a step moves things: the test can tell


def test_mujoco_rk4_models_are_differenced_through_the_rollout() -> None:
    """MuJoCo's ``mjd_transitionFD`` refuses RK4 (Gymnasium's balancing models use it)."""
    model = MujocoDynamics(CART_POLE.format(integrator="RK4"), frame_skip=3)
    x, u = np.array([0.1, 0.4, -0.3, 1.5]), np.array([0.35])
    A, B = linearize(model, x, u)
    A_fd, B_fd = finite_difference_jacobians(model, x, u)
    np.testing.assert_array_equal(A, A_fd)
    np.testing.assert_array_equal(B, B_fd)


def test_mujoco_models_with_quaternions_are_refused() -> None:
    free_body = """
    <mujoco><worldbody><body><freejoint/><geom size="0.1" mass="1"/></body>
    <body pos="1 0 0"><joint name="h" type="hinge"/><geom size="0.1" mass="1"/></body>
    </worldbody><actuator><motor joint="h"/></actuator></mujoco>"""
    model = MujocoDynamics(free_body)
    with pytest.raises(InputError, match="nq=8 position coordinates but nv=7"):
        model.linearize(np.r_[np.zeros(3), 1.0, np.zeros(11)], np.zeros(1))


def test_mujoco_rollout_from_states_equals_one_rollout_per_start() -> None:
    model = MujocoDynamics(CART_POLE.format(integrator="RK4"), frame_skip=2)
    rng = np.random.default_rng(0)
    X0 = rng.normal(size=(5, 4)) * 0.3
    X0[3] = np.nan
    U = rng.uniform(-1, 1, (5, 6, 1))
    X = model.rollout_from_states(X0, U)
    for k in (0, 1, 2, 4):
        np.testing.assert_array_equal(X[k], model.rollout(X0[k], U[k : k + 1])[0])
    assert np.isnan(X[3]).all()
