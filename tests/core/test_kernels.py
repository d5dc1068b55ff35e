"""The in-kernel RNG and the fused planner kernel against plain NumPy/Python references."""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import pytest

from cost import (
    ControlEffort,
    CostSum,
    ObstacleProximity,
    Scene,
    Smoothness,
    StageCost,
    StateTracking,
    Term,
    TerminalState,
)
from imle_mpc.core.kernels import (
    fill_standard_normal,
    make_fused_kernels,
    seeded_gaussian_proposals,
)
from imle_mpc.core.kernels.affine import scale_and_shift
from imle_mpc.core.kernels.compare import (
    all_finite,
    key_copy,
    same_values,
    squared_distance_to_plan,
)
from imle_mpc.core.kernels.fused import pack_params
from imle_mpc.core.kernels.rng import (
    GOLDEN,
    ZIG_F,
    ZIG_K,
    ZIG_R,
    ZIG_W,
    next_uint64,
    normal_lanes,
    stream_state,
)
from imle_mpc.core.model import StepDynamics
from tests.conftest import in_no_jit_rerun, run_without_jit

MASK64 = (1 << 64) - 1
JIT = not nb.config.DISABLE_JIT


# --- plain-Python references -------------------------------------------------


def _mix64_ref(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _normals_ref(seed: int, k: int, n: int) -> list[float]:
    """Stream k of a batch: SplitMix64 + the ziggurat, in Python integers and floats."""
    s = _mix64_ref((seed + (k + 1) * int(GOLDEN)) & MASK64)

    def next_u64() -> int:
        nonlocal s
        s = (s + int(GOLDEN)) & MASK64
        return _mix64_ref(s)

    def next_double() -> float:
        return (next_u64() >> 11) * 2.0**-53

    out: list[float] = []
    while len(out) < n:
        z = next_u64()
        idx = z & 0xFF
        r = z >> 8
        sign = -1.0 if r & 1 else 1.0
        rabs = (r >> 1) & ((1 << 52) - 1)
        x = sign * float(rabs) * float(ZIG_W[idx])
        if rabs < int(ZIG_K[idx]):
            out.append(x)
            continue
        if idx == 0:
            while True:
                xx = -math.log1p(-next_double()) / ZIG_R
                yy = -math.log1p(-next_double())
                if yy + yy > xx * xx:
                    out.append(sign * (ZIG_R + xx))
                    break
            continue
        y = float(ZIG_F[idx - 1]) + next_double() * float(ZIG_F[idx] - ZIG_F[idx - 1])
        if y < math.exp(-0.5 * x * x):
            out.append(x)
    return out


# --- RNG ---------------------------------------------------------------------


def test_splitmix64_reference_vector() -> None:
    # Known-answer test: Vigna's splitmix64.c seeded with 1234567.
    expected = [6457827717110365317, 3203168211198807973, 9817491932198370423]
    s = np.uint64(1234567)
    with np.errstate(over="ignore"):
        for want in expected:
            s, z = next_uint64(s)
            assert int(z) == want
    with np.errstate(over="ignore"):
        assert int(stream_state(np.uint64(9), 4)) == _mix64_ref((9 + 5 * int(GOLDEN)) & MASK64)


def test_ziggurat_tables_cover_the_density_with_equal_layers() -> None:
    # Layer i >= 1 spans [0, x_{i-1}] x [f(x_{i-1}), f(x_i)]; all have the base layer's area.
    x_prev = ZIG_W[1:] * 2.0**52  # layer i >= 1 is x_{i-1} wide
    areas = x_prev * (ZIG_F[1:] - ZIG_F[:-1])
    v = ZIG_W[0] * 2.0**52 * math.exp(-0.5 * ZIG_R**2)
    np.testing.assert_allclose(areas, v, rtol=1e-9)
    assert ZIG_F[-1] == 1.0 and np.all(np.diff(ZIG_F) > 0)


def test_normals_reference() -> None:
    out = np.empty((5, 40))
    fill_standard_normal(np.uint64(2024), out)
    for k in range(5):
        np.testing.assert_array_equal(out[k], _normals_ref(2024, k, 40))


def test_normals_reproducible_per_seed_and_per_row() -> None:
    a, b, c = np.empty((6, 50)), np.empty((6, 50)), np.empty((6, 50))
    fill_standard_normal(np.uint64(7), a)
    fill_standard_normal(7, b)  # a Python int seed is the same seed
    fill_standard_normal(np.uint64(8), c)
    np.testing.assert_array_equal(a, b)
    assert not np.any(a == c)
    # Row k is stream k: it does not depend on how many rows the batch has.
    small = np.empty((3, 50))
    fill_standard_normal(np.uint64(7), small)
    np.testing.assert_array_equal(small, a[:3])
    assert len(np.unique(a)) == a.size  # rows are distinct streams


@nb.njit  # not cached: it inlines normal_lanes from another module
def _draw_lanes(seed, out, layers_seen, used):  # pragma: no cover - compiled
    """out[l, i]: draw i of lane l's stream (stream l) by normal_lanes; per draw, the
    layer of an edge lane (-1 inside) and how many 64-bit numbers it used."""
    L, n = out.shape
    states = np.empty(L, np.uint64)
    for ln in range(L):
        states[ln] = stream_state(seed, ln)
    draws, signs, layers = np.empty(L), np.empty(L), np.empty(L, np.intp)
    for i in range(n):
        before = states.copy()
        normal_lanes(states, draws, signs, layers)
        for ln in range(L):
            out[ln, i] = draws[ln]
            layers_seen[ln, i] = layers[ln]
            used[ln, i] = np.int64((states[ln] - before[ln]) * np.uint64(0xF1DE83E19937733D))


def test_normal_lanes_give_each_streams_standard_normals() -> None:
    """Protects: the lane-major draw (packed table part, then the edge lanes) gives every
    lane its stream's numbers and leaves the state where standard_normal would, through
    the wedge, a rejected attempt's retry and the tail, all of which this seed reaches."""
    L, n = 64, 3000
    got = np.empty((L, n))
    layers, used = np.empty((L, n), np.intp), np.empty((L, n), np.int64)
    _draw_lanes(np.uint64(31), got, layers, used)
    want = np.empty((L, n))
    fill_standard_normal(np.uint64(31), want)
    np.testing.assert_array_equal(got, want)
    edge = layers >= 0
    assert np.all(used[~edge] == 1)  # inside: one 64-bit number
    assert np.sum(edge & (layers > 0) & (used == 2)) > 100  # wedge accepted
    assert np.sum(edge & (layers > 0) & (used > 2)) > 10  # wedge rejected: a retry
    assert np.sum(edge & (layers == 0)) > 5  # the base layer (its tail)


@pytest.mark.skipif(not JIT, reason="needs compiled kernels (slow as Python)")
def test_normals_are_standard_normal() -> None:
    from scipy import stats

    z = np.empty((2000, 500))
    fill_standard_normal(np.uint64(123), z)
    z = z.ravel()
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.std() - 1.0) < 5 / math.sqrt(2 * n)
    assert stats.kstest(z[:200_000], "norm").pvalue > 1e-3
    # The tail beyond r comes from a separate algorithm: check its mass too.
    tail = np.mean(np.abs(z) > ZIG_R)
    want = 2 * stats.norm.sf(ZIG_R)
    assert abs(tail - want) < 5 * math.sqrt(want / n)
    counts, _ = np.histogram(z, bins=np.linspace(-4, 4, 41))
    expected = n * np.diff(stats.norm.cdf(np.linspace(-4, 4, 41)))
    assert stats.chisquare(counts, expected * counts.sum() / expected.sum()).pvalue > 1e-3


@pytest.mark.skipif(not JIT, reason="thread count only matters when compiled")
def test_normals_independent_of_thread_count() -> None:
    threads = nb.get_num_threads()
    out1, out2 = np.empty((257, 33)), np.empty((257, 33))
    try:
        nb.set_num_threads(1)
        fill_standard_normal(np.uint64(99), out1)
        nb.set_num_threads(max(2, threads))
        fill_standard_normal(np.uint64(99), out2)
    finally:
        nb.set_num_threads(threads)
    np.testing.assert_array_equal(out1, out2)


def test_seeded_gaussian_proposals_reference(rng: np.random.Generator) -> None:
    K, H, nu = 9, 5, 2
    nominal = rng.standard_normal((H, nu))
    sigma = rng.uniform(0.1, 2.0, size=(H, nu))
    low, high = np.array([-1.0, -0.5]), np.array([1.0, 2.0])
    out = np.empty((K, H, nu))
    seeded_gaussian_proposals(nominal, np.uint64(5), sigma, low, high, 2, out)
    noise = np.array([_normals_ref(5, k, H * nu) for k in range(K)]).reshape(K, H, nu)
    ref = np.clip(nominal + sigma * noise, low, high)
    ref[:2] = np.clip(nominal, low, high)
    np.testing.assert_array_equal(out, ref)


# --- fused kernel ----------------------------------------------------------------


@nb.njit
def _double_integrator(x, u, p, out):
    """x = (px, py, vx, vy); u = (ax, ay); p = (dt,)."""
    dt = p[0]
    out[2] = x[2] + dt * u[0]
    out[3] = x[3] + dt * u[1]
    out[0] = x[0] + dt * out[2]
    out[1] = x[1] + dt * out[3]


@nb.njit
def _stage(x, u, t, p):
    return p[0] * (x[0] * x[1]) ** 2 + u[1] ** 2 + (np.nan if x[2] > 1e6 else 0.0)


@nb.njit
def _terminal(x, p):
    return p[1] * (x[2] ** 2 + x[3] ** 2)


def _every_term() -> CostSum:
    scene = Scene(circles=[[1.0, 0.5, 0.4]], boxes=[[-1.0, 1.0, 0.3, 0.6]])
    return CostSum(
        Term("goal", StateTracking([1.0, -1.0, 0.0, 0.0], [1.0, 0.5, 0.1, 0.0], [1]), 2.0),
        Term("terminal", TerminalState([1.0, -1.0, 0.0, 0.0], 3.0), 10.0),
        Term("effort", ControlEffort([0.5, 2.0], reference=[0.1, -0.2]), 0.1),
        Term("rate", Smoothness(0.7, order=1), 0.3),
        Term("jerk", Smoothness([1.0, 0.2], order=2), 0.05),
        Term("clearance", ObstacleProximity(scene, margin=0.3), 50.0),
        Term("swept", ObstacleProximity(scene, margin=1.0, swept=True), 20.0),  # reads X[t]
        Term("user", StageCost(_stage, _terminal, params=[0.4, 1.5]), 1.0),
    )


def _fused_setup(K: int = 21, H: int = 7):
    model = StepDynamics(_double_integrator, [0.1], nx=4, nu=2, dt=0.1, action_low=-2.0,
                         action_high=[2.0, 1.5])  # fmt: skip
    cost = _every_term()
    forms = cost.stage_forms(model.nx, model.nu)
    assert forms is not None
    kernels = make_fused_kernels(model.step_function, forms)
    bufs = {
        "P": pack_params(forms),
        "weights": np.array([t.weight for t in cost.terms]),
        "X": np.zeros((K, H + 1, 4)),
        "scratch": np.zeros((K, 2, 4)),
        "parts": np.zeros((K, len(forms))),
        "total": np.zeros(K),
    }
    return model, cost, kernels, bufs


def _run(kernels, which, model, x0, U, nominal, sigma, seed, sample, bufs, store=True,
         Z=None, basis=None) -> None:  # fmt: skip
    """Z, basis: knots and their expansion; None scores (or samples into) U per step."""
    fn = kernels.parallel if which == "parallel" else kernels.serial
    X = bufs["X"] if store else bufs["scratch"]
    Z = U if Z is None else Z
    basis = np.zeros((1, 1)) if basis is None else basis
    fn(x0, Z, U, basis, nominal, sigma, model.action_low, model.action_high, 1,
       np.uint64(seed), sample, store, model.params_vector(), bufs["P"], bufs["weights"], X,
       bufs["parts"], bufs["total"])  # fmt: skip


@pytest.mark.parametrize("which", ["parallel", "serial"])
def test_fused_kernel_reference(rng: np.random.Generator, which: str) -> None:
    model, cost, kernels, bufs = _fused_setup()
    K, H = bufs["total"].size, 7
    x0 = np.array([0.3, 0.2, -0.5, 1.0])
    U = np.clip(rng.standard_normal((K, H, 2)), model.action_low, model.action_high)
    _run(kernels, which, model, x0, U, np.zeros((H, 2)), np.ones((H, 2)), 0, False, bufs)
    # States: the model's own rollout. Costs: the batch terms' CostSum, term by term.
    np.testing.assert_array_equal(bufs["X"], model.rollout(x0, U))
    total, parts = cost.evaluate(model.rollout(x0, U), U)
    for i, name in enumerate(cost.names):
        np.testing.assert_allclose(bufs["parts"][:, i], parts[name], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bufs["total"], total, rtol=1e-12)
    # Without storing the states (2-slot scratch) the costs are the same, bit for bit.
    parts_kept, total_kept = bufs["parts"].copy(), bufs["total"].copy()
    _run(kernels, which, model, x0, U, np.zeros((H, 2)), np.ones((H, 2)), 0, False, bufs,
         store=False)  # fmt: skip
    np.testing.assert_array_equal(bufs["parts"], parts_kept)
    np.testing.assert_array_equal(bufs["total"], total_kept)
    np.testing.assert_array_equal(bufs["scratch"][:, H % 2], bufs["X"][:, H])


def test_fused_kernel_samples_like_the_sampler(rng: np.random.Generator) -> None:
    model, cost, kernels, bufs = _fused_setup()
    K, H = bufs["total"].size, 7
    x0 = np.array([0.0, 0.0, 0.2, -0.1])
    nominal = rng.uniform(-1, 1, (H, 2))
    sigma = rng.uniform(0.2, 1.5, (H, 2))
    U = np.zeros((K, H, 2))
    _run(kernels, "parallel", model, x0, U, nominal, sigma, 77, True, bufs)
    ref = np.empty_like(U)
    seeded_gaussian_proposals(nominal, np.uint64(77), sigma, model.action_low,
                              model.action_high, 1, ref)  # fmt: skip
    np.testing.assert_array_equal(U, ref)
    np.testing.assert_allclose(bufs["total"], cost(model.rollout(x0, ref), ref), rtol=1e-12)


def test_fused_kernel_nan_cost_is_inf(rng: np.random.Generator) -> None:
    model, _, kernels, bufs = _fused_setup()
    K, H = bufs["total"].size, 7
    x0 = np.zeros(4)
    U = np.clip(rng.standard_normal((K, H, 2)), -1, 1)
    x0_blowup = np.array([0.0, 0.0, 2e6, 0.0])  # the user stage returns NaN
    _run(kernels, "serial", model, x0_blowup, U, np.zeros((H, 2)), np.ones((H, 2)), 0, False,
         bufs)  # fmt: skip
    assert np.all(bufs["total"] == np.inf)
    _run(kernels, "serial", model, x0, U, np.zeros((H, 2)), np.ones((H, 2)), 0, False, bufs)
    assert np.all(np.isfinite(bufs["total"]))


@pytest.mark.skipif(in_no_jit_rerun(), reason="already the no-JIT run")
def test_kernels_without_jit() -> None:
    result = run_without_jit("tests/core/test_kernels.py", "-k", "reference or reproducible")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_fused_kernel_expands_knots_like_the_sampler_and_expand_knots(
    rng: np.random.Generator,
) -> None:
    """Protects: with knots the fused kernel draws the knots the sampling kernel draws,
    expands them in place (``expand_knots``'s rows, to the bit) and scores the expansion."""
    from planners.knots import KnotSchedule

    model, cost, kernels, bufs = _fused_setup()
    K, H, M = bufs["total"].size, 7, 3
    knots = KnotSchedule(M, H, "cubic")
    x0 = np.array([0.0, 0.0, 0.2, -0.1])
    nominal = rng.uniform(-1, 1, (M, 2))
    sigma = rng.uniform(0.2, 1.5, (M, 2))
    Z, U = np.zeros((K, M, 2)), np.zeros((K, H, 2))
    _run(kernels, "parallel", model, x0, U, nominal, sigma, 5, True, bufs, Z=Z,
         basis=knots.basis)  # fmt: skip
    ref_Z = np.empty_like(Z)
    seeded_gaussian_proposals(nominal, np.uint64(5), sigma, model.action_low,
                              model.action_high, 1, ref_Z)  # fmt: skip
    np.testing.assert_array_equal(Z, ref_Z)
    ref_U = knots.expand(ref_Z, model.action_low, model.action_high, np.empty_like(U))
    np.testing.assert_array_equal(U, ref_U)
    assert not np.allclose(U[:, 1:], U[:, :-1])  # really expanded, not held
    np.testing.assert_allclose(bufs["total"], cost(model.rollout(x0, ref_U), ref_U), rtol=1e-12)


def test_same_values_is_array_equal_on_strided_batches() -> None:
    X = np.random.default_rng(3).standard_normal((6, 5, 14))
    Q = X[..., :7]  # the strided view a clearance cache is asked about
    key = np.array(Q, order="C")
    assert same_values(key, Q)
    for k, t, i in [(0, 0, 0), (5, 4, 6), (2, 3, 1)]:
        changed = key.copy()
        changed[k, t, i] = np.nextafter(changed[k, t, i], np.inf)  # one ulp
        assert not same_values(changed, Q)
    with_nan = key.copy()
    with_nan[1, 1, 1] = np.nan
    assert not same_values(with_nan, with_nan)  # NaN is never equal, as in np.array_equal
    assert not same_values(key[:, :4], Q)
    assert same_values(key[0], Q[0]) and not same_values(key[0], Q[1])  # 2-D: array_equal


def test_key_copy_is_a_contiguous_copy_of_any_view() -> None:
    X = np.random.default_rng(6).standard_normal((6, 5, 14))
    X[2, 3, 4] = np.nan
    for view in (X[..., :7], X[::2, 1:, 3:], X, X[..., :7].astype(np.float32), X[0, :, :7]):
        key = key_copy(view)
        assert key.flags.c_contiguous and key.dtype == view.dtype and key.shape == view.shape
        assert np.array_equal(key, view, equal_nan=True)
        assert not np.shares_memory(key, X)  # a copy: the caller may change X after
    key, before = key_copy(X[..., :7]), X[0, 0, 0]
    X[0, 0, 0] = 99.0
    assert key[0, 0, 0] == before


def test_scale_and_shift_is_the_numpy_expression_to_the_bit() -> None:
    rng = np.random.default_rng(4)
    y = rng.standard_normal((9, 16, 7)).astype(np.float32)
    scale, shift = rng.uniform(0.1, 3.0, 7), rng.uniform(-2.0, 2.0, 7)
    out = np.empty((9, 16, 7))
    scale_and_shift(y, scale, shift, out)
    np.testing.assert_array_equal(out, y * scale + shift)


def test_squared_distance_to_plan_is_the_einsum() -> None:
    rng = np.random.default_rng(5)
    U, plan = rng.standard_normal((11, 16, 7)), rng.standard_normal((16, 7))
    out = np.empty(11)
    for steps in (0, 1, 8, 16):
        squared_distance_to_plan(U, plan, steps, out)
        diff = U[:, :steps] - plan[None, :steps]
        np.testing.assert_allclose(out, np.einsum("khj,khj->k", diff, diff), rtol=1e-14)


def test_all_finite_is_numpys_isfinite_all() -> None:
    rng = np.random.default_rng(5)
    for shape in [(0,), (1,), (14,), (1, 17, 14), (16, 7)]:
        base = rng.standard_normal(shape)
        assert all_finite(base)
        for bad in (np.nan, np.inf, -np.inf):
            for where in {0, base.size // 2, base.size - 1} if base.size else set():
                arr = base.copy()
                arr.reshape(-1)[where] = bad
                assert not all_finite(arr)
    huge = np.array([np.finfo(np.float64).max, -np.finfo(np.float64).max, 5e-324, -0.0])
    assert all_finite(huge)  # the largest, the smallest subnormal, minus zero: finite
    strided = np.zeros((4, 6))
    strided[0, 1] = np.nan
    assert all_finite(strided[:, ::2]) and not all_finite(strided[:, 1::2])  # NumPy's path
    assert not all_finite(np.array([1.0, np.inf], np.float32))


def test_perturb_and_clip_is_the_numpy_expression_to_the_bit() -> None:
    from imle_mpc.core.kernels.perturb import perturb_and_clip

    rng = np.random.default_rng(12)
    K, H, nu, first, P = 23, 5, 3, 8, 7
    out = 2.0 * rng.standard_normal((K, H, nu))
    out[2, 1, 0] = np.nan
    parents = 2.0 * rng.standard_normal((P, H, nu))
    parents[3, 4, 2] = np.nan
    noise = rng.standard_normal((K - first, H, nu))
    low, high = np.array([-1.0, -2.0, -0.5]), np.array([1.0, 0.5, 3.0])
    expected = out.copy()
    expected[:first] = np.clip(out[:first], low, high)
    for r in range(K - first):
        expected[first + r] = np.clip(parents[r % P] + 0.3 * noise[r], low, high)
    perturb_and_clip(out, first, parents, noise, 0.3, low, high)
    np.testing.assert_array_equal(out, expected)
    assert np.isnan(out[2, 1, 0]) and np.isnan(out[first + 3, 4, 2])
    assert (out[~np.isnan(out)] >= -2.0).all()


def test_rollout_kernels_copy_the_starts_and_refuse_buffers_of_another_shape() -> None:
    """The start copy is a loop (no slice assignment: see kernels.rollout); the unchecked
    path still raises on a start or a buffer of the wrong size instead of writing past it."""
    from dynamics import PointMass2D

    model = PointMass2D(mass=1.0, drag=0.5, dt=0.1, max_force=2.0)
    U = np.random.default_rng(1).uniform(-1.0, 1.0, (5, 4, 2))
    x0 = np.array([0.5, -1.0, 0.2, 0.1])
    X = model.rollout_unchecked(x0, U, np.full((5, 5, 4), np.nan))
    np.testing.assert_array_equal(X[:, 0], np.broadcast_to(x0, (5, 4)))
    np.testing.assert_array_equal(X, model.rollout(x0, U))
    starts = np.arange(20.0).reshape(5, 4)
    np.testing.assert_array_equal(model.rollout_from_states(starts, U)[:, 0], starts)
    with pytest.raises(ValueError, match="disagree"):
        model.rollout_unchecked(x0[:3], U, np.empty((5, 5, 4)))
    with pytest.raises(ValueError, match="disagree"):
        model.rollout_unchecked(x0, U, np.empty((4, 5, 4)))
    with pytest.raises(ValueError, match="disagree"):
        model._multi_start_kernel(starts[:4], U, model.params_vector(), np.empty((5, 5, 4)))


def test_shift_scale_to_float32_is_the_normalizers_numpy_expression_to_the_bit() -> None:
    """Protects: the condition rows' one pass gives ``float32((x - c) * s)`` per entry, each
    vector's entries with their own centre and scale, and flags NaN and +-inf."""
    from imle_mpc.core.kernels.affine import shift_scale_to_float32

    rng = np.random.default_rng(12)
    d = 7
    center, scale = rng.normal(size=d), 10.0 ** rng.uniform(-3, 3, size=d)
    for rows, n in ((1, 4 * d), (9, 2 * d), (3, d)):
        x = rng.normal(size=(rows, n)) * 10.0 ** rng.uniform(-5, 5, size=(rows, n))
        out = np.empty((rows, n), np.float32)
        assert shift_scale_to_float32(x, center, scale, out)
        expected = ((x.reshape(rows, -1, d) - center) * scale).astype(np.float32)
        np.testing.assert_array_equal(out, expected.reshape(rows, n))
        for bad in (np.nan, np.inf, -np.inf):
            y = x.copy()
            y[rows - 1, n - 1] = bad
            assert not shift_scale_to_float32(y, center, scale, out)


def test_the_member_rollout_kernel_copies_the_start_and_refuses_another_shape() -> None:
    from dynamics import PointMass2D
    from imle_mpc.core.kernels.members import make_member_rollout_kernel

    model = PointMass2D(mass=1.0, drag=0.5, dt=0.1, max_force=2.0)
    kernel = make_member_rollout_kernel(type(model).step_function)
    rows = np.stack([model.params_vector(), model.params_vector()])
    U = np.random.default_rng(2).uniform(-1.0, 1.0, (5, 4, 2))
    x0 = np.array([0.5, -1.0, 0.2, 0.1])
    X = np.full((2, 5, 5, 4), np.nan)
    kernel(x0, U, rows, X)
    np.testing.assert_array_equal(X[1], model.rollout(x0, U))  # row 1: the model's params
    for bad_x0, bad_X in ((x0[:3], X), (x0, X[:1]), (x0, X[:, :4])):
        with pytest.raises(ValueError, match="disagree"):
            kernel(bad_x0, U, rows, np.ascontiguousarray(bad_X))
