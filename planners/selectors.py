"""Selectors: from scored samples to the plan that is executed."""

from __future__ import annotations

import numpy as np

from imle_mpc.core.kernels.select import (
    argmin_finite,
    elite_indices,
    softmax_weights,
    weighted_mean,
)
from imle_mpc.core.protocols import ReturnsSample
from imle_mpc.core.validation import FloatArray, require_int_at_least, require_positive


class ArgminSelector(ReturnsSample):
    """The single best sample (predictive sampling, and the safest choice with several modes)."""

    returns_sample = True

    def select(self, U: FloatArray, costs: FloatArray, out: FloatArray) -> int:
        best = int(argmin_finite(costs))
        if best >= 0:
            out[:] = U[best]
        return best


class SoftmaxSelector(ReturnsSample):
    """MPPI: the average of samples weighted by ``exp(-cost / temperature)``.

    Args:
        temperature: lambda; small values approach argmin, large values a plain mean.

    Averaging mixes every sample, so use it only when the samples come from one
    mode (Gaussian noise around one nominal); with multi-modal proposals pick
    ``ArgminSelector`` or average within one mode.
    """

    returns_sample = False

    def __init__(self, temperature: float) -> None:
        require_positive("SoftmaxSelector", "temperature", temperature)
        self.temperature = float(temperature)
        self._weights: FloatArray | None = None

    def select(self, U: FloatArray, costs: FloatArray, out: FloatArray) -> int:
        if self._weights is None or self._weights.shape[0] != costs.shape[0]:
            self._weights = np.empty(costs.shape[0])
        if softmax_weights(costs, self.temperature, self._weights) == 0:
            return -1
        weighted_mean(U, self._weights, out)
        return int(argmin_finite(costs))


class EliteMeanSelector(ReturnsSample):
    """CEM: the mean of the ``num_elites`` best samples."""

    returns_sample = False

    def __init__(self, num_elites: int) -> None:
        require_int_at_least("EliteMeanSelector", "num_elites", num_elites, 1)
        self.num_elites = num_elites

    def select(self, U: FloatArray, costs: FloatArray, out: FloatArray) -> int:
        elites = elite_indices(costs, self.num_elites)
        if elites.size == 0:
            return -1
        out[:] = U[elites].mean(axis=0)
        return int(elites[0])


class ModeAwareSelector(ReturnsSample):
    """Softmax-average the elites that share the best sample's mode; never across modes.

    The best sample defines the mode; an elite joins it if its RMS action
    distance to the best, in units of half the actuator range, is below
    ``mode_radius``. The average of "left of the obstacle" and "right of the
    obstacle" hits the obstacle; the average of two "left" plans does not.
    """

    returns_sample = False

    def __init__(
        self,
        temperature: float,
        num_elites: int,
        mode_radius: float,
        action_low: FloatArray,
        action_high: FloatArray,
    ) -> None:
        require_positive("ModeAwareSelector", "temperature", temperature)
        require_int_at_least("ModeAwareSelector", "num_elites", num_elites, 1)
        self.temperature = temperature
        self.num_elites = num_elites
        self.mode_radius = mode_radius
        half = (np.asarray(action_high) - np.asarray(action_low)) / 2.0
        self._scale = np.where(np.isfinite(half) & (half > 0), half, 1.0)
        self.last_mode_size = 0

    def same_mode(self, U: FloatArray, best: int, candidates: np.ndarray) -> np.ndarray:
        """The candidates whose action sequence lies within ``mode_radius`` of the best."""
        diff = (U[candidates] - U[best]) / self._scale
        rms = np.sqrt(np.mean(diff * diff, axis=(1, 2)))
        return candidates[rms < self.mode_radius]

    def select(self, U: FloatArray, costs: FloatArray, out: FloatArray) -> int:
        best = int(argmin_finite(costs))
        if best < 0:
            return -1
        members = self.same_mode(U, best, elite_indices(costs, self.num_elites))
        self.last_mode_size = int(members.size)
        weights = np.empty(members.size)
        softmax_weights(np.ascontiguousarray(costs[members]), self.temperature, weights)
        out[:] = np.tensordot(weights, U[members], axes=1)
        return best
