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

from imle_mpc.learn.chunk_model_file import chunk_model_meta, read_chunk_model
from imle_mpc.learn.config import GeneratorConfig
from imle_mpc.learn.imle.generator import IMLEGenerator
from imle_mpc.learn.imle.networks import build_network
from imle_mpc.learn.model_file import (
    FORMAT_VERSION,
    CheckpointError,
    ModelKind,
    load_training_state,
    save_training_state,
    write_model_file,
)

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
    meta = chunk_model_meta(generator, "generator_config", generator.config)
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
    file = read_chunk_model(
        path, GENERATOR_KIND, "generator_config", GeneratorConfig.from_dict, build_network
    )
    return IMLEGenerator(
        file.network,
        file.config,
        file.obs_normalizer,
        file.action_normalizer,
        device=device,
        train_config=file.train_config,
        trained_for=file.trained_for,
    )
