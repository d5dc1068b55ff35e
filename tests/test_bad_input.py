"""Bad input gets an error that names the problem and the fix; inside the loop, a fallback."""

from __future__ import annotations

import warnings

import numba as nb
import numpy as np
import pytest

from cost import ControlEffort, CostSum, StageCost, StateTracking, Term
from dynamics import PointMass2D
from imle_mpc.cli import main
from imle_mpc.core.model import StepDynamics
from imle_mpc.learn.demos import DatasetError, DemoDataset, Episode
from imle_mpc.loop.plant import DynamicsEnv, EnvRobot
from imle_mpc.loop.runner import LoopConfig, run_closed_loop
from planners import PredictiveSampling, PredictiveSamplingConfig
from planners.safety.guard import SafetyGuard

MODEL = PointMass2D(dt=0.1)


def _episode(n: int = 5) -> Episode:
    return Episode(np.zeros((n, 4)), np.zeros((n, 4)), np.zeros((n, 2)))


def test_empty_and_malformed_datasets_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatasetError, match="at least one episode"):
        DemoDataset(())
    with pytest.raises(DatasetError, match="at least one step"):
        _episode(0)
    with pytest.raises(DatasetError, match="NaN/inf"):
        Episode(np.full((3, 4), np.nan), np.zeros((3, 4)), np.zeros((3, 2)))
    with pytest.raises(DatasetError, match="all must match"):
        DemoDataset((_episode(), Episode(np.zeros((5, 3)), np.zeros((5, 4)), np.zeros((5, 2)))))
    bad = tmp_path / "bad.npz"
    np.savez(bad, observations=np.zeros((4, 4)))
    with pytest.raises(DatasetError, match="lacks the arrays"):
        DemoDataset.load(bad)
    good = DemoDataset((_episode(), _episode())).save(tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DatasetError, match="truncated"):
        DemoDataset.load(truncated)
    with pytest.raises(DatasetError, match="no demonstration file"):
        DemoDataset.load(tmp_path / "missing.npz")


def test_cli_reports_a_missing_dataset_without_a_traceback(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["train", "--data", str(tmp_path / "nope.npz"), "--out", str(tmp_path / "g")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("imle-mpc: error: no demonstration file") and "Traceback" not in err


def test_cost_for_another_state_size_is_refused_at_construction() -> None:
    cost = CostSum(Term("goal", StateTracking([1.0, 0.0])))  # a 2-D target for a 4-D state
    with pytest.raises(ValueError, match="nx=4"):
        PredictiveSampling(MODEL, cost, PredictiveSamplingConfig(num_samples=8, horizon=4))


def test_wrong_shaped_actions_are_refused_by_the_model() -> None:
    with pytest.raises(ValueError, match=r"U\[None\]"):
        MODEL.rollout(np.zeros(4), np.zeros((5, 2)))


def test_nan_cost_inside_the_loop_falls_back_and_the_loop_goes_on() -> None:
    calls = {"n": 0}

    def flaky(X: np.ndarray, U: np.ndarray) -> np.ndarray:
        out = np.zeros(X.shape[0])
        if X.shape[0] != 16:  # the planner re-scoring its chosen plan alone
            return out
        calls["n"] += 1
        if 4 <= calls["n"] <= 6:  # a sensor glitch poisons three planning steps
            out[:] = np.nan
        return out

    cost = CostSum(
        Term("goal", StateTracking([2.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.1, 0.1])),
        Term("flaky", flaky),
        Term("effort", ControlEffort(), 0.01),
    )
    planner = PredictiveSampling(MODEL, cost, PredictiveSamplingConfig(num_samples=16, horizon=8))
    calls["n"] = 0  # construction ran the cost once (warm-up)
    guard = SafetyGuard(planner, MODEL, velocity_dims=(2, 3))
    robot = EnvRobot(DynamicsEnv(MODEL, np.zeros(4)), seed=0)
    record = run_closed_loop(robot, guard, LoopConfig(steps=12, control_period=0.1))
    assert record.steps == 12
    assert np.all(np.isfinite(record.actions))
    poisoned = [i for i, f in enumerate(record.fallbacks) if f]
    assert poisoned == [3, 4, 5]
    assert all("no feasible sample" in record.fallbacks[i] for i in poisoned)


# --- messages: what was wrong and what to write instead -----------------------------------


@nb.njit
def _stage_wrong_signature(x, p):  # pragma: no cover - compiled
    return 0.0


@nb.njit
def _stage_returns_an_array(x, u, t, p):  # pragma: no cover - compiled
    return x


@nb.njit
def _batch_cost_with_a_typing_bug(X, U):  # pragma: no cover - compiled
    return X + "oops"


@pytest.mark.parametrize("stage", [_stage_wrong_signature, _stage_returns_an_array])
def test_a_user_stage_cost_of_the_wrong_kind_is_a_short_type_error(stage) -> None:  # type: ignore[no-untyped-def]
    cost = CostSum(Term("mine", StageCost(stage)))
    config = PredictiveSamplingConfig(num_samples=8, horizon=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(
            TypeError, match=r"StageCost expects @njit stage\(x Shape=\(nx,\)"
        ) as exc:
            PredictiveSampling(MODEL, cost, config)
    message = str(exc.value)
    assert len(message) < 700 and "Numba could not compile it" in message
    assert exc.value.__cause__ is None and exc.value.__suppress_context__  # no typing dump
    # The fused path failed first; the generic one failed too, so no "using the generic
    # path" warning: the error is the cost's, not the fusion's.
    assert not [w for w in caught if "fused" in str(w.message)]


def test_a_plain_python_stage_function_says_to_decorate_it() -> None:
    with pytest.raises(TypeError, match=r"decorate it with @numba.njit"):
        StageCost(lambda x, u, t, p: 0.0)


def test_an_njit_batch_cost_that_numba_cannot_type_names_the_term() -> None:
    X, U = np.zeros((3, 5, 4)), np.zeros((3, 4, 2))
    with pytest.raises(TypeError, match=r"cost term 'mine' must be fn\(X Shape=\(K, H\+1, nx\)"):
        CostSum(Term("mine", _batch_cost_with_a_typing_bug)).evaluate(X, U)


def test_cost_sum_of_a_bare_function_says_how_to_wrap_it() -> None:
    def mine(X: np.ndarray, U: np.ndarray) -> np.ndarray:
        return X[:, -1, 0]

    with pytest.raises(TypeError, match=r'got function\. Wrap it: CostSum\(Term\("mine", fn\)\)'):
        CostSum(mine)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got int"):
        CostSum(Term("a", mine), 3)  # type: ignore[arg-type]


@nb.njit
def _integrator(x, u, p, out):  # pragma: no cover - compiled
    out[0] = x[0] + p[0] * u[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dt": np.inf}, r"StepDynamics.dt \(seconds per step\) must be a finite number > 0"),
        ({"dt": np.nan}, "must be a finite number > 0"),
        ({"nx": 3.5}, "StepDynamics.nx must be an integer >= 1, got 3.5"),
        ({"nu": 1.0}, "StepDynamics.nu must be an integer >= 1, got 1.0"),
    ],
)
def test_step_dynamics_does_not_coerce(kwargs: dict, match: str) -> None:
    args = {"params": [0.1], "nx": 1, "nu": 1, "dt": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        StepDynamics(_integrator, **args)


def test_delays_and_periods_are_not_coerced() -> None:
    from imle_mpc.loop.faults import FaultConfig

    planner = PredictiveSampling(MODEL, _cost(), PredictiveSamplingConfig(num_samples=8, horizon=4))
    with pytest.raises(
        ValueError,
        match=r"SafetyGuard.action_delay \(control steps\) must be an integer >= 0, got 2.5",
    ):
        SafetyGuard(planner, MODEL, action_delay=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"action_delay must be an integer >= 0, got 2\.5"):
        FaultConfig(action_delay=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"LoopConfig.control_period \(seconds\) must be a finite"):
        LoopConfig(steps=3, control_period=np.inf)


def _cost() -> CostSum:
    return CostSum(Term("goal", StateTracking([1.0, 0.0, 0.0, 0.0])))


@pytest.mark.parametrize("state", ["abc", [1.0, "a", 0.0, 0.0], 1j, object(), {"x": 1}])
def test_the_guard_treats_a_non_numeric_state_as_an_invalid_measurement(state: object) -> None:
    planner = PredictiveSampling(MODEL, _cost(), PredictiveSamplingConfig(num_samples=8, horizon=4))
    guard = SafetyGuard(planner, MODEL)
    result = guard.plan(state)  # type: ignore[arg-type]
    assert result.fallback and "stale state" in result.fallback
    assert np.all(np.isfinite(result.action))
    assert np.all(result.action >= MODEL.action_low) and np.all(result.action <= MODEL.action_high)
