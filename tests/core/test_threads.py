"""The planning thread policy: what a step runs with, and that the caller's settings return."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import torch

from cost import ControlEffort, CostSum, FunctionConstraint, Term
from dynamics import PointMass2D
from imle_mpc.core.threads import ThreadPolicy
from planners import MPPI, MPPIConfig
from planners.safety.guard import GuardConfig, SafetyGuard

needs_two = pytest.mark.skipif(
    numba.config.NUMBA_NUM_THREADS < 2, reason="one Numba thread only: nothing to restrict"
)


def _planner(policy: ThreadPolicy, seen: list[tuple[int, int]]) -> MPPI:
    def record_threads(X: np.ndarray, U: np.ndarray) -> np.ndarray:
        seen.append((numba.get_num_threads(), torch.get_num_threads()))
        return np.zeros(X.shape[0])

    return MPPI(
        PointMass2D(),
        CostSum(Term("effort", ControlEffort())),
        MPPIConfig(num_samples=16, horizon=5, threads=policy),
        constraints=[FunctionConstraint("spy", record_threads)],
    )


@needs_two
def test_a_step_runs_on_one_thread_each_and_gives_the_threads_back() -> None:
    numba.set_num_threads(2)
    torch.set_num_threads(2)
    seen: list[tuple[int, int]] = []
    planner = _planner(ThreadPolicy(), seen)
    seen.clear()  # the constructor's warm-up
    planner.plan(np.zeros(4))
    assert seen and set(seen) == {(1, 1)}
    assert (numba.get_num_threads(), torch.get_num_threads()) == (2, 2)


@needs_two
def test_the_guard_keeps_its_checks_on_its_policy_too() -> None:
    numba.set_num_threads(2)
    seen: list[tuple[int, int]] = []
    planner = _planner(ThreadPolicy(numba=None, torch=None), seen)  # the planner leaves it
    guard = SafetyGuard(planner, PointMass2D(), planner.constraints, GuardConfig())
    seen.clear()
    guard.plan(np.zeros(4))  # the planner's check and the guard's check of the plan
    assert seen and all(threads == (1, 1) for threads in seen)
    assert numba.get_num_threads() == 2


@needs_two
def test_policy_none_leaves_the_callers_settings() -> None:
    numba.set_num_threads(2)
    torch.set_num_threads(2)
    seen: list[tuple[int, int]] = []
    planner = _planner(ThreadPolicy(numba=None, torch=None), seen)
    seen.clear()
    planner.plan(np.zeros(4))
    assert seen and set(seen) == {(2, 2)}


def test_restored_after_an_error() -> None:
    before = numba.get_num_threads()
    with pytest.raises(RuntimeError), ThreadPolicy(numba=1).scope():
        raise RuntimeError("planner failed")
    assert numba.get_num_threads() == before


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="int >= 1 or None"):
        ThreadPolicy(numba=value)  # type: ignore[arg-type]
