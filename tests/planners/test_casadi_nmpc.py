"""NMPC refinement: repairs a bad plan, never spoils a good one, and the wrapper's rules."""

from __future__ import annotations

import numpy as np
import pytest

from cost import CostSum, Term
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.tasks import make_task
from planners import MPPI, MPPIConfig
from planners.nmpc import NMPCConfig, NMPCRefiner, RefinedPlanner

H = 16


@pytest.fixture(scope="module")
def task():
    return make_task("nav_one_obstacle")


@pytest.fixture(scope="module")
def refiner(task):
    return NMPCRefiner(task.dynamics, task.cost, task.constraints, H, NMPCConfig())


def _straight_to_goal(task, x: np.ndarray) -> np.ndarray:
    """A PD controller's plan straight at the goal: it drives through the obstacle."""
    U, goal = np.zeros((H, 2)), np.asarray(task.goal)
    for t in range(H):
        U[t] = np.clip(2.0 * (goal - x[:2]) - 1.0 * x[2:], -2.0, 2.0)
        x = task.dynamics.step(x, U[t])
    return U


# Slightly off the symmetry line y = 0: exactly on it, no gradient says which side to take.
STARTS = [np.array([0.5, 0.1, 0.8, 0.0]), np.array([1.0, -0.1, 1.0, 0.0])]


@pytest.mark.parametrize("x", STARTS, ids=["far", "near"])
def test_refinement_repairs_a_plan_through_the_obstacle(task, refiner, x) -> None:
    U_bad = _straight_to_goal(task, x)
    before = refiner.score(x, U_bad)
    assert not before.feasible and before.min_margin < -0.5  # deep inside the disc

    result = refiner.refine(x, U_bad)

    assert result.converged, result.status
    assert result.actions.shape == (H, 2)
    assert np.all(result.actions <= 2.0) and np.all(result.actions >= -2.0)
    # Checked on the Numba rollout, not on the solver's states.
    X = task.dynamics.rollout(x, result.actions[None])
    assert task.constraints[0].violation(X, result.actions[None])[0] == 0.0
    assert result.feasible and result.min_margin >= 0.0
    assert result.cost == pytest.approx(task.cost(X, result.actions[None])[0])
    assert result.cost < 0.5 * before.cost
    np.testing.assert_allclose(result.predicted_states, X[0])


def test_refining_an_optimal_plan_does_not_make_it_worse(task, refiner) -> None:
    x = STARTS[0]
    optimal = refiner.refine(x, _straight_to_goal(task, x))
    again = refiner.refine(x, optimal.actions)
    assert again.converged and again.feasible
    assert again.cost <= optimal.cost * (1.0 + 1e-6)
    np.testing.assert_allclose(again.actions, optimal.actions, atol=1e-3)


def test_refiner_rejects_wrong_shapes_and_terms_without_casadi_form(task, refiner) -> None:
    with pytest.raises(ValueError, match=r"U_init must have Shape=\(16, 2\)"):
        refiner.refine(STARTS[0], np.zeros((H - 1, 2)))
    custom = CostSum(*task.cost.terms, Term("mine", lambda X, U: U[:, 0, 0] ** 2))
    with pytest.raises(TypeError, match=r"'mine'.*casadi_cost="):
        NMPCRefiner(task.dynamics, custom, task.constraints, H)
    # The override makes it work.
    NMPCRefiner(
        task.dynamics, custom, task.constraints, H, casadi_cost={"mine": lambda X, U: U[0, 0] ** 2}
    )

    class SpeedLimit:
        name = "speed"

        def violation(self, X, U):
            return np.maximum(np.abs(X[:, 1:, 2]).max(axis=1) - 1.0, 0.0)

    with pytest.raises(TypeError, match=r"'speed'.*casadi_constraints="):
        NMPCRefiner(task.dynamics, task.cost, [SpeedLimit()], H)
    limited = NMPCRefiner(
        task.dynamics, task.cost, [SpeedLimit()], H,
        casadi_constraints=[lambda X, U: [0.999 - X[2, t] ** 2 for t in range(1, H + 1)]],
    )  # fmt: skip
    result = limited.refine(STARTS[0], np.zeros((H, 2)))
    assert result.converged and result.feasible
    assert result.predicted_states[:, 2].max() <= 1.0 + 1e-6


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"NMPCConfig\.max_cpu_time"):
        NMPCConfig(max_cpu_time=0.0)
    with pytest.raises(ValueError, match=r"NMPCConfig\.max_iter"):
        NMPCConfig(max_iter=0)


def _planner(task):
    """A small MPPI on the generic path (the fused kernel would take seconds to compile)."""
    config = MPPIConfig(num_samples=64, horizon=H, noise_sigma=1.0, temperature=0.5, seed=3)
    return MPPI(task.dynamics, task.cost, config, task.constraints, fused=False)


class FixedPlanner:
    """Always plans ``actions``; records the warm starts it is given."""

    horizon = H

    def __init__(self, actions: np.ndarray) -> None:
        self.actions = actions
        self.nominals: list[np.ndarray] = []

    def reset(self, seed: int | None = None) -> None:
        self.nominals.clear()

    def set_nominal(self, plan: np.ndarray) -> None:
        self.nominals.append(np.array(plan))

    def plan(self, state: np.ndarray) -> PlanResult:
        return PlanResult(
            actions=self.actions.copy(), cost=123.0, term_costs={"all": 123.0}, num_feasible=7,
            best_index=2, predicted_states=np.zeros((H + 1, 4)), timings={"total": 0.5},
        )  # fmt: skip


def test_refined_planner_replaces_a_bad_plan_and_warm_starts_the_planner(task, refiner) -> None:
    x = STARTS[0]
    inner = FixedPlanner(_straight_to_goal(task, x))
    result = RefinedPlanner(inner, refiner).plan(x)
    assert result.timings["refined"] == 1.0
    assert result.timings["total"] == pytest.approx(0.5 + result.timings["refine"])
    X = task.dynamics.rollout(x, result.actions[None])
    assert task.constraints[0].violation(X, result.actions[None])[0] == 0.0
    assert result.cost == pytest.approx(task.cost(X, result.actions[None])[0])
    assert set(result.term_costs) == set(task.cost.names)
    np.testing.assert_allclose(result.predicted_states, X[0])
    assert (result.num_feasible, result.best_index) == (7, 2)  # the inner planner's
    assert len(inner.nominals) == 1
    np.testing.assert_array_equal(inner.nominals[0], result.actions)


def test_refined_planner_falls_back_when_the_solve_does_not_converge(task) -> None:
    x = STARTS[0]
    starved = NMPCRefiner(task.dynamics, task.cost, task.constraints, H, NMPCConfig(max_iter=1))
    inner = FixedPlanner(_straight_to_goal(task, x))
    planner = RefinedPlanner(inner, starved)
    result = planner.plan(x)
    assert result.timings["refined"] == 0.0
    assert planner.last_refinement is not None and not planner.last_refinement.converged
    np.testing.assert_array_equal(result.actions, inner.actions)
    assert result.cost == 123.0 and inner.nominals == []
    short = FixedPlanner(np.zeros((8, 2)))
    short.horizon = 8
    with pytest.raises(ValueError, match="horizon=8"):
        RefinedPlanner(short, starved)


def test_refined_planner_in_closed_loop_with_mppi(task, refiner) -> None:
    inner_planner = _planner(task)
    planner = RefinedPlanner(inner_planner, refiner)
    plain = _planner(task)
    x = task.initial_state.copy()
    x[1] = 0.05
    used = 0
    for _ in range(5):
        inner = plain.plan(x)  # the same seed and warm start: the inner plan of this step
        result = planner.plan(x)
        assert result.timings["refine"] > 0.0
        if result.timings["refined"] == 1.0:
            used += 1
            X = task.dynamics.rollout(x, result.actions[None])
            assert task.constraints[0].violation(X, result.actions[None])[0] == 0.0
            assert result.cost <= refiner.score(x, inner.actions).cost + 1e-9
            np.testing.assert_allclose(inner_planner.nominal, result.actions)
            plain.set_nominal(result.actions)
        else:
            assert result.timings["refined"] == 0.0
            np.testing.assert_array_equal(result.actions, inner.actions)
        x = task.dynamics.step(x, result.action)
    assert used >= 3  # a 64-sample MPPI plan is rarely locally optimal
    planner.reset(3)
