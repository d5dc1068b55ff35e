"""Flow checkpoints: the library's model file (safetensors + JSON) of kind ``chunk_flow``.

Besides the weights: the flow's and the training's configs, ``obs_dim``/``nu``, the
normalisation statistics (the action range is the flow's support), what it was
trained for (dt, observation, actuator box, task) and the calibration (the
held-out demonstrations' log-densities the threshold is a quantile of).
"""

from __future__ import annotations

from pathlib import Path

import torch

from imle_mpc.learn.chunk_model_file import chunk_model_meta, read_chunk_model
from imle_mpc.learn.config import FlowConfig
from imle_mpc.learn.flow.calibration import DensityCalibration
from imle_mpc.learn.flow.chunk_flow import ChunkFlow
from imle_mpc.learn.flow.network import build_box_flow
from imle_mpc.learn.model_file import (
    ModelKind,
    read_statistics,
    write_model_file,
)

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
    calibration = flow.calibration
    meta = {
        **chunk_model_meta(flow, "flow_config", flow.config),
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
    file = read_chunk_model(path, FLOW_KIND, "flow_config", FlowConfig.from_dict, build_box_flow)
    calibration = (
        None
        if file.meta.get("calibration") is None
        else read_statistics(
            file.path, file.meta, "calibration", DensityCalibration.from_dict, _RETRAIN
        )
    )
    return ChunkFlow(
        file.network,
        file.config,
        file.obs_normalizer,
        file.action_normalizer,
        calibration,
        device,
        file.train_config,
        file.trained_for,
    )
