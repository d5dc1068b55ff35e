"""A conditional normalizing flow over action chunks (CNF): proposals, bounded latents, density.

``train_flow`` fits a ``ChunkFlow`` to a ``DemoDataset`` with zuko's coupling
splines on the box [-1, 1]^(H*nu) and a uniform base, and calibrates a density
threshold on held-out episodes; ``load_flow`` reads a saved one back. This
subpackage imports torch and zuko (``pip install -e ".[flow]"``).
"""

from imle_mpc.learn.config import FlowConfig
from imle_mpc.learn.flow.calibration import DensityCalibration
from imle_mpc.learn.flow.checkpoint import FLOW_FILE, load_flow, save_flow
from imle_mpc.learn.flow.chunk_flow import ChunkFlow
from imle_mpc.learn.flow.network import BoxFlow, build_box_flow
from imle_mpc.learn.flow.train import FlowHistory, held_out_episodes, train_flow

__all__ = [
    "FLOW_FILE",
    "BoxFlow",
    "ChunkFlow",
    "DensityCalibration",
    "FlowConfig",
    "FlowHistory",
    "build_box_flow",
    "held_out_episodes",
    "load_flow",
    "save_flow",
    "train_flow",
]
