"""Proposal samplers: where candidate action sequences come from."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.kernels.rng import draw_seed
from imle_mpc.core.kernels.sampling import seeded_gaussian_proposals
from imle_mpc.core.kernels.select import elite_indices
from imle_mpc.core.validation import FloatArray, check_bounds, require_int_at_least


def _sigma_table(name: str, sigma: ArrayLike, horizon: int, nu: int) -> FloatArray:
    """Broadcast a scalar, (nu,) or (H, nu) standard deviation to Shape=(H, nu)."""
    arr = np.asarray(sigma, dtype=np.float64)
    try:
        table = np.ascontiguousarray(np.broadcast_to(arr, (horizon, nu)), dtype=np.float64)
    except ValueError:
        raise ValueError(
            f"{name} must be a scalar, Shape=({nu},) or Shape=({horizon}, {nu}); got {arr.shape}."
        ) from None
    if not np.all(np.isfinite(table)) or np.any(table < 0):
        raise ValueError(f"{name} must be finite and >= 0, got {arr}.")
    return table.copy()


class GaussianSampler:
    """Nominal plan plus independent Gaussian noise, clipped to the actuator box.

    The first ``nominal_rows`` proposals are the nominal itself (the warm start
    is always re-scored). Each call draws one 64-bit seed from the planner's
    ``np.random.Generator``; the kernel then draws sample ``k``'s noise from its
    own stream of that seed (``imle_mpc.core.kernels.rng``: SplitMix64 + ziggurat,
    in parallel, 3x faster than ``Generator.standard_normal`` on one core), so
    the proposals depend only on the generator's state, never on the thread
    count. The planners' fused kernel draws exactly the same proposals.

    Args:
        sigma: noise standard deviation: scalar, Shape=(nu,) or Shape=(H, nu).
        horizon: plan length H.
        nu: action size.
        action_low: lower actuator bounds, Shape=(nu,).
        action_high: upper actuator bounds, Shape=(nu,).
        nominal_rows: how many leading rows copy the nominal (>= 0).
    """

    def __init__(
        self,
        sigma: ArrayLike,
        horizon: int,
        nu: int,
        action_low: FloatArray,
        action_high: FloatArray,
        nominal_rows: int = 1,
    ) -> None:
        require_int_at_least("GaussianSampler", "nominal_rows", nominal_rows, 0)
        self.initial_sigma = _sigma_table("noise sigma", sigma, horizon, nu)
        self.sigma = self.initial_sigma.copy()
        self.low, self.high = check_bounds(
            "GaussianSampler action bounds", action_low, action_high, nu
        )
        self.nominal_rows = nominal_rows

    def propose(
        self, state: FloatArray, nominal: FloatArray, rng: np.random.Generator, out: FloatArray
    ) -> FloatArray:
        seed = draw_seed(rng)
        seeded_gaussian_proposals(
            nominal, seed, self.sigma, self.low, self.high, self.nominal_rows, out
        )
        return out

    def start_step(self, state: FloatArray) -> None:
        """Fixed noise: nothing to prepare."""

    def update(self, U: FloatArray, costs: FloatArray) -> None:
        """Fixed noise: nothing to adapt."""

    def reset(self) -> None:
        """Fixed noise: nothing to forget."""


class CrossEntropySampler(GaussianSampler):
    """Gaussian sampler whose standard deviation is refit to the elites each iteration.

    ``update`` sets sigma to the elites' per-step standard deviation, floored at
    ``min_sigma`` so the search never collapses to a point; ``start_step``
    restores the initial sigma at the start of each control step.
    """

    def __init__(
        self,
        sigma: ArrayLike,
        horizon: int,
        nu: int,
        action_low: FloatArray,
        action_high: FloatArray,
        num_elites: int,
        min_sigma: ArrayLike = 0.05,
        nominal_rows: int = 1,
    ) -> None:
        super().__init__(sigma, horizon, nu, action_low, action_high, nominal_rows)
        require_int_at_least("CrossEntropySampler", "num_elites", num_elites, 2)
        self.num_elites = num_elites
        self.min_sigma = _sigma_table("min_sigma", min_sigma, horizon, nu)

    def update(self, U: FloatArray, costs: FloatArray) -> None:
        elites = elite_indices(costs, self.num_elites)
        if elites.size >= 2:
            self.sigma = np.maximum(U[elites].std(axis=0), self.min_sigma)

    def start_step(self, state: FloatArray) -> None:
        """Each control step's search starts from the initial spread again."""
        self.sigma = self.initial_sigma.copy()

    def reset(self) -> None:
        self.sigma = self.initial_sigma.copy()
