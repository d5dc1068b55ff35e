"""The chunk flow: exact density, bounded latents, calibration, training and checkpoints."""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from flow_toy import SMALL_FLOW, TOY_FLOW_TRAIN, make_toy_dataset

from imle_mpc.core.errors import InputError
from imle_mpc.core.protocols import BoundedLatent, ChunkDecoder, ChunkDensity, ChunkGenerator
from imle_mpc.learn.config import FlowConfig, TrainConfig
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.flow import (
    ChunkFlow,
    DensityCalibration,
    FlowHistory,
    build_box_flow,
    held_out_episodes,
    load_flow,
    save_flow,
    train_flow,
)
from imle_mpc.learn.imle import CheckpointError, load_generator
from imle_mpc.learn.pairs import MinMaxNormalizer, build_training_pairs
from imle_mpc.tasks import load_task


def _untrained(H: int, nu: int, obs_dim: int, low: list[float], high: list[float]) -> ChunkFlow:
    config = FlowConfig(horizon=H, action_horizon=1, transforms=3, bins=5, hidden=(16,))
    net = build_box_flow(config, obs_dim, nu, torch.Generator().manual_seed(3))
    # Weights well away from zero, so the splines are far from the identity.
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.7, generator=torch.Generator().manual_seed(p.numel()))
    return ChunkFlow(net, config, MinMaxNormalizer.identity(obs_dim), MinMaxNormalizer(low, high))


def _held_out_pairs(dataset: DemoDataset, flow: ChunkFlow) -> tuple[np.ndarray, np.ndarray]:
    held = held_out_episodes(dataset, flow.config.held_out_fraction, 0)
    subset = DemoDataset(tuple(dataset.episodes[i] for i in held), dataset.meta)
    pairs = build_training_pairs(subset, flow.obs_horizon, flow.horizon)
    return pairs.obs, pairs.actions


# ---- the density is exact -----------------------------------------------------------


def test_log_prob_is_the_change_of_variables_of_the_whole_map() -> None:
    """log p(U) = log u(z) + log |det dz/dU| with u the uniform density on [-1, 1]^D and
    dz/dU the Jacobian of normalisation and flow together (autograd, float64)."""
    flow = _untrained(H=2, nu=2, obs_dim=3, low=[-1.0, -2.0], high=[3.0, 0.0])
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(1, 3))
    U = rng.uniform([-1.0, -2.0], [3.0, 0.0], size=(5, 2, 2))
    got = flow.log_prob(obs, U)
    net = copy.deepcopy(flow.network).double()
    center = torch.tensor(flow.action_normalizer.center).repeat(2)
    half = torch.tensor(flow.action_normalizer.half_range).repeat(2)
    c = torch.tensor(obs, dtype=torch.float64)

    def latent(u: torch.Tensor) -> torch.Tensor:
        return net.bijection(c)(((u - center) / half)[None])[0]

    for k in range(U.shape[0]):
        J = torch.autograd.functional.jacobian(latent, torch.tensor(U[k].ravel()))
        expected = -4 * math.log(2.0) + torch.linalg.slogdet(J)[1].item()
        assert got[k] == pytest.approx(expected, abs=2e-3)


def test_density_integrates_to_one_over_the_action_range(toy_dataset: DemoDataset) -> None:
    config = FlowConfig(horizon=1, action_horizon=1, transforms=3, bins=6, hidden=(32, 32))
    flow, _ = train_flow(toy_dataset, config, TOY_FLOW_TRAIN, progress=False)
    low, high = flow.action_normalizer.low, flow.action_normalizer.high
    n = 300
    axes = [lo + (np.arange(n) + 0.5) / n * (hi - lo) for lo, hi in zip(low, high, strict=True)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 1, 2)
    for obs in ([0.1, 0.0], [0.6, 0.4]):
        lp = flow.log_prob(np.array([obs]), grid)
        assert lp.max() > 2.0  # trained: far from the uniform density (log 1/area ~ 0.1)
        assert np.exp(lp).sum() * np.prod(high - low) / n**2 == pytest.approx(1.0, abs=5e-3)
    # Outside the demonstrated range the density is zero.
    outside = np.array([[[high[0] + 0.1, low[1]]], [[np.nan, 0.0]]])
    assert np.all(flow.log_prob(np.array([[0.1, 0.0]]), outside) == -np.inf)


# ---- bounded latents ----------------------------------------------------------------


def test_every_latent_in_the_box_decodes_in_support(
    trained_flow: tuple[ChunkFlow, FlowHistory],
) -> None:
    flow, _ = trained_flow
    assert isinstance(flow, BoundedLatent) and flow.latent_bound == 1.0
    D = flow.latent_dim
    corners = np.array(list(itertools.product((-1.0, 1.0), repeat=D)))
    rng = np.random.default_rng(0)
    inside = rng.uniform(-1.0, 1.0, size=(500, D))
    beyond = 3.0 * rng.uniform(-1.0, 1.0, size=(100, D))  # clipped onto the box
    obs = np.array([[0.5, 0.2]])
    for z in (corners, inside, beyond):
        chunks = flow.decode(obs, z)
        span = flow.action_normalizer.high - flow.action_normalizer.low
        assert np.all(chunks >= flow.action_normalizer.low - 1e-6 * span)
        assert np.all(chunks <= flow.action_normalizer.high + 1e-6 * span)
        assert np.all(np.isfinite(flow.log_prob(obs, chunks)))  # and inside the support
    sampled = flow.sample(obs, 64, rng)
    assert np.all(np.isfinite(flow.log_prob(obs, sampled)))


def test_encode_inverts_decode_and_the_flow_plugs_in_as_a_generator(
    trained_flow: tuple[ChunkFlow, FlowHistory], toy_dataset: DemoDataset
) -> None:
    flow, _ = trained_flow
    assert isinstance(flow, ChunkGenerator | ChunkDecoder) and isinstance(flow, ChunkDensity)
    obs, U = _held_out_pairs(toy_dataset, flow)
    z = flow.encode(obs, U)
    assert np.all(np.abs(z) <= 1.0)
    back = flow.decode_batch(obs, z[:, None])[:, 0]
    np.testing.assert_allclose(back, U, atol=2e-4)


# ---- calibration ----------------------------------------------------------------------


def test_threshold_is_a_quantile_of_the_held_out_densities(
    trained_flow: tuple[ChunkFlow, FlowHistory], toy_dataset: DemoDataset
) -> None:
    flow, _ = trained_flow
    calibration = flow.calibration
    assert calibration is not None
    held = held_out_episodes(toy_dataset, SMALL_FLOW.held_out_fraction, TOY_FLOW_TRAIN.seed)
    modes = toy_dataset.meta["modes"]
    assert {modes[i] for i in held} == {"up", "down"}  # per route
    assert calibration.episodes == len(held) < len(toy_dataset.episodes)
    # The calibration is the held-out episodes' densities, not the training ones'.
    obs, U = _held_out_pairs(toy_dataset, flow)
    np.testing.assert_array_equal(calibration.log_probs, np.sort(flow.log_prob(obs, U)))
    n = calibration.size
    for q in (0.02, 0.1, 0.5):
        below = calibration.fraction_below(flow.threshold(q))
        assert q - 2.0 / n <= below <= q
    with pytest.raises(ValueError, match="quantile"):
        flow.threshold(1.5)


def test_calibration_refuses_infinite_densities_and_round_trips() -> None:
    calibration = DensityCalibration.of([3.0, 1.0, 2.0], episodes=1)
    assert calibration.log_probs.tolist() == [1.0, 2.0, 3.0]
    back = DensityCalibration.from_dict(calibration.to_dict())
    assert back.episodes == 1 and np.array_equal(back.log_probs, calibration.log_probs)
    with pytest.raises(ValueError, match="finite"):
        DensityCalibration.of([1.0, -np.inf], episodes=1)


# ---- training and checkpoints ---------------------------------------------------------


def test_training_lowers_the_nll(trained_flow: tuple[ChunkFlow, FlowHistory]) -> None:
    _, history = trained_flow
    assert history.epochs == TOY_FLOW_TRAIN.epochs
    assert history.loss[-1] < history.loss[0] - 3.0
    assert history.held_out_nll[-1] < history.held_out_nll[0] - 3.0


def test_training_is_seeded_and_leaves_the_global_rng_alone(toy_dataset: DemoDataset) -> None:
    state = torch.get_rng_state()
    quick = TrainConfig(epochs=2, batch_size=64, seed=4)
    a, _ = train_flow(toy_dataset, SMALL_FLOW, quick, progress=False)
    b, _ = train_flow(toy_dataset, SMALL_FLOW, quick, progress=False)
    sa, sb = a.network.state_dict(), b.network.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(state, torch.get_rng_state())


def test_resume_continues_where_the_run_stopped(tmp_path: Path, toy_dataset: DemoDataset) -> None:
    config = TrainConfig(epochs=4, batch_size=64, warmup_steps=2, seed=1, checkpoint_every=1)
    straight, hist = train_flow(
        toy_dataset, SMALL_FLOW, config, out_dir=tmp_path / "a", progress=False
    )

    def crash(epoch: int, _: FlowHistory) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_flow(toy_dataset, SMALL_FLOW, config, tmp_path / "b", progress=False, callback=crash)
    resumed, hist_b = train_flow(
        toy_dataset, SMALL_FLOW, config, tmp_path / "b", resume=True, progress=False
    )
    assert hist_b.loss == hist.loss
    for k, v in straight.network.state_dict().items():
        assert torch.equal(v, resumed.network.state_dict()[k]), k
    other = FlowConfig(**{**SMALL_FLOW.to_dict(), "noise_std": 0.05})
    with pytest.raises(CheckpointError, match="flow_config"):
        train_flow(toy_dataset, other, config, tmp_path / "b", resume=True, progress=False)


def test_checkpoint_round_trip(
    tmp_path: Path, trained_flow: tuple[ChunkFlow, FlowHistory], toy_dataset: DemoDataset
) -> None:
    flow, _ = trained_flow
    path = save_flow(flow, tmp_path)
    assert path.name == "flow.safetensors"
    loaded = load_flow(tmp_path)
    obs, U = _held_out_pairs(toy_dataset, flow)
    np.testing.assert_array_equal(loaded.log_prob(obs, U), flow.log_prob(obs, U))
    np.testing.assert_array_equal(
        loaded.sample(obs[0], 8, np.random.default_rng(1)),
        flow.sample(obs[0], 8, np.random.default_rng(1)),
    )
    assert loaded.config == flow.config and loaded.trained_for == flow.trained_for
    assert loaded.calibration is not None and flow.calibration is not None
    np.testing.assert_array_equal(loaded.calibration.log_probs, flow.calibration.log_probs)
    with pytest.raises(CheckpointError, match="holds a 'chunk_flow'"):
        load_generator(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated"):
        load_flow(path)


def test_a_flow_for_another_model_is_refused(
    tmp_path: Path, trained_flow: tuple[ChunkFlow, FlowHistory]
) -> None:
    flow, _ = trained_flow
    save_flow(flow, tmp_path)
    assert load_task("nav_one_obstacle").load_flow(tmp_path).nu == 2  # dt 0.1, box +-2: fits
    with pytest.raises(InputError, match=r"the flow .* was trained for dt=0.1 s but the planner"):
        load_task("pendulum").load_flow(tmp_path)


def test_too_few_episodes_to_calibrate_is_a_clear_error() -> None:
    one = make_toy_dataset(n_demos=1)
    with pytest.raises(ValueError, match="at least 2 demonstration episodes"):
        train_flow(one, SMALL_FLOW, TOY_FLOW_TRAIN, progress=False)
