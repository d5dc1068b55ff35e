"""What every chunk model's file holds besides its own extras, written and read once.

The generator (``imle_generator``) and the flow (``chunk_flow``) store the same things in
the library's model file (``imle_mpc.learn.model_file``): their shape config (under a
key of their own), the training config, ``obs_dim``/``nu``, the normalisation
statistics and what they were trained for. ``chunk_model_meta`` writes those entries;
``read_chunk_model`` reads and checks them and loads the weights into a network built
from the config. A kind's own entries (the flow's calibration) are the caller's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from torch import nn

from imle_mpc.learn.chunk_model import ChunkModel
from imle_mpc.learn.config import TrainConfig
from imle_mpc.learn.model_file import (
    CheckpointError,
    ModelKind,
    check_weights,
    read_model_file,
    read_statistics,
)
from imle_mpc.learn.pairs import MinMaxNormalizer
from imle_mpc.learn.records import JsonRecord
from imle_mpc.learn.trained_for import TrainedFor

__all__ = ["ChunkModelFile", "chunk_model_meta", "read_chunk_model"]

C = TypeVar("C")
N = TypeVar("N", bound=nn.Module)


@dataclass(frozen=True)
class ChunkModelFile(Generic[C, N]):
    """A chunk model's file, read and checked (``read_chunk_model``).

    Attributes:
        path: the file read.
        meta: its whole metadata (for the kind's own entries).
        network: the network built from ``config``, with the file's weights loaded.
        config: the model's shape config.
        train_config: how it was trained (None if the file does not say).
        obs_normalizer: normalisation of one observation (dim ``obs_dim``).
        action_normalizer: normalisation of one action (dim ``nu``).
        trained_for: the model the demonstrations came from.
    """

    path: Path
    meta: dict[str, Any]
    network: N
    config: C
    train_config: TrainConfig | None
    obs_normalizer: MinMaxNormalizer
    action_normalizer: MinMaxNormalizer
    trained_for: TrainedFor


def chunk_model_meta(model: ChunkModel, config_key: str, config: JsonRecord) -> dict[str, Any]:
    """The metadata entries every chunk model's file has: ``config`` (the model's shape
    config) goes under ``config_key``."""
    train = model.train_config
    return {
        "obs_dim": model.obs_dim,
        "nu": model.nu,
        config_key: config.to_dict(),
        "train_config": None if train is None else train.to_dict(),
        "obs_normalizer": model.obs_normalizer.to_dict(),
        "action_normalizer": model.action_normalizer.to_dict(),
        "trained_for": model.trained_for.to_dict(),
    }


def read_chunk_model(
    path: str | Path,
    kind: ModelKind,
    config_key: str,
    parse_config: Callable[[dict[str, Any]], C],
    build_network: Callable[[C, int, int], N],
) -> ChunkModelFile[C, N]:
    """Read a chunk model's file: its entries checked, its weights in a new network.

    Checks, in order: the file (``read_model_file``: exists, complete, kind, version);
    the configs and statistics parse; the statistics' dims match ``obs_dim``/``nu``;
    every weight is present with the shape the config implies, and finite. Each
    failure raises ``CheckpointError`` naming the file and ``kind.retrain``.

    Args:
        path: the ``.safetensors`` file, or a training ``out_dir`` holding ``kind.default_file``.
        kind: the kind of model expected.
        config_key: the metadata key of the shape config.
        parse_config: ``config_cls.from_dict``.
        build_network: ``(config, obs_dim, nu) -> network`` with freshly made weights.
    """
    retrain = kind.retrain
    p, meta, tensors = read_model_file(path, kind)
    try:
        config = parse_config(meta[config_key])
        train = meta.get("train_config")
        train_config = None if train is None else TrainConfig.from_dict(train)
        obs_norm = read_statistics(p, meta, "obs_normalizer", MinMaxNormalizer.from_dict, retrain)
        act_norm = read_statistics(
            p, meta, "action_normalizer", MinMaxNormalizer.from_dict, retrain
        )
        obs_dim, nu = int(meta["obs_dim"]), int(meta["nu"])
        trained_for = TrainedFor.from_meta(meta.get("trained_for") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{p} has invalid metadata: {exc!r}. {retrain}") from exc
    if obs_norm.dim != obs_dim or act_norm.dim != nu:
        raise CheckpointError(
            f"{p}: normalisation statistics have dims obs={obs_norm.dim}, action={act_norm.dim} "
            f"but the {kind.noun} has obs_dim={obs_dim}, nu={nu}. {retrain}"
        )
    network = build_network(config, obs_dim, nu)
    check_weights(p, network.state_dict(), tensors, retrain)
    network.load_state_dict(tensors)
    return ChunkModelFile(p, meta, network, config, train_config, obs_norm, act_norm, trained_for)
