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

from cost.constraints import clearance_slack, clearance_violation
from cost.sdf import (
    box_distance,
    box_segment_distance,
    capsule_distance,
    capsule_segment_distance,
    circle_distance,
    circle_segment_distance,
    known_position,
    swept_trajectory_distances,
    trajectory_distances,
)
from imle_mpc.core.kernels.fused import StageForm
from imle_mpc.core.kernels.rollout import inline_copy, make_stage_cost_kernel
from imle_mpc.core.validation import FloatArray, require_non_negative, user_numba_function

_TWO_PI = 2.0 * np.pi
_INV_TWO_PI = 1.0 / _TWO_PI


@nb.njit(inline="always")
def wrap_angle(e):  # pragma: no cover - compiled
    """``e`` wrapped to [-pi, pi): ``floor`` instead of Python's float ``%`` (a libm fmod).

    Same value up to rounding (~1e-16 rad); 10x cheaper, which matters when it
    runs once per sample and step.
    """
    return e - _TWO_PI * np.floor((e + np.pi) * _INV_TWO_PI)


# Per-step forms of the built-in terms, running(x_prev, x, U, t, params) with
# x_prev = X[t], x = X[t+1]. The batch kernels below and the fused planner kernel
# (imle_mpc.core.kernels.fused) both call these, so a term's value is bitwise the
# same on either path: per-step sums, accumulated over t in order.


@nb.njit(inline="always")
def _state_dim(xi, target, w, wrap):  # pragma: no cover - compiled
    """One state dimension's ``w e^2`` (``e`` wrapped to [-pi, pi) if ``wrap``)."""
    e = xi - target
    if wrap:
        e = wrap_angle(e)
    return w * e * e


@nb.njit(inline="always")
def _state_step(x, p):  # pragma: no cover - compiled
    """sum_i w_i e_i^2 for one state; p = (target (nx), weights (nx), wrap flags (nx))."""
    nx = x.shape[0]
    acc = 0.0
    for i in range(nx):
        w = p[nx + i]
        if w != 0.0:
            acc += _state_dim(x[i], p[i], w, p[2 * nx + i] != 0.0)
    return acc


@nb.njit(inline="always")
def _state_lanes(x_prev, x, U, t, p, out):  # pragma: no cover - compiled
    """``_state_step`` for a block of lanes: ``out[l]`` = the cost of state ``x[:, l]``.

    x Shape=(nx, L); the same sums in the same order as ``_state_step`` per lane.
    """
    nx, L = x.shape
    for ln in range(L):
        out[ln] = 0.0
    for i in range(nx):
        w = p[nx + i]
        if w != 0.0:
            wrap = p[2 * nx + i] != 0.0
            for ln in range(L):
                out[ln] += _state_dim(x[i, ln], p[i], w, wrap)


@nb.njit(inline="always")
def _state_running(x_prev, x, U, t, p):  # pragma: no cover - compiled
    return _state_step(x, p)


@nb.njit(inline="always")
def _state_terminal(x, p):  # pragma: no cover - compiled
    return _state_step(x, p)


@nb.njit(inline="always")
def _action_running(x_prev, x, U, t, p):  # pragma: no cover - compiled
    """Order-0/1/2 action penalty at step t; p = (order, reference (nu), weights (nu))."""
    nu = U.shape[1]
    order = int(p[0])
    acc = 0.0
    if t < order:
        return acc
    for j in range(nu):
        e = _action_error(order, U[t, j], U[max(t - 1, 0), j], U[max(t - 2, 0), j], p[1 + j])
        acc += p[1 + nu + j] * e * e
    return acc


@nb.njit(inline="always")
def _action_error(order, u, u1, u2, reference):  # pragma: no cover - compiled
    """An action's error at a step: ``u`` less the reference (order 0), or its first
    (order 1) or second (order 2) difference with the previous actions ``u1``, ``u2``."""
    if order == 0:
        return u - reference
    if order == 1:
        return u - u1
    return u - 2.0 * u1 + u2


@nb.njit(inline="always")
def _action_lanes(x_prev, x, U, t, p, out):  # pragma: no cover - compiled
    """``_action_running`` for a block of lanes: U Shape=(H, nu, L), out Shape=(L,)."""
    _, nu, L = U.shape
    order = int(p[0])
    for ln in range(L):
        out[ln] = 0.0
    if t < order:
        return
    for j in range(nu):
        w = p[1 + nu + j]
        for ln in range(L):
            e = _action_error(
                order, U[t, j, ln], U[max(t - 1, 0), j, ln], U[max(t - 2, 0), j, ln], p[1 + j]
            )
            out[ln] += w * e * e


_SCENE_HEAD = 7
"""Entries before the obstacles in a proximity term's parameters (see ``_proximity_running``)."""


@nb.njit(inline="always")
def _proximity_running(x_prev, x, U, t, p):  # pragma: no cover - compiled
    """max(0, margin - d)^2 for one step: d at the state x, or over the segment x_prev -> x.

    p = (ix, iy, margin, nc, nb, ns, swept, circles..., boxes..., capsules...). A NaN or
    infinite position (either end of a swept step) costs NaN, as ``cost.sdf``'s distances
    are NaN there: the minimum below alone read it as far from everything, at no cost.
    """
    ix, iy = int(p[0]), int(p[1])
    bx, by = x[ix], x[iy]
    ax, ay = x_prev[ix], x_prev[iy]
    swept = p[6] != 0.0
    if not known_position(bx, by) or (swept and not known_position(ax, ay)):
        return np.nan
    nc, nbox, ncap = int(p[3]), int(p[4]), int(p[5])
    h = _SCENE_HEAD
    d = np.inf
    for c in range(nc):
        o = h + 3 * c
        if swept:
            d = min(d, circle_segment_distance(ax, ay, bx, by, p[o], p[o + 1], p[o + 2]))
        else:
            d = min(d, circle_distance(bx, by, p[o], p[o + 1], p[o + 2]))
    for b in range(nbox):
        o = h + 3 * nc + 4 * b
        if swept:
            d = min(d, box_segment_distance(ax, ay, bx, by, p[o], p[o + 1], p[o + 2], p[o + 3]))
        else:
            d = min(d, box_distance(bx, by, p[o], p[o + 1], p[o + 2], p[o + 3]))
    for s in range(ncap):
        o = h + 3 * nc + 4 * nbox + 5 * s
        if swept:
            d = min(
                d,
                capsule_segment_distance(
                    ax, ay, bx, by, p[o], p[o + 1], p[o + 2], p[o + 3], p[o + 4]
                ),
            )
        else:
            d = min(d, capsule_distance(bx, by, p[o], p[o + 1], p[o + 2], p[o + 3], p[o + 4]))
    v = max(p[2] - d, 0.0)
    return v * v


@nb.njit(parallel=True, cache=True, error_model="numpy")
def _quadratic_state(X, params, t_start, out):  # pragma: no cover - compiled
    """``out[k] = sum_{t >= t_start} _state_step(X[k, t])``, four samples interleaved.

    One sample's sum is a chain of dependent adds; four samples' chains side by side
    overlap their latencies (Panda, K = 256, 16 x 14 states, one thread: 93 -> 45 us).
    Each sample's sums keep ``_state_step``'s order: the same numbers, the fused kernel's.
    """
    K, T, nx = X.shape
    for g in nb.prange((K + 3) // 4):
        k0 = 4 * g
        k1, k2, k3 = min(k0 + 1, K - 1), min(k0 + 2, K - 1), min(k0 + 3, K - 1)
        a0 = a1 = a2 = a3 = 0.0
        for t in range(t_start, T):
            s0 = s1 = s2 = s3 = 0.0
            for i in range(nx):
                w = params[nx + i]
                if w != 0.0:  # as _state_step: a zero weight adds nothing, not 0 * inf
                    target, wrap = params[i], params[2 * nx + i] != 0.0
                    s0 += _state_dim(X[k0, t, i], target, w, wrap)
                    s1 += _state_dim(X[k1, t, i], target, w, wrap)
                    s2 += _state_dim(X[k2, t, i], target, w, wrap)
                    s3 += _state_dim(X[k3, t, i], target, w, wrap)
            a0 += s0
            a1 += s1
            a2 += s2
            a3 += s3
        out[k0] = a0
        if k0 + 1 < K:  # the last group's spare samples repeat its last one: not written
            out[k1] = a1
        if k0 + 2 < K:
            out[k2] = a2
        if k0 + 3 < K:
            out[k3] = a3


@nb.njit(parallel=True, cache=True, error_model="numpy")
def _proximity(X, params, out):  # pragma: no cover - compiled
    K, T, _ = X.shape
    for k in nb.prange(K):
        acc = 0.0
        for t in range(T - 1):
            acc += _proximity_running(X[k, t], X[k, t + 1], X[k], t, params)
        out[k] = acc


@nb.njit(parallel=True, cache=True, error_model="numpy")
def _quadratic_action(U, params, out):  # pragma: no cover - compiled
    K, H, _ = U.shape
    for k in nb.prange(K):
        acc = 0.0
        Uk = U[k]
        for t in range(H):
            acc += _action_running(Uk[t], Uk[t], Uk, t, params)
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
    _params: FloatArray = field(init=False, repr=False)

    terminal_only = False

    def __post_init__(self) -> None:
        target = _vector(f"{type(self).__name__}.target", self.target, None)
        weights = _vector(f"{type(self).__name__}.weights", self.weights, target.size)
        if np.any(weights < 0):
            raise ValueError(f"{type(self).__name__}.weights must be >= 0, got {weights}.")
        wrap = _wrap_mask(self.angle_dims, target.size)
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_weights", weights)
        object.__setattr__(self, "_wrap", wrap)
        object.__setattr__(self, "_params", np.concatenate([target, weights, wrap.astype(float)]))

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        _check_nx(type(self).__name__, X, self._target.size)
        out = np.empty(X.shape[0])
        t_start = X.shape[1] - 1 if self.terminal_only else 1
        _quadratic_state(np.ascontiguousarray(X, dtype=np.float64), self._params, t_start, out)
        return out

    def stage_form(self, nx: int, nu: int) -> StageForm:
        """The per-step form of this term, for the planner's fused kernel."""
        if self._target.size != nx:
            raise ValueError(
                f"{type(self).__name__}.target has {self._target.size} entries but the "
                f"model's state has nx={nx}; give one target per state entry."
            )
        if self.terminal_only:
            return StageForm(None, _state_terminal, self._params)
        return StageForm(_state_running, None, self._params, _state_lanes)


@dataclass(frozen=True)
class TerminalState(StateTracking):
    """Like ``StateTracking`` but only on the final predicted state X[:, H]."""

    terminal_only = True


def _action_params(
    owner: str, order: int, reference: ArrayLike, weights: ArrayLike, nu: int
) -> FloatArray:
    ref = _vector(f"{owner}.reference", reference, nu)
    w = _vector(f"{owner}.weights", weights, nu)
    return np.concatenate([[float(order)], ref, w])


@dataclass(frozen=True)
class _ActionQuadratic:
    """What ``ControlEffort`` and ``Smoothness`` share: the kernel's parameters for an action
    size, checked and packed once per ``nu`` (every call did it: 40 us of a Panda step)."""

    _by_nu: dict[int, FloatArray] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def _make_params(self, nu: int) -> FloatArray:
        raise NotImplementedError

    def _params(self, nu: int) -> FloatArray:
        params = self._by_nu.get(nu)
        if params is None:
            params = self._by_nu[nu] = self._make_params(nu)  # raises on bad weights
        return params

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        out = np.empty(U.shape[0])
        params = self._params(U.shape[2])
        _quadratic_action(np.ascontiguousarray(U, dtype=np.float64), params, out)
        return out

    def stage_form(self, nx: int, nu: int) -> StageForm:
        """The per-step form of this term, for the planner's fused kernel."""
        return StageForm(_action_running, None, self._params(nu), _action_lanes)


@dataclass(frozen=True)
class ControlEffort(_ActionQuadratic):
    """``sum_t sum_j w_j (u_t,j - reference_j)^2``."""

    weights: ArrayLike = 1.0
    reference: ArrayLike = 0.0

    def _make_params(self, nu: int) -> FloatArray:
        return _action_params("ControlEffort", 0, self.reference, self.weights, nu)


@dataclass(frozen=True)
class Smoothness(_ActionQuadratic):
    """Squared finite differences of the actions along time.

    ``order=1`` penalises the rate of change (u_t - u_{t-1}); ``order=2`` the
    second difference, i.e. jerk when the actions are accelerations.
    """

    weights: ArrayLike = 1.0
    order: int = 1

    def __post_init__(self) -> None:
        if self.order not in (1, 2):
            raise ValueError(f"Smoothness.order must be 1 or 2, got {self.order!r}.")

    def _make_params(self, nu: int) -> FloatArray:
        return _action_params("Smoothness", self.order, 0.0, self.weights, nu)


def _obstacle_array(name: str, rows: ArrayLike, width: int, geometry: int = 2) -> FloatArray:
    """Rows of ``width`` numbers: ``geometry`` coordinates, then sizes that must be positive."""
    arr = np.asarray(rows, dtype=np.float64) if np.size(rows) else np.zeros((0, width))
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"{name} must have rows of {width} numbers, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)) or np.any(arr[:, geometry:] <= 0):
        raise ValueError(
            f"{name}: every row needs finite coordinates and positive size, got {arr}."
        )
    return np.ascontiguousarray(arr)


def _position_dims(dims: Any) -> tuple[int, int]:
    """``Scene.position_dims`` as a pair of distinct integers >= 0, or a ValueError."""
    try:
        pair = tuple(dims)
    except TypeError:
        pair = ()
    ok = len(pair) == 2 and all(
        isinstance(i, (int, np.integer)) and not isinstance(i, bool) and i >= 0 for i in pair
    )
    if not ok or pair[0] == pair[1]:
        raise ValueError(
            f"Scene.position_dims must be two distinct integers >= 0, the state indices of "
            f"the (x, y) position (e.g. (0, 1)), got {dims!r}."
        )
    return int(pair[0]), int(pair[1])


@dataclass(frozen=True)
class Scene:
    """Obstacles in the plane.

    Attributes:
        circles: rows (cx, cy, radius), Shape=(nc, 3).
        boxes: axis-aligned boxes, rows (cx, cy, half_width, half_height), Shape=(nb, 4).
        capsules: segments a-b thickened by a radius (walls, rails), rows
            (ax, ay, bx, by, radius), Shape=(ns, 5).
        position_dims: which state entries are the (x, y) position: two distinct
            integers >= 0, each smaller than the state size (checked against the
            states when they are evaluated).
    """

    circles: ArrayLike = ()
    boxes: ArrayLike = ()
    capsules: ArrayLike = ()
    position_dims: tuple[int, int] = (0, 1)
    _circles: FloatArray = field(init=False, repr=False)
    _boxes: FloatArray = field(init=False, repr=False)
    _capsules: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_circles", _obstacle_array("Scene.circles", self.circles, 3))
        object.__setattr__(self, "_boxes", _obstacle_array("Scene.boxes", self.boxes, 4))
        capsules = _obstacle_array("Scene.capsules", self.capsules, 5, geometry=4)
        object.__setattr__(self, "_capsules", capsules)
        object.__setattr__(self, "position_dims", _position_dims(self.position_dims))

    def check_state_size(self, nx: int) -> None:
        """Raise unless both ``position_dims`` index a state of size ``nx``.

        The distance kernels read ``x[ix], x[iy]`` unchecked: an index past the
        state would read neighbouring memory (or crash).
        """
        ix, iy = self.position_dims
        if ix >= nx or iy >= nx:
            raise ValueError(
                f"Scene.position_dims={self.position_dims} point outside the state of size "
                f"nx={nx}. Set position_dims to the indices of the (x, y) position in the "
                f"state, each < {nx}."
            )

    @property
    def circle_array(self) -> FloatArray:
        return self._circles

    @property
    def box_array(self) -> FloatArray:
        return self._boxes

    @property
    def capsule_array(self) -> FloatArray:
        return self._capsules

    def _states(self, X: FloatArray) -> FloatArray:
        """``X`` as contiguous float64 states Shape=(K, T, nx) the kernels may index."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 3:
            raise ValueError(f"Scene distances expect states Shape=(K, H+1, nx), got {X.shape}.")
        self.check_state_size(X.shape[2])
        return X

    def distances(self, X: FloatArray) -> FloatArray:
        """Signed distance of every predicted position, Shape=(K, H+1)."""
        X = self._states(X)
        out = np.empty(X.shape[:2])
        ix, iy = self.position_dims
        trajectory_distances(X, ix, iy, self._circles, self._boxes, self._capsules, out)
        return out

    def swept_distances(self, X: FloatArray) -> FloatArray:
        """Smallest signed distance over each segment X[:, t] -> X[:, t+1], Shape=(K, H).

        Exact for every obstacle kind (``cost.sdf``): the straight path between two
        sampled positions, where ``distances`` sees only its ends.
        """
        X = self._states(X)
        out = np.empty((X.shape[0], max(X.shape[1] - 1, 0)))
        ix, iy = self.position_dims
        swept_trajectory_distances(X, ix, iy, self._circles, self._boxes, self._capsules, out)
        return out

    def path_distances(self, X: FloatArray) -> FloatArray:
        """Smallest signed distance along each whole path, Shape=(K,).

        Over every position X[:, t] and every segment between consecutive ones
        (one position: its distance). Negative: the path enters an obstacle.
        """
        X = np.asarray(X, dtype=np.float64)
        d = self.distances(X).min(axis=1)
        if X.shape[1] > 1:
            d = np.minimum(d, self.swept_distances(X).min(axis=1))
        return np.asarray(d)


@dataclass(frozen=True)
class ObstacleProximity:
    """Soft obstacle cost: ``sum_t max(0, margin - d_t)^2`` over the running states.

    Grows smoothly as the path enters the margin band and keeps growing inside
    the obstacle, so the gradient of "how bad" stays informative for sampling.

    ``swept=True`` makes ``d_t`` the smallest distance over the segment X[t] -> X[t+1]
    instead of at X[t+1] (also in the fused kernel). Off by default: the hard
    ``ObstacleConstraint`` is what keeps the path out (swept by default), and this
    cost's job is shaping; switching it changes the planners' choices on the
    shipped tasks, whose settings were tuned with the point form.
    """

    scene: Scene
    margin: float = 0.2
    swept: bool = False

    def __post_init__(self) -> None:
        require_non_negative("ObstacleProximity", "margin", self.margin)

    def _params(self) -> FloatArray:
        scene = self.scene
        circles, boxes, capsules = scene.circle_array, scene.box_array, scene.capsule_array
        ix, iy = scene.position_dims
        head = [
            ix, iy, self.margin, circles.shape[0], boxes.shape[0], capsules.shape[0],
            float(self.swept),
        ]  # fmt: skip
        return np.concatenate(
            [np.array(head, dtype=np.float64), circles.ravel(), boxes.ravel(), capsules.ravel()]
        )

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 3:
            raise ValueError(f"ObstacleProximity expects states Shape=(K, H+1, nx), got {X.shape}.")
        self.scene.check_state_size(X.shape[2])
        out = np.empty(X.shape[0])
        _proximity(X, self._params(), out)
        return out

    def stage_form(self, nx: int, nu: int) -> StageForm:
        """The per-step form of this term, for the planner's fused kernel."""
        self.scene.check_state_size(nx)
        return StageForm(_proximity_running, None, self._params())


@dataclass(frozen=True)
class ObstacleConstraint:
    """Obstacle constraint: violation ``max(0, margin - min d)``; 0 means safe.

    ``swept=True`` (the default): ``d`` runs over the whole piecewise-straight
    path, every segment X[t] -> X[t+1] (``Scene.swept_distances``, exact), so a
    plan whose states all keep the margin but whose path between two of them
    cuts a corner is rejected; see ``cost.constraints.clearance_slack`` for the
    first segment, which starts at the measured state. ``swept=False``: only the
    states X[:, 1:]. Why always on: at 2 m/s and dt = 0.1 a step is 0.2 m, twice
    the navigation margin; a segment can cut a corner even at margin 0 (the
    evaluation's check), so a "step longer than the margin" switch would not be
    sound, and the swept check adds a few times the point check's cost, which is
    a few milliseconds for K x H = 30 000 segments (``bench/swept_checks.py``).
    The violation is never smaller than the point check's (both are taken).

    Hard by default (a violating sample is rejected); ``hard=False`` makes it
    the penalty ``weight * violation`` (see ``cost.constraints``).
    """

    scene: Scene
    margin: float = 0.0
    name: str = "obstacles"
    hard: bool = True
    weight: float = 1e3
    swept: bool = True

    def __post_init__(self) -> None:
        require_non_negative("ObstacleConstraint", "margin", self.margin)
        require_non_negative("ObstacleConstraint", "weight", self.weight)

    def _distances(self, X: FloatArray) -> tuple[FloatArray, FloatArray | None]:
        X = np.asarray(X, dtype=np.float64)
        return self.scene.distances(X), self.scene.swept_distances(X) if self.swept else None

    def slack(self, X: FloatArray) -> FloatArray:
        """By how much each sample keeps the margin (negative: violated), Shape=(K,)."""
        return clearance_slack(self.margin, *self._distances(X))

    def violation(self, X: FloatArray, U: FloatArray) -> FloatArray:
        return clearance_violation(self.margin, *self._distances(X))


_STAGE_SIGNATURE = (
    "StageCost expects @njit stage(x Shape=(nx,), u Shape=(nu,), t: int, params Shape=(p,)) "
    "-> float and optionally @njit terminal(x Shape=(nx,), params) -> float (each returning "
    "one number)"
)


class StageCost:
    """A cost from per-step ``@njit`` functions, lifted to a parallel batch kernel.

    Args:
        stage: ``@njit stage(x Shape=(nx,), u Shape=(nu,), t, params) -> float``.
        terminal: optional ``@njit terminal(x Shape=(nx,), params) -> float``.
        params: parameters passed to both, Shape=(p,).
    """

    def __init__(self, stage: Any, terminal: Any | None = None, params: ArrayLike = (0.0,)) -> None:
        self._kernel = make_stage_cost_kernel(stage, terminal)
        self._stage = stage
        self._terminal = terminal
        self._params = np.ascontiguousarray(np.atleast_1d(np.asarray(params, dtype=np.float64)))

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        out = np.empty(X.shape[0])
        with user_numba_function(_STAGE_SIGNATURE):
            self._kernel(X, U, self._params, out)
        return out

    def stage_form(self, nx: int, nu: int) -> StageForm:
        """The per-step form of this term, for the planner's fused kernel."""
        terminal = inline_copy(self._terminal) if self._terminal is not None else None
        return StageForm(_stage_running(self._stage), terminal, self._params)


_STAGE_RUNNING: dict[Any, Any] = {}


def _stage_running(stage: Any) -> Any:
    """A user's ``stage(x, u, t, params)`` as ``running(x_prev, x, U, t, params)`` (cached)."""
    if stage not in _STAGE_RUNNING:
        fn = inline_copy(stage)

        @nb.njit(inline="always")
        def running(x_prev, x, U, t, p):  # pragma: no cover - compiled
            return fn(x, U[t], t, p)

        _STAGE_RUNNING[stage] = running
    return _STAGE_RUNNING[stage]
