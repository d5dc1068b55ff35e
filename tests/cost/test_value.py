"""``cost.value``: the LQR value solves the Riccati equation (and refuses when there is none);
the quadratic terminal value equals its closed form on the numpy, fused and CasADi paths."""

from __future__ import annotations

import numpy as np
import pytest

from cost import ControlEffort, CostSum, QuadraticTerminalValue, StateTracking, Term, lqr_value
from dynamics import PointMass2D
from imle_mpc.core.errors import InputError
from planners import MPPI, MPPIConfig


def _double_integrator(dt: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    A = np.array([[1.0, dt], [0.0, 1.0]])
    B = np.array([[0.5 * dt * dt], [dt]])
    return A, B


def _riccati_residual(A, B, Q, R, P, S=None) -> float:
    S = np.zeros(B.shape) if S is None else S
    gain = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A + S.T)
    return float(np.abs(Q + A.T @ P @ A - (A.T @ P @ B + S) @ gain - P).max())


def test_the_lqr_value_solves_the_riccati_equation_and_stabilises() -> None:
    A, B = _double_integrator()
    Q, R = np.diag([2.0, 0.5]), np.array([[0.1]])
    P = lqr_value(A, B, Q, R)
    assert _riccati_residual(A, B, Q, R, P) < 1e-9
    np.testing.assert_allclose(P, P.T)
    assert np.linalg.eigvalsh(P).min() > 0
    gain = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    assert np.abs(np.linalg.eigvals(A - B @ gain)).max() < 1.0
    # the value is the closed loop's summed cost
    x, total = np.array([1.0, -0.5]), 0.0
    x0 = x.copy()
    for _ in range(2000):
        u = -gain @ x
        total += x @ Q @ x + u @ R @ u
        x = A @ x + B @ u
    assert total == pytest.approx(x0 @ P @ x0, rel=1e-9)


def test_the_lqr_value_with_a_cross_term() -> None:
    A, B = _double_integrator()
    Q, R, S = np.diag([2.0, 0.5]), np.array([[0.1]]), np.array([[0.05], [0.02]])
    P = lqr_value(A, B, Q, R, S)
    assert _riccati_residual(A, B, Q, R, P, S) < 1e-9


def test_an_unstabilisable_model_is_refused_with_its_mode() -> None:
    A = np.diag([1.1, 0.5])  # the first mode grows and no action reaches it
    B = np.array([[0.0], [1.0]])
    with pytest.raises(InputError, match=r"not stabilisable.*1\.1"):
        lqr_value(A, B, np.eye(2), np.eye(1))


@pytest.mark.parametrize(
    ("Q", "R", "match"),
    [
        (np.diag([1.0, -1.0]), np.eye(1), "Q must be positive semidefinite"),
        (np.eye(2), np.zeros((1, 1)), "R must be positive definite"),
        (np.eye(3), np.eye(1), r"Q must be a square matrix Shape=\(2, 2\)"),
    ],
)
def test_bad_weights_are_refused(Q: np.ndarray, R: np.ndarray, match: str) -> None:
    A, B = _double_integrator()
    with pytest.raises(InputError, match=match):
        lqr_value(A, B, Q, R)


def _value(nx: int = 4) -> tuple[QuadraticTerminalValue, np.ndarray, list[int]]:
    rng = np.random.default_rng(1)
    M = rng.normal(size=(3, 3))
    dims = [3, 0, 2]  # a subset, out of order
    reference = rng.normal(size=nx)
    return QuadraticTerminalValue(M @ M.T, reference, dims), M @ M.T, dims


def test_the_terminal_value_is_its_closed_form_on_the_final_state_only() -> None:
    term, P, dims = _value()
    rng = np.random.default_rng(2)
    X, U = rng.normal(size=(7, 5, 4)), np.zeros((7, 4, 2))
    e = X[:, -1, dims] - term.operating_point[dims]
    np.testing.assert_allclose(term(X, U), np.einsum("ki,ij,kj->k", e, P, e), rtol=1e-12)
    X[:, :-1] += 10.0
    np.testing.assert_allclose(term(X, U), np.einsum("ki,ij,kj->k", e, P, e), rtol=1e-12)


def test_the_fused_path_charges_the_terminal_value_as_the_numpy_path() -> None:
    model = PointMass2D()
    term = QuadraticTerminalValue(np.diag([3.0, 3.0, 1.0, 1.0]), [1.0, 0.5, 0.0, 0.0])
    cost = CostSum(Term("value", term, 2.0), Term("effort", ControlEffort(), 0.01))
    config = MPPIConfig(num_samples=32, horizon=8, temperature=0.5, seed=4)
    fused = MPPI(model, cost, config)
    generic = MPPI(model, cost, config, fused=False)
    assert fused.uses_fused_path and not generic.uses_fused_path
    x = np.zeros(4)
    for _ in range(4):
        a, b = fused.plan(x), generic.plan(x)
        np.testing.assert_array_equal(a.actions, b.actions)
        assert a.term_costs["value"] == b.term_costs["value"]
        assert a.term_costs["value"] == pytest.approx(
            2.0 * term(a.predicted_states[None], a.actions[None])[0], rel=1e-12
        )
        x = model.step(x, a.action)


def test_the_casadi_twin_equals_the_numpy_value() -> None:
    ca = pytest.importorskip("casadi")
    from cost.symbolic import cost_function

    term, _, _ = _value()
    cost = CostSum(Term("value", term, 3.0), Term("track", StateTracking(np.zeros(4), 0.5)))
    f = cost_function(cost, nx=4, nu=2, horizon=4)
    rng = np.random.default_rng(3)
    X, U = rng.normal(size=(5, 4)), rng.normal(size=(4, 2))
    expected = cost(X[None], U[None])[0]
    assert float(f(ca.DM(X.T), ca.DM(U.T))) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"P": np.eye(2), "reference": np.zeros(3)}, r"Shape=\(3, 3\)"),
        ({"P": np.eye(2), "reference": np.zeros(3), "dims": [0, 0]}, "distinct"),
        ({"P": np.eye(1), "reference": np.zeros(3), "dims": [3]}, "distinct state indices"),
        ({"P": -np.eye(3), "reference": np.zeros(3)}, "positive semidefinite"),
    ],
)
def test_a_bad_terminal_value_is_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        QuadraticTerminalValue(**kwargs)
