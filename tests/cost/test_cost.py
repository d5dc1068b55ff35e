"""Cost terms against plain NumPy references; composition, breakdown, user terms."""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest

from cost import (
    ControlEffort,
    CostSum,
    ObstacleConstraint,
    ObstacleProximity,
    Scene,
    Smoothness,
    StageCost,
    StateTracking,
    Term,
    TerminalState,
)
from imle_mpc.core.checks import check_cost
from tests.conftest import in_no_jit_rerun, run_without_jit

K, H, NX, NU = 7, 6, 4, 2


@pytest.fixture
def batch(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.standard_normal((K, H + 1, NX)) * 3, rng.standard_normal((K, H, NU))


def _wrap(a: np.ndarray) -> np.ndarray:
    return np.arctan2(np.sin(a), np.cos(a))


def test_state_tracking_matches_reference(batch) -> None:
    X, U = batch
    target = np.array([0.5, -1.0, 0.0, 2.0])
    w = np.array([1.0, 2.0, 0.0, 0.5])
    got = StateTracking(target, w, angle_dims=[1])(X, U)
    err = X[:, 1:] - target
    err[..., 1] = _wrap(err[..., 1])
    np.testing.assert_allclose(got, (w * err**2).sum(axis=(1, 2)), rtol=1e-12)


def test_terminal_state_uses_last_state_only(batch) -> None:
    X, U = batch
    target = np.ones(NX)
    got = TerminalState(target, 2.0)(X, U)
    np.testing.assert_allclose(got, 2.0 * ((X[:, -1] - target) ** 2).sum(axis=1), rtol=1e-12)


def test_effort_and_smoothness_match_reference(batch) -> None:
    X, U = batch
    np.testing.assert_allclose(
        ControlEffort([1.0, 3.0])(X, U), (np.array([1.0, 3.0]) * U**2).sum(axis=(1, 2)), rtol=1e-12
    )
    d1 = np.diff(U, axis=1)
    np.testing.assert_allclose(
        Smoothness(0.5, order=1)(X, U), 0.5 * (d1**2).sum(axis=(1, 2)), rtol=1e-12
    )
    d2 = np.diff(U, n=2, axis=1)
    np.testing.assert_allclose(Smoothness(1.0, order=2)(X, U), (d2**2).sum(axis=(1, 2)), rtol=1e-12)


def _reference_distance(p: np.ndarray, circles: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    d = np.full(p.shape[:-1], np.inf)
    for cx, cy, r in circles:
        d = np.minimum(d, np.hypot(p[..., 0] - cx, p[..., 1] - cy) - r)
    for cx, cy, hw, hh in boxes:
        q = np.abs(p - [cx, cy]) - [hw, hh]
        outside = np.linalg.norm(np.maximum(q, 0.0), axis=-1)
        d = np.minimum(d, outside + np.minimum(q.max(axis=-1), 0.0))
    return d


def test_signed_distance_matches_reference(batch) -> None:
    X, _ = batch
    circles = np.array([[0.0, 0.0, 1.0], [2.0, 1.0, 0.5]])
    boxes = np.array([[-1.0, 2.0, 0.5, 1.0]])
    scene = Scene(circles=circles, boxes=boxes)
    np.testing.assert_allclose(
        scene.distances(X), _reference_distance(X[..., :2], circles, boxes), rtol=1e-12, atol=1e-12
    )
    # Inside a box the distance is negative: the centre is -min(half extents) away.
    centre = np.zeros((1, 1, NX))
    centre[0, 0, :2] = [-1.0, 2.0]
    assert scene.distances(centre)[0, 0] == pytest.approx(-0.5)


def test_obstacle_terms(batch) -> None:
    X, U = batch
    scene = Scene(circles=[[0.0, 0.0, 1.0]])
    d = _reference_distance(X[:, 1:, :2], scene.circle_array, scene.box_array)
    np.testing.assert_allclose(
        ObstacleProximity(scene, 0.3)(X, U), (np.maximum(0.3 - d, 0) ** 2).sum(axis=1), rtol=1e-12
    )
    np.testing.assert_allclose(
        ObstacleConstraint(scene, 0.1, swept=False).violation(X, U),
        np.maximum(0.1 - d.min(axis=1), 0),
        rtol=1e-12,
    )


def test_cost_sum_breakdown_adds_up_and_nan_is_inf(batch) -> None:
    X, U = batch
    cost = CostSum(
        Term("track", StateTracking(np.zeros(NX)), 2.0), Term("effort", ControlEffort(), 0.1)
    )
    total, parts = cost.evaluate(X, U)
    np.testing.assert_allclose(total, parts["track"] + parts["effort"], rtol=1e-12)
    # each part is its term times the weight, to the bit, and the total their sum in order
    np.testing.assert_array_equal(parts["track"], 2.0 * StateTracking(np.zeros(NX))(X, U))
    np.testing.assert_array_equal(parts["effort"], 0.1 * ControlEffort()(X, U))
    np.testing.assert_array_equal(total, (0.0 + parts["track"]) + parts["effort"])
    X_nan = X.copy()
    X_nan[3, 2, 0] = np.nan
    total_nan, parts_nan = cost.evaluate(X_nan, U)
    assert total_nan[3] == np.inf and np.isnan(parts_nan["track"][3])  # the part says why
    np.testing.assert_allclose(np.delete(total_nan, 3), np.delete(total, 3))


def test_cost_sum_rejects_bad_terms(batch) -> None:
    X, U = batch
    with pytest.raises(ValueError, match="unique"):
        CostSum(Term("a", ControlEffort()), Term("a", ControlEffort()))
    with pytest.raises(ValueError, match="weight"):
        Term("a", ControlEffort(), -1.0)
    wrong = CostSum(Term("per_step", lambda X, U: (U**2).sum(axis=2)))
    with pytest.raises(ValueError, match=r"per_step.*Shape=\(7,\)"):
        wrong(X, U)


@nb.njit
def _njit_batch_cost(X, U):  # a user's @njit batch cost
    out = np.empty(X.shape[0])
    for k in range(X.shape[0]):
        out[k] = X[k, -1, 0] ** 2
    return out


@nb.njit
def _stage(x, u, t, p):
    return p[0] * (x[0] ** 2 + u[0] ** 2)


@nb.njit
def _terminal(x, p):
    return 10.0 * x[1] ** 2


def test_user_plain_njit_and_stage_costs(batch) -> None:
    X, U = batch
    plain = CostSum(Term("mine", lambda X, U: X[:, -1, 0] ** 2))
    njit = CostSum(Term("mine", _njit_batch_cost))
    np.testing.assert_allclose(plain(X, U), njit(X, U), rtol=1e-12)
    stage = StageCost(_stage, _terminal, params=[0.5])
    ref = 0.5 * (X[:, 1:, 0] ** 2 + U[:, :, 0] ** 2).sum(axis=1) + 10 * X[:, -1, 1] ** 2
    np.testing.assert_allclose(stage(X, U), ref, rtol=1e-12)


@pytest.mark.parametrize(
    "term",
    [
        StateTracking(np.zeros(NX)),
        TerminalState(np.zeros(NX)),
        ControlEffort(),
        Smoothness(),
        ObstacleProximity(Scene(circles=[[0, 0, 1]])),
    ],
    ids=lambda t: type(t).__name__,
)
def test_builtin_terms_pass_conformance(term) -> None:
    assert check_cost(term, NX, NU)["ok"]


def test_term_validation_messages() -> None:
    with pytest.raises(ValueError, match="weights"):
        StateTracking([0.0, 0.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="angle_dims"):
        StateTracking([0.0, 0.0], angle_dims=[5])
    with pytest.raises(ValueError, match="order"):
        Smoothness(order=3)
    with pytest.raises(ValueError, match="circles"):
        Scene(circles=[[0.0, 0.0, -1.0]])


@pytest.mark.skipif(in_no_jit_rerun(), reason="already the no-JIT run")
def test_cost_kernels_without_jit() -> None:
    result = run_without_jit("tests/cost/test_cost.py", "-k", "reference or breakdown")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
