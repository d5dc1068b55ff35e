"""The faster forms of four parts of a guarded IMLE-MPC step give the same numbers.

``IMLESampler.propose`` (perturbed chunks, clipped: ``core.kernels.perturb``), the box
constraints' excess (``cost.constraints._box_excess``) and ``PinocchioDynamics``'
acceleration-mode integration, each against the NumPy code it replaced, the arm's
clearance of a few trajectories (the guard's check) against the batch kernel's rows, and
the state-tracking kernel (four samples side by side) against a per-sample Python sum:
all to the bit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cost.constraints import StateBox, _box_excess
from planners.imle import IMLEMPCConfig, IMLEProposals, IMLESampler

H, NU = 16, 2


class _Chunks:
    """A stand-in generator: chunks a fixed function of the latents, often outside the box."""

    horizon, nu, obs_horizon, obs_dim = H, NU, 1, 3
    latent_dim = H * NU

    def decode(self, obs_history: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(3.0 * np.asarray(z).reshape(-1, H, NU))

    def sample(self, obs_history: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.decode(obs_history, rng.standard_normal((n, H * NU)))


def _numpy_propose(sampler: IMLESampler, nominal: np.ndarray, rng, out: np.ndarray) -> None:
    """``IMLESampler.propose`` as it was in NumPy (the reference)."""
    cfg = sampler.config.proposals
    K, n_imle = out.shape[0], cfg.num_imle
    end_perturbed = K - cfg.num_gaussian
    chunks = sampler.generator.sample(sampler.history.array, n_imle, rng)
    stale = cfg.max_plan_age is not None and sampler._age >= cfg.max_plan_age
    out[0] = chunks[0] if stale else nominal
    out[1 : 1 + n_imle] = chunks
    n_pert = end_perturbed - 1 - n_imle
    if n_pert > 0:
        parents = chunks[np.arange(n_pert) % n_imle]
        noise = rng.standard_normal(parents.shape)
        out[1 + n_imle : end_perturbed] = parents + cfg.perturb_sigma * noise
    if cfg.num_gaussian:
        noise = rng.standard_normal((cfg.num_gaussian, *nominal.shape))
        out[end_perturbed:] = nominal + cfg.gaussian_sigma * noise
    np.clip(out, sampler.low, sampler.high, out=out)


@pytest.mark.parametrize(
    ("K", "num_imle", "num_gaussian", "age"),
    [(33, 16, 0, 0), (40, 7, 5, 0), (17, 16, 0, 0), (30, 8, 3, 9)],
)
def test_propose_draws_the_numpy_proposals(
    K: int, num_imle: int, num_gaussian: int, age: int
) -> None:
    proposals = IMLEProposals(num_imle=num_imle, num_gaussian=num_gaussian, perturb_sigma=0.7)
    config = replace(IMLEMPCConfig(horizon=H, num_samples=K), proposals=proposals)
    low, high = np.array([-2.0, -1.0]), np.array([2.0, 0.5])
    sampler = IMLESampler(_Chunks(), lambda s: s[:3], config, low, high)
    sampler.start_step(np.zeros(4))
    sampler._age = age  # age 9 > max_plan_age: row 0 is the first chunk, not the warm start
    nominal = np.random.default_rng(1).normal(size=(H, NU)) * 3.0
    ours, reference = np.empty((K, H, NU)), np.empty((K, H, NU))
    for seed in range(3):
        sampler.propose(np.zeros(4), nominal, np.random.default_rng(seed), ours)
        _numpy_propose(sampler, nominal, np.random.default_rng(seed), reference)
        assert np.array_equal(ours, reference)
        assert (ours == high).any() and (ours == low).any()  # the clip did bite


def _numpy_box_excess(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    if values.shape[1] == 0:
        return np.zeros(values.shape[0])
    with np.errstate(invalid="ignore"):  # inf - inf
        return np.maximum(np.maximum(low - values, values - high), 0.0).max(axis=(1, 2))


def test_box_excess_is_numpys_including_nan_and_inf() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 9, 4)) * 2.0
    X[3, 4, 1] = np.nan
    X[7, 2, 3] = np.inf
    X[9, 1, 0] = -np.inf
    X[11, 5, 2] = -np.inf  # against a -inf bound: inf - inf is NaN, in NumPy too
    X[20] = 0.0  # inside the box
    X[21] = 0.0
    X[21, :, 0] = 2.0  # on its upper bound: an excess of exactly 0
    low, high = np.array([-2.0, -1.0, -np.inf, -3.0]), np.array([2.0, np.inf, 1.0, 3.0])
    for values in (X, X[:, 1:], X[:, :0], X[:, 2:3], X[::2, :, :], X[:, :, 1:]):
        n = values.shape[-1]
        for lo, hi in ((low[-n:], high[-n:]), (np.array([-1.0]), np.array([1.0]))):
            for first in (0, 1, 2):
                expected = _numpy_box_excess(values[:, first:], lo, hi)
                got = _box_excess(values, first, lo, hi)
                assert np.array_equal(got, expected, equal_nan=True)
                # the bits too: the largest excess itself, +0.0 (never -0.0) when inside
                finite = ~np.isnan(expected)
                assert np.array_equal(got[finite].view(np.int64), expected[finite].view(np.int64))
    got = _box_excess(X, 0, low, high)
    assert np.isnan(got[3]) and np.isnan(got[11]) and got[7] == np.inf and got[9] == np.inf
    assert (got == 0.0).any() and (got > 0.0).any()  # inside the box and outside, both seen
    # a StateBox judges X[:, 1:] with the same numbers
    box = StateBox(low, high)
    assert np.array_equal(
        box.violation(X, np.zeros((64, 8, 1))), _numpy_box_excess(X[:, 1:], low, high),
        equal_nan=True,
    )  # fmt: skip


def test_acceleration_rollout_is_the_numpy_integration() -> None:
    pytest.importorskip("pinocchio")
    from imle_mpc.tasks.panda.robot import panda_model

    model = panda_model()
    assert model.control == "acceleration"
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=model.nx)
    U = rng.normal(size=(32, 12, model.nu)) * 20.0
    U[3, 5, 2] = np.nan  # a non-finite action: that sample is NaN from there on
    for substeps in (1, 3):
        model.substeps = substeps
        h = model.dt / substeps
        q = np.tile(x0[: model.nu], (32, 1))
        v = np.tile(x0[model.nu :], (32, 1))
        expected = np.empty((32, 13, model.nx))
        expected[:, 0] = x0
        for t in range(12):
            for _ in range(substeps):
                v += h * U[:, t]
                q += h * v
            expected[:, t + 1, : model.nu], expected[:, t + 1, model.nu :] = q, v
        X = model.rollout(x0, U)
        assert np.array_equal(X, expected, equal_nan=True)
        assert np.isnan(X[3, 6:, [2, model.nu + 2]]).all() and np.isfinite(X[4]).all()
    model.substeps = 1


def test_one_trajectorys_clearance_is_its_row_of_the_batch() -> None:
    """The scalar kernel for a few trajectories (the guard's check) gives the lane kernel's bits."""
    pytest.importorskip("pinocchio")
    from dynamics import kinematics
    from imle_mpc.tasks.panda.robot import panda_collision_constraint

    ball = panda_collision_constraint()
    kin = ball.kinematics
    rng = np.random.default_rng(3)
    Q = rng.uniform(-2.5, 2.5, (40, 17, kin.nq))
    Q[5, 3, 2] = 2.0e5  # past the polynomial's range: libm's sin and cos, in both kernels
    Q[6, 7, 1] = np.nan
    spheres = np.array([[0.4, 0.0, 0.5, 0.15], [0.0, 0.4, 0.3, 0.1]])
    points, swept = kin.path_clearance(Q, spheres, ball.radii)  # 40 rows: the lane kernel
    assert kinematics._path_clearance_kernel(40) is kinematics._chain_path_clearance
    assert kinematics._path_clearance_kernel(1) is kinematics._chain_path_clearance_scalar
    for rows in (slice(0, 1), slice(5, 7), slice(4, 7)):
        one_points, one_swept = kin.path_clearance(Q[rows], spheres, ball.radii)
        assert np.array_equal(one_points, points[rows], equal_nan=True)
        assert np.array_equal(one_swept, swept[rows], equal_nan=True)
    single = kin.clearance(Q[7:8, 4], spheres, ball.radii)
    assert np.array_equal(single, kin.clearance(Q[:, 4], spheres, ball.radii)[7:8])


@pytest.mark.parametrize("rows", [40, 2])  # the lane kernel, the scalar one
def test_a_configuration_nobody_can_place_has_no_clearance(rows: int) -> None:
    """Protects: a NaN or infinite joint gives NaN gaps for that configuration and both its
    segments, in both kernels and through a shared start, so the sphere constraint rejects
    the trajectory; the minima alone dropped the NaN gaps and read it as clear (+inf)."""
    pytest.importorskip("pinocchio")
    from imle_mpc.tasks.panda.robot import panda_collision_constraint

    ball = panda_collision_constraint()
    kin = ball.kinematics
    rng = np.random.default_rng(4)
    Q = rng.uniform(-2.0, 2.0, (rows, 6, kin.nq))
    Q[1, 3, 2] = np.nan
    Q[0, 5, 0] = np.inf
    spheres = np.array([[0.4, 0.0, 0.5, 0.15]])
    points, swept = kin.path_clearance(Q, spheres, ball.radii)
    assert np.isnan(points[1, 3]) and np.isnan(swept[1, 2:4]).all()
    assert np.isnan(points[0, 5]) and np.isnan(swept[0, 4])
    unknown = {(1, 3), (0, 5)}
    known = [(k, t) for k in range(rows) for t in range(6) if (k, t) not in unknown]
    assert all(np.isfinite(points[k, t]) for k, t in known)
    Q[:, 0] = [np.inf, 0.4, -0.2, -1.9, 0.1, 1.7, 0.6]  # one start shared by every row
    points, swept = kin.path_clearance(Q, spheres, ball.radii)
    assert np.isnan(points[:, 0]).all() and np.isnan(swept[:, 0]).all()
    assert np.isfinite(points[2:, 1:]).all()
    v = ball.violation(np.concatenate([Q, np.zeros_like(Q)], axis=2), np.zeros((rows, 5, 7)))
    assert np.isnan(v).all()  # every row starts from a configuration with no clearance


@pytest.mark.parametrize("nudge", [False, True])
def test_a_batch_from_one_start_state_gives_each_rows_bits(nudge: bool) -> None:
    """Protects: when every trajectory starts at the same configuration (a planner's batch),
    the lane kernel evaluates it once and copies it; every row must still be its own
    trajectory's result to the bit (and the same with one start one ulp away: no sharing)."""
    pytest.importorskip("pinocchio")
    from imle_mpc.tasks.panda.robot import panda_collision_constraint

    ball = panda_collision_constraint()
    kin = ball.kinematics
    rng = np.random.default_rng(8)
    Q = rng.uniform(-2.0, 2.0, (70, 17, kin.nq))
    Q[:, 0] = [0.3, 0.4, -0.2, -1.9, 0.1, 1.7, 0.6]  # near the ball: a finite, small gap
    if nudge:
        Q[33, 0, 4] = np.nextafter(Q[33, 0, 4], np.inf)
    spheres = np.array([[0.4, 0.0, 0.5, 0.15], [0.0, 0.4, 0.3, 0.1]])
    points, swept = kin.path_clearance(Q, spheres, ball.radii)  # the lane kernel
    for k in (0, 1, 31, 32, 33, 69):
        one_points, one_swept = kin.path_clearance(Q[k : k + 1], spheres, ball.radii)
        assert np.array_equal(one_points, points[k : k + 1])
        assert np.array_equal(one_swept, swept[k : k + 1])
    if not nudge:
        assert np.all(points[:, 0] == points[0, 0])


def _state_cost_reference(X: np.ndarray, target, weights, wrap, t_start: int) -> np.ndarray:
    """StateTracking's sum in plain Python floats, one sample at a time, in its order."""
    out = np.empty(X.shape[0])
    for k in range(X.shape[0]):
        acc = 0.0
        for t in range(t_start, X.shape[1]):
            step = 0.0
            for i in range(X.shape[2]):
                if weights[i] != 0.0:
                    e = float(X[k, t, i]) - float(target[i])
                    if wrap[i]:
                        e = e - 2.0 * np.pi * np.floor((e + np.pi) * (1.0 / (2.0 * np.pi)))
                    step += float(weights[i]) * e * e
            acc += step
        out[k] = acc
    return out


@pytest.mark.parametrize("K", [1, 2, 3, 4, 5, 33])
def test_state_tracking_kernel_is_the_per_sample_sum(K: int) -> None:
    # The kernel sums four samples side by side; each must keep its own order of adds.
    from cost import StateTracking, TerminalState

    rng = np.random.default_rng(K)
    X = rng.standard_normal((K, 9, 5)) * 4.0
    X[0, 3, 4] = np.inf  # a zero weight: skipped, not 0 * inf
    target, weights = rng.standard_normal(5), np.array([1.0, 0.05, 2.0, 0.3, 0.0])
    wrap = [False, True, False, True, False]
    for term, t_start in ((StateTracking(target, weights, (1, 3)), 1),
                          (TerminalState(target, weights, (1, 3)), 8)):  # fmt: skip
        want = _state_cost_reference(X, target, weights, wrap, t_start)
        assert np.array_equal(term(X, np.zeros((K, 8, 1))), want)
