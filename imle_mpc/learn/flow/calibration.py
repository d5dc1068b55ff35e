"""The density threshold, calibrated on demonstrations the flow was not trained on.

NumPy only. ``DensityCalibration`` keeps the log-densities of the held-out
demonstration chunks; ``threshold(q)`` is their ``q``-quantile (the lower one), so
at most a share ``q`` of them lies below it, and about that share of fresh
demonstrations (the false-alarm rate of a guard that flags chunks under the
threshold), up to the sampling error of the held-out set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.validation import FloatArray


@dataclass(frozen=True)
class DensityCalibration:
    """Log-densities of held-out demonstration chunks (raw action units), sorted.

    Attributes:
        log_probs: one per held-out chunk, ascending, finite, Shape=(n,) with n >= 1.
        episodes: how many held-out episodes they came from.
    """

    log_probs: FloatArray
    episodes: int

    def __post_init__(self) -> None:
        values = np.sort(np.asarray(self.log_probs, dtype=np.float64).ravel())
        if values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(
                "DensityCalibration needs at least one finite held-out log-density; got "
                f"{values.size} values, {int(np.sum(~np.isfinite(values)))} not finite (a "
                "held-out chunk outside the training data's range has density 0: hold out "
                "episodes like the others, or train on more)."
            )
        object.__setattr__(self, "log_probs", values)

    @classmethod
    def of(cls, log_probs: ArrayLike, episodes: int) -> DensityCalibration:
        """From unsorted held-out log-densities."""
        return cls(np.asarray(log_probs, dtype=np.float64), int(episodes))

    @property
    def size(self) -> int:
        """Held-out chunks."""
        return int(self.log_probs.size)

    def threshold(self, quantile: float) -> float:
        """The ``quantile`` of the held-out log-densities: the held-out value at rank
        ``floor(quantile * (n - 1))``, so at most that share of them lies below it.

        Args:
            quantile: in [0, 1]; the share of demonstrations meant to fall below.

        Raises:
            ValueError: a quantile outside [0, 1].
        """
        if not (0.0 <= quantile <= 1.0):
            raise ValueError(f"quantile must be in [0, 1], got {quantile!r}.")
        return float(np.quantile(self.log_probs, quantile, method="lower"))

    def fraction_below(self, threshold: float) -> float:
        """Share of the held-out chunks whose log-density is below ``threshold``."""
        return float(np.mean(self.log_probs < threshold))

    def to_dict(self) -> dict[str, Any]:
        # float repr round-trips float64 exactly through JSON.
        return {"log_probs": [float(v) for v in self.log_probs], "episodes": self.episodes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DensityCalibration:
        return cls(np.asarray(data["log_probs"], dtype=np.float64), int(data["episodes"]))
