"""Bad input gets an error that names the problem and the fix; inside the loop, a fallback."""

from __future__ import annotations

import numpy as np
import pytest

from cost import ControlEffort, CostSum, StateTracking, Term
from dynamics import PointMass2D
from imle_mpc.cli import main
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
