"""Spline knots as the sampling planners' control parameterization (``planners.knots``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.interpolate import CubicSpline, interp1d

from imle_mpc.eval.episodes import run_episode
from imle_mpc.tasks import make_task, wrap_angle
from planners import (
    CEM,
    MPPI,
    CEMConfig,
    MPPIConfig,
    PredictiveSampling,
    PredictiveSamplingConfig,
)
from planners.imle import IMLEMPCConfig, LatentPlanConfig
from planners.knots import INTERPOLATIONS, KnotSchedule

GOLDEN = Path(__file__).parent / "data" / "per_step_plans.npz"


def _reference(kind: str, times: np.ndarray, Z: np.ndarray, H: int) -> np.ndarray:
    """SciPy's interpolation of knots Z Shape=(M, nu) at the steps 0..H-1."""
    steps = np.arange(H)
    if kind == "zero":
        if Z.shape[0] == 1:
            return np.repeat(Z, H, axis=0)
        hold = interp1d(times, Z, kind="previous", axis=0, bounds_error=False,
                        fill_value=(Z[0], Z[-1]))  # fmt: skip
        return hold(steps)
    if kind == "linear":
        return interp1d(times, Z, kind="linear", axis=0)(steps)
    return CubicSpline(times, Z, bc_type="natural", axis=0)(steps)


@pytest.mark.parametrize("kind", INTERPOLATIONS)
@pytest.mark.parametrize(("H", "M"), [(30, 6), (30, 7), (16, 2), (16, 3), (40, 9)])
def test_expansion_equals_scipy(kind: str, H: int, M: int, rng: np.random.Generator) -> None:
    """Protects: the knot basis and its kernel, against scipy (interp1d previous / linear,
    CubicSpline with the natural boundary condition), batched and for one plan."""
    knots = KnotSchedule(M, H, kind)  # type: ignore[arg-type]
    Z = rng.uniform(-1.0, 1.0, (5, M, 2))
    wide = np.full(2, 1e9)  # no clipping
    U = knots.expand(Z, -wide, wide, np.zeros((5, H, 2)))
    for k in range(5):
        np.testing.assert_allclose(U[k], _reference(kind, knots.times, Z[k], H), atol=1e-12)
    one = knots.expand_plan(Z[0], -wide, wide, np.zeros((H, 2)))
    np.testing.assert_array_equal(one, U[0])  # the same arithmetic as the batch kernel
    # The least-squares fit inverts the expansion of any knots.
    np.testing.assert_allclose(knots.fit(U[1], np.zeros((M, 2))), Z[1], atol=1e-10)


def test_zero_order_hold_of_one_knot_and_the_clipped_cubic() -> None:
    """A single held knot is a constant plan; a cubic that overshoots the box is clipped."""
    held = KnotSchedule(1, 12, "zero")
    plan = held.expand_plan(np.array([[0.7]]), np.array([-1.0]), np.array([1.0]), np.zeros((12, 1)))
    np.testing.assert_array_equal(plan, np.full((12, 1), 0.7))
    cubic = KnotSchedule(4, 30, "cubic")
    Z = np.array([[-1.0], [1.0], [1.0], [-1.0]])  # the spline overshoots 1 between knots
    free = cubic.basis @ Z
    assert free.max() > 1.2
    clipped = cubic.expand_plan(Z, np.array([-1.0]), np.array([1.0]), np.zeros((30, 1)))
    np.testing.assert_allclose(clipped, np.clip(free, -1.0, 1.0), atol=1e-14)
    assert clipped.max() == 1.0


def _per_step_plans(knots: int | None = None) -> dict[str, np.ndarray]:
    """Three control steps of MPPI, CEM and PS on the pendulum, both paths (see the file)."""
    task = make_task("pendulum")
    out = {}
    for name, cls, cfg in [
        ("mppi", MPPI, MPPIConfig(num_samples=64, horizon=20, temperature=0.1, seed=3,
                                  knots=knots)),
        ("cem", CEM, CEMConfig(num_samples=64, horizon=20, num_elites=8, iterations=2, seed=3,
                               knots=knots)),
        ("ps", PredictiveSampling, PredictiveSamplingConfig(num_samples=64, horizon=20, seed=3,
                                                            knots=knots)),
    ]:  # fmt: skip
        for fused in (True, False):
            planner = cls(task.dynamics, task.cost, cfg, fused=fused)  # type: ignore[operator]
            x = np.array(task.initial_state, dtype=float)
            plans = []
            for _ in range(3):
                result = planner.plan(x)
                plans.append(result.actions)
                x = task.dynamics.rollout(x, result.actions[None, :1])[0, 1]
            out[f"{name}_{int(fused)}"] = np.array(plans)
    return out


@pytest.mark.parametrize("knots", [None, 20])
def test_per_step_plans_are_todays(knots: int | None) -> None:
    """Protects: ``knots=None`` (and ``knots=H``, the identity) is the planner as it was.

    ``data/per_step_plans.npz`` holds these plans as computed by ``_per_step_plans`` on the
    commit before knots existed (ea461bb); every sample, weight and elite must be the same.
    The tolerance only absorbs another machine's libm (1 ulp of ``sin``, over three steps).
    """
    golden = np.load(GOLDEN)
    now = _per_step_plans(knots)
    assert sorted(now) == sorted(golden.files)
    for name, plans in now.items():
        np.testing.assert_allclose(plans, golden[name], rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", INTERPOLATIONS)
@pytest.mark.parametrize("planner", ["mppi", "cem", "ps"])
def test_fused_path_equals_generic_with_knots(kind: str, planner: str) -> None:
    """Protects: the expansion inside the fused kernel gives the generic path's samples and
    plans, bit for bit, for every planner and interpolation; the plan is a spline."""
    task = make_task("pendulum")
    common = {"num_samples": 48, "horizon": 20, "seed": 1, "knots": 5, "interpolation": kind,
              "record_samples": True}  # fmt: skip
    cls, cfg = {
        "mppi": (MPPI, MPPIConfig(temperature=0.1, **common)),
        "cem": (CEM, CEMConfig(num_elites=6, iterations=2, **common)),
        "ps": (PredictiveSampling, PredictiveSamplingConfig(**common)),
    }[planner]
    fused = cls(task.dynamics, task.cost, cfg)  # type: ignore[operator]
    generic = cls(task.dynamics, task.cost, cfg, fused=False)  # type: ignore[operator]
    assert fused.uses_fused_path and not generic.uses_fused_path
    x = np.array(task.initial_state, dtype=float)
    knots = KnotSchedule(5, 20, kind)  # type: ignore[arg-type]
    for _ in range(3):
        a, b = fused.plan(x), generic.plan(x)
        np.testing.assert_array_equal(a.samples[0], b.samples[0])
        np.testing.assert_array_equal(a.samples[1], b.samples[1])
        np.testing.assert_array_equal(a.actions, b.actions)
        # The search lives in knot space: the executed plan is an expansion of knots.
        if kind != "cubic":  # (a cubic may be clipped, which leaves the span)
            refit = knots.basis @ knots.fit(a.actions, np.zeros((5, 1)))
            np.testing.assert_allclose(refit, a.actions, atol=1e-12)
        x = task.dynamics.rollout(x, a.actions[None, :1])[0, 1]


def test_per_step_plan_is_not_a_spline() -> None:
    """The check above can fail: a per-step MPPI plan is not in the knots' span."""
    task = make_task("pendulum")
    cfg = MPPIConfig(num_samples=48, horizon=20, temperature=0.1, seed=1)
    plan = MPPI(task.dynamics, task.cost, cfg).plan(task.initial_state).actions
    knots = KnotSchedule(5, 20, "linear")
    assert np.abs(knots.basis @ knots.fit(plan, np.zeros((5, 1))) - plan).max() > 0.05


@pytest.mark.parametrize(("kind", "tolerance"), [("cubic", 0.03), ("linear", 0.08)])
def test_warm_start_shift_refits_the_spline(kind: str, tolerance: float) -> None:
    """Protects: the shifted warm start is the same spline moved one step earlier in time
    (knots re-fitted by least squares), not its knots re-indexed (which moves it by H/M
    steps) and not left in place. Row 0 of the next step's batch is that warm start.

    Measured: cubic 0.015, linear 0.062 off the shifted spline (amplitude 1); re-indexed
    0.80 / 0.71, unshifted 0.17 / 0.15."""
    task = make_task("pendulum")
    H, M = 30, 6
    knots = KnotSchedule(M, H, kind)  # type: ignore[arg-type]
    cfg = PredictiveSamplingConfig(num_samples=16, horizon=H, knots=M, interpolation=kind,
                                   record_samples=True)  # fmt: skip
    planner = PredictiveSampling(task.dynamics, task.cost, cfg)
    Z = np.sin(2 * np.pi * knots.times / H * 0.8 + 0.3)[:, None]
    spline = knots.basis @ Z
    planner.set_nominal(spline)
    warm = planner.plan(task.initial_state).samples[0][0]
    steps = np.arange(H - 1) + 1.0
    if kind == "cubic":
        shifted = CubicSpline(knots.times, Z, bc_type="natural")(steps)
    else:
        shifted = np.interp(steps, knots.times, Z[:, 0])[:, None]
    assert np.abs(warm[: H - 1] - shifted).max() < tolerance
    reindexed = knots.basis @ np.concatenate([Z[1:], Z[-1:]])
    assert np.abs(reindexed[: H - 1] - shifted).max() > 5 * tolerance
    assert np.abs(spline[: H - 1] - shifted).max() > 1.5 * tolerance


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: MPPIConfig(horizon=20, knots=0, interpolation="zero"), "knots must be None"),
        (lambda: MPPIConfig(horizon=20, knots=1, interpolation="linear"), "needs two knots"),
        (lambda: CEMConfig(horizon=20, knots=1, interpolation="cubic"), "needs two knots"),
        (lambda: MPPIConfig(horizon=20, knots=21), "must be <= horizon=20"),
        (lambda: MPPIConfig(horizon=20, knots=2.5), "knots must be None"),
        (lambda: MPPIConfig(horizon=20, knots=True), "knots must be None"),
        (lambda: PredictiveSamplingConfig(knots=4, interpolation="quadratic"), "interpolation"),
        (lambda: LatentPlanConfig(knots=4), "latent search"),
        (lambda: IMLEMPCConfig(knots=4), "num_gaussian=0"),
        (lambda: IMLEMPCConfig(knots=40, num_gaussian=4, num_samples=40), "<= horizon=16"),
        (lambda: KnotSchedule(3, 2, "zero"), "<= horizon=2"),
    ],
)
def test_bad_knot_configs_are_clear_errors(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_a_sampler_for_the_wrong_rows_is_refused() -> None:
    from planners.samplers import GaussianSampler
    from planners.sampling import SamplingPlanner
    from planners.selectors import ArgminSelector

    task = make_task("pendulum")
    dyn = task.dynamics
    per_step = GaussianSampler(1.0, 20, 1, dyn.action_low, dyn.action_high)
    with pytest.raises(ValueError, match="build the sampler with horizon=5"):
        SamplingPlanner(dyn, task.cost, per_step, ArgminSelector(), PredictiveSamplingConfig(
            horizon=20), knots=KnotSchedule(5, 20, "cubic"))  # fmt: skip
    with pytest.raises(ValueError, match="horizon=20"):
        SamplingPlanner(dyn, task.cost, per_step, ArgminSelector(), PredictiveSamplingConfig(
            horizon=20), knots=KnotSchedule(5, 30, "cubic"))  # fmt: skip


@pytest.mark.parametrize(("kind", "seed"), [("cubic", 0), ("cubic", 1), ("linear", 0), ("zero", 0)])
def test_pendulum_swings_up_with_knots_and_smoother(kind: str, seed: int) -> None:
    """Closed loop: MPPI over 8 knots swings the pendulum up, and its commands change less
    from step to step than per-step MPPI's at the same K (measured seed 0: 0.17-0.24 vs
    1.05 mean squared change)."""
    task = make_task("pendulum")
    h = task.hints
    common = {"num_samples": h.num_samples, "horizon": h.horizon, "temperature": h.temperature,
              "noise_sigma": h.noise_sigma, "seed": seed}  # fmt: skip
    smooth = MPPI(task.dynamics, task.cost, MPPIConfig(knots=8, interpolation=kind, **common))
    record = run_episode(task, smooth, seed=seed)
    theta = np.abs(wrap_angle(record.states[:, 0]))
    assert theta[0] > 3.0
    assert record.success, f"last angles {theta[-10:]}"
    per_step = run_episode(task, MPPI(task.dynamics, task.cost, MPPIConfig(**common)), seed=seed)
    jerk = float(np.mean(np.diff(record.actions, axis=0) ** 2))
    base = float(np.mean(np.diff(per_step.actions, axis=0) ** 2))
    assert jerk < 0.5 * base, (jerk, base)


def test_make_planner_builds_knot_planners_and_refuses_them_for_learned_kinds() -> None:
    from imle_mpc.eval.factory import make_planner

    task = make_task("pendulum")
    planner = make_planner("cem", task, knots=8, interpolation="linear")
    assert planner.knots is not None and planner.knots.num_knots == 8
    assert planner.sampler.sigma.shape == (8, 1)  # CEM's std lives on the knots
    assert make_planner("mppi", task).knots is None
    with pytest.raises(ValueError, match="for the sampling planners"):
        make_planner("imle_mpc", task, knots=8)
