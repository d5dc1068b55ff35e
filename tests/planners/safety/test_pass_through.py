"""The unguarded comparison loop: exactly what a plain MPC loop executes, nothing more.

Written from the mutants of ``PassThrough`` that survived the mutation run
(``tools/mutation.sh``): the fault tables' "off" rows are only a baseline if this
loop plays what a plain loop would.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from imle_mpc.core.errors import PlanningTimeoutError
from imle_mpc.core.model import StepDynamics
from imle_mpc.core.plan_result import PlanResult
from planners.safety.guard import PassThrough

H = 4


@numba.njit
def _integrator(x, u, p, out):  # pragma: no cover - compiled
    out[0] = x[0] + p[0] * u[0]
    out[1] = x[1] + p[0] * u[1]


# A box that excludes zero on the first entry: the neutral action is (0.5, 0).
MODEL = StepDynamics(_integrator, [0.1], 2, 2, 0.1, action_low=[0.5, -1.0], action_high=[1.0, 1.0])


class Script:
    """Plans ``plan`` (shifted by the call count), or raises on chosen calls."""

    horizon = H

    def __init__(self, plan: np.ndarray, raises: dict[int, Exception] | None = None) -> None:
        self.plan_actions, self.raises, self.calls, self.resets = plan, raises or {}, 0, 0
        self.results: list[PlanResult] = []

    def reset(self, seed: int | None = None) -> None:
        self.resets += 1

    def plan(self, state: np.ndarray) -> PlanResult:
        call = self.calls
        self.calls += 1
        if call in self.raises:
            raise self.raises[call]
        result = PlanResult(self.plan_actions + call, 1.0, {}, 5, 0, np.zeros((H + 1, 2)))
        self.results.append(result)
        return result


PLAN = np.array([[0.6, 0.1], [0.7, 0.2], [0.8, 0.3], [0.9, 0.4]])


def test_the_planners_result_is_executed_as_it_is() -> None:
    planner = Script(PLAN)
    loop = PassThrough(planner, MODEL)
    result = loop.plan(np.zeros(2))
    assert result is planner.results[0]


def test_a_dropped_first_step_plays_the_neutral_plan() -> None:
    loop = PassThrough(Script(PLAN, {0: PlanningTimeoutError("late")}), MODEL)
    result = loop.plan(np.zeros(2))
    np.testing.assert_array_equal(result.actions, np.tile([0.5, 0.0], (H, 1)))
    assert result.deadline_missed and result.num_feasible == 0 and result.best_index == -1
    assert np.isnan(result.cost) and result.fallback is None


@pytest.mark.parametrize("lost", [np.full(2, np.nan), np.zeros(3), "abc"], ids=str)
def test_a_lost_measurement_plays_the_rest_of_the_last_plan_without_planning(
    lost: object,
) -> None:
    planner = Script(PLAN)
    loop = PassThrough(planner, MODEL)
    loop.plan(np.zeros(2))
    first = loop.plan(lost)  # type: ignore[arg-type]
    second = loop.plan(lost)  # type: ignore[arg-type]
    assert planner.calls == 1  # the planner never saw the lost measurements
    np.testing.assert_array_equal(first.actions, np.vstack([PLAN[1:], PLAN[-1:]]))
    np.testing.assert_array_equal(second.actions, np.vstack([PLAN[2:], PLAN[-1:], PLAN[-1:]]))
    assert first.deadline_missed and second.deadline_missed


def test_reset_forgets_the_last_plan_and_resets_the_planner() -> None:
    planner = Script(PLAN, {1: PlanningTimeoutError("late")})
    loop = PassThrough(planner, MODEL)
    loop.plan(np.zeros(2))
    loop.reset(3)
    assert planner.resets == 1
    result = loop.plan(np.zeros(2))  # dropped: nothing to play on since the reset
    np.testing.assert_array_equal(result.actions, np.tile([0.5, 0.0], (H, 1)))


def test_any_other_planner_error_propagates() -> None:
    loop = PassThrough(Script(PLAN, {0: RuntimeError("solver exploded")}), MODEL)
    with pytest.raises(RuntimeError, match="solver exploded"):
        loop.plan(np.zeros(2))
