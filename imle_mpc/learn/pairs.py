"""Training pairs from demonstrations, and the min-max normalisation stored with a model.

NumPy only: building pairs and normalising needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.kernels.affine import shift_scale_to_float32
from imle_mpc.core.validation import FloatArray, require_int_at_least
from imle_mpc.learn.demos import DemoDataset

_MIN_RANGE = 1e-8
"""Ranges below this are treated as constant dimensions (mapped to 0, not divided by ~0)."""


class MinMaxNormalizer:
    """Per-dimension affine map of ``[low, high]`` onto ``[-1, 1]``.

    A dimension whose range is (almost) zero is only centred: it maps to 0 and
    back to its constant value, instead of blowing up a division by ~0.

    Args:
        low: per-dimension minimum, Shape=(dim,).
        high: per-dimension maximum, Shape=(dim,).
    """

    __slots__ = ("center", "half_range", "high", "low", "scale")

    def __init__(self, low: ArrayLike, high: ArrayLike) -> None:
        lo = np.ascontiguousarray(np.asarray(low, dtype=np.float64))
        hi = np.ascontiguousarray(np.asarray(high, dtype=np.float64))
        if lo.ndim != 1 or lo.shape != hi.shape or lo.size == 0:
            raise ValueError(
                f"MinMaxNormalizer low and high must be non-empty vectors of one shape, "
                f"got {lo.shape} and {hi.shape}."
            )
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("MinMaxNormalizer low/high contain NaN/inf; the data must be finite.")
        if np.any(lo > hi):
            raise ValueError(
                f"MinMaxNormalizer low must be <= high elementwise, got low={lo}, high={hi}."
            )
        half = 0.5 * (hi - lo)
        constant = half < _MIN_RANGE
        self.low: FloatArray = lo
        self.high: FloatArray = hi
        # normalised = (x - center) * scale ;  x = normalised * half_range + center
        self.center: FloatArray = 0.5 * (hi + lo)
        self.half_range: FloatArray = np.where(constant, 1.0, half)
        self.scale: FloatArray = 1.0 / self.half_range

    @classmethod
    def fit(cls, data: ArrayLike) -> MinMaxNormalizer:
        """Statistics of ``data`` Shape=(N, dim) (any leading axes; the last is the dimension)."""
        arr = np.asarray(data, dtype=np.float64)
        flat = arr.reshape(-1, arr.shape[-1])
        if flat.shape[0] == 0:
            raise ValueError("cannot fit a normaliser to zero samples.")
        return cls(flat.min(axis=0), flat.max(axis=0))

    @classmethod
    def identity(cls, dim: int) -> MinMaxNormalizer:
        """The normaliser of data that already lies in [-1, 1]."""
        return cls(-np.ones(dim), np.ones(dim))

    @property
    def dim(self) -> int:
        return int(self.low.shape[0])

    def normalize(self, x: ArrayLike) -> FloatArray:
        """Map raw values (last axis = dimension) to [-1, 1]."""
        return (np.asarray(x, dtype=np.float64) - self.center) * self.scale

    def unnormalize(self, y: ArrayLike) -> FloatArray:
        """Inverse of ``normalize``."""
        return np.asarray(y, dtype=np.float64) * self.half_range + self.center

    def to_dict(self) -> dict[str, Any]:
        # float repr round-trips float64 exactly through JSON.
        return {"low": [float(v) for v in self.low], "high": [float(v) for v in self.high]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MinMaxNormalizer:
        return cls(np.asarray(data["low"], dtype=np.float64), np.asarray(data["high"], np.float64))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MinMaxNormalizer):
            return NotImplemented
        return bool(np.array_equal(self.low, other.low) and np.array_equal(self.high, other.high))

    def __hash__(self) -> int:
        return hash((self.low.tobytes(), self.high.tobytes()))

    def __repr__(self) -> str:
        return f"MinMaxNormalizer(low={self.low.tolist()}, high={self.high.tolist()})"


@dataclass(frozen=True)
class TrainingPairs:
    """Raw (un-normalised) training pairs.

    Attributes:
        obs: observation histories, oldest first, Shape=(N, obs_horizon, obs_dim).
        actions: action chunks, Shape=(N, H, nu).
    """

    obs: FloatArray
    actions: FloatArray

    def __len__(self) -> int:
        return int(self.actions.shape[0])


def build_training_pairs(dataset: DemoDataset, obs_horizon: int, horizon: int) -> TrainingPairs:
    """One pair per demonstrated step: the observation history and the action chunk.

    For step ``t`` of an episode of length ``T``: the history holds observations
    ``t - obs_horizon + 1 .. t`` (before the episode start the first observation
    is repeated) and the chunk holds actions ``t .. t + H - 1`` (past the end the
    last action is repeated, i.e. the demonstrator holds its final command).

    Args:
        dataset: the demonstrations.
        obs_horizon: observations per history (>= 1).
        horizon: H, actions per chunk (>= 1).

    Returns:
        ``TrainingPairs`` with ``dataset.num_steps`` pairs.
    """
    require_int_at_least("build_training_pairs", "obs_horizon", obs_horizon, 1)
    require_int_at_least("build_training_pairs", "horizon", horizon, 1)
    obs_parts, act_parts = [], []
    for ep in dataset.episodes:
        T = len(ep)
        t = np.arange(T)
        obs_idx = np.clip(t[:, None] + np.arange(-obs_horizon + 1, 1)[None, :], 0, T - 1)
        act_idx = np.clip(t[:, None] + np.arange(horizon)[None, :], 0, T - 1)
        obs_parts.append(ep.observations[obs_idx])
        act_parts.append(ep.actions[act_idx])
    obs = np.ascontiguousarray(np.concatenate(obs_parts), dtype=np.float64)
    actions = np.ascontiguousarray(np.concatenate(act_parts), dtype=np.float64)
    return TrainingPairs(obs, actions)


def fit_normalizers(dataset: DemoDataset) -> tuple[MinMaxNormalizer, MinMaxNormalizer]:
    """Min-max statistics of all observations and all actions of ``dataset``.

    Padding only repeats existing values, so these are also the training pairs' ranges.
    """
    obs = np.concatenate([ep.observations for ep in dataset.episodes])
    actions = np.concatenate([ep.actions for ep in dataset.episodes])
    return MinMaxNormalizer.fit(obs), MinMaxNormalizer.fit(actions)


def condition_rows(
    obs_histories: ArrayLike, normalizer: MinMaxNormalizer, obs_horizon: int, batch: bool
) -> np.ndarray:
    """Observation histories as a model's normalised, flattened float32 condition rows.

    Shared by every model conditioned on a history (the generator, the flow).

    Args:
        obs_histories: Shape=(obs_horizon, obs_dim) (``batch=False``) or
            Shape=(B, obs_horizon, obs_dim) (``batch=True``), oldest first, raw units.
        normalizer: the observation normaliser, dim = obs_dim.
        obs_horizon: the model's history length.
        batch: which of the two shapes is expected.

    Returns:
        Shape=(1 or B, obs_horizon * obs_dim), float32, C-contiguous.

    Raises:
        ValueError: another shape, or a NaN/inf entry.
    """
    obs = np.asarray(obs_histories, dtype=np.float64)
    want = (obs_horizon, normalizer.dim)
    if not batch and obs.shape != want:
        raise ValueError(
            f"obs_history must have Shape={want} (obs_horizon, obs_dim), oldest first; got "
            f"{obs.shape}. At an episode start repeat the first observation."
        )
    if batch and (obs.ndim != 3 or obs.shape[1:] != want or obs.shape[0] == 0):
        raise ValueError(
            f"obs_histories must have Shape=(B, {want[0]}, {want[1]}) with B >= 1; got {obs.shape}."
        )
    rows = 1 if not batch else obs.shape[0]
    flat = np.ascontiguousarray(obs).reshape(rows, -1)
    out = np.empty(flat.shape, np.float32)
    # normalizer.normalize(obs).astype(float32) and the finiteness check in one pass
    if not shift_scale_to_float32(flat, normalizer.center, normalizer.scale, out):
        what = "obs_histories contain" if batch else "obs_history contains"
        raise ValueError(f"{what} NaN/inf; check the observation source.")
    return out
