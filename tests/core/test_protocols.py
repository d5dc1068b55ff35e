"""Optional capabilities are declared protocols: the shipped classes have them, others do not."""

from __future__ import annotations

import numpy as np

from cost import CostSum, StateTracking, Term
from dynamics import PointMass2D
from imle_mpc.core.model import StepDynamics
from imle_mpc.core.protocols import (
    ChunkDecoder,
    ChunkSchedule,
    MultiStartRollout,
    NominalSettable,
    ReturnsSample,
    StepModel,
    UncheckedRollout,
    fast_rollout,
)
from imle_mpc.learn.imle import GeneratorConfig, IMLEGenerator
from planners import ArgminSelector, EliteMeanSelector, PredictiveSampling, SoftmaxSelector
from planners.classic import PredictiveSamplingConfig
from planners.imle import ModeAwareSelector

MODEL = PointMass2D(dt=0.1, max_force=2.0)


class PlainModel:
    """Only the ``Dynamics`` protocol: no capability at all."""

    nx, nu, dt = 4, 2, 0.1
    action_low, action_high = MODEL.action_low, MODEL.action_high

    def rollout(self, x0: np.ndarray, U: np.ndarray, out: None = None) -> np.ndarray:
        return MODEL.rollout(x0, U)


def test_numba_models_declare_their_fast_paths() -> None:
    user = StepDynamics(PointMass2D.step_function, [1.0, 0.5, 0.1], nx=4, nu=2, dt=0.1)
    for model in (MODEL, user):
        assert isinstance(model, UncheckedRollout)
        assert isinstance(model, MultiStartRollout)
        assert isinstance(model, StepModel)
        assert fast_rollout(model) == model.rollout_unchecked
    plain = PlainModel()
    for capability in (UncheckedRollout, MultiStartRollout, StepModel):
        assert not isinstance(plain, capability)
    assert fast_rollout(plain) == plain.rollout  # type: ignore[arg-type]


def test_selectors_declare_whether_the_plan_is_a_sample() -> None:
    assert isinstance(ArgminSelector(), ReturnsSample) and ArgminSelector.returns_sample
    averaging = [
        SoftmaxSelector(1.0),
        EliteMeanSelector(2),
        ModeAwareSelector(1.0, 2, 0.25, -np.ones(2), np.ones(2)),
    ]
    for selector in averaging:
        assert isinstance(selector, ReturnsSample) and not selector.returns_sample


def test_generators_and_planners_declare_theirs() -> None:
    config = GeneratorConfig(horizon=5, action_horizon=3)
    generator = IMLEGenerator.untrained(config, obs_dim=4, nu=2, seed=3)
    assert isinstance(generator, ChunkDecoder) and isinstance(generator, ChunkSchedule)
    assert generator.action_horizon == 3
    cost = CostSum(Term("goal", StateTracking(np.zeros(4), [1, 1, 0, 0])))
    planner = PredictiveSampling(
        MODEL, cost, PredictiveSamplingConfig(num_samples=8, horizon=4, noise_sigma=0.5)
    )
    assert isinstance(planner, NominalSettable)
    assert not isinstance(object(), NominalSettable)
