"""Model ensembles: seeded draws inside the ranges, parameter rows and MuJoCo copies that
roll out exactly as the scaled models do, and spec errors that say what to fix."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import pytest

from dynamics import PointMass2D, TwoLinkArm
from dynamics.ensemble import AnalyticMembers, ModelEnsemble
from imle_mpc.core.errors import InputError
from imle_mpc.core.model import StepDynamics
from imle_mpc.core.protocols import MemberRollout, ParameterRows

RANGES = {"link2_mass": (0.8, 1.3), "damping": (0.5, 2.0)}


def test_draws_are_seeded_inside_the_ranges_and_member_0_is_the_nominal() -> None:
    spec = ModelEnsemble(RANGES, members=64, seed=7)
    f = spec.factors()
    assert f.shape == (64, 2)
    np.testing.assert_array_equal(f[0], [1.0, 1.0])
    for j, (low, high) in enumerate(RANGES.values()):
        assert np.all((f[1:, j] >= low) & (f[1:, j] <= high))
        # the draw fills its range (uniform), not a corner of it
        assert f[1:, j].max() - f[1:, j].min() > 0.8 * (high - low)
    np.testing.assert_array_equal(f, ModelEnsemble(RANGES, members=64, seed=7).factors())
    assert not np.array_equal(f, ModelEnsemble(RANGES, members=64, seed=8).factors())
    assert spec.scales()[3] == {n: float(v) for n, v in zip(spec.names, f[3], strict=True)}


def test_analytic_members_are_parameter_rows_that_roll_out_as_the_scaled_models(
    rng: np.random.Generator,
) -> None:
    arm = TwoLinkArm()
    members = ModelEnsemble(RANGES, members=5, seed=1).build(arm)
    assert isinstance(members, AnalyticMembers)
    assert isinstance(members, MemberRollout) and isinstance(members, ParameterRows)
    assert members.parameter_rows.shape == (5, arm.params_vector().size)
    U = rng.uniform(-5.0, 5.0, size=(19, 12, 2))  # 19: a partial block of 8
    x0 = np.array([-2.0, 0.3, 0.1, -0.2])
    out = np.empty((5, 19, 13, 4))
    members.rollout_members(x0, U, out)
    for m, scales in enumerate(members.scales):
        scaled = dataclasses.replace(arm, **{n: getattr(arm, n) * f for n, f in scales.items()})
        np.testing.assert_array_equal(out[m], scaled.rollout(x0, U))
    assert not np.array_equal(out[0], out[1])  # the members differ


def test_mujoco_members_are_model_copies_that_roll_out_as_the_scaled_models() -> None:
    from imle_mpc.tasks.push import push_block

    model: Any = push_block().dynamics
    spec = ModelEnsemble({"body_mass:block": (1.0, 2.0), "dof_damping:block": (1.0, 2.0)}, 3, 2)
    members = spec.build(model)
    assert isinstance(members, MemberRollout) and not isinstance(members, ParameterRows)
    x0 = np.array([-0.056, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # the pusher at the block
    U = np.zeros((4, 15, 2))
    U[:, :, 0] = np.linspace(0.1, 0.3, 4)[:, None]
    out = np.empty((3, 4, 16, 8))
    members.rollout_members(x0, U, out)
    for m, scales in enumerate(members.scales):
        np.testing.assert_array_equal(out[m], model.with_scaled_parameters(scales).rollout(x0, U))
    np.testing.assert_array_equal(out[0], model.rollout(x0, U))
    assert np.all(out[1:, :, -1, 2] < out[0, :, -1, 2])  # a heavier, damped block moves less


@pytest.mark.parametrize(
    ("kwargs", "fix"),
    [
        ({"ranges": RANGES, "members": 0}, "members must be >= 1"),
        ({"ranges": RANGES, "members": 2.5}, "members must be an int"),
        ({"ranges": {"mass": (1.2, 0.8)}}, "0 < low <= high"),
        ({"ranges": {"mass": (0.0, 1.2)}}, "0 < low <= high"),
        ({"ranges": {"mass": 1.2}}, "(low, high) pair"),
        ({"ranges": {}, "members": 3}, "give ranges"),
        ({"ranges": RANGES, "seed": -1}, "seed must be >= 0"),
    ],
)
def test_bad_specs_name_the_fix(kwargs: dict, fix: str) -> None:
    with pytest.raises(InputError, match=re.escape(fix)):
        ModelEnsemble(**kwargs)


def test_unknown_parameters_and_unrandomizable_models_name_the_fix() -> None:
    with pytest.raises(InputError, match=r"does not have.*name some of \['drag', 'mass'\]"):
        ModelEnsemble({"friction": (0.5, 1.5)}, 2).build(PointMass2D())
    with pytest.raises(InputError, match="does not have"):  # the control period is not physics
        ModelEnsemble({"dt": (0.5, 1.5)}, 2).build(PointMass2D())
    step = PointMass2D.step_function
    model = StepDynamics(step, [1.0, 0.5, 0.05], nx=4, nu=2, dt=0.05)
    with pytest.raises(InputError, match=r"AnalyticModel.*MemberModels"):
        ModelEnsemble({"mass": (0.5, 1.5)}, 2).build(model)
    from imle_mpc.tasks.push import push_block

    with pytest.raises(InputError, match="no body named 'brick'"):
        ModelEnsemble({"body_mass:brick": (0.5, 1.5)}, 2).build(push_block().dynamics)


def test_an_ensemble_covering_a_stated_mismatch_spans_it_both_ways() -> None:
    spec = ModelEnsemble.covering({"link2_mass": 1.25, "damping": 0.8}, members=3, seed=2)
    assert spec.ranges == {"link2_mass": (0.8, 1.25), "damping": (0.8, 1.25)}
    with pytest.raises(InputError, match="give the ensemble's ranges yourself"):
        ModelEnsemble.covering({}, members=3)
