"""Generator checkpoints (safetensors + JSON metadata) and resumable training state.

A generator checkpoint is ONE ``.safetensors`` file: the EMA weights as
tensors, and in the header metadata (key ``imle_mpc``) a JSON document with the
format version, the library version, both configs, ``obs_dim``/``nu`` and the
normalisation statistics. Every file is written atomically, so a crash while
saving leaves the previous file intact and never a half-written one.

The training state (``training_state.pt``) holds what resuming needs: online
and EMA weights, optimiser state, step/epoch counters, the torch RNG state and
the history so far.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from imle_mpc.core.io import write_atomic
from imle_mpc.learn.config import GeneratorConfig, TrainConfig
from imle_mpc.learn.imle.data import MinMaxNormalizer
from imle_mpc.learn.imle.generator import IMLEGenerator
from imle_mpc.learn.imle.networks import build_network
from imle_mpc.learn.imle.trained_for import TrainedFor
from imle_mpc.learn.tensor_file import (
    CheckpointError,
    FileKind,
    check_finite,
    load_tensors,
    read_tensor_file,
    save_tensor_file,
)

FORMAT_VERSION = 1
"""Bump when the checkpoint layout changes; ``load_generator`` refuses other versions."""

GENERATOR_FILE = "generator.safetensors"
TRAINING_STATE_FILE = "training_state.pt"
_RETRAIN = "Retrain it with train_generator(...) or re-download it."
GENERATOR_KIND = FileKind(
    "imle_generator", "generator", "an IMLE generator", FORMAT_VERSION, _RETRAIN
)
"""How generator files are named in messages (``imle_mpc.learn.tensor_file``)."""

__all__ = [
    "FORMAT_VERSION",
    "GENERATOR_FILE",
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
    target = Path(path)
    if target.is_dir():
        target = target / GENERATOR_FILE
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
    return save_tensor_file(target, generator.network.state_dict(), meta, GENERATOR_KIND)


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
    p = Path(path)
    if p.is_dir():
        p = p / GENERATOR_FILE
    if not p.is_file():
        raise CheckpointError(
            f"no generator checkpoint at {p}. Train one with train_generator(..., out_dir=...) "
            "or pass the path of an existing .safetensors file."
        )
    meta, raw = read_tensor_file(p, GENERATOR_KIND)
    try:
        config = GeneratorConfig.from_dict(meta["generator_config"])
        train = meta.get("train_config")
        train_config = None if train is None else TrainConfig.from_dict(train)
        obs_norm = _normalizer(p, meta, "obs_normalizer")
        act_norm = _normalizer(p, meta, "action_normalizer")
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
    net.load_state_dict(load_tensors(p, raw, GENERATOR_KIND, net.state_dict()))
    return IMLEGenerator(
        net, config, obs_norm, act_norm, device=device, train_config=train_config,
        trained_for=trained_for,
    )  # fmt: skip


def _normalizer(path: Path, meta: dict[str, Any], key: str) -> MinMaxNormalizer:
    """The normaliser ``meta[key]``; a CheckpointError naming the file and the key if bad."""
    try:
        return MinMaxNormalizer.from_dict(meta[key])
    except ValueError as exc:  # NaN/inf (or null) statistics, low > high, wrong shapes
        raise CheckpointError(
            f"{path}: the {key} statistics are invalid: {exc} {_RETRAIN}"
        ) from exc


def save_training_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Write a resumable training state atomically (torch's zip format)."""
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **state}, buffer)
    payload = buffer.getvalue()
    return write_atomic(path, lambda fh: fh.write(payload))


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read a training state written by ``save_training_state``; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(
            f"cannot resume: no training state at {p}. Train without resume=True first."
        )
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises a variety of errors for broken zips
        raise CheckpointError(
            f"{p} is not a readable training state ({type(exc).__name__}: {exc}); it may be "
            "truncated. Delete it and train from scratch (resume=False)."
        ) from exc
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        version = state.get("format_version") if isinstance(state, dict) else None
        raise CheckpointError(
            f"{p} has training-state format version {version!r}; this library reads "
            f"{FORMAT_VERSION}. Train from scratch (resume=False)."
        )
    for key in ("network", "ema"):
        weights = state.get(key)
        if isinstance(weights, dict):
            check_finite(p, weights, GENERATOR_KIND, f"the {key} weights")
    return state
