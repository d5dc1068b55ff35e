"""The RS-IMLE step, training pairs, normalisation, determinism, resume and configs."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from imle_toy import SMALL_GEN, make_bimodal_dataset

from imle_mpc.learn.demos import DemoDataset, Episode
from imle_mpc.learn.imle import (
    CheckpointError,
    GeneratorConfig,
    MinMaxNormalizer,
    TrainConfig,
    TrainHistory,
    build_training_pairs,
    load_generator,
    rs_imle_loss,
    train_generator,
)
from imle_mpc.learn.imle.checkpoint import TRAINING_STATE_FILE
from imle_mpc.learn.imle.train import ema_decay, learning_rate

QUICK = TrainConfig(epochs=3, batch_size=32, lr=1e-3, warmup_steps=2, seed=0)


# ---- the rejection step ---------------------------------------------------------------


def test_rejection_skips_close_candidates_and_pulls_the_nearest_remaining() -> None:
    targets = torch.zeros(2, 2)
    cand = torch.tensor(
        [
            # point 0: one candidate within epsilon (0.01), then 0.2, then 0.5 away
            [[0.01, 0.0], [0.0, 0.2], [0.5, 0.0]],
            # point 1: every candidate within epsilon -> skipped
            [[0.0, 0.01], [0.02, 0.0], [0.0, 0.0]],
        ],
        requires_grad=True,
    )
    stats = rs_imle_loss(cand, targets, epsilon=0.03)
    # The 0.01 candidate is rejected; the nearest remaining one (0.2) is pulled.
    assert stats.loss.item() == pytest.approx(0.2)
    assert stats.loss_sum == pytest.approx(0.2)
    assert (stats.num_points, stats.num_used, stats.num_skipped) == (2, 1, 1)
    assert stats.num_rejected == 4 and stats.num_candidates == 6
    stats.loss.backward()
    assert cand.grad is not None
    grad = cand.grad.abs().sum(dim=-1)
    # Only the chosen candidate receives a gradient; the skipped point none at all.
    assert grad[0, 1] > 0
    assert grad[0, 0] == 0 and grad[0, 2] == 0
    assert torch.all(grad[1] == 0)


def test_all_points_skipped_gives_zero_loss_without_grad() -> None:
    cand = torch.zeros(3, 4, 2, requires_grad=True)
    stats = rs_imle_loss(cand, torch.zeros(3, 2), epsilon=0.1)
    assert stats.num_skipped == 3 and stats.num_used == 0
    assert stats.loss.item() == 0.0 and not stats.loss.requires_grad


def test_epsilon_zero_is_plain_imle() -> None:
    cand = torch.tensor([[[0.3, 0.0], [0.1, 0.0]]])
    stats = rs_imle_loss(cand, torch.zeros(1, 2), epsilon=0.0)
    assert stats.loss.item() == pytest.approx(0.1) and stats.num_rejected == 0


def test_training_counts_skipped_points_and_does_not_step(tmp_path: Path) -> None:
    ds = make_bimodal_dataset(n_demos=4, n_up_only=0, length=3)
    # epsilon larger than any distance: every candidate is rejected, every point skipped.
    config = TrainConfig(epochs=2, batch_size=5, epsilon=1e6, seed=0)
    gen, history = train_generator(ds, SMALL_GEN, config, progress=False)
    n_pairs = ds.num_steps
    assert history.skipped == [n_pairs, n_pairs]
    assert history.rejected_fraction == [1.0, 1.0]
    assert all(math.isnan(v) for v in history.loss)  # nothing averaged in
    assert history.skipped_steps == [math.ceil(n_pairs / 5)] * 2
    # No optimiser step was taken: the weights are the initial ones.
    fresh, _ = train_generator(
        ds, SMALL_GEN, TrainConfig(epochs=1, batch_size=5, epsilon=1e6, seed=0), progress=False
    )
    for a, b in zip(
        gen.network.state_dict().values(), fresh.network.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


# ---- data -----------------------------------------------------------------------------


def test_training_pairs_pad_history_and_chunk() -> None:
    obs = np.arange(4, dtype=float)[:, None] * 10  # 0, 10, 20, 30
    actions = np.arange(4, dtype=float)[:, None]  # 0, 1, 2, 3
    ds = DemoDataset((Episode(obs, obs.copy(), actions),))
    pairs = build_training_pairs(ds, obs_horizon=2, horizon=3)
    assert pairs.obs.shape == (4, 2, 1) and pairs.actions.shape == (4, 3, 1)
    # Step 0: the history repeats the first observation; steps 2, 3: the chunk
    # repeats the last action.
    np.testing.assert_array_equal(pairs.obs[:, :, 0], [[0, 0], [0, 10], [10, 20], [20, 30]])
    np.testing.assert_array_equal(
        pairs.actions[:, :, 0], [[0, 1, 2], [1, 2, 3], [2, 3, 3], [3, 3, 3]]
    )


def test_training_pairs_do_not_cross_episodes() -> None:
    ep_a = Episode(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros((2, 1)))
    ep_b = Episode(np.ones((2, 1)), np.ones((2, 1)), np.ones((2, 1)))
    pairs = build_training_pairs(DemoDataset((ep_a, ep_b)), obs_horizon=3, horizon=4)
    np.testing.assert_array_equal(pairs.actions[1, :, 0], [0, 0, 0, 0])
    np.testing.assert_array_equal(pairs.obs[2, :, 0], [1, 1, 1])


def test_normalisation_round_trip_and_constant_dimension() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(200, 3)) * [1.0, 100.0, 0.0] + [0.0, -5.0, 7.0]  # dim 2 constant
    norm = MinMaxNormalizer.fit(data)
    y = norm.normalize(data)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y[:, :2].min(axis=0), -1.0)
    np.testing.assert_allclose(y[:, :2].max(axis=0), 1.0)
    np.testing.assert_array_equal(y[:, 2], 0.0)  # zero range: centred, not divided by 0
    np.testing.assert_allclose(norm.unnormalize(y), data, rtol=0, atol=1e-12)
    again = MinMaxNormalizer.from_dict(norm.to_dict())
    assert again == norm  # JSON round trip is exact


def test_normaliser_rejects_bad_statistics() -> None:
    with pytest.raises(ValueError, match="low must be <= high"):
        MinMaxNormalizer(np.array([1.0]), np.array([0.0]))
    with pytest.raises(ValueError, match="NaN"):
        MinMaxNormalizer(np.array([np.nan]), np.array([0.0]))


# ---- schedule, EMA, determinism ------------------------------------------------------


def test_learning_rate_warms_up_then_decays_to_zero() -> None:
    cfg = TrainConfig(lr=1.0, warmup_steps=10)
    lrs = [learning_rate(k, cfg, total_steps=110) for k in range(110)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    assert lrs[-1] < 1e-3
    assert ema_decay(0, cfg) == 0.0 and 0.9 < ema_decay(1000, cfg) <= cfg.ema_max_decay


def test_same_seed_same_weights_other_seed_other_weights(bimodal_dataset: DemoDataset) -> None:
    state = torch.get_rng_state()
    a, _ = train_generator(bimodal_dataset, SMALL_GEN, QUICK, progress=False)
    b, _ = train_generator(bimodal_dataset, SMALL_GEN, QUICK, progress=False)
    c, _ = train_generator(
        bimodal_dataset, SMALL_GEN, TrainConfig(**{**QUICK.to_dict(), "seed": 1}), progress=False
    )
    sa, sb, sc = (g.network.state_dict() for g in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    # Training never touched torch's global RNG.
    assert torch.equal(state, torch.get_rng_state())


def test_sampling_uses_only_the_given_rng(bimodal_dataset: DemoDataset) -> None:
    gen, _ = train_generator(bimodal_dataset, SMALL_GEN, QUICK, progress=False)
    obs = np.zeros((2, 1))
    x = gen.sample(obs, 16, np.random.default_rng(5))
    y = gen.sample(obs, 16, np.random.default_rng(5))
    z = gen.sample(obs, 16, np.random.default_rng(6))
    np.testing.assert_array_equal(x, y)
    assert not np.array_equal(x, z)


# ---- resume ---------------------------------------------------------------------------


class _CrashError(RuntimeError):
    pass


def test_resume_continues_from_the_saved_epoch(
    tmp_path: Path, bimodal_dataset: DemoDataset
) -> None:
    config = TrainConfig(
        epochs=4, batch_size=32, lr=1e-3, warmup_steps=2, seed=3, checkpoint_every=1
    )
    straight, straight_hist = train_generator(
        bimodal_dataset, SMALL_GEN, config, out_dir=tmp_path / "a", progress=False
    )

    def crash_after_two(epoch: int, history: TrainHistory) -> None:
        if epoch == 1:
            raise _CrashError("simulated crash after epoch 2")

    with pytest.raises(_CrashError):
        train_generator(
            bimodal_dataset,
            SMALL_GEN,
            config,
            out_dir=tmp_path / "b",
            progress=False,
            callback=crash_after_two,
        )
    seen: list[int] = []
    resumed, hist = train_generator(
        bimodal_dataset,
        SMALL_GEN,
        config,
        out_dir=tmp_path / "b",
        resume=True,
        progress=False,
        callback=lambda epoch, _: seen.append(epoch),
    )
    assert seen == [2, 3]  # only the missing epochs ran
    assert hist.epochs == 4
    assert hist.loss == straight_hist.loss  # same data order, latents and steps
    for k, v in straight.network.state_dict().items():
        assert torch.equal(v, resumed.network.state_dict()[k]), k
    # The saved generator is the final EMA model.
    loaded = load_generator(tmp_path / "b")
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    np.testing.assert_array_equal(
        loaded.sample(np.zeros((2, 1)), 8, rng_a), straight.sample(np.zeros((2, 1)), 8, rng_b)
    )


def test_resume_refuses_other_settings_or_data(tmp_path: Path) -> None:
    ds = make_bimodal_dataset(n_demos=4, n_up_only=0, length=3)
    train_generator(ds, SMALL_GEN, QUICK, out_dir=tmp_path, progress=False)
    other = TrainConfig(**{**QUICK.to_dict(), "lr": 5e-3})
    with pytest.raises(CheckpointError, match="lr"):
        train_generator(ds, SMALL_GEN, other, out_dir=tmp_path, resume=True, progress=False)
    bigger = make_bimodal_dataset(n_demos=6, n_up_only=0, length=3)
    with pytest.raises(CheckpointError, match="dataset differs"):
        train_generator(bigger, SMALL_GEN, QUICK, out_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="no training state"):
        train_generator(
            ds, SMALL_GEN, QUICK, out_dir=tmp_path / "empty", resume=True, progress=False
        )
    (tmp_path / TRAINING_STATE_FILE).write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(CheckpointError, match="truncated"):
        train_generator(ds, SMALL_GEN, QUICK, out_dir=tmp_path, resume=True, progress=False)


def test_resume_needs_out_dir(bimodal_dataset: DemoDataset) -> None:
    with pytest.raises(ValueError, match="out_dir"):
        train_generator(bimodal_dataset, SMALL_GEN, QUICK, resume=True, progress=False)


# ---- configs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "kwargs", "field"),
    [
        (GeneratorConfig, {"architecture": "transformer"}, "architecture"),
        (GeneratorConfig, {"obs_horizon": 0}, "obs_horizon"),
        (GeneratorConfig, {"horizon": 0}, "horizon"),
        (GeneratorConfig, {"action_horizon": 20, "horizon": 16}, "action_horizon"),
        (GeneratorConfig, {"mlp_hidden": ()}, "mlp_hidden"),
        (GeneratorConfig, {"mlp_hidden": (64, 0)}, "mlp_hidden"),
        (GeneratorConfig, {"mlp_activation": "tanh"}, "mlp_activation"),
        (GeneratorConfig, {"unet_kernel_size": 4}, "unet_kernel_size"),
        (GeneratorConfig, {"unet_down_dims": (30, 64)}, "unet_groups"),
        (GeneratorConfig, {"architecture": "unet", "horizon": 10}, "horizon"),
        (GeneratorConfig, {"unet_timestep_embed_dim": 3}, "unet_timestep_embed_dim"),
        (TrainConfig, {"epochs": 0}, "epochs"),
        (TrainConfig, {"batch_size": 0}, "batch_size"),
        (TrainConfig, {"num_candidates": 0}, "num_candidates"),
        (TrainConfig, {"epsilon": -0.1}, "epsilon"),
        (TrainConfig, {"lr": 0.0}, "lr"),
        (TrainConfig, {"lr": float("nan")}, "lr"),
        (TrainConfig, {"weight_decay": -1.0}, "weight_decay"),
        (TrainConfig, {"warmup_steps": -1}, "warmup_steps"),
        (TrainConfig, {"grad_clip": 0.0}, "grad_clip"),
        (TrainConfig, {"ema_power": 0.0}, "ema_power"),
        (TrainConfig, {"ema_max_decay": 1.0}, "ema_max_decay"),
        (TrainConfig, {"seed": -1}, "seed"),
        (TrainConfig, {"checkpoint_every": 0}, "checkpoint_every"),
        (TrainConfig, {"device": ""}, "device"),
    ],
)
def test_bad_config_value_names_the_field(factory: type, kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        factory(**kwargs)


def test_configs_are_frozen_and_round_trip() -> None:
    gen = GeneratorConfig(mlp_hidden=[32, 32])  # type: ignore[arg-type]
    assert gen.mlp_hidden == (32, 32)  # lists become tuples (hashable)
    with pytest.raises(AttributeError):
        gen.horizon = 4  # type: ignore[misc]
    assert GeneratorConfig.from_dict(gen.to_dict()) == gen
    train = TrainConfig(grad_clip=float("inf"))
    assert TrainConfig.from_dict(train.to_dict()) == train
    with pytest.raises(ValueError, match="no fields"):
        TrainConfig.from_dict({"epochz": 3})


def test_the_trained_generator_samples_from_the_ema_weights(
    tmp_path: Path, bimodal_dataset: DemoDataset
) -> None:
    """Protects: the EMA of the weights being what the generator samples with (returned
    and saved), not the last optimiser iterate (which the training state also keeps)."""
    from imle_mpc.learn.imle.checkpoint import TRAINING_STATE_FILE, load_training_state

    config = TrainConfig(epochs=3, batch_size=32, lr=1e-2, warmup_steps=2, seed=0)
    gen, _ = train_generator(bimodal_dataset, SMALL_GEN, config, out_dir=tmp_path, progress=False)
    state = load_training_state(tmp_path / TRAINING_STATE_FILE)
    sampled = gen.network.state_dict()
    assert all(torch.equal(sampled[k].cpu(), state["ema"][k].cpu()) for k in sampled)
    assert not all(torch.equal(sampled[k].cpu(), state["network"][k].cpu()) for k in sampled)
    saved = load_generator(tmp_path / "generator.safetensors").network.state_dict()
    assert all(torch.equal(saved[k].cpu(), state["ema"][k].cpu()) for k in saved)
