"""Every planner wrapper forwards horizon, reset and set_nominal, through any chain of wrappers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from dynamics import PointMass2D
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import NominalSettable
from imle_mpc.core.wrapper import PlannerWrapper
from imle_mpc.loop.faults import DroppedPlanning, FaultLog
from planners.nmpc import RefinedPlanner
from planners.residual import PlannedAhead, ResidualPlanner, ZeroResidual
from planners.safety.guard import PassThrough, SafetyGuard
from planners.safety.offset_free import OffsetFree

H = 6
MODEL = PointMass2D(dt=0.1, max_force=2.0)


class Recording:
    """A planner that plays a fixed plan (or raises on chosen steps) and records what it is told."""

    horizon = H

    def __init__(self, failing_steps: tuple[int, ...] = ()) -> None:
        self.failing_steps = failing_steps
        self.calls = 0
        self.seeds: list[int | None] = []
        self.nominals: list[np.ndarray] = []

    def reset(self, seed: int | None = None) -> None:
        self.seeds.append(seed)

    def set_nominal(self, plan: np.ndarray) -> None:
        self.nominals.append(np.array(plan))

    def plan(self, state: np.ndarray) -> PlanResult:
        step = self.calls
        self.calls += 1
        if step in self.failing_steps:
            raise RuntimeError("planner failed")
        actions = np.tile([0.0, 0.5], (H, 1))
        return PlanResult(actions, 0.0, {}, 1, 0, np.empty((0, 0)))


class NoWarmStart:
    """A planner without ``set_nominal``."""

    horizon = H

    def reset(self, seed: int | None = None) -> None:
        pass

    def plan(self, state: np.ndarray) -> PlanResult:
        return PlanResult(np.zeros((H, 2)), 0.0, {}, 1, 0, np.empty((0, 0)))


class _FakeRefiner:
    horizon = H


WRAPPERS: dict[str, Callable[[Any], PlannerWrapper]] = {
    "guard": lambda p: SafetyGuard(p, MODEL, velocity_dims=(2, 3)),
    "pass_through": lambda p: PassThrough(p, MODEL),
    "offset_free": lambda p: OffsetFree(p, MODEL),
    "dropped_planning": lambda p: DroppedPlanning(p, 0.0, np.random.default_rng(0), FaultLog()),
    "refined": lambda p: RefinedPlanner(p, _FakeRefiner()),  # type: ignore[arg-type]
    "residual": lambda p: ResidualPlanner(p, ZeroResidual(2), MODEL, 0.1),
    "planned_ahead": lambda p: PlannedAhead(p),
}


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_each_wrapper_forwards_horizon_reset_and_set_nominal(name: str) -> None:
    inner = Recording()
    wrapper = WRAPPERS[name](inner)
    assert isinstance(wrapper, PlannerWrapper) and isinstance(wrapper, NominalSettable)
    assert wrapper.horizon == H
    wrapper.reset(7)
    assert inner.seeds == [7]
    plan = np.full((H, 2), 0.25)
    wrapper.set_nominal(plan)
    assert len(inner.nominals) == 1
    np.testing.assert_array_equal(inner.nominals[0], plan)


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_set_nominal_is_a_no_op_without_a_warm_start(name: str) -> None:
    wrapper = WRAPPERS[name](NoWarmStart())
    wrapper.set_nominal(np.zeros((H, 2)))  # nothing to tell, nothing raised


def test_a_chain_of_every_wrapper_reaches_the_planner() -> None:
    inner = Recording()
    chain: Any = inner
    for name in sorted(WRAPPERS):
        chain = WRAPPERS[name](chain)
    plan = np.full((H, 2), -0.5)
    chain.set_nominal(plan)
    np.testing.assert_array_equal(inner.nominals[-1], plan)
    chain.reset(3)
    assert inner.seeds == [3]


def test_the_guard_warm_starts_through_dropped_planning() -> None:
    """The guard's fallback reaches a planner wrapped in fault injection (the evaluation chain)."""
    inner = Recording(failing_steps=(1,))
    dropping = DroppedPlanning(inner, 0.0, np.random.default_rng(0), FaultLog())
    guard = SafetyGuard(dropping, MODEL, velocity_dims=(2, 3))
    guard.plan(np.zeros(4))
    executed = guard.plan(np.zeros(4))  # the planner fails: the guard falls back
    assert executed.fallback is not None
    assert len(inner.nominals) == 1
    np.testing.assert_array_equal(inner.nominals[0], executed.actions)
