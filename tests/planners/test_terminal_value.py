"""``planners.terminal_value``: the quadratic model of a cost, and the LQR terminal value
that makes a short horizon act like the infinite-horizon LQR."""

from __future__ import annotations

import numpy as np
import pytest

from cost import ControlEffort, CostSum, StateTracking, Term, TerminalState, lqr_value
from dynamics import PointMass2D
from dynamics.linearize import linearize
from imle_mpc.core.errors import InputError
from planners.terminal_value import lqr_terminal_value, quadratic_cost_model, with_terminal_value

GOAL = np.array([1.0, -0.5, 0.0, 0.0])
WEIGHTS = np.array([1.0, 2.0, 0.1, 0.2])


def _cost() -> CostSum:
    return CostSum(
        Term("goal", StateTracking(GOAL, WEIGHTS), 3.0),
        Term("final", TerminalState(GOAL, 100.0)),  # not a running cost: left out
        Term("effort", ControlEffort([0.1, 0.3])),
    )


def test_the_quadratic_model_of_a_quadratic_cost_is_its_weights() -> None:
    Q, R, S = quadratic_cost_model(_cost(), GOAL, np.zeros(2))
    np.testing.assert_allclose(Q, np.diag(3.0 * WEIGHTS), atol=1e-6)
    np.testing.assert_allclose(R, np.diag([0.1, 0.3]), atol=1e-6)
    np.testing.assert_allclose(S, 0.0, atol=1e-6)


def test_the_value_is_the_lqr_tail_in_the_planners_convention() -> None:
    """P - Q: the Riccati value minus the x_H'Q x_H the horizon has charged already; and it
    is what the LQR closed loop costs from x_H, step by step as the planners charge it."""
    model = PointMass2D()
    cost = _cost()
    value = lqr_terminal_value(model, GOAL, cost=cost)
    A, B = linearize(model, GOAL, np.zeros(2))
    Q, R = np.diag(3.0 * WEIGHTS), np.diag([0.1, 0.3])
    P = lqr_value(A, B, Q, R)
    np.testing.assert_allclose(value.matrix, P - Q, rtol=1e-6, atol=1e-8)
    gain = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    x_H = GOAL + np.array([0.3, -0.2, 0.1, 0.05])
    e, tail = x_H - GOAL, 0.0
    for _ in range(3000):
        u = -gain @ e
        e = A @ e + B @ u
        tail += e @ Q @ e + u @ R @ u  # c(x_{t+1}, u_t)
    X = np.tile(x_H, (1, 2, 1))
    assert value(X, np.zeros((1, 1, 2)))[0] == pytest.approx(tail, rel=1e-6)


def test_a_short_horizon_with_the_value_plays_the_lqr_action() -> None:
    """With the exact cost-to-go after it, a 3-step NMPC of a linear model IS the
    infinite-horizon LQR: its first action is -K (x - goal). Without it, it is not."""
    pytest.importorskip("casadi")
    from planners.nmpc import NMPCConfig, NMPCRefiner

    model = PointMass2D()
    cost = CostSum(Term("goal", StateTracking(GOAL, WEIGHTS)), Term("effort", ControlEffort(), 0.1))
    value = lqr_terminal_value(model, GOAL, cost=cost)
    A, B = linearize(model, GOAL, np.zeros(2))
    Q, R = np.diag(WEIGHTS), 0.1 * np.eye(2)
    P = lqr_value(A, B, Q, R)
    gain = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    x0 = GOAL + np.array([-0.2, 0.1, 0.05, 0.0])  # near: the 2 N box stays inactive
    lqr_action = -gain @ (x0 - GOAL)
    config = NMPCConfig(tolerance=1e-10, constraint_tolerance=1e-10)
    with_value = NMPCRefiner(model, with_terminal_value(cost, value), horizon=3, config=config)
    result = with_value.refine(x0, np.zeros((3, 2)))
    assert result.converged
    np.testing.assert_allclose(result.actions[0], lqr_action, atol=1e-6)
    without = NMPCRefiner(model, cost, horizon=3, config=config).refine(x0, np.zeros((3, 2)))
    assert np.abs(without.actions[0] - lqr_action).max() > 1e-2


def test_an_operating_point_that_moves_is_refused() -> None:
    moving = GOAL + np.array([0.0, 0.0, 0.5, 0.0])  # a velocity: not at rest
    with pytest.raises(InputError, match="not an equilibrium"):
        lqr_terminal_value(PointMass2D(), moving, cost=_cost())


def test_a_value_over_states_that_depend_on_the_rest_is_refused() -> None:
    with pytest.raises(InputError, match=r"dims=\[0, 1\] evolve with the others"):
        lqr_terminal_value(PointMass2D(), GOAL, cost=_cost(), dims=[0, 1])


def test_the_stage_cost_must_be_given() -> None:
    with pytest.raises(InputError, match="needs the stage cost"):
        lqr_terminal_value(PointMass2D(), GOAL)


def test_an_action_that_costs_nothing_is_priced_through_the_state_it_leads_to() -> None:
    """The planners charge c(x_{t+1}, u_t), so R~ = R + B'QB > 0 without an effort term; the
    value is finite."""
    only_states = CostSum(Term("goal", StateTracking(GOAL, WEIGHTS)))
    value = lqr_terminal_value(PointMass2D(), GOAL, cost=only_states)
    assert np.all(np.isfinite(value.matrix)) and np.linalg.eigvalsh(value.matrix).min() > -1e-12
    assert value.matrix[0, 0] > 1.0  # a position error still costs
