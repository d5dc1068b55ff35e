"""Numba kernels of the hot path: batched rollout, cost reduction, selection.

All kernels take float64, C-contiguous arrays and write into caller-owned
output arrays, so a planner allocates its work arrays once.
"""

from imle_mpc.core.kernels.fused import FusedKernels, StageForm, make_fused_kernels
from imle_mpc.core.kernels.pcg64 import generator_normals
from imle_mpc.core.kernels.rng import draw_seed, fill_standard_normal
from imle_mpc.core.kernels.rollout import make_rollout_kernel, make_stage_cost_kernel
from imle_mpc.core.kernels.sampling import (
    expand_knots,
    expand_knots_row,
    fill_proposal,
    seeded_gaussian_proposals,
)
from imle_mpc.core.kernels.select import (
    argmin_finite,
    elite_indices,
    softmax_weights,
    weighted_mean,
)

__all__ = [
    "FusedKernels",
    "StageForm",
    "argmin_finite",
    "draw_seed",
    "elite_indices",
    "expand_knots",
    "expand_knots_row",
    "fill_proposal",
    "fill_standard_normal",
    "generator_normals",
    "make_fused_kernels",
    "make_rollout_kernel",
    "make_stage_cost_kernel",
    "seeded_gaussian_proposals",
    "softmax_weights",
    "weighted_mean",
]
