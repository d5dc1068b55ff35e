"""How typical a plan is of the demonstrations: a density cost term and a density constraint.

Both read a ``ChunkDensity`` (``imle_mpc.core.protocols``; the flow
``imle_mpc.learn.flow.ChunkFlow`` is one) through its ``log_prob(obs_history, U)``,
so this module needs no torch. They see what every cost term and constraint sees,
``(X, U)``, and take the density's condition from the rollout itself: the
observation of the state each plan starts from, ``observation_fn(X[k, 0])``. So
they are stateless and give the same answer in the planner and in the guard (which
rolls the plan out from the measured state too), for fallbacks as for plans. That
is why they need a density conditioned on one observation (``obs_horizon == 1``);
rollouts from several start states (the lookahead's continuations) are conditioned
per sample.

* ``DensityCost``: ``-log p(U | obs(X[:, 0]))``, a cost term (lower is more typical).
* ``DensityConstraint``: ``max(0, threshold - log p)``, hard (reject) or soft
  (penalise) like any constraint in ``cost.constraints``; the threshold is a quantile
  of held-out demonstrations' log-densities (``ChunkFlow.threshold(q)``), so about a
  share ``q`` of plans like the demonstrations' is flagged.

A chunk outside the demonstrations' action range has density 0 (log p = -inf): its
cost and its violation are +inf unless ``floor`` caps them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cost.constraints import DEFAULT_PENALTY_WEIGHT
from imle_mpc.core.protocols import BatchObservation, ChunkDensity
from imle_mpc.core.validation import FloatArray

ObservationFn = Callable[[FloatArray], FloatArray]


def _check_density(owner: str, density: ChunkDensity) -> None:
    if not isinstance(density, ChunkDensity):
        raise TypeError(
            f"{owner} needs a ChunkDensity (obs_horizon, obs_dim, log_prob(obs_history, U)), "
            f"e.g. imle_mpc.learn.flow.ChunkFlow; got {type(density).__name__}."
        )
    if density.obs_horizon != 1:
        raise ValueError(
            f"{owner} conditions the density on the state each plan starts from (X[:, 0]), "
            f"but this density is conditioned on {density.obs_horizon} observations; train "
            "the flow with obs_horizon=1 (FlowConfig's default)."
        )


def chunk_log_density(
    density: ChunkDensity, observation_fn: ObservationFn, X: FloatArray, U: FloatArray
) -> FloatArray:
    """``log p(U[k] | obs(X[k, 0]))`` Shape=(K,) for X Shape=(K, H+1, nx), U Shape=(K, H, nu).

    One observation when every rollout starts from the same state (a planner's batch),
    one per sample otherwise (``BatchObservation`` maps them in one call).
    """
    X = np.asarray(X, dtype=np.float64)
    starts = X[:, 0]
    if np.all(starts == starts[0]):
        history = np.asarray(observation_fn(starts[0]), dtype=np.float64)[None]
    elif isinstance(observation_fn, BatchObservation):
        history = np.asarray(observation_fn.observe_batch(starts), dtype=np.float64)[:, None]
    else:
        history = np.stack([np.asarray(observation_fn(x), dtype=np.float64) for x in starts])[
            :, None
        ]
    return np.asarray(density.log_prob(history, U), dtype=np.float64)


@dataclass(frozen=True)
class DensityCost:
    """``-max(log p(U | obs(X[:, 0])), floor)``: a plan's cost for being unlike the demonstrations.

    Args:
        density: a ``ChunkDensity`` conditioned on one observation.
        observation_fn: state -> the density's observation (the one it was trained with).
        floor: log-densities below it count as ``floor`` (-inf: none; a chunk outside
            the demonstrated action range then costs +inf, i.e. is never chosen).
    """

    density: ChunkDensity
    observation_fn: ObservationFn
    floor: float = -np.inf

    def __post_init__(self) -> None:
        _check_density("DensityCost", self.density)

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        lp = chunk_log_density(self.density, self.observation_fn, X, U)
        return np.asarray(-np.maximum(lp, self.floor))


@dataclass(frozen=True)
class DensityConstraint:
    """``log p(U | obs(X[:, 0])) >= threshold``: the plan must be as typical as most demonstrations.

    Violation ``max(0, threshold - max(log p, floor))`` (in nats), NaN-free: 0 where the
    plan is typical enough.

    Args:
        density: a ``ChunkDensity`` conditioned on one observation.
        observation_fn: state -> the density's observation.
        threshold: the log-density below which a plan is flagged; calibrate it as a
            quantile of held-out demonstrations (``ChunkFlow.threshold(q)``).
        name: as for every constraint.
        hard: as for every constraint (``hard=False``: the penalty
            ``weight * violation`` instead of rejection).
        weight: the penalty's weight when ``hard=False``.
        floor: as in ``DensityCost`` (caps the violation of out-of-range chunks).
    """

    density: ChunkDensity
    observation_fn: ObservationFn
    threshold: float
    name: str = "density"
    hard: bool = True
    weight: float = DEFAULT_PENALTY_WEIGHT
    floor: float = -np.inf

    def __post_init__(self) -> None:
        _check_density("DensityConstraint", self.density)
        if not np.isfinite(self.threshold):
            raise ValueError(
                f"DensityConstraint.threshold must be finite, got {self.threshold!r}; use "
                "ChunkFlow.threshold(quantile)."
            )
        if not (np.isfinite(self.weight) and self.weight > 0):
            raise ValueError(
                f"DensityConstraint.weight must be finite and > 0, got {self.weight!r}."
            )

    def log_density(self, X: FloatArray, U: FloatArray) -> FloatArray:
        """``log p`` Shape=(K,) of each plan (what the violation is measured on)."""
        return chunk_log_density(self.density, self.observation_fn, X, U)

    def violation(self, X: FloatArray, U: FloatArray) -> FloatArray:
        lp = np.maximum(self.log_density(X, U), self.floor)
        return np.asarray(np.maximum(self.threshold - lp, 0.0))
