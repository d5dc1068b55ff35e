"""Numba kernels of the hot path: batched rollout, cost reduction, selection.

All kernels take float64, C-contiguous arrays and write into caller-owned
output arrays, so a planner allocates its work arrays once.
"""

from imle_mpc.kernels.rollout import make_rollout_kernel, make_stage_cost_kernel
from imle_mpc.kernels.sampling import gaussian_proposals
from imle_mpc.kernels.select import (
    argmin_finite,
    elite_indices,
    softmax_weights,
    weighted_mean,
)

__all__ = [
    "argmin_finite",
    "elite_indices",
    "gaussian_proposals",
    "make_rollout_kernel",
    "make_stage_cost_kernel",
    "softmax_weights",
    "weighted_mean",
]
