"""CasADi forms of the models and cost terms agree with the Numba ones they mirror."""

from __future__ import annotations

import numpy as np
import pytest

from cost import (
    ControlEffort,
    CostSum,
    ObstacleConstraint,
    ObstacleProximity,
    Scene,
    Smoothness,
    StateTracking,
    Term,
    TerminalState,
)
from cost.symbolic import cost_function, obstacle_margins, symbolic_cost
from dynamics import CartPole, Pendulum, PointMass2D, TwoLinkArm, Unicycle
from dynamics.symbolic import SUPPORTED_MODELS, casadi_step
from imle_mpc.core.model import StepDynamics

MODELS = [
    PointMass2D(mass=1.3, drag=0.4, dt=0.1),
    Unicycle(dt=0.1),
    Pendulum(damping=0.1),
    CartPole(substeps=1),
    CartPole(substeps=3, cart_friction=0.2, pole_friction=0.05),
    TwoLinkArm(),
    TwoLinkArm(substeps=1, gravity=0.0),
]


def _numba_step(model, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The model's ``@njit`` step: what ``model.step`` and ``model.rollout`` run.

    Called directly, because ``model.step`` first compiles a rollout kernel per
    model class (seconds each), which adds nothing to this comparison.
    """
    out = np.empty(model.nx)
    model.step_function(x, u, model.params_vector(), out)
    return out


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{type(m).__name__}")
def test_casadi_step_matches_numba_step(model) -> None:
    f = casadi_step(model)
    rng = np.random.default_rng(1)
    low, high = model.action_low, model.action_high
    for _ in range(50):
        x = rng.normal(scale=2.0, size=model.nx)
        u = rng.uniform(1.5 * low, 1.5 * high)  # beyond the box too: neither clips
        got = np.asarray(f(x, u)).ravel()
        np.testing.assert_allclose(got, _numba_step(model, x, u), rtol=0, atol=1e-10)


def test_casadi_step_matches_model_step() -> None:
    model = PointMass2D(mass=1.3, drag=0.4, dt=0.1)  # one model.step: it compiles a kernel
    x, u = np.array([0.3, -0.2, 1.1, -0.4]), np.array([1.5, -2.0])
    np.testing.assert_allclose(np.asarray(casadi_step(model)(x, u)).ravel(), model.step(x, u))


def test_unicycle_small_turn_branch_and_pendulum_speed_clip() -> None:
    uni = Unicycle(dt=0.1)
    f = casadi_step(uni)
    for w in (0.0, 1e-4, 2.5e-3, -1e-9):  # Taylor branch (|w dt / 2| < 1e-4) and just past it
        x, u = np.array([0.3, -0.2, 1.1]), np.array([0.7, w])
        np.testing.assert_allclose(np.asarray(f(x, u)).ravel(), _numba_step(uni, x, u), atol=1e-12)
    pend = Pendulum(max_speed=1.0)
    x, u = np.array([1.0, 0.99]), np.array([2.0])  # the speed clip is active
    got = np.asarray(casadi_step(pend)(x, u)).ravel()
    np.testing.assert_allclose(got, _numba_step(pend, x, u))
    assert got[1] == 1.0


def test_unsupported_model_names_the_supported_ones() -> None:
    model = StepDynamics(PointMass2D.step_function, [1.0, 0.5, 0.1], nx=4, nu=2, dt=0.1)
    with pytest.raises(TypeError) as err:
        casadi_step(model)
    for name in SUPPORTED_MODELS:
        assert name in str(err.value)
    assert "step=" in str(err.value)


SCENE = Scene(circles=[[2.0, 0.0, 0.7], [1.0, 1.0, 0.3]], boxes=[[0.0, 2.0, 0.5, 0.3]])


def _all_terms_cost() -> CostSum:
    return CostSum(
        Term("track", StateTracking([1.0, 2.0, 0.0, 0.0], [1.0, 2.0, 0.1, 0.0], [1]), 1.0),
        Term("terminal", TerminalState([1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.5, 0.5]), 10.0),
        Term("clearance", ObstacleProximity(SCENE, margin=0.3), 100.0),
        Term("effort", ControlEffort([0.1, 0.2], [0.5, -0.5]), 0.01),
        Term("rate", Smoothness(1.0, order=1), 0.3),
        Term("jerk", Smoothness([1.0, 2.0], order=2), 0.2),
        Term("nested", CostSum(Term("inner", ControlEffort(), 1.0)), 0.5),
    )


def test_symbolic_cost_matches_cost_sum() -> None:
    cost, H = _all_terms_cost(), 12
    f = cost_function(cost, nx=4, nu=2, horizon=H)
    rng = np.random.default_rng(2)
    for _ in range(20):
        X = rng.normal(scale=1.5, size=(1, H + 1, 4))
        X[0, :, 0] += 1.5  # many states near or inside the obstacles
        X[0, :, 1] += 3.0 * rng.uniform(-1, 1)  # angles past +-pi for the wrapped dim
        U = rng.normal(size=(1, H, 2))
        want = cost.evaluate(X, U)[0][0]
        got = float(f(X[0].T, U[0].T))
        assert got == pytest.approx(want, rel=1e-9, abs=1e-8)


def test_obstacle_margins_are_the_distances_minus_margin() -> None:
    constraint = ObstacleConstraint(SCENE, margin=0.05)
    rng = np.random.default_rng(3)
    X = rng.uniform(-1.0, 3.0, size=(1, 6, 4))
    margins = np.array([float(m) for m in obstacle_margins(constraint, X[0].T)]).reshape(5, 3)
    # The smallest margin per step is the Numba scene distance minus the margin.
    want = SCENE.distances(X)[0, 1:] - 0.05
    np.testing.assert_allclose(margins.min(axis=1), want, atol=1e-10)


def test_term_without_symbolic_form_names_it_and_the_fix() -> None:
    import casadi as ca

    cost = CostSum(
        Term("effort", ControlEffort(), 1.0),
        Term("custom", lambda X, U: X[:, -1, 0] ** 2, 2.0),
    )
    X, U = ca.SX.sym("X", 4, 4), ca.SX.sym("U", 2, 3)
    with pytest.raises(TypeError, match=r"'custom'.*casadi_cost="):
        symbolic_cost(cost, X, U)
    # The override is the fix; its value is weighted like the term.
    value = symbolic_cost(cost, X, U, {"custom": lambda X, U: X[0, -1] ** 2})
    f = ca.Function("f", [X, U], [value])
    Xn, Un = np.ones((1, 4, 4)), np.full((1, 3, 2), 0.5)
    assert float(f(Xn[0].T, Un[0].T)) == pytest.approx(cost.evaluate(Xn, Un)[0][0])
    with pytest.raises(ValueError, match="not terms"):
        symbolic_cost(cost, X, U, {"typo": lambda X, U: 0.0})


def test_capsule_distances_match_when_the_scene_has_capsules() -> None:
    import casadi as ca

    from cost.symbolic import obstacle_distances

    scene = Scene(capsules=[[0.0, 0.0, 2.0, 1.0, 0.3], [1.0, -1.0, 1.0, -1.0, 0.2]])
    x = ca.SX.sym("x", 4)
    f = ca.Function("d", [x], [ca.vertcat(*obstacle_distances(scene, x))])
    rng = np.random.default_rng(4)
    X = rng.uniform(-1.0, 3.0, size=(1, 30, 4))
    got = np.array([np.asarray(f(X[0, t])).min() for t in range(30)])
    np.testing.assert_allclose(got, scene.distances(X)[0], atol=1e-12)
