"""Checkpoints round-trip exactly, and broken or foreign files give errors that say what to do."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from imle_toy import SMALL_GEN
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import imle_mpc
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.imle import (
    FORMAT_VERSION,
    CheckpointError,
    GeneratorConfig,
    IMLEGenerator,
    TrainConfig,
    load_generator,
    save_generator,
    train_generator,
)
from imle_mpc.learn.imle.checkpoint import GENERATOR_FILE


@pytest.fixture(scope="module")
def small_generator(bimodal_dataset: DemoDataset) -> IMLEGenerator:
    config = TrainConfig(epochs=2, batch_size=32, seed=0)
    gen, _ = train_generator(bimodal_dataset, SMALL_GEN, config, progress=False)
    return gen


def _metadata(path: Path) -> dict:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(json.loads(raw[8 : 8 + n])["__metadata__"]["imle_mpc"])


def _rewrite(path: Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    path.write_bytes(st_save(tensors, metadata={"imle_mpc": json.dumps(meta)}))


def test_round_trip_gives_identical_samples(tmp_path: Path, small_generator: IMLEGenerator) -> None:
    path = save_generator(small_generator, tmp_path / "gen.safetensors")
    loaded = load_generator(path)
    obs = np.array([[0.0], [0.0]])
    a = small_generator.sample(obs, 64, np.random.default_rng(7))
    b = loaded.sample(obs, 64, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert loaded.config == small_generator.config
    assert loaded.train_config == small_generator.train_config
    assert loaded.obs_normalizer == small_generator.obs_normalizer
    assert loaded.action_normalizer == small_generator.action_normalizer
    meta = _metadata(path)
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["library_version"] == imle_mpc.__version__
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary behind


def test_training_writes_a_loadable_checkpoint(
    tmp_path: Path, bimodal_dataset: DemoDataset
) -> None:
    config = TrainConfig(epochs=2, batch_size=64, seed=0)
    gen, _ = train_generator(bimodal_dataset, SMALL_GEN, config, out_dir=tmp_path, progress=False)
    assert {p.name for p in tmp_path.iterdir()} == {
        "generator.safetensors",
        "training_state.pt",
        "history.json",
    }
    loaded = load_generator(tmp_path)  # a directory means its generator.safetensors
    obs = np.zeros((2, 1))
    np.testing.assert_array_equal(
        gen.sample(obs, 4, np.random.default_rng(0)),
        loaded.sample(obs, 4, np.random.default_rng(0)),
    )


def test_missing_file_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no generator checkpoint at .*nothing\.safetensors"):
        load_generator(tmp_path / "nothing.safetensors")


@pytest.mark.parametrize("keep", [0.5, 0.95, 4 / 1e9])
def test_truncated_file_names_the_file_and_says_retrain(
    tmp_path: Path, small_generator: IMLEGenerator, keep: float
) -> None:
    path = save_generator(small_generator, tmp_path / "gen.safetensors")
    raw = path.read_bytes()
    path.write_bytes(raw[: max(int(len(raw) * keep), 4)])
    with pytest.raises(CheckpointError) as info:
        load_generator(path)
    message = str(info.value)
    assert str(path) in message
    assert "truncated" in message and "Retrain" in message


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "gen.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(CheckpointError, match=r"gen\.safetensors"):
        load_generator(path)


def test_wrong_format_version_is_refused(tmp_path: Path, small_generator: IMLEGenerator) -> None:
    path = save_generator(small_generator, tmp_path / "gen.safetensors")
    meta = _metadata(path)
    meta["format_version"] = 999
    _rewrite(path, st_load(path.read_bytes()), meta)
    with pytest.raises(CheckpointError, match=r"format version 999.*reads format version 1"):
        load_generator(path)


def test_other_library_version_loads_with_a_warning(
    tmp_path: Path, small_generator: IMLEGenerator
) -> None:
    path = save_generator(small_generator, tmp_path / "gen.safetensors")
    meta = _metadata(path)
    meta["library_version"] = "0.0.1"
    _rewrite(path, st_load(path.read_bytes()), meta)
    with pytest.warns(UserWarning, match="0.0.1"):
        load_generator(path)


def test_wrong_shapes_are_listed(tmp_path: Path, small_generator: IMLEGenerator) -> None:
    path = save_generator(small_generator, tmp_path / "gen.safetensors")
    tensors = st_load(path.read_bytes())
    meta = _metadata(path)
    # The metadata says horizon 8; weights of a horizon-4 network do not fit.
    other = GeneratorConfig(horizon=4, action_horizon=4, mlp_hidden=(64, 64))
    small = IMLEGenerator.untrained(other, obs_dim=1, nu=2)
    _rewrite(path, {k: v.contiguous() for k, v in small.network.state_dict().items()}, meta)
    with pytest.raises(CheckpointError, match=r"wrong shapes \[z_in.weight"):
        load_generator(path)
    # A missing weight is named too.
    tensors.pop("out.bias")
    _rewrite(path, tensors, meta)
    with pytest.raises(CheckpointError, match=r"missing weights.*out\.bias"):
        load_generator(path)


def test_metadata_that_contradicts_itself_is_refused(
    tmp_path: Path, small_generator: IMLEGenerator
) -> None:
    path = save_generator(small_generator, tmp_path / "gen.safetensors")
    meta = _metadata(path)
    meta["obs_dim"] = 3
    _rewrite(path, st_load(path.read_bytes()), meta)
    with pytest.raises(CheckpointError, match="obs_dim=3"):
        load_generator(path)
    meta["obs_dim"] = 1
    meta["generator_config"]["horizon"] = 0
    _rewrite(path, st_load(path.read_bytes()), meta)
    with pytest.raises(CheckpointError, match="horizon"):
        load_generator(path)


def test_a_plain_safetensors_file_is_not_a_generator(tmp_path: Path) -> None:
    path = tmp_path / GENERATOR_FILE
    path.write_bytes(st_save({"w": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match="not an imle_mpc generator checkpoint"):
        load_generator(tmp_path)


def test_crash_during_save_keeps_the_previous_file(
    tmp_path: Path, small_generator: IMLEGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_generator(small_generator, tmp_path / "gen.safetensors")
    before = path.read_bytes()

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("imle_mpc.core.io.os.replace", explode)
    with pytest.raises(OSError, match="disk full"):
        save_generator(small_generator, path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_file_and_tensor(
    tmp_path: Path, small_generator: IMLEGenerator, bad: float
) -> None:
    path = save_generator(small_generator, tmp_path / "gen.safetensors")
    tensors, meta = st_load(path.read_bytes()), _metadata(path)
    tensors["out.bias"][0] = bad  # one entry is enough to make every chunk NaN
    _rewrite(path, tensors, meta)
    with pytest.raises(
        CheckpointError, match=r"gen\.safetensors: weights \['out\.bias'\] contain NaN/inf"
    ):
        load_generator(path)
    all_nan = {k: torch.full_like(v, float("nan")) for k, v in tensors.items()}
    _rewrite(path, all_nan, meta)
    with pytest.raises(CheckpointError, match="contain NaN/inf"):
        load_generator(path)


@pytest.mark.parametrize("key", ["obs_normalizer", "action_normalizer"])
@pytest.mark.parametrize("bad", [float("nan"), float("-inf"), None])
def test_non_finite_normalisers_are_refused_naming_which(
    tmp_path: Path, small_generator: IMLEGenerator, key: str, bad: float | None
) -> None:
    path = save_generator(small_generator, tmp_path / "gen.safetensors")
    meta = _metadata(path)
    meta[key]["low"][0] = bad
    _rewrite(path, st_load(path.read_bytes()), meta)
    with pytest.raises(
        CheckpointError, match=rf"gen\.safetensors: the {key} statistics are invalid"
    ):
        load_generator(path)


def test_a_training_state_with_nan_weights_is_refused(
    tmp_path: Path, small_generator: IMLEGenerator
) -> None:
    from imle_mpc.learn.imle.checkpoint import load_training_state, save_training_state

    weights = {k: v.clone() for k, v in small_generator.network.state_dict().items()}
    weights["out.weight"][0, 0] = float("nan")
    path = save_training_state(tmp_path / "training_state.pt", {"network": weights, "ema": {}})
    with pytest.raises(CheckpointError, match=r"the network weights \['out\.weight'\] contain NaN"):
        load_training_state(path)
