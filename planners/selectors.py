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
