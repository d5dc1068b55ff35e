"""Built-in cost terms. Each is ``term(X, U) -> Shape=(K,)`` over the whole batch.

X Shape=(K, H+1, nx) with X[:, 0] the current state; U Shape=(K, H, nu).
Running terms are charged on the states the actions lead to, X[:, 1:].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numba as nb
import numpy as np
from numpy.typing import ArrayLike

from cost.sdf import trajectory_distances
from imle_mpc.kernels.rollout import make_stage_cost_kernel
from imle_mpc.validation import FloatArray, require_non_negative


@nb.njit(parallel=True, cache=True)
def _quadratic_state(X, target, weights, wrap, t_start, out):  # pragma: no cover - compiled
    K, T, nx = X.shape
    for k in nb.prange(K):
        acc = 0.0
        for t in range(t_start, T):
            for i in range(nx):
                w = weights[i]
                if w != 0.0:
                    e = X[k, t, i] - target[i]
                    if wrap[i]:
                        e = (e + np.pi) % (2.0 * np.pi) - np.pi
                    acc += w * e * e
        out[k] = acc


@nb.njit(parallel=True, cache=True)
def _quadratic_action(U, reference, weights, order, out):  # pragma: no cover - compiled
    K, H, nu = U.shape
    for k in nb.prange(K):
        acc = 0.0
        for t in range(order, H):
            for j in range(nu):
                if order == 0:
                    e = U[k, t, j] - reference[j]
                elif order == 1:
                    e = U[k, t, j] - U[k, t - 1, j]
                else:
                    e = U[k, t, j] - 2.0 * U[k, t - 1, j] + U[k, t - 2, j]
                acc += weights[j] * e * e
        out[k] = acc


def _vector(name: str, value: ArrayLike, size: int | None) -> FloatArray:
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if size is not None and arr.size == 1:
        arr = np.full(size, float(arr[0]))
    if arr.ndim != 1 or (size is not None and arr.size != size):
        raise ValueError(
            f"{name} must be a scalar or a vector of length {size}, got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr}.")
    return np.ascontiguousarray(arr)


def _wrap_mask(angle_dims: Sequence[int], nx: int) -> np.ndarray:
    mask = np.zeros(nx, dtype=np.bool_)
    for i in angle_dims:
        if not 0 <= i < nx:
            raise ValueError(f"angle_dims index {i} is outside the state of size {nx}.")
        mask[i] = True
    return mask


def _check_nx(name: str, X: np.ndarray, nx: int) -> None:
    if X.ndim != 3 or X.shape[2] != nx:
        raise ValueError(f"{name} expects states Shape=(K, H+1, {nx}), got {X.shape}.")


@dataclass(frozen=True)
class StateTracking:
    """``sum_t sum_i w_i (x_t,i - target_i)^2`` over the running states X[:, 1:].

    Args:
        target: goal state, Shape=(nx,).
        weights: per-dimension weights, Shape=(nx,) or scalar; must be >= 0.
        angle_dims: state indices that are angles; their error is wrapped to [-pi, pi).
    """

    target: ArrayLike
    weights: ArrayLike = 1.0
    angle_dims: Sequence[int] = ()
    _target: FloatArray = field(init=False, repr=False)
    _weights: FloatArray = field(init=False, repr=False)
    _wrap: np.ndarray = field(init=False, repr=False)

    terminal_only = False

    def __post_init__(self) -> None:
        target = _vector(f"{type(self).__name__}.target", self.target, None)
        weights = _vector(f"{type(self).__name__}.weights", self.weights, target.size)
        if np.any(weights < 0):
            raise ValueError(f"{type(self).__name__}.weights must be >= 0, got {weights}.")
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_weights", weights)
        object.__setattr__(self, "_wrap", _wrap_mask(self.angle_dims, target.size))

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        _check_nx(type(self).__name__, X, self._target.size)
        out = np.empty(X.shape[0])
        t_start = X.shape[1] - 1 if self.terminal_only else 1
        _quadratic_state(X, self._target, self._weights, self._wrap, t_start, out)
        return out


@dataclass(frozen=True)
class TerminalState(StateTracking):
    """Like ``StateTracking`` but only on the final predicted state X[:, H]."""

    terminal_only = True


@dataclass(frozen=True)
class ControlEffort:
    """``sum_t sum_j w_j (u_t,j - reference_j)^2``."""

    weights: ArrayLike = 1.0
    reference: ArrayLike = 0.0

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        nu = U.shape[2]
        out = np.empty(U.shape[0])
        _quadratic_action(
            U,
            _vector("ControlEffort.reference", self.reference, nu),
            _vector("ControlEffort.weights", self.weights, nu),
            0,
            out,
        )
        return out


@dataclass(frozen=True)
class Smoothness:
    """Squared finite differences of the actions along time.

    ``order=1`` penalises the rate of change (u_t - u_{t-1}); ``order=2`` the
    second difference, i.e. jerk when the actions are accelerations.
    """

    weights: ArrayLike = 1.0
    order: int = 1

    def __post_init__(self) -> None:
        if self.order not in (1, 2):
            raise ValueError(f"Smoothness.order must be 1 or 2, got {self.order!r}.")

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        nu = U.shape[2]
        out = np.empty(U.shape[0])
        _quadratic_action(
            U, np.zeros(nu), _vector("Smoothness.weights", self.weights, nu), self.order, out
        )
        return out


def _obstacle_array(name: str, rows: ArrayLike, width: int) -> FloatArray:
    arr = (
        np.asarray(rows, dtype=np.float64).reshape(-1, width)
        if np.size(rows)
        else np.zeros((0, width))
    )
    if not np.all(np.isfinite(arr)) or np.any(arr[:, 2:] <= 0):
        raise ValueError(f"{name}: every row needs finite centre and positive size, got {arr}.")
    return np.ascontiguousarray(arr)


@dataclass(frozen=True)
class Scene:
    """Obstacles in the plane.

    Attributes:
        circles: rows (cx, cy, radius), Shape=(nc, 3).
        boxes: axis-aligned boxes, rows (cx, cy, half_width, half_height), Shape=(nb, 4).
        position_dims: which state entries are the (x, y) position.
    """

    circles: ArrayLike = ()
    boxes: ArrayLike = ()
    position_dims: tuple[int, int] = (0, 1)
    _circles: FloatArray = field(init=False, repr=False)
    _boxes: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_circles", _obstacle_array("Scene.circles", self.circles, 3))
        object.__setattr__(self, "_boxes", _obstacle_array("Scene.boxes", self.boxes, 4))

    @property
    def circle_array(self) -> FloatArray:
        return self._circles

    @property
    def box_array(self) -> FloatArray:
        return self._boxes

    def distances(self, X: FloatArray) -> FloatArray:
        """Signed distance of every predicted position, Shape=(K, H+1)."""
        out = np.empty(X.shape[:2])
        ix, iy = self.position_dims
        trajectory_distances(X, ix, iy, self._circles, self._boxes, out)
        return out


@dataclass(frozen=True)
class ObstacleProximity:
    """Soft obstacle cost: ``sum_t max(0, margin - d_t)^2`` over the running states.

    Grows smoothly as the path enters the margin band and keeps growing inside
    the obstacle, so the gradient of "how bad" stays informative for sampling.
    """

    scene: Scene
    margin: float = 0.2

    def __post_init__(self) -> None:
        require_non_negative("ObstacleProximity", "margin", self.margin)

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        d = self.scene.distances(X)[:, 1:]
        return np.sum(np.maximum(self.margin - d, 0.0) ** 2, axis=1)


@dataclass(frozen=True)
class ObstacleConstraint:
    """Hard obstacle constraint: violation ``max_t max(0, margin - d_t)``; 0 means safe."""

    scene: Scene
    margin: float = 0.0
    name: str = "obstacles"

    def __post_init__(self) -> None:
        require_non_negative("ObstacleConstraint", "margin", self.margin)

    def violation(self, X: FloatArray, U: FloatArray) -> FloatArray:
        d = self.scene.distances(X)[:, 1:]
        return np.maximum(self.margin - d.min(axis=1), 0.0)


class StageCost:
    """A cost from per-step ``@njit`` functions, lifted to a parallel batch kernel.

    Args:
        stage: ``@njit stage(x Shape=(nx,), u Shape=(nu,), t, params) -> float``.
        terminal: optional ``@njit terminal(x Shape=(nx,), params) -> float``.
        params: parameters passed to both, Shape=(p,).
    """

    def __init__(self, stage: Any, terminal: Any | None = None, params: ArrayLike = (0.0,)) -> None:
        self._kernel = make_stage_cost_kernel(stage, terminal)
        self._params = np.ascontiguousarray(np.atleast_1d(np.asarray(params, dtype=np.float64)))

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        out = np.empty(X.shape[0])
        self._kernel(X, U, self._params, out)
        return out
