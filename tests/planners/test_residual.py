"""The residual planner (Policy Decorator): base + alpha * r on the executed action, checked
by the guard like any planner; a zero residual is the base itself."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dynamics import PointMass2D
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.tasks import load_task
from planners.residual import (
    PlannedAhead,
    ResidualPlanner,
    SetResidual,
    ZeroResidual,
    residual_scale,
)

H = 8
MODEL = PointMass2D(dt=0.1, max_force=2.0)


class FixedPlan:
    """A base that plays one fixed plan and counts its calls."""

    horizon = H

    def __init__(self, action: tuple[float, float] = (0.0, 0.0)) -> None:
        self.actions = np.tile(np.asarray(action, dtype=np.float64), (H, 1))
        self.calls = 0

    def reset(self, seed: int | None = None) -> None:
        self.calls = 0

    def plan(self, state: np.ndarray) -> PlanResult:
        self.calls += 1
        return PlanResult(self.actions.copy(), 1.5, {"goal": 1.5}, 3, 0, np.ones((H + 1, 4)))


@pytest.fixture(scope="module")
def push():  # type: ignore[no-untyped-def]
    return load_task("push_block")


def test_zero_residual_reproduces_the_base_bit_for_bit(push) -> None:  # type: ignore[no-untyped-def]
    # A whole guarded episode of the IMLE policy, alone and decorated with r = 0.
    base = make_planner("imle_policy", push, seed=0)
    alone = run_episode(push, base, 3, guard=True, steps=40)
    decorated = ResidualPlanner(
        base, ZeroResidual(2), push.dynamics, residual_scale(push.dynamics, 0.3)
    )
    again = run_episode(push, decorated, 3, guard=True, steps=40)
    assert np.array_equal(alone.actions, again.actions)
    assert np.array_equal(alone.true_states, again.true_states)
    assert np.array_equal(alone.fallbacks, again.fallbacks)
    # Each step's PlanResult is the base's own object.
    fixed = FixedPlan((0.5, -0.5))
    result = ResidualPlanner(fixed, SetResidual(2), MODEL, 1.0).plan(np.zeros(4))
    assert result.cost == 1.5 and result.term_costs == {"goal": 1.5}
    assert result.predicted_states.shape == (H + 1, 4)


def test_the_residual_corrects_the_first_action_only_clipped_to_the_box() -> None:
    base = FixedPlan((0.5, -0.5))
    residual = SetResidual(2)
    planner = ResidualPlanner(base, residual, MODEL, [1.0, 0.25])
    residual.set([1.0, -1.0])
    result = planner.plan(np.zeros(4))
    np.testing.assert_allclose(result.actions[0], [1.5, -0.75])
    np.testing.assert_array_equal(result.actions[1:], base.actions[1:])  # the base's tail
    assert np.isnan(result.cost) and result.term_costs == {}  # they were the base plan's
    assert result.num_feasible == 3
    # Past the actuator box (+-2 N): clipped to it.
    big = ResidualPlanner(base, residual, MODEL, 5.0)
    np.testing.assert_allclose(big.plan(np.zeros(4)).actions[0], [2.0, -2.0])
    assert base.calls == 2


def test_residual_and_scale_are_checked() -> None:
    residual = SetResidual(2)
    with pytest.raises(ValueError, match=r"entries in \[-1, 1\]"):
        residual.set([1.5, 0.0])
    with pytest.raises(ValueError, match="finite"):
        residual.set([np.nan, 0.0])
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        residual.set([0.1, 0.2, 0.3])
    np.testing.assert_allclose(residual_scale(MODEL, 0.1), [0.2, 0.2])  # 0.1 of (2 - -2) / 2
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        residual_scale(MODEL, 0.0)
    with pytest.raises(ValueError, match="scale must be finite and >= 0"):
        ResidualPlanner(FixedPlan(), residual, MODEL, -0.1)

    def broken(state: np.ndarray, base_action: np.ndarray) -> np.ndarray:
        return np.array([np.nan, 0.0])

    with pytest.raises(ValueError, match="the residual returned"):
        ResidualPlanner(FixedPlan(), broken, MODEL, 0.1).plan(np.zeros(4))


def test_the_guard_refuses_a_residual_that_drives_into_the_post(push) -> None:  # type: ignore[no-untyped-def]
    # The pusher 2 cm from the post, the base holding still, the residual pushing at it.
    task = dataclasses.replace(push, initial_state=np.array([0.225, 0, 0, -0.3, 0, 0, 0, 0]))
    outcomes = {}
    for guard in (True, False):
        residual = SetResidual(2)
        residual.set([1.0, 0.0])
        planner = ResidualPlanner(FixedPlan(), residual, task.dynamics, 0.3)
        record = run_episode(task, planner, 0, guard=guard, steps=10)
        outcomes[guard] = (EpisodeOutcome.of(task, record), record)
    guarded, record = outcomes[True]
    assert guarded.violation_steps == 0 and guarded.fallback_steps == 10
    assert all(reason.startswith("check failed") for reason in record.fallbacks)
    assert np.all(record.actions[:, 0] < 0.3)  # the decorated action was never sent
    assert outcomes[False][0].violation_steps > 0  # unguarded, the pusher enters the post


class Counting:
    """A residual with episode state: how many steps it has corrected."""

    def __init__(self) -> None:
        self.calls = 0

    def reset(self) -> None:
        self.calls = 0

    def __call__(self, state: np.ndarray, base_action: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.zeros(2)


def test_an_episodic_residual_resets_with_the_planner() -> None:
    residual = Counting()
    planner = ResidualPlanner(FixedPlan(), residual, MODEL, 0.1)
    for _ in range(3):
        planner.plan(np.zeros(4))
    assert residual.calls == 3
    planner.reset(1)
    assert residual.calls == 0


def test_planned_ahead_plans_once_per_step() -> None:
    base = FixedPlan()
    ahead = PlannedAhead(base)
    x = np.array([0.1, 0.2, 0.0, 0.0])
    peeked = ahead.peek(x)
    assert ahead.pending and base.calls == 1
    assert ahead.plan(x.copy()) is peeked and base.calls == 1 and not ahead.pending
    ahead.plan(x)  # nothing peeked: a plan as usual
    assert base.calls == 2
    ahead.peek(x)
    with pytest.raises(RuntimeError, match="never used"):
        ahead.peek(x)
    with pytest.raises(RuntimeError, match="another state"):
        ahead.plan(x + 1.0)
    ahead.peek(x)
    ahead.reset(0)
    assert not ahead.pending
