"""The lane-major fused kernel (``core.kernels.lanes``) against the per-sample one.

Protects: bitwise the same proposals, per-term costs, totals and stored states as the
per-sample kernel for every block shape (K not a multiple of the lane count, one
sample), with knots, nominal rows, terminal terms, action differences of order 1 and
2, and angles past the polynomial ``sin``'s range (libm's there); the pendulum's lane
step against its step; which models and terms select the lane kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numba as nb
import numpy as np
import pytest

from cost import ControlEffort, CostSum, Smoothness, StageCost, StateTracking, Term, TerminalState
from dynamics import Pendulum, PointMass2D
from dynamics.pendulum import pendulum_lanes, pendulum_step
from imle_mpc.core.kernels import make_fused_kernels
from imle_mpc.core.kernels.fused import pack_params
from imle_mpc.core.kernels.lanes import LANES
from planners import MPPI, MPPIConfig
from planners.knots import KnotSchedule

H = 12


def _cost() -> CostSum:
    return CostSum(
        Term("upright", StateTracking([0.0, 0.0], [1.0, 0.1], angle_dims=[0])),
        Term("effort", ControlEffort(reference=0.3), 0.001),
        Term("rate", Smoothness(order=1), 0.01),
        Term("jerk", Smoothness(order=2), 0.02),
        Term("end", TerminalState([0.0, 0.0], [5.0, 1.0], angle_dims=[0]), 3.0),
    )


def _score(kernel, model: Pendulum, K: int, store: bool, knots: int | None, x0: np.ndarray):
    """Run one kernel on a fresh set of buffers; returns what it wrote."""
    forms = _cost().stage_forms(2, 1)
    M = H if knots is None else knots
    basis = np.zeros((1, 1)) if knots is None else KnotSchedule(knots, H, "cubic").basis
    Z = np.zeros((K, M, 1))
    U = Z if knots is None else np.zeros((K, H, 1))
    X = np.full((K, H + 1, 2) if store else (K, 2, 2), np.nan)
    parts, total = np.zeros((K, len(forms))), np.zeros(K)
    nominal = np.linspace(-1.0, 1.5, M).reshape(M, 1)
    sigma = np.full((M, 1), 1.5)
    kernel(
        x0, Z, U, basis, nominal, sigma, np.array([-2.0]), np.array([2.0]), 2, np.uint64(11),
        True, store, model.params_vector(), pack_params(forms),
        np.array([t.weight for t in _cost().terms]), X, parts, total,
    )  # fmt: skip
    return Z, U, (X if store else None), parts, total


def _kernels(model: Pendulum):
    forms = _cost().stage_forms(2, 1)
    lanes = make_fused_kernels(model.step_function, forms, lane_step=model.lane_step_function)
    per_sample = make_fused_kernels(model.step_function, forms)
    return lanes, per_sample


@pytest.mark.parametrize("K", [1, 13, LANES, 2 * LANES + 5])
@pytest.mark.parametrize("store", [False, True])
@pytest.mark.parametrize("knots", [None, 4])
def test_lane_kernel_equals_the_per_sample_kernel_to_the_bit(K: int, store: bool, knots) -> None:
    model = Pendulum(damping=0.05)
    lanes, per_sample = _kernels(model)
    assert lanes.lanes and not per_sample.lanes
    x0 = np.array([math.pi - 0.2, 0.4])
    for parallel in (True, False):
        pick = (lambda k: k.parallel) if parallel else (lambda k: k.serial)
        a = _score(pick(lanes), model, K, store, knots, x0)
        b = _score(pick(per_sample), model, K, store, knots, x0)
        for got, want in zip(a, b, strict=True):
            if want is not None:
                np.testing.assert_array_equal(got, want)
        assert np.all(np.isfinite(a[-1]))
        if K > 2:  # two nominal rows, then noisy ones: the samples differ
            assert np.ptp(a[-1]) > 0


def test_lanes_past_the_polynomial_range_use_libm_as_the_step_does() -> None:
    model = Pendulum()
    lanes, per_sample = _kernels(model)
    x0 = np.array([3.0e5 + 0.1, -2.0])  # beyond trig.REDUCTION_LIMIT
    a = _score(lanes.parallel, model, 20, True, None, x0)
    b = _score(per_sample.parallel, model, 20, True, None, x0)
    np.testing.assert_array_equal(a[2], b[2])
    np.testing.assert_array_equal(a[4], b[4])


def test_pendulum_lane_step_equals_its_step_lane_by_lane() -> None:
    rng = np.random.default_rng(0)
    L = 37
    X = np.stack([rng.uniform(-20.0, 20.0, L), rng.uniform(-9.0, 9.0, L)])
    X[0, :3] = [2.0e5, -7.0e6, np.pi]
    U = rng.uniform(-2.0, 2.0, (1, L))
    p = Pendulum(damping=0.1).params_vector()
    out = np.empty((2, L))
    pendulum_lanes(X, U, p, out)
    for lane in range(L):
        want = np.empty(2)
        pendulum_step(X[:, lane].copy(), U[:, lane].copy(), p, want)
        np.testing.assert_array_equal(out[:, lane], want)


def test_the_planner_picks_the_lane_kernel_only_where_model_and_terms_have_lanes() -> None:
    config = MPPIConfig(num_samples=40, horizon=H, seed=0)
    assert MPPI(Pendulum(), _cost(), config)._fused.kernels.lanes
    nav = CostSum(Term("goal", StateTracking([1.0, 0.0, 0.0, 0.0])))
    assert not MPPI(PointMass2D(), nav, config)._fused.kernels.lanes  # no lane step

    @nb.njit
    def speed(x, u, t, p):  # pragma: no cover - compiled
        return x[1] * x[1]

    own = CostSum(Term("upright", StateTracking([0.0, 0.0])), Term("speed", StageCost(speed)))
    assert not MPPI(Pendulum(), own, config)._fused.kernels.lanes  # a term has no lane form


@nb.njit
def _stiff_step(x, u, p, out):  # pragma: no cover - compiled
    out[0] = x[0] + p[4] * x[1]
    out[1] = x[1] - p[4] * x[0] + p[4] * u[0]


@dataclass(frozen=True)
class _Spring(Pendulum):
    """A subclass with its own step: the parent's lane step would be a different model."""

    step_function: ClassVar = _stiff_step


def test_a_subclass_with_its_own_step_does_not_inherit_the_lane_step() -> None:
    assert Pendulum.lane_step_function is not None
    assert _Spring.lane_step_function is None
    planner = MPPI(_Spring(), _cost(), MPPIConfig(num_samples=16, horizon=H, seed=0))
    assert not planner._fused.kernels.lanes


@nb.njit(error_model="numpy")
def _tag_blocks(  # pragma: no cover - compiled
    g0, g1, L, x0, Z, U, basis, nominal, sigma, low, high, first_noisy, seed, sample, store,
    dyn_params, P, weights, X, parts, total,
):  # fmt: skip
    """A stand-in block scorer: total[k] = the index of k's block times 1000 + L."""
    K = U.shape[0]
    for g in range(g0, g1):
        for k in range(g * L, min(g * L + L, K)):
            total[k] = g * 1000.0 + L


def test_both_drivers_share_one_compiled_block_scorer_and_its_blocks() -> None:
    """Protects: the serial driver calls the block scorer with the parallel one's argument
    types (the block width a run-time int64 in both), so each fused kernel compiles its
    scorer once (a second specialisation was 0.4-3 s of every kernel's build); a batch
    shorter than the width is one block of its own size in both."""
    from imle_mpc.core.kernels.lanes import make_drivers

    parallel, serial = make_drivers(_tag_blocks, 8)
    for K, driver in ((20, parallel), (5, parallel), (1, serial), (3, serial), (20, serial)):
        U, total = np.zeros((K, 2, 1)), np.full(K, np.nan)
        args = (np.zeros(1), U, U, np.zeros((1, 1)), np.zeros((2, 1)), np.ones((2, 1)))
        driver(*args, np.zeros(1), np.ones(1), 0, np.uint64(0), False, True, np.zeros(1),
               np.zeros(1), np.zeros(1), np.zeros((K, 3, 1)), np.zeros((K, 1)), total)  # fmt: skip
        L = min(8, K)  # a batch shorter than the width is one block of its own size
        np.testing.assert_array_equal(total, [k // L * 1000.0 + L for k in range(K)])
    assert len(_tag_blocks.signatures) == 1, _tag_blocks.signatures
