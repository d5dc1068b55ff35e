"""Learned proposals: a conditional chunk generator trained with RS-IMLE (IMLE Policy).

``train_generator`` fits a generator ``G(z, obs_history) -> action chunk`` to a
``DemoDataset``; ``IMLEGenerator`` (a ``ChunkGenerator``) decodes a batch of
latents in one forward pass; ``load_generator`` reads a saved one back. This
subpackage imports torch; ``import imle_mpc`` does not import it.
"""

from imle_mpc.learn.config import GeneratorConfig, TrainConfig
from imle_mpc.learn.imle.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    load_generator,
    save_generator,
)
from imle_mpc.learn.imle.generator import IMLEGenerator
from imle_mpc.learn.imle.loss import RSIMLEStats, rs_imle_loss
from imle_mpc.learn.imle.networks import (
    MLPGenerator,
    TemporalUnet1D,
    build_network,
    parameter_count,
)
from imle_mpc.learn.imle.train import TrainHistory, train_generator
from imle_mpc.learn.pairs import MinMaxNormalizer, TrainingPairs, build_training_pairs
from imle_mpc.learn.trained_for import TrainedFor

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "GeneratorConfig",
    "IMLEGenerator",
    "MLPGenerator",
    "MinMaxNormalizer",
    "RSIMLEStats",
    "TemporalUnet1D",
    "TrainConfig",
    "TrainHistory",
    "TrainedFor",
    "TrainingPairs",
    "build_network",
    "build_training_pairs",
    "load_generator",
    "parameter_count",
    "rs_imle_loss",
    "save_generator",
    "train_generator",
]
