"""Risk-aware scoring over a model ensemble: the measures, the planner's aggregate against
an independent per-member reference, feasibility on every member, the one-model case."""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np
import pytest

from cost import CostSum, StateBox, StateTracking, Term
from dynamics import PointMass2D
from dynamics.ensemble import ModelEnsemble
from imle_mpc.core.errors import InputError
from imle_mpc.eval.factory import make_planner
from imle_mpc.tasks.arm import arm_reach_around
from imle_mpc.tasks.push import push_block
from planners import (
    ArgminSelector,
    MPPIConfig,
    PredictiveSamplingConfig,
    SamplingConfig,
    SamplingPlanner,
)
from planners.risk import RiskMeasure, RiskScoring

ARM_RANGES = {"link2_mass": (0.8, 1.3), "damping": (0.5, 2.0)}
PUSH_RANGES = {"body_mass:block": (1.0, 2.0), "dof_damping:block": (1.0, 1.6)}


def _cvar_reference(costs: np.ndarray, alpha: float) -> np.ndarray:
    """Mean of the worst ceil(alpha M) members, by sorting each column."""
    n = math.ceil(round(alpha * costs.shape[0], 9))
    return np.sort(costs, axis=0)[-n:].mean(axis=0)


def test_cvar_is_the_mean_at_alpha_1_and_the_worst_case_as_alpha_goes_to_0(
    rng: np.random.Generator,
) -> None:
    costs = rng.uniform(0.0, 10.0, size=(10, 50))
    mean, worst = costs.mean(axis=0), costs.max(axis=0)
    np.testing.assert_array_equal(RiskMeasure.cvar(1.0).aggregate(costs), mean)
    np.testing.assert_array_equal(RiskMeasure("mean").aggregate(costs), mean)
    for alpha in (0.1, 0.05, 1e-6):
        np.testing.assert_array_equal(RiskMeasure.cvar(alpha).aggregate(costs), worst)
    np.testing.assert_array_equal(RiskMeasure("worst").aggregate(costs), worst)
    for alpha in (0.2, 0.3, 0.5, 0.75, 0.95):  # 0.3 * 10 is 3.0000000000000004: 3 members
        np.testing.assert_allclose(
            RiskMeasure.cvar(alpha).aggregate(costs), _cvar_reference(costs, alpha), rtol=1e-14
        )
    assert RiskMeasure.cvar(0.3).tail(10) == 3
    # monotone in alpha: a smaller tail is never cheaper
    tails = [RiskMeasure.cvar(a).aggregate(costs) for a in (1.0, 0.6, 0.3, 0.1)]
    assert all(np.all(a <= b) for a, b in itertools.pairwise(tails))
    inf = costs.copy()
    inf[4, 7] = np.inf
    assert RiskMeasure.cvar(0.5).aggregate(inf)[7] == np.inf


def _planner(task: Any, config: PredictiveSamplingConfig, fused: bool = True) -> Any:
    from planners import PredictiveSampling

    return PredictiveSampling(task.dynamics, task.cost, config, task.constraints, fused=fused)


@pytest.mark.parametrize("fused", [True, False])
def test_a_one_model_ensemble_reproduces_the_planner_exactly_arm(fused: bool) -> None:
    task = arm_reach_around()
    common: dict[str, Any] = {
        "num_samples": 48,
        "horizon": 16,
        "noise_sigma": (8.0, 3.0),
        "seed": 3,
    }
    plain = _planner(task, PredictiveSamplingConfig(**common), fused)
    one = _planner(
        task,
        PredictiveSamplingConfig(**common, risk=RiskScoring(ModelEnsemble(members=1))),
        fused,
    )
    assert plain.uses_fused_path is fused and one.uses_fused_path is fused
    x = task.initial_state
    for _ in range(3):
        a, b = plain.plan(x), one.plan(x)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.predicted_states, b.predicted_states)
        assert a.cost == b.cost and a.term_costs == b.term_costs
        assert a.num_feasible == b.num_feasible
        x = a.predicted_states[1]


def test_a_one_model_ensemble_reproduces_imle_mpc_and_mppi_exactly() -> None:
    """IMLE-MPC (generator proposals, the generic path) on the arm, MPPI (a plan that is an
    average, re-scored on its own) on the MuJoCo pushing task."""
    one = RiskScoring(ModelEnsemble(members=1))
    for kind, task, n in (("imle_mpc", arm_reach_around(), None), ("mppi", push_block(), 32)):
        plain = make_planner(kind, task, seed=5, num_samples=n)
        ens = make_planner(kind, task, seed=5, num_samples=n, risk=one)
        x = task.initial_state
        for _ in range(3):
            a, b = plain.plan(x), ens.plan(x)
            np.testing.assert_array_equal(a.actions, b.actions)
            assert a.cost == b.cost
            x = a.predicted_states[1]


@pytest.mark.parametrize(
    ("which", "fused", "measure"),
    [
        ("arm", True, RiskMeasure.cvar(0.5)),
        ("arm", False, RiskMeasure("worst")),
        ("push", False, RiskMeasure.cvar(0.34)),
    ],
)
def test_the_aggregate_is_the_risk_of_each_members_own_cost(
    which: str, fused: bool, measure: RiskMeasure
) -> None:
    """Each sample's cost equals an independent reference: the sample rolled out on each
    member's own scaled model, costed, rejected where a constraint fails, aggregated."""
    task = arm_reach_around() if which == "arm" else push_block()
    ranges = ARM_RANGES if which == "arm" else PUSH_RANGES
    risk = RiskScoring(ModelEnsemble(ranges, members=3, seed=4), measure)
    # The arm falls onto the post (below its shoulder) in a 16-step plan without torque.
    sigma, horizon = ((8.0, 3.0), 6) if which == "arm" else (0.15, task.hints.horizon)
    config = PredictiveSamplingConfig(
        num_samples=24, horizon=horizon, noise_sigma=sigma, seed=1,
        record_samples=True, risk=risk,
    )  # fmt: skip
    planner = _planner(task, config, fused)
    assert planner.uses_fused_path is fused
    x = task.initial_state
    result = planner.plan(x)
    assert result.samples is not None
    U, costs = result.samples
    per_member = []
    for scales in risk.ensemble.scales():
        model: Any = task.dynamics
        if which == "arm":
            changes = {n: getattr(model, n) * f for n, f in scales.items()}
            model = dataclasses.replace(model, **changes)
        else:
            model = model.with_scaled_parameters(scales)
        X = model.rollout(x, U)
        c, _ = task.cost.evaluate(X, U)
        for constraint in task.constraints:
            c[constraint.violation(X, U) > 0] = np.inf
        per_member.append(c)
    reference = measure.aggregate(np.array(per_member))
    assert np.isfinite(reference).sum() >= 2  # a test with something to compare
    np.testing.assert_allclose(costs, reference, rtol=1e-12)
    assert result.num_feasible == np.isfinite(reference).sum()


class FixedProposals:
    """A sampler whose K proposals are given rows (a ProposalSampler)."""

    def __init__(self, U: np.ndarray) -> None:
        self.U = U

    def propose(
        self, state: np.ndarray, nominal: np.ndarray, rng: np.random.Generator, out: np.ndarray
    ) -> np.ndarray:
        out[:] = self.U
        return out

    def update(self, U: np.ndarray, costs: np.ndarray) -> None:
        pass

    def start_step(self, state: np.ndarray) -> None:
        pass

    def reset(self) -> None:
        pass


def _wall_planner(risk: RiskScoring | None) -> SamplingPlanner:
    """A point mass pushed at constant force towards a wall at x = 1, goal beyond it at 2.

    Row 0 (force 1) ends at x = 0.55 on the nominal model, 1.1 on a member half as
    heavy: feasible on the nominal only. Row 1 (force 0.5) stays clear on both.
    """
    model = PointMass2D(drag=0.0, dt=0.1, max_force=3.0)
    U = np.zeros((2, 10, 2))
    U[0, :, 0], U[1, :, 0] = 1.0, 0.5
    cost = CostSum(Term("goal", StateTracking([2.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0])))
    wall = StateBox([-np.inf] * 4, [1.0, np.inf, np.inf, np.inf], name="wall")
    config = SamplingConfig(num_samples=2, horizon=10, risk=risk)
    return SamplingPlanner(model, cost, FixedProposals(U), ArgminSelector(), config, [wall])


@pytest.mark.parametrize("measure", [RiskMeasure("mean"), RiskMeasure("worst")])
def test_a_sample_feasible_on_the_nominal_but_not_on_one_member_is_rejected(
    measure: RiskMeasure,
) -> None:
    x0 = np.zeros(4)
    nominal = _wall_planner(None).plan(x0)
    assert nominal.best_index == 0 and nominal.num_feasible == 2  # closer to the goal
    light = ModelEnsemble({"mass": (0.5, 0.5)}, members=2)
    robust = _wall_planner(RiskScoring(light, measure)).plan(x0)
    assert robust.num_feasible == 1 and robust.best_index == 1
    np.testing.assert_array_equal(robust.actions[:, 0], 0.5)
    # the constraints need hold on half of the members only: row 0 is back
    half = _wall_planner(RiskScoring(light, measure, feasible_fraction=0.5)).plan(x0)
    assert half.num_feasible == 2 and half.best_index == 0


def test_bad_risk_specs_name_the_fix() -> None:
    with pytest.raises(InputError, match=r"alpha must be a fraction in \(0, 1\]"):
        RiskMeasure.cvar(0.0)
    with pytest.raises(InputError, match=r"alpha must be a fraction in \(0, 1\]"):
        RiskMeasure.cvar(1.5)
    with pytest.raises(InputError, match="one of"):
        RiskMeasure("var")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"use RiskMeasure\('cvar', 0.2\)"):
        RiskMeasure("worst", 0.2)
    with pytest.raises(InputError, match=r"cvar:0\.2"):
        RiskMeasure.parse("cvar:")
    with pytest.raises(InputError, match="use mean, worst or cvar:ALPHA"):
        RiskMeasure.parse("median")
    assert RiskMeasure.parse("cvar:0.25") == RiskMeasure.cvar(0.25)
    assert RiskMeasure.parse("worst") == RiskMeasure("worst")
    spec = ModelEnsemble({"mass": (0.5, 1.5)}, 2)
    with pytest.raises(InputError, match=r"feasible_fraction must be in \(0, 1\]"):
        RiskScoring(spec, feasible_fraction=0.0)
    with pytest.raises(InputError, match="must be a ModelEnsemble"):
        RiskScoring({"mass": (0.5, 1.5)})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"must be a planners\.risk\.RiskScoring"):
        MPPIConfig(risk="cvar:0.2")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="nothing to score over an ensemble"):
        make_planner("imle_policy", arm_reach_around(), risk=RiskScoring(spec))
