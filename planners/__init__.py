"""Sampling planners for imle_mpc: MPPI, CEM, predictive sampling, and their parts."""

from planners.classic import (
    CEM,
    MPPI,
    CEMConfig,
    MPPIConfig,
    PredictiveSampling,
    PredictiveSamplingConfig,
)
from planners.samplers import CrossEntropySampler, GaussianSampler
from planners.sampling import SamplingConfig, SamplingPlanner
from planners.selectors import ArgminSelector, EliteMeanSelector, SoftmaxSelector

__all__ = [
    "CEM",
    "MPPI",
    "ArgminSelector",
    "CEMConfig",
    "CrossEntropySampler",
    "EliteMeanSelector",
    "GaussianSampler",
    "MPPIConfig",
    "PredictiveSampling",
    "PredictiveSamplingConfig",
    "SamplingConfig",
    "SamplingPlanner",
    "SoftmaxSelector",
]
