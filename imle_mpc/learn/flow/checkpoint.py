"""Flow checkpoints: the library's model file (safetensors + JSON) of kind ``chunk_flow``.

Besides the weights: the flow's and the training's configs, ``obs_dim``/``nu``, the
normalisation statistics (the action range is the flow's support), what it was
trained for (dt, observation, actuator box, task) and the calibration (the
held-out demonstrations' log-densities the threshold is a quantile of).
"""

from __future__ import annotations

from pathlib import Path

import torch

from imle_mpc.learn.config import FlowConfig, TrainConfig
from imle_mpc.learn.flow.calibration import DensityCalibration
from imle_mpc.learn.flow.chunk_flow import ChunkFlow
from imle_mpc.learn.flow.network import build_box_flow
from imle_mpc.learn.model_file import (
    CheckpointError,
    ModelKind,
    check_weights,
    read_model_file,
    read_statistics,
    write_model_file,
)
from imle_mpc.learn.pairs import MinMaxNormalizer
from imle_mpc.learn.trained_for import TrainedFor

FLOW_FILE = "flow.safetensors"
_RETRAIN = "Retrain it with train_flow(...) (imle-mpc train --model flow)."
FLOW_KIND = ModelKind(
    kind="chunk_flow",
    noun="flow",
    default_file=FLOW_FILE,
    retrain=_RETRAIN,
    missing="Train one with `imle-mpc train --model flow --out DIR` (train_flow(..., "
    "out_dir=...)) or pass the path of an existing .safetensors file.",
)


def save_flow(flow: ChunkFlow, path: str | Path) -> Path:
    """Write ``flow`` to ``path`` (a ``.safetensors`` file; a directory: its ``flow.safetensors``).

    Returns:
        The file written.
    """
    train = flow.train_config
    calibration = flow.calibration
    meta = {
        "obs_dim": flow.obs_dim,
        "nu": flow.nu,
        "flow_config": flow.config.to_dict(),
        "train_config": None if train is None else train.to_dict(),
        "obs_normalizer": flow.obs_normalizer.to_dict(),
        "action_normalizer": flow.action_normalizer.to_dict(),
        "trained_for": flow.trained_for.to_dict(),
        "calibration": None if calibration is None else calibration.to_dict(),
    }
    return write_model_file(path, FLOW_KIND, flow.network.state_dict(), meta)


def load_flow(path: str | Path, device: str | torch.device = "cpu") -> ChunkFlow:
    """Load a flow saved by ``save_flow`` / ``train_flow``.

    The same checks as ``load_generator`` (file, format, kind, version, configs, weight
    names and shapes, finite weights and statistics); each failure raises
    ``CheckpointError`` naming the file and what to do.

    Args:
        path: the ``.safetensors`` file, or a training ``out_dir`` holding ``flow.safetensors``.
        device: torch device to run the flow on.
    """
    p, meta, tensors = read_model_file(path, FLOW_KIND)
    try:
        config = FlowConfig.from_dict(meta["flow_config"])
        train = meta.get("train_config")
        train_config = None if train is None else TrainConfig.from_dict(train)
        obs_norm = read_statistics(p, meta, "obs_normalizer", MinMaxNormalizer.from_dict, _RETRAIN)
        act_norm = read_statistics(
            p, meta, "action_normalizer", MinMaxNormalizer.from_dict, _RETRAIN
        )
        calibration = (
            None
            if meta.get("calibration") is None
            else read_statistics(p, meta, "calibration", DensityCalibration.from_dict, _RETRAIN)
        )
        obs_dim, nu = int(meta["obs_dim"]), int(meta["nu"])
        trained_for = TrainedFor.from_meta(meta.get("trained_for") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{p} has invalid metadata: {exc!r}. {_RETRAIN}") from exc
    if obs_norm.dim != obs_dim or act_norm.dim != nu:
        raise CheckpointError(
            f"{p}: normalisation statistics have dims obs={obs_norm.dim}, action={act_norm.dim} "
            f"but the flow has obs_dim={obs_dim}, nu={nu}. {_RETRAIN}"
        )
    net = build_box_flow(config, obs_dim, nu)
    check_weights(p, net.state_dict(), tensors, _RETRAIN)
    net.load_state_dict(tensors)
    return ChunkFlow(
        net, config, obs_norm, act_norm, calibration, device, train_config, trained_for
    )
