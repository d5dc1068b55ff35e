"""Contract, validation and physics checks for the analytic models in ``dynamics``."""

from __future__ import annotations

import dataclasses

import numba
import numpy as np
import pytest

import dynamics
from dynamics import CartPole, Pendulum, PointMass2D, TwoLinkArm, Unicycle, end_effector_position
from imle_mpc.core.checks import check_dynamics

MODELS = [
    pytest.param(Pendulum(), id="pendulum"),
    pytest.param(PointMass2D(), id="point_mass"),
    pytest.param(Unicycle(), id="unicycle"),
    pytest.param(CartPole(), id="cartpole"),
    pytest.param(TwoLinkArm(), id="arm"),
]


def _problem(model, K: int = 5, H: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=model.nx)
    U = rng.uniform(model.action_low, model.action_high, (K, H, model.nu))
    return x0, U


# --- the Dynamics contract ------------------------------------------------------------


def test_models_come_from_this_repository() -> None:
    # Other PyPI projects are called `dynamics`; make sure we import ours.
    assert dynamics.CartPole.__module__ == "dynamics.cartpole"
    assert "imle_mpc" in {base.__module__.split(".")[0] for base in CartPole.__mro__}


@pytest.mark.parametrize("model", MODELS)
def test_passes_the_conformance_check(model) -> None:
    x0, _ = _problem(model)
    assert check_dynamics(model, state=x0, num_samples=6, horizon=7)["ok"]


@pytest.mark.parametrize("model", MODELS)
def test_rollout_shape_and_initial_state(model) -> None:
    x0, U = _problem(model)
    X = model.rollout(x0, U)
    assert X.shape == (5, 13, model.nx)
    assert X.dtype == np.float64
    assert X.flags.c_contiguous
    np.testing.assert_array_equal(X[:, 0], np.broadcast_to(x0, (5, model.nx)))
    assert np.all(np.isfinite(X))
    assert not np.allclose(X[:, 1:], X[:, :-1])  # the state moves


@pytest.mark.parametrize("model", MODELS)
def test_rollout_is_deterministic_and_fills_out(model) -> None:
    x0, U = _problem(model)
    first = model.rollout(x0, U)
    out = np.full_like(first, np.nan)
    second = model.rollout(x0, U, out=out)
    assert second is out
    np.testing.assert_array_equal(first, second)
    # An equal model built separately gives bit-identical results.
    np.testing.assert_array_equal(first, dataclasses.replace(model).rollout(x0, U))


@pytest.mark.parametrize("model", MODELS)
def test_samples_are_independent(model) -> None:
    x0, U = _problem(model)
    X = model.rollout(x0, U)
    np.testing.assert_array_equal(model.rollout(x0, U[2:3])[0], X[2])


@pytest.mark.parametrize("model", MODELS)
def test_step_equals_first_rollout_step(model) -> None:
    x0, U = _problem(model)
    np.testing.assert_array_equal(model.step(x0, U[0, 0]), model.rollout(x0, U[:1, :1])[0, 1])


@pytest.mark.parametrize("model", MODELS)
def test_declared_sizes_bounds_and_names(model) -> None:
    assert len(model.state_names) == model.nx
    assert len(model.action_names) == model.nu
    assert model.action_low.shape == model.action_high.shape == (model.nu,)
    assert np.all(model.action_low < model.action_high)
    assert model.dt > 0
    assert model.params_vector().dtype == np.float64


@pytest.mark.parametrize("model", MODELS)
def test_wrong_shapes_raise(model) -> None:
    x0, U = _problem(model)
    with pytest.raises(ValueError, match="x0 must have shape"):
        model.rollout(np.zeros(model.nx + 1), U)
    with pytest.raises(ValueError, match="x0 contains NaN"):
        model.rollout(np.full(model.nx, np.nan), U)
    with pytest.raises(ValueError, match="actions must have shape"):
        model.rollout(x0, U[0])  # (H, nu): missing batch axis
    with pytest.raises(ValueError, match="actions must have shape"):
        model.rollout(x0, np.zeros((2, 3, model.nu + 1)))
    with pytest.raises(ValueError, match="out must be"):
        model.rollout(x0, U, out=np.zeros((5, 12, model.nx)))


# --- parameter validation -------------------------------------------------------------

INVALID = [
    (Pendulum, "mass", 0.0),
    (Pendulum, "damping", -0.1),
    (PointMass2D, "drag", -1.0),
    (PointMass2D, "dt", float("nan")),
    (Unicycle, "dt", 0.0),
    (Unicycle, "max_speed", -1.0),
    (Unicycle, "max_turn_rate", float("inf")),
    (CartPole, "cart_mass", 0.0),
    (CartPole, "pole_mass", -0.1),
    (CartPole, "pole_length", 0.0),
    (CartPole, "gravity", -9.81),
    (CartPole, "dt", -0.05),
    (CartPole, "max_force", 0.0),
    (CartPole, "cart_friction", -0.1),
    (CartPole, "pole_friction", float("nan")),
    (CartPole, "substeps", 0),
    (CartPole, "substeps", 2.0),
    (TwoLinkArm, "link1_mass", 0.0),
    (TwoLinkArm, "link2_mass", -1.0),
    (TwoLinkArm, "link1_length", 0.0),
    (TwoLinkArm, "link2_length", float("nan")),
    (TwoLinkArm, "gravity", -1.0),
    (TwoLinkArm, "damping", -0.1),
    (TwoLinkArm, "dt", 0.0),
    (TwoLinkArm, "max_torque1", 0.0),
    (TwoLinkArm, "max_torque2", -5.0),
    (TwoLinkArm, "substeps", 0),
]


@pytest.mark.parametrize(
    ("cls", "field", "value"), INVALID, ids=[f"{c.__name__}.{f}={v}" for c, f, v in INVALID]
)
def test_invalid_parameter_names_the_field(cls, field, value) -> None:
    with pytest.raises(ValueError, match=rf"{cls.__name__}\.{field} must be"):
        cls(**{field: value})


def test_zero_gravity_is_allowed() -> None:
    assert TwoLinkArm(gravity=0.0).gravity == 0.0
    assert CartPole(gravity=0.0).gravity == 0.0


# --- physics sanity -------------------------------------------------------------------


def _zero_actions(model, steps: int) -> np.ndarray:
    return np.zeros((1, steps, model.nu))


def test_pendulum_energy_is_nearly_conserved_without_damping() -> None:
    # Semi-implicit Euler is symplectic: the energy error stays O(dt), it does not grow.
    model = Pendulum(dt=1e-3, damping=0.0, max_speed=100.0)
    X = model.rollout([2.5, 0.0], _zero_actions(model, 2000))[0]
    m, ell, g = model.mass, model.length, model.gravity
    energy = 0.5 * m * ell**2 * X[:, 1] ** 2 + m * g * ell * np.cos(X[:, 0])
    assert X[:, 0].max() > np.pi  # it swings through the bottom
    # Tolerance: 1e-3 of the energy range 2 m g l (measured: 1.5e-4).
    assert np.max(np.abs(energy - energy[0])) < 1e-3 * 2 * m * g * ell


def _cartpole_energy(model: CartPole, X: np.ndarray) -> np.ndarray:
    mc, mp, ell, g = model.cart_mass, model.pole_mass, model.pole_length, model.gravity
    th, xd, thd = X[:, 1], X[:, 2], X[:, 3]
    # Cart KE + pole centre-of-mass KE + pole rotation about its centre + potential.
    com_vx = xd + ell * np.cos(th) * thd
    com_vy = -ell * np.sin(th) * thd
    kinetic = 0.5 * mc * xd**2 + 0.5 * mp * (com_vx**2 + com_vy**2) + 0.5 * mp * ell**2 / 3 * thd**2
    return kinetic + mp * g * ell * np.cos(th)


@pytest.mark.parametrize(("dt", "steps", "tol"), [(0.01, 200, 1e-7), (0.05, 40, 1e-4)])
def test_cartpole_free_swing_conserves_energy_and_momentum(dt, steps, tol) -> None:
    # Measured relative drifts over 2 s: 1.2e-9 at dt=0.01 and 3e-6 at dt=0.05.
    model = CartPole(dt=dt)
    X = model.rollout([0.0, 2.5, 0.3, 1.0], _zero_actions(model, steps))[0]
    energy = _cartpole_energy(model, X)
    scale = 2 * model.pole_mass * model.gravity * model.pole_length
    assert np.max(np.abs(energy - energy[0])) < tol * scale
    np.testing.assert_allclose(model.energy(X), energy, rtol=0, atol=1e-12)
    # No horizontal force: the horizontal momentum of the system is conserved.
    momentum = (model.cart_mass + model.pole_mass) * X[:, 2] + (
        model.pole_mass * model.pole_length * np.cos(X[:, 1]) * X[:, 3]
    )
    assert np.max(np.abs(momentum - momentum[0])) < tol * 10


def test_cartpole_conventions() -> None:
    model = CartPole()
    # Hanging down at rest is an equilibrium; upright at rest is one too (unstable).
    for angle in (np.pi, 0.0):
        X = model.rollout([0.0, angle, 0.0, 0.0], _zero_actions(model, 20))[0]
        np.testing.assert_allclose(X[:, 1:], np.tile([angle, 0.0, 0.0], (21, 1)), atol=1e-12)
    # A pole leaning towards +x falls further towards +x.
    X = model.rollout([0.0, 0.1, 0.0, 0.0], _zero_actions(model, 5))[0]
    assert np.all(np.diff(X[:, 1]) > 0)
    # Pushing the cart towards +x moves it to +x and tips an upright pole back (angle < 0).
    X = model.rollout([0.0, 0.0, 0.0, 0.0], np.full((1, 5, 1), 5.0))[0]
    assert np.all(X[1:, 0] > 0) and np.all(X[1:, 1] < 0)


def test_cartpole_friction_dissipates_energy() -> None:
    model = CartPole(cart_friction=0.5, pole_friction=0.01)
    X = model.rollout([0.0, 2.5, 0.3, 1.0], _zero_actions(model, 100))[0]
    energy = _cartpole_energy(model, X)
    assert np.all(np.diff(energy) <= 1e-12)
    assert energy[-1] < energy[0] - 0.01


def test_point_mass_drag_decays_velocity() -> None:
    model = PointMass2D(drag=0.5)
    X = model.rollout([0.0, 0.0, 1.0, -2.0], _zero_actions(model, 100))[0]
    speed = np.hypot(X[:, 2], X[:, 3])
    assert np.all(np.diff(speed) < 0)
    # Continuous decay would be exp(-drag t / mass); semi-implicit Euler is close.
    expected = np.hypot(1.0, 2.0) * np.exp(-model.drag * 100 * model.dt / model.mass)
    assert speed[-1] == pytest.approx(expected, rel=0.05)
    # Direction of travel is unchanged: drag only slows it down.
    np.testing.assert_allclose(X[1:, 3] / X[1:, 2], -2.0)


def test_point_mass_without_drag_keeps_velocity() -> None:
    model = PointMass2D(drag=0.0)
    X = model.rollout([0.0, 0.0, 1.0, -2.0], _zero_actions(model, 10))[0]
    np.testing.assert_allclose(X[:, 2:], np.tile([1.0, -2.0], (11, 1)))
    np.testing.assert_allclose(X[-1, :2], [10 * model.dt, -20 * model.dt])


def test_unicycle_drives_straight_and_on_circles() -> None:
    model = Unicycle(dt=0.1)
    X = model.rollout([1.0, 2.0, np.pi / 2], np.tile([0.5, 0.0], (1, 10, 1)))[0]
    np.testing.assert_allclose(X[-1], [1.0, 2.5, np.pi / 2], atol=1e-12)
    # Constant (v, omega): every state lies on the circle of radius v / omega, exactly.
    v, w = 0.8, 1.6
    X = model.rollout([0.0, 0.0, 0.0], np.tile([v, w], (1, 50, 1)))[0]
    centre = np.array([0.0, v / w])
    np.testing.assert_allclose(np.hypot(*(X[:, :2] - centre).T), v / w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(X[:, 2], w * model.dt * np.arange(51), atol=1e-12)
    # Heading is not wrapped.
    assert X[-1, 2] > 2 * np.pi


def test_unicycle_small_turn_rates_are_accurate() -> None:
    # The kernel switches to a Taylor series of sin(a)/a for |omega dt / 2| < 1e-4
    # (omega < 4e-3 rad/s at dt = 0.05): check both sides of the switch.
    model = Unicycle()
    x0 = np.array([0.5, -0.2, 0.4])
    for w in (0.0, 1e-9, 3.9e-3, 3.99999e-3, 4.00001e-3, 4.1e-3, 0.5):
        half = w * model.dt / 2
        chord = 1.0 * model.dt * np.sinc(half / np.pi)  # np.sinc(x) = sin(pi x) / (pi x)
        expected = x0 + np.array([chord * np.cos(0.4 + half), chord * np.sin(0.4 + half), 2 * half])
        np.testing.assert_allclose(model.step(x0, [1.0, w]), expected, rtol=0, atol=1e-15)


def test_arm_at_rest_without_gravity_or_torque_stays_at_rest() -> None:
    model = TwoLinkArm(gravity=0.0)
    x0 = np.array([0.3, -1.1, 0.0, 0.0])
    X = model.rollout(x0, _zero_actions(model, 50))[0]
    np.testing.assert_array_equal(X, np.tile(x0, (51, 1)))


def test_arm_hanging_down_is_an_equilibrium() -> None:
    model = TwoLinkArm()
    x0 = np.array([-np.pi / 2, 0.0, 0.0, 0.0])
    X = model.rollout(x0, _zero_actions(model, 100))[0]
    np.testing.assert_allclose(X, np.tile(x0, (101, 1)), atol=1e-9)
    # ...and a stable one: a small push decays back (with damping) instead of growing.
    X = model.rollout([-np.pi / 2 + 0.1, 0.05, 0.0, 0.0], _zero_actions(model, 400))[0]
    assert np.max(np.abs(X[:, 0] + np.pi / 2)) < 0.2
    assert np.max(np.abs(X[-100:, 0] + np.pi / 2)) < 0.1


def test_arm_gravity_pulls_down_and_torque_holds() -> None:
    model = TwoLinkArm()
    horizontal = np.zeros(4)
    X = model.rollout(horizontal, _zero_actions(model, 5))[0]
    assert np.all(np.diff(X[:, 0]) < 0)  # the outstretched arm falls (q1 decreases)
    # Static gravity torques of the straight horizontal arm (uniform rods).
    m1, m2, l1, l2, g = 1.0, 1.0, 1.0, 1.0, 9.81
    tau = np.array([(m1 * l1 / 2 + m2 * l1 + m2 * l2 / 2) * g, m2 * l2 / 2 * g])
    X = model.rollout(horizontal, np.tile(tau, (1, 20, 1)))[0]
    np.testing.assert_allclose(X, np.zeros((21, 4)), atol=1e-12)


def _arm_energy(model: TwoLinkArm, X: np.ndarray) -> np.ndarray:
    m1, m2 = model.link1_mass, model.link2_mass
    l1, l2, g = model.link1_length, model.link2_length, model.gravity
    q1, q12, w1, w12 = X[:, 0], X[:, 0] + X[:, 1], X[:, 2], X[:, 2] + X[:, 3]
    v2x = -l1 * np.sin(q1) * w1 - l2 / 2 * np.sin(q12) * w12
    v2y = l1 * np.cos(q1) * w1 + l2 / 2 * np.cos(q12) * w12
    kinetic = (
        0.5 * m1 * (l1 / 2 * w1) ** 2
        + 0.5 * m1 * l1**2 / 12 * w1**2
        + 0.5 * m2 * (v2x**2 + v2y**2)
        + 0.5 * m2 * l2**2 / 12 * w12**2
    )
    potential = g * (m1 * l1 / 2 * np.sin(q1) + m2 * (l1 * np.sin(q1) + l2 / 2 * np.sin(q12)))
    return kinetic + potential


def test_arm_energy_conserved_without_damping() -> None:
    # A free double pendulum dropped from 30 degrees below horizontal, 2 s at 4 ms.
    model = TwoLinkArm(damping=0.0, dt=0.02, substeps=5)
    X = model.rollout([-0.5, 0.5, 0.0, 0.0], _zero_actions(model, 100))[0]
    energy = _arm_energy(model, X)
    scale = model.gravity * (model.link1_mass + 2 * model.link2_mass) * model.link1_length
    assert np.max(np.abs(energy - energy[0])) < 1e-6 * scale


def test_arm_damping_dissipates_energy() -> None:
    model = TwoLinkArm(gravity=0.0, damping=0.5)
    X = model.rollout([0.0, 0.0, 2.0, -1.0], _zero_actions(model, 100))[0]
    energy = _arm_energy(model, X)
    assert np.all(np.diff(energy) < 0)
    assert energy[-1] < 0.5 * energy[0]


def test_end_effector_kinematics() -> None:
    model = TwoLinkArm(link1_length=0.7, link2_length=0.4)
    hanging = np.array([-np.pi / 2, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(model.end_effector(hanging), [0.0, -1.1], atol=1e-12)
    folded = np.array([0.0, np.pi / 2, 0.0, 0.0])
    np.testing.assert_allclose(model.end_effector(folded), [0.7, 0.4], atol=1e-12)
    X = np.random.default_rng(3).normal(size=(6, 9, 4))
    tips = model.end_effector(X)
    assert tips.shape == (6, 9, 2)
    # Distance from the shoulder is set by the elbow angle alone (law of cosines).
    reach = np.sqrt(0.7**2 + 0.4**2 + 2 * 0.7 * 0.4 * np.cos(X[..., 1]))
    np.testing.assert_allclose(np.linalg.norm(tips, axis=-1), reach, atol=1e-12)
    # The @njit helper agrees and is callable from compiled code.
    for x in X[0]:
        np.testing.assert_allclose(end_effector_position(x, 0.7, 0.4), model.end_effector(x))

    @numba.njit
    def tip_distance_to(x, gx, gy):
        ex, ey = end_effector_position(x, 0.7, 0.4)
        return np.hypot(ex - gx, ey - gy)

    assert tip_distance_to(hanging, 0.0, 0.0) == pytest.approx(1.1)
    with pytest.raises(ValueError, match="Shape"):
        model.end_effector(np.zeros(3))
