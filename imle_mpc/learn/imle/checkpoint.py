"""Generator checkpoints (safetensors + JSON metadata) and resumable training state.

A generator checkpoint is ONE ``.safetensors`` file in the library's model file
format (``imle_mpc.learn.model_file``): the EMA weights as tensors, and in the
header metadata a JSON document with the format version, the library version,
both configs, ``obs_dim``/``nu``, the normalisation statistics and what the
generator was trained for. Every file is written atomically.

The training state (``training_state.pt``) holds what resuming needs
(``save_training_state`` / ``load_training_state``, shared with the flow).
"""

from __future__ import annotations

from pathlib import Path

import torch

from imle_mpc.learn.config import GeneratorConfig, TrainConfig
from imle_mpc.learn.imle.generator import IMLEGenerator
from imle_mpc.learn.imle.networks import build_network
from imle_mpc.learn.model_file import (
    FORMAT_VERSION,
    CheckpointError,
    ModelKind,
    check_weights,
    load_training_state,
    read_model_file,
    read_statistics,
    save_training_state,
    write_model_file,
)
from imle_mpc.learn.pairs import MinMaxNormalizer
from imle_mpc.learn.trained_for import TrainedFor

GENERATOR_FILE = "generator.safetensors"
TRAINING_STATE_FILE = "training_state.pt"
_RETRAIN = "Retrain it with train_generator(...) or re-download it."
GENERATOR_KIND = ModelKind(
    kind="imle_generator",
    noun="generator",
    default_file=GENERATOR_FILE,
    retrain=_RETRAIN,
    missing="Train one with train_generator(..., out_dir=...) or pass the path of an "
    "existing .safetensors file.",
)

__all__ = [
    "FORMAT_VERSION",
    "GENERATOR_FILE",
    "GENERATOR_KIND",
    "TRAINING_STATE_FILE",
    "CheckpointError",
    "load_generator",
    "load_training_state",
    "save_generator",
    "save_training_state",
]


def save_generator(generator: IMLEGenerator, path: str | Path) -> Path:
    """Write ``generator`` to ``path`` (a ``.safetensors`` file) atomically.

    Args:
        generator: the generator to save (its network's weights as they are).
        path: target file; a directory means ``path / "generator.safetensors"``.

    Returns:
        The file written.
    """
    train = generator.train_config
    meta = {
        "obs_dim": generator.obs_dim,
        "nu": generator.nu,
        "generator_config": generator.config.to_dict(),
        "train_config": None if train is None else train.to_dict(),
        "obs_normalizer": generator.obs_normalizer.to_dict(),
        "action_normalizer": generator.action_normalizer.to_dict(),
        "trained_for": generator.trained_for.to_dict(),
    }
    return write_model_file(path, GENERATOR_KIND, generator.network.state_dict(), meta)


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> IMLEGenerator:
    """Load a generator saved by ``save_generator`` / ``train_generator``.

    Checks, in order: the file exists; it is a complete safetensors file; it
    is an imle_mpc generator of this format version; the configs are valid;
    every weight is present with the shape the configs imply; the weights and
    the normalisation statistics are finite. Each failure
    raises ``CheckpointError`` naming the file and what to do.

    Args:
        path: the ``.safetensors`` file, or a training ``out_dir`` holding
            ``generator.safetensors``.
        device: torch device to run the generator on.
    """
    p, meta, tensors = read_model_file(path, GENERATOR_KIND)
    try:
        config = GeneratorConfig.from_dict(meta["generator_config"])
        train = meta.get("train_config")
        train_config = None if train is None else TrainConfig.from_dict(train)
        obs_norm = read_statistics(p, meta, "obs_normalizer", MinMaxNormalizer.from_dict, _RETRAIN)
        act_norm = read_statistics(
            p, meta, "action_normalizer", MinMaxNormalizer.from_dict, _RETRAIN
        )
        obs_dim, nu = int(meta["obs_dim"]), int(meta["nu"])
        trained_for = TrainedFor.from_meta(meta.get("trained_for") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{p} has invalid metadata: {exc!r}. {_RETRAIN}") from exc
    if obs_norm.dim != obs_dim or act_norm.dim != nu:
        raise CheckpointError(
            f"{p}: normalisation statistics have dims obs={obs_norm.dim}, action={act_norm.dim} "
            f"but the model has obs_dim={obs_dim}, nu={nu}. {_RETRAIN}"
        )
    net = build_network(config, obs_dim, nu)
    check_weights(p, net.state_dict(), tensors, _RETRAIN)
    net.load_state_dict(tensors)
    return IMLEGenerator(
        net, config, obs_norm, act_norm, device=device, train_config=train_config,
        trained_for=trained_for,
    )  # fmt: skip
