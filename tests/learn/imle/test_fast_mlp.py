"""The generator's NumPy path: the torch path's outputs, when it is used, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imle_mpc.core.blas import blas_thread_count, blas_threads, blas_threads_controllable
from imle_mpc.learn.config import Activation
from imle_mpc.learn.imle import GeneratorConfig, IMLEGenerator
from imle_mpc.learn.imle.fast_mlp import NUMPY_MAX_BATCH
from imle_mpc.tasks import make_task

SHIPPED = ("nav_one_obstacle", "nav_trap", "arm_reach_around", "panda_reach_around", "push_block")
BATCHES = (1, 2, 16, 33, 100, 255, 256)
FLOAT32_TOL = 4e-6
"""Both paths run float32, and their matrix products sum in the order of whichever BLAS
kernel the CPU gets (torch's and NumPy's differ): a 256-term dot product carries about
sqrt(256) * 6e-8 = 1e-6 of relative rounding, and three layers compound it. Measured: at
most 1e-6 on most machines, 1.4e-6 (3.5e-6 relative, one element of 512) on one CI
machine (2026-12-02), where 1e-6 failed. A wrong weight, bias or activation moves the
outputs by orders of magnitude more."""


def _histories(gen: IMLEGenerator, rng: np.random.Generator, batch: int) -> np.ndarray:
    """Observation histories across the demonstrated range and a tenth beyond it."""
    low, high = gen.obs_normalizer.low, gen.obs_normalizer.high
    pad = 0.1 * (high - low)
    return rng.uniform(low - pad, high + pad, size=(batch, gen.obs_horizon, gen.obs_dim))


def _normalised(gen: IMLEGenerator, chunks: np.ndarray) -> np.ndarray:
    norm = gen.action_normalizer
    return (chunks - norm.center) / norm.half_range


def _both_paths(gen: IMLEGenerator, call: object) -> tuple[np.ndarray, np.ndarray]:
    gen.set_inference("torch")
    reference = call(gen)  # type: ignore[operator]
    gen.set_inference("numpy")
    fast = call(gen)  # type: ignore[operator]
    gen.set_inference("auto")
    return _normalised(gen, reference), _normalised(gen, fast)


@pytest.mark.parametrize("task", SHIPPED)
def test_the_numpy_path_gives_the_shipped_generators_torch_outputs(task: str) -> None:
    gen = make_task(task).load_generator()  # the EMA weights the planners use
    rng = np.random.default_rng(0)
    for batch in BATCHES:
        hist = _histories(gen, rng, batch)
        z = rng.standard_normal((batch, 2, gen.latent_dim))
        reference, fast = _both_paths(gen, lambda g, h=hist, z=z: g.decode_batch(h, z))
        np.testing.assert_allclose(fast, reference, rtol=FLOAT32_TOL, atol=FLOAT32_TOL)
        # one condition row broadcast over the batch (the sampler's pass)
        reference, fast = _both_paths(gen, lambda g, h=hist[0], z=z[:, 0]: g.decode(h, z))
        np.testing.assert_allclose(fast, reference, rtol=FLOAT32_TOL, atol=FLOAT32_TOL)


def test_sampling_draws_the_same_latents_on_both_paths() -> None:
    gen = make_task("nav_trap").load_generator()
    hist = _histories(gen, np.random.default_rng(1), 1)[0]
    reference, fast = _both_paths(gen, lambda g: g.sample(hist, 16, np.random.default_rng(7)))
    np.testing.assert_allclose(fast, reference, rtol=FLOAT32_TOL, atol=FLOAT32_TOL)


@pytest.mark.parametrize("activation", ["silu", "mish", "relu"])
def test_every_activation_and_uneven_widths_agree(activation: Activation) -> None:
    config = GeneratorConfig(horizon=8, mlp_hidden=(64, 32, 48), mlp_activation=activation)
    gen = IMLEGenerator.untrained(config, obs_dim=3, nu=2, seed=3)
    rng = np.random.default_rng(2)
    hist = rng.uniform(-1.5, 1.5, size=(20, 2, 3))
    z = rng.standard_normal((20, 3, gen.latent_dim))
    reference, fast = _both_paths(gen, lambda g: g.decode_batch(hist, z))
    np.testing.assert_allclose(fast, reference, rtol=FLOAT32_TOL, atol=FLOAT32_TOL)


def test_weights_changed_in_place_are_picked_up(trained: tuple) -> None:
    """An EMA update (or load_state_dict) after the first fast pass: the next one sees it."""
    gen = trained[0].to("cpu")  # a copy: the session's fixture stays as trained
    gen.set_inference("numpy")
    hist = np.zeros((4, gen.obs_horizon, gen.obs_dim))
    z = np.random.default_rng(3).standard_normal((4, 1, gen.latent_dim))
    before = gen.decode_batch(hist, z)
    with torch.no_grad():
        for p in gen.network.parameters():
            p.mul_(0.9).add_(0.01)  # what an EMA step does to the weights
    reference, fast = _both_paths(gen, lambda g: g.decode_batch(hist, z))
    np.testing.assert_allclose(fast, reference, rtol=FLOAT32_TOL, atol=FLOAT32_TOL)
    assert not np.allclose(_normalised(gen, before), fast, atol=1e-3)


def test_auto_takes_numpy_for_small_cpu_batches_of_the_mlp_only() -> None:
    gen = make_task("nav_trap").load_generator()
    assert gen.inference == "auto"
    assert gen.uses_numpy_path(1) == blas_threads_controllable()
    assert gen.uses_numpy_path(NUMPY_MAX_BATCH) == blas_threads_controllable()
    assert not gen.uses_numpy_path(NUMPY_MAX_BATCH + 1)
    gen.set_inference("torch")
    assert not gen.uses_numpy_path(1)
    gen.set_inference("numpy")
    assert gen.uses_numpy_path(10 * NUMPY_MAX_BATCH)
    assert gen.to("cpu").inference == "numpy"  # a copy keeps the choice
    unet = IMLEGenerator.untrained(
        GeneratorConfig(architecture="unet", unet_down_dims=(8, 16), unet_groups=4, horizon=8),
        obs_dim=3,
        nu=2,
    )
    assert not unet.uses_numpy_path(1)


def test_bad_inference_choices_name_the_fix() -> None:
    gen = make_task("nav_trap").load_generator()
    with pytest.raises(ValueError, match="one of"):
        gen.set_inference("fast")
    unet_config = GeneratorConfig(
        architecture="unet", unet_down_dims=(8, 16), unet_groups=4, horizon=8
    )
    unet = IMLEGenerator.untrained(unet_config, obs_dim=3, nu=2)
    with pytest.raises(ValueError, match="inference='torch'"):
        unet.set_inference("numpy")
    with pytest.raises(ValueError, match="inference='torch'"):
        IMLEGenerator(
            unet.network, unet_config, unet.obs_normalizer, unet.action_normalizer,
            inference="numpy",
        )  # fmt: skip


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_a_cuda_generator_runs_on_torch() -> None:
    gen = make_task("nav_trap").load_generator().to("cuda")
    assert not gen.uses_numpy_path(1)
    with pytest.raises(ValueError, match="inference='torch'"):
        gen.set_inference("numpy")


@pytest.mark.skipif(not blas_threads_controllable(), reason="NumPy's BLAS is not OpenBLAS")
def test_blas_threads_are_held_inside_and_given_back() -> None:
    before = blas_thread_count()
    with blas_threads(2):
        assert blas_thread_count() == 2
        with blas_threads(1):
            assert blas_thread_count() == 1
        assert blas_thread_count() == 2
    assert blas_thread_count() == before
    with pytest.raises(ValueError, match="int >= 1"):
        blas_threads(0)


@pytest.mark.skipif(not blas_threads_controllable(), reason="NumPy's BLAS is not OpenBLAS")
def test_a_scope_closing_on_one_thread_leaves_another_threads_scope_in_force() -> None:
    # OpenBLAS's count is process-wide: when scope A closes while B (another thread)
    # is still open, B must keep one thread (a per-scope restore put 2 back under B)
    import threading

    a_open, b_open, a_closed = threading.Event(), threading.Event(), threading.Event()
    seen_in_b: list[int | None] = []

    def scope_a() -> None:
        with blas_threads(1):
            a_open.set()
            b_open.wait(5)
        a_closed.set()

    def scope_b() -> None:
        a_open.wait(5)
        with blas_threads(1):
            b_open.set()
            a_closed.wait(5)
            seen_in_b.append(blas_thread_count())

    with blas_threads(2):  # the machine's count before the scopes
        threads = [threading.Thread(target=scope_a), threading.Thread(target=scope_b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert seen_in_b == [1]
        assert blas_thread_count() == 2  # both closed: the count from before is back


@pytest.mark.skipif(not blas_threads_controllable(), reason="NumPy's BLAS is not OpenBLAS")
def test_the_numpy_pass_runs_its_products_on_the_calling_thread() -> None:
    gen = make_task("nav_trap").load_generator()
    hist = np.zeros((8, gen.obs_horizon, gen.obs_dim))
    z = np.zeros((8, 1, gen.latent_dim))
    gen.decode_batch(hist, z)  # builds the NumPy pass
    mlp = gen._numpy_mlp
    assert mlp is not None
    seen: list[int | None] = []
    activation = mlp._act

    def spy(x: np.ndarray, tmp: np.ndarray) -> None:  # runs between the products
        seen.append(blas_thread_count())
        activation(x, tmp)

    mlp._act = spy
    with blas_threads(2):  # the caller's setting, e.g. the machine's default
        gen.decode_batch(hist, z)
        assert blas_thread_count() == 2
    assert seen and set(seen) == {1}


def test_a_generator_shared_by_threads_gives_each_its_own_results() -> None:
    from concurrent.futures import ThreadPoolExecutor

    gen = make_task("nav_trap").load_generator()
    gen.set_inference("numpy")
    rng = np.random.default_rng(4)
    inputs = [
        (_histories(gen, rng, 33), rng.standard_normal((33, 1, gen.latent_dim))) for _ in range(4)
    ]
    expected = [gen.decode_batch(h, z) for h, z in inputs]

    def work(i: int) -> bool:  # the same batch shape in every thread: the same buffers if shared
        h, z = inputs[i]
        return all(np.array_equal(gen.decode_batch(h, z), expected[i]) for _ in range(200))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(work, range(4)))


@pytest.mark.parametrize("film_rows", [1, 9])
def test_the_fused_film_and_silu_passes_are_numpys_ufuncs_to_the_bit(film_rows: int) -> None:
    """Protects: one pass for bias + FiLM (+ the negation) and one for the SiLU's divide give
    NumPy's in-place ufuncs' numbers exactly (the torch comparison above allows 4e-6)."""
    from imle_mpc.learn.imle.fast_mlp import _bias_and_film, _divide_by_one_plus

    rng = np.random.default_rng(6)
    B, W, total, start = 9, 20, 50, 30
    h = (40 * rng.standard_normal((B, W))).astype(np.float32)
    h[0, :3] = [-100.0, 100.0, 0.0]  # exp(-x) overflows to inf / is 1 / is 0
    bias = rng.standard_normal(W).astype(np.float32)
    film = rng.standard_normal((film_rows, 2 * total)).astype(np.float32)
    expected = h.copy()
    expected += bias
    expected *= film[:, start : start + W]
    expected += film[:, total + start : total + start + W]
    negated = np.empty_like(h)
    _bias_and_film(h, bias, film, start, total, negated)
    np.testing.assert_array_equal(h, expected)
    np.testing.assert_array_equal(negated, -expected)
    with np.errstate(over="ignore"):
        e = np.exp(negated)
    expected_silu = expected / (e + np.float32(1.0))
    _divide_by_one_plus(h, e)
    np.testing.assert_array_equal(h, expected_silu)
    assert h.dtype == np.float32


def test_the_fused_embedding_and_film_bias_passes_are_numpys_ufuncs_to_the_bit() -> None:
    """Protects: the embedding's bias + negation and the FiLM layer's bias + (1 + scale)
    passes give NumPy's in-place ufuncs' numbers exactly."""
    from imle_mpc.learn.imle.fast_mlp import _bias_and_negate, _film_bias

    rng = np.random.default_rng(8)
    B, W, total = 7, 30, 12
    film = (30 * rng.standard_normal((B, W))).astype(np.float32)
    bias = rng.standard_normal(W).astype(np.float32)
    expected = film.copy()
    expected += bias
    expected[:, :total] += 1.0
    _film_bias(film, bias, total)
    np.testing.assert_array_equal(film, expected)
    h = (30 * rng.standard_normal((B, W))).astype(np.float32)
    want = h + bias
    negated = np.empty_like(h)
    _bias_and_negate(h, bias, negated)
    np.testing.assert_array_equal(h, want)
    np.testing.assert_array_equal(negated, -want)
    assert film.dtype == h.dtype == negated.dtype == np.float32
