"""Selection and sampling kernels against NumPy references; selectors' behaviour."""

from __future__ import annotations

import numpy as np
import pytest

from imle_mpc.core.kernels import (
    argmin_finite,
    elite_indices,
    softmax_weights,
    weighted_mean,
)
from planners import ArgminSelector, EliteMeanSelector, SoftmaxSelector
from tests.conftest import in_no_jit_rerun, run_without_jit


def test_argmin_skips_nan_and_inf() -> None:
    assert argmin_finite(np.array([np.nan, 3.0, np.inf, 2.0, 5.0])) == 3
    assert argmin_finite(np.array([np.nan, np.inf])) == -1


def test_softmax_weights_reference(rng: np.random.Generator) -> None:
    costs = rng.uniform(0, 50, size=100)
    costs[[3, 7]] = [np.inf, np.nan]
    w = np.empty(100)
    n = softmax_weights(costs, 2.0, w)
    finite = np.isfinite(costs)
    ref = np.zeros(100)
    ref[finite] = np.exp(-(costs[finite] - costs[finite].min()) / 2.0)
    ref /= ref.sum()
    assert n == 98
    np.testing.assert_allclose(w, ref, rtol=1e-12, atol=1e-300)


def test_softmax_weights_survive_huge_costs() -> None:
    # Without subtracting the minimum, exp(-1e6) underflows to 0 for every sample.
    w = np.empty(3)
    softmax_weights(np.array([1e6, 1e6 + 1.0, 1e6 + 2.0]), 1.0, w)
    assert np.isclose(w.sum(), 1.0) and w[0] > w[1] > w[2]


def test_weighted_mean_reference(rng: np.random.Generator) -> None:
    U = rng.standard_normal((50, 8, 3))
    w = rng.uniform(size=50)
    w /= w.sum()
    out = np.empty((8, 3))
    weighted_mean(U, w, out)
    np.testing.assert_allclose(out, np.einsum("k,khj->hj", w, U), rtol=1e-12)


def test_elite_indices_best_first() -> None:
    costs = np.array([5.0, np.nan, 1.0, 3.0, np.inf, 2.0])
    np.testing.assert_array_equal(elite_indices(costs, 3), [2, 5, 3])
    np.testing.assert_array_equal(elite_indices(costs, 10), [2, 5, 3, 0])


def test_selectors(rng: np.random.Generator) -> None:
    U = rng.standard_normal((6, 4, 1))
    costs = np.array([3.0, 1.0, np.inf, 2.0, 10.0, 4.0])
    out = np.empty((4, 1))
    assert ArgminSelector().select(U, costs, out) == 1
    np.testing.assert_array_equal(out, U[1])
    assert EliteMeanSelector(2).select(U, costs, out) == 1
    np.testing.assert_allclose(out, U[[1, 3]].mean(axis=0))
    # A tiny temperature makes MPPI's average the argmin; a huge one the plain mean.
    assert SoftmaxSelector(1e-6).select(U, costs, out) == 1
    np.testing.assert_allclose(out, U[1], atol=1e-12)
    SoftmaxSelector(1e9).select(U, costs, out)
    np.testing.assert_allclose(out, U[np.isfinite(costs)].mean(axis=0), rtol=1e-6)


def test_selectors_report_no_feasible_sample() -> None:
    U = np.zeros((3, 2, 1))
    costs = np.full(3, np.inf)
    out = np.full((2, 1), 7.0)
    for selector in (ArgminSelector(), SoftmaxSelector(1.0), EliteMeanSelector(2)):
        assert selector.select(U, costs, out) == -1
    assert np.all(out == 7.0)  # the plan is left for the caller's fallback


@pytest.mark.skipif(in_no_jit_rerun(), reason="already the no-JIT run")
def test_selection_kernels_without_jit() -> None:
    result = run_without_jit("tests/planners/test_selection.py")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _reject_reference(costs: np.ndarray, verdicts: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """The NumPy sequence ``reject_violating`` replaces (the planners' former code)."""
    costs = costs.copy()
    totals = np.where(np.isfinite(costs), 0.0, np.inf)
    for v in verdicts:
        v = np.where(np.isnan(v), np.inf, v)
        costs[v > 0.0] = np.inf
        totals += v
    return costs, totals


def test_reject_violating_is_the_numpy_sequence() -> None:
    """Protects: violating and unjudgeable (NaN) samples lose, the sum counts NaN as +inf
    and starts at +inf for an unscorable cost, a second constraint adds to the first."""
    from imle_mpc.core.kernels.select import reject_violating

    rng = np.random.default_rng(9)
    costs = rng.uniform(0.0, 5.0, 12)
    costs[[1, 2]] = [np.inf, np.nan]
    first = np.array([0.0, 0.0, 0.0, 0.3, np.nan, -1e-3, 0.0, 2.0, 0.0, 0.0, np.inf, 0.0])
    second = np.array([0.0, 0.0, 0.7, 0.0, 0.0, -0.2, 0.0, 0.0, 0.7, 0.0, 0.0, 0.0])
    expected_costs, expected_totals = _reject_reference(costs, [first, second])
    ours, totals = costs.copy(), np.full(12, 123.0)  # the start overwrites what was there
    reject_violating(ours, first, totals, True)
    reject_violating(ours, second, totals, False)
    np.testing.assert_array_equal(ours, expected_costs)
    np.testing.assert_array_equal(totals, expected_totals)
    assert np.isinf(ours[[3, 4, 7, 8, 10]]).all() and np.isfinite(ours[[0, 5, 6]]).all()
    alone = costs.copy()  # no running sum: only the costs change
    reject_violating(alone, first, np.empty(0), True)
    np.testing.assert_array_equal(alone, _reject_reference(costs, [first])[0])
