"""The planners' fused fast path against their generic path, and what picks between them."""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path

import numba as nb
import numpy as np
import pytest

from cost import (
    ControlEffort,
    CostSum,
    ObstacleConstraint,
    ObstacleProximity,
    Scene,
    StateBox,
    StateTracking,
    Term,
    TerminalState,
)
from dynamics import Pendulum, PointMass2D
from imle_mpc.core.kernels import FusedKernels
from planners import (
    CEM,
    MPPI,
    CEMConfig,
    MPPIConfig,
    PredictiveSampling,
    PredictiveSamplingConfig,
)

REPO = Path(__file__).resolve().parents[2]
JIT = not nb.config.DISABLE_JIT


def pendulum_cost() -> CostSum:
    return CostSum(
        Term("upright", StateTracking([0.0, 0.0], [1.0, 0.1], angle_dims=[0])),
        Term("effort", ControlEffort(), 0.001),
    )


def navigation() -> tuple[PointMass2D, CostSum, tuple[ObstacleConstraint, ...]]:
    scene = Scene(circles=[[0.3, 0.02, 0.2]])
    goal = [2.0, 0.0, 0.0, 0.0]
    cost = CostSum(
        Term("goal", StateTracking(goal, [1.0, 1.0, 0.05, 0.05])),
        Term("terminal", TerminalState(goal, [1.0, 1.0, 0.5, 0.5]), 10.0),
        Term("clearance", ObstacleProximity(scene, margin=0.3), 100.0),
        Term("swept", ObstacleProximity(scene, margin=0.2, swept=True), 50.0),  # reads X[t]
        Term("effort", ControlEffort(), 0.01),
    )
    return PointMass2D(), cost, (ObstacleConstraint(scene, margin=0.05),)


PLANNERS = {
    "mppi": (MPPI, MPPIConfig(num_samples=64, horizon=12, temperature=0.5, seed=3)),
    "predictive_sampling": (
        PredictiveSampling,
        PredictiveSamplingConfig(num_samples=64, horizon=12, seed=3),
    ),
    "cem": (CEM, CEMConfig(num_samples=64, horizon=12, iterations=3, num_elites=8, seed=3)),
}


def _closed_loop(planner, model, x0: np.ndarray, steps: int) -> list:
    results, x = [], x0
    for _ in range(steps):
        res = planner.plan(x)
        results.append(res)
        x = model.step(x, res.action)
    return results


def _assert_same_results(a: list, b: list) -> None:
    for ra, rb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ra.actions, rb.actions)
        np.testing.assert_array_equal(ra.predicted_states, rb.predicted_states)
        assert ra.best_index == rb.best_index and ra.num_feasible == rb.num_feasible
        assert ra.cost == pytest.approx(rb.cost, rel=1e-12)
        assert ra.term_costs.keys() == rb.term_costs.keys()
        for name in ra.term_costs:
            assert ra.term_costs[name] == pytest.approx(rb.term_costs[name], rel=1e-12)


@pytest.mark.parametrize("kind", sorted(PLANNERS))
def test_fused_path_equals_generic_path_pendulum(kind: str) -> None:
    cls, config = PLANNERS[kind]
    model = Pendulum()
    fused = cls(model, pendulum_cost(), config)
    generic = cls(model, pendulum_cost(), config, fused=False)
    assert fused.uses_fused_path and not generic.uses_fused_path
    x0 = np.array([math.pi - 0.1, 0.0])
    _assert_same_results(_closed_loop(fused, model, x0, 6), _closed_loop(generic, model, x0, 6))


@pytest.mark.parametrize("kind", ["mppi", "predictive_sampling"])
def test_fused_path_equals_generic_path_with_constraints(kind: str) -> None:
    cls, config = PLANNERS[kind]
    model, cost, constraints = navigation()
    fused = cls(model, cost, config, constraints)
    generic = cls(model, cost, config, constraints, fused=False)
    assert fused.uses_fused_path
    x0 = np.zeros(4)
    a, b = _closed_loop(fused, model, x0, 5), _closed_loop(generic, model, x0, 5)
    _assert_same_results(a, b)
    assert any(r.num_feasible < config.num_samples for r in a)  # the constraint bites


def test_plan_cost_is_the_sum_of_its_terms() -> None:
    planner = MPPI(Pendulum(), pendulum_cost(), PLANNERS["mppi"][1])
    res = planner.plan([2.0, 0.5])
    assert set(res.term_costs) == {"upright", "effort"}
    assert res.cost == pytest.approx(sum(res.term_costs.values()), rel=1e-12)
    # MPPI executes an average: its reported states are that plan's own rollout.
    np.testing.assert_array_equal(
        res.predicted_states, Pendulum().rollout([2.0, 0.5], res.actions[None])[0]
    )
    total, parts = pendulum_cost().evaluate(res.predicted_states[None], res.actions[None])
    assert res.cost == pytest.approx(float(total[0]), rel=1e-12)
    assert res.term_costs["effort"] == pytest.approx(float(parts["effort"][0]), rel=1e-12)


def test_same_seed_same_plans_and_reset_replays() -> None:
    config = MPPIConfig(num_samples=50, horizon=10, seed=11)
    a = MPPI(Pendulum(), pendulum_cost(), config)
    b = MPPI(Pendulum(), pendulum_cost(), config)
    x = np.array([1.0, -0.5])
    first = [a.plan(x).actions for _ in range(3)]
    np.testing.assert_array_equal(np.array(first), np.array([b.plan(x).actions for _ in range(3)]))
    a.reset()
    np.testing.assert_array_equal(np.array(first), np.array([a.plan(x).actions for _ in range(3)]))
    a.reset(12)
    assert not np.array_equal(first[0], a.plan(x).actions)


@pytest.mark.skipif(not JIT, reason="thread count only matters when compiled")
def test_plans_independent_of_thread_count() -> None:
    threads = nb.get_num_threads()
    config = MPPIConfig(num_samples=100, horizon=10, seed=5)
    x = np.array([math.pi, 0.0])
    try:
        nb.set_num_threads(1)
        one = [r.actions for r in _closed_loop(MPPI(Pendulum(), pendulum_cost(), config),
                                               Pendulum(), x, 3)]  # fmt: skip
        nb.set_num_threads(max(2, threads))
        two = [r.actions for r in _closed_loop(MPPI(Pendulum(), pendulum_cost(), config),
                                               Pendulum(), x, 3)]  # fmt: skip
    finally:
        nb.set_num_threads(threads)
    np.testing.assert_array_equal(np.array(one), np.array(two))


class PythonPendulum:
    """The pendulum behind a plain Python ``rollout``: not a Numba step model."""

    def __init__(self) -> None:
        self._model = Pendulum()
        self.nx, self.nu, self.dt = 2, 1, self._model.dt
        self.action_low, self.action_high = self._model.action_low, self._model.action_high

    def rollout(self, x0, U, out=None):
        return self._model.rollout(x0, U, out)


def test_generic_path_when_model_or_cost_cannot_be_fused() -> None:
    config = MPPIConfig(num_samples=32, horizon=8)
    upright = StateTracking([0.0, 0.0], [1.0, 0.1], angle_dims=[0])
    plain = CostSum(Term("upright", lambda X, U: upright(X, U)))
    assert not MPPI(Pendulum(), plain, config).uses_fused_path
    assert not MPPI(PythonPendulum(), pendulum_cost(), config).uses_fused_path  # type: ignore[arg-type]
    assert not MPPI(Pendulum(), lambda X, U: upright(X, U), config).uses_fused_path
    # Same numbers either way.
    a = MPPI(Pendulum(), pendulum_cost(), config).plan([3.0, 0.0])
    b = MPPI(PythonPendulum(), pendulum_cost(), config).plan([3.0, 0.0])  # type: ignore[arg-type]
    np.testing.assert_array_equal(a.actions, b.actions)


def test_a_kernel_that_cannot_compile_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import planners.sampling as sampling

    def broken(*args: object) -> None:
        raise RuntimeError("cannot fuse")

    monkeypatch.setattr(
        sampling, "make_fused_kernels", lambda *a, **kw: FusedKernels(broken, broken)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        planner = MPPI(Pendulum(), pendulum_cost(), MPPIConfig(num_samples=16, horizon=5))
    assert not planner.uses_fused_path
    assert any("uses the generic path" in str(w.message) for w in caught)
    assert np.all(np.isfinite(planner.plan([3.0, 0.0]).actions))


def test_bench_torch_pendulum_matches_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark gives pytorch_mppi the same dynamics and cost as ours."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("pytorch_mppi")
    monkeypatch.syspath_prepend(str(REPO / "bench"))  # its shared module, bench/_machine.py
    spec = importlib.util.spec_from_file_location("planner_speed", REPO / "bench/planner_speed.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model = Pendulum()
    rng = np.random.default_rng(0)
    K, H = 16, 12
    x0 = np.array([2.5, -1.0])
    U = rng.uniform(-2.0, 2.0, (K, H, 1))
    X = model.rollout(x0, U)
    state = torch.tensor(np.tile(x0, (K, 1)))
    costs = torch.zeros(K, dtype=torch.float64)
    step = bench.TorchPendulum(model)
    for t in range(H):
        action = torch.tensor(U[:, t])
        state = step(state, action)
        costs += bench.torch_running_cost(state, action)
        np.testing.assert_allclose(state.numpy(), X[:, t + 1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(costs.numpy(), bench.our_cost()(X, U), rtol=1e-10)


@pytest.mark.skipif(not JIT, reason="counts Numba compilations")
def test_compilation_happens_in_the_constructor_never_on_the_first_step() -> None:
    """Protects: ``SamplingPlanner.warmup`` in the constructor (the first control step of
    a robot must not stall for the JIT). A step function defined here is new to Numba,
    so its kernels cannot come from an earlier test: the constructors compile them
    (numba:compile events > 0), the guarded first steps compile nothing. (The guard's
    own check and delay prediction used to compile on the first step: 80 events.)"""
    from numba.core import event

    from imle_mpc import StepDynamics
    from planners.safety.guard import SafetyGuard

    @nb.njit
    def drift(x, u, p, out):  # a fresh dispatcher per call of this test
        out[0] = x[0] + p[0] * (x[1] + u[0])
        out[1] = x[1] + p[0] * u[0]

    model = StepDynamics(drift, [0.1], nx=2, nu=1, dt=0.1, action_low=[-1.0], action_high=[1.0])
    cost = CostSum(Term("goal", StateTracking(np.array([1.0, 0.0]), [1.0, 0.1])))
    box = StateBox([-np.inf, -0.5], [np.inf, 0.5])
    # MPPI, CEM and predictive sampling are one SamplingPlanner: one of them stands for all.
    config = MPPIConfig(num_samples=32, horizon=8, seed=0)
    with event.install_recorder("numba:compile") as built:
        planner = SafetyGuard(MPPI(model, cost, config, [box]), model, [box], action_delay=1)
    with event.install_recorder("numba:compile") as stepped:
        for _ in range(3):
            planner.plan(np.array([0.0, 0.2]))
    assert len(built.buffer) > 0  # the recorder sees this model's compilations
    assert [data for _, data in stepped.buffer] == []
