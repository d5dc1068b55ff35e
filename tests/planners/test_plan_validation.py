"""A non-finite warm start or actuator bound is refused where it enters the planner, not
turned into NaN actions that nothing reports until ``reset()``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from cost import ControlEffort, CostSum, StateTracking, Term
from dynamics import PointMass2D
from planners import CEM, MPPI, CEMConfig, MPPIConfig, PredictiveSampling, PredictiveSamplingConfig
from planners.samplers import GaussianSampler

MODEL = PointMass2D(dt=0.1, max_force=2.0)
H = 5
COST = CostSum(
    Term("goal", StateTracking([1.0, 0.0, 0.0, 0.0])), Term("effort", ControlEffort(), 0.01)
)
PLANNERS = {
    "mppi": lambda **kw: MPPI(MODEL, COST, MPPIConfig(num_samples=8, horizon=H), **kw),
    "cem": lambda **kw: CEM(MODEL, COST, CEMConfig(num_samples=8, horizon=H, num_elites=2), **kw),
    "ps": lambda **kw: PredictiveSampling(
        MODEL, COST, PredictiveSamplingConfig(num_samples=8, horizon=H), **kw
    ),
}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("kind", sorted(PLANNERS))
def test_set_nominal_refuses_a_non_finite_entry_and_names_it(kind: str, bad: float) -> None:
    planner = PLANNERS[kind]()
    plan = np.zeros((H, 2))
    plan[3, 1] = bad
    with pytest.raises(
        ValueError, match=r"plan contains NaN/inf at \(step, action\) entries \[\(3, 1\)\]"
    ):
        planner.set_nominal(plan)
    result = planner.plan(np.zeros(4))  # the planner is unharmed
    assert np.all(np.isfinite(result.actions))


@pytest.mark.parametrize("kind", sorted(PLANNERS))
def test_initial_plan_refuses_a_non_finite_entry(kind: str) -> None:
    plan = np.zeros((H, 2))
    plan[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"initial_plan contains NaN/inf .*\[\(0, 0\)\]"):
        PLANNERS[kind](initial_plan=plan)


def test_a_finite_nominal_is_still_clipped_and_used() -> None:
    planner = PLANNERS["ps"]()
    planner.set_nominal(np.full((H, 2), 5.0))
    np.testing.assert_array_equal(planner.nominal, np.full((H, 2), 2.0))


@dataclass
class _NaNBounds:
    """A user model whose bounds are NaN (e.g. read from a missing config entry)."""

    nx: int = 4
    nu: int = 2
    dt: float = 0.1

    @property
    def action_low(self) -> np.ndarray:
        return np.array([-1.0, np.nan])

    @property
    def action_high(self) -> np.ndarray:
        return np.ones(2)

    def rollout(self, x0, U, out=None):  # type: ignore[no-untyped-def]
        return MODEL.rollout(x0, U, out)


def test_planner_and_sampler_refuse_nan_bounds_of_any_model() -> None:
    with pytest.raises(ValueError, match="action bounds: low is NaN at indices \\[1\\]"):
        MPPI(_NaNBounds(), COST, MPPIConfig(num_samples=8, horizon=H))
    with pytest.raises(ValueError, match="GaussianSampler action bounds: high is NaN"):
        GaussianSampler(0.5, H, 2, np.full(2, -1.0), np.array([1.0, np.nan]))
