"""Property tests at the public boundary: whatever comes in, either a clear ValueError /
TypeError (or CheckpointError, exit 2) or a sound result; never a crash, NaN or traceback."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from cost import ControlEffort, CostSum, ObstacleProximity, Scene, StateBox, StateTracking, Term
from dynamics import PointMass2D
from imle_mpc.core.validation import check_bounds
from planners import PredictiveSampling, PredictiveSamplingConfig
from planners.safety.guard import SafetyGuard

MODEL = PointMass2D(dt=0.1, max_force=2.0)
H = 6
SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
any_array = arrays(np.float64, array_shapes(min_dims=0, max_dims=3, max_side=5), elements=any_float)
junk = st.one_of(
    any_array,
    st.text(max_size=5),
    st.lists(st.one_of(any_float, st.text(max_size=2), st.none()), max_size=5),
    st.none(),
    st.complex_numbers(),
)


@pytest.fixture(scope="module")
def planner() -> PredictiveSampling:
    cost = CostSum(
        Term("goal", StateTracking([1.0, 0.0, 0.0, 0.0])), Term("effort", ControlEffort(), 0.01)
    )
    return PredictiveSampling(MODEL, cost, PredictiveSamplingConfig(num_samples=8, horizon=H))


# --- states --------------------------------------------------------------------------------


@SETTINGS
@given(junk)
def test_planner_plan_takes_a_state_or_says_why_not(planner, state) -> None:  # type: ignore[no-untyped-def]
    planner.reset(0)
    try:
        result = planner.plan(state)
    except (ValueError, TypeError) as err:
        assert str(err)
        return
    assert np.all(np.isfinite(result.actions))
    assert np.all(np.abs(result.actions) <= MODEL.max_force)


@SETTINGS
@given(junk)
def test_guard_plan_never_raises_and_sends_a_finite_action_in_the_box(planner, state) -> None:  # type: ignore[no-untyped-def]
    guard = SafetyGuard(planner, MODEL)
    result = guard.plan(state)
    assert result.action.shape == (2,)
    assert np.all(np.isfinite(result.action))
    assert np.all(np.abs(result.action) <= MODEL.max_force)


# --- plans ---------------------------------------------------------------------------------


@SETTINGS
@given(arrays(np.float64, st.sampled_from([(H, 2), (H, 1), (H + 1, 2), (2,)]), elements=any_float))
def test_set_nominal_accepts_finite_plans_and_names_bad_ones(planner, plan) -> None:  # type: ignore[no-untyped-def]
    planner.reset(0)
    if plan.shape == (H, 2) and np.all(np.isfinite(plan)):
        planner.set_nominal(plan)
        assert np.all(np.abs(planner.nominal) <= MODEL.max_force)
        assert np.all(np.isfinite(planner.plan(np.zeros(4)).actions))
    else:
        with pytest.raises(ValueError, match=r"Shape=|NaN/inf at \(step, action\)"):
            planner.set_nominal(plan)


# --- bounds --------------------------------------------------------------------------------


@SETTINGS
@given(arrays(np.float64, 3, elements=any_float), arrays(np.float64, 3, elements=any_float))
def test_bounds_are_a_real_box_or_refused(low, high) -> None:  # type: ignore[no-untyped-def]
    try:
        lo, hi = check_bounds("bounds", low, high, 3)
    except ValueError as err:
        assert "bounds" in str(err)
        return
    assert not np.any(np.isnan(lo) | np.isnan(hi))
    assert np.all(lo <= hi) and np.all(lo < np.inf) and np.all(hi > -np.inf)


# --- costs and constraints -----------------------------------------------------------------


@SETTINGS
@given(
    arrays(np.float64, 4, elements=any_float),
    st.one_of(any_float, arrays(np.float64, 4, elements=any_float)),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_cost_terms_with_bad_parameters_are_refused_when_built(target, weights, margin) -> None:  # type: ignore[no-untyped-def]
    X, U = np.random.default_rng(0).normal(size=(3, 5, 4)), np.zeros((3, 4, 2))
    try:
        term = StateTracking(target, weights)
    except ValueError:
        pass
    else:
        value = term(X, U)  # a huge target can overflow to inf (unaffordable), never NaN
        assert not np.any(np.isnan(value)) and np.all(value >= 0)
    try:
        proximity = ObstacleProximity(Scene(circles=[[0.0, 0.0, 0.5]]), margin=margin)
    except ValueError:
        assert not (np.isfinite(margin) and margin >= 0)
    else:
        value = proximity(X, U)
        assert not np.any(np.isnan(value)) and np.all(value >= 0)


@SETTINGS
@given(arrays(np.float64, 4, elements=any_float), arrays(np.float64, 4, elements=any_float))
def test_constraints_with_bad_limits_are_refused_when_built(low, high) -> None:  # type: ignore[no-untyped-def]
    X, U = np.random.default_rng(1).normal(size=(3, 5, 4)), np.zeros((3, 4, 2))
    try:
        box = StateBox(low, high)
    except ValueError:
        return
    v = box.violation(X, U)
    assert v.shape == (3,) and np.all(v >= 0) and not np.any(np.isnan(v))


# --- checkpoints ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    pytest.importorskip("torch")
    from imle_mpc.learn.imle import GeneratorConfig, IMLEGenerator, save_generator

    config = GeneratorConfig(horizon=4, action_horizon=2, obs_horizon=1, mlp_hidden=(8,))
    gen = IMLEGenerator.untrained(config, obs_dim=2, nu=1, seed=0)
    return save_generator(gen, tmp_path_factory.mktemp("ckpt") / "g.safetensors").read_bytes()


# A flipped byte in the version field loads with the library's version warning: expected.
@pytest.mark.filterwarnings("ignore:.*was written by imle_mpc:UserWarning")
@SETTINGS
@given(st.data())
def test_a_corrupted_checkpoint_is_refused_or_loads_finite(
    checkpoint, tmp_path_factory, data
) -> None:  # type: ignore[no-untyped-def]
    import torch

    from imle_mpc.learn.imle import CheckpointError, load_generator

    raw = bytearray(checkpoint)
    how = data.draw(st.sampled_from(["truncate", "flip", "nan"]))
    if how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] ^= data.draw(st.integers(1, 255))
    else:  # one float32 weight in the data section set to NaN
        header = 8 + int.from_bytes(raw[:8], "little")
        i = data.draw(st.integers(0, (len(raw) - header) // 4 - 1))
        raw[header + 4 * i : header + 4 * i + 4] = np.float32(np.nan).tobytes()
    path = Path(tmp_path_factory.mktemp("bad")) / "g.safetensors"
    path.write_bytes(bytes(raw))
    try:
        gen = load_generator(path)
    except CheckpointError as err:
        assert str(path) in str(err)
        return
    assert how == "flip"  # a flipped byte may land where it changes nothing that matters
    assert all(bool(torch.isfinite(t).all()) for t in gen.network.state_dict().values())


# --- CLI options ---------------------------------------------------------------------------

NUMERIC = [
    ("run", ["point_mass"], "--samples"),
    ("run", ["point_mass"], "--seed"),
    ("run", ["point_mass"], "--episodes"),
    ("eval", [], "--fault-scale"),
    ("eval", [], "--workers"),
    ("sweep", [], "--fault-scales"),
    ("train", [], "--epochs"),
    ("train", [], "--lr"),
    ("train", [], "--epsilon"),
    ("train", [], "--threads"),
    ("train", [], "--warmup"),
]
number_text = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "x", "1e400", "-0", "0x10", " 3"]),
)


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(NUMERIC), number_text)
def test_numeric_options_parse_or_exit_2(option, text) -> None:  # type: ignore[no-untyped-def]
    from imle_mpc.cli import build_parser

    sub, positional, name = option
    assume(not text.startswith("-") or text[1:2].isdigit() or text[1:2] in "0123456789.in")
    parser = build_parser()
    parser.exit_on_error = True
    try:
        args = parser.parse_args([sub, *positional, f"{name}={text}"])
    except SystemExit as exc:
        assert exc.code == 2
        return
    value = getattr(args, name.lstrip("-").replace("-", "_"))
    values = value if isinstance(value, list) else [value]
    assert all(np.isfinite(v) and v >= 0 for v in values)
    assert isinstance(parser, argparse.ArgumentParser)
