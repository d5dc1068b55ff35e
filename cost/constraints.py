"""Constraints on predicted trajectories: each is hard (reject) or soft (penalise).

A constraint is ``violation(X, U) -> Shape=(K,)``: 0 where the sample is safe,
positive by how much it is not (in the constraint's own units), over
X Shape=(K, H+1, nx) and U Shape=(K, H, nu). States are judged on X[:, 1:]
(the current state is a measurement, not a choice).

``hard=True`` (the default) makes a planner reject every sample with a
positive violation; ``hard=False`` turns it into the cost term
``weight * violation`` instead (``split_constraints`` does the sorting, and
``SamplingPlanner`` calls it). A linear penalty is exact: for a weight above
the cost's sensitivity the optimum of the penalised problem is the
constrained one, where a squared penalty always leaves some violation.

The obstacle constraints in the plane are ``cost.ObstacleConstraint`` over a
``cost.Scene`` (circles, boxes, capsules); ``SphereConstraint`` keeps points
of a robot (end effector, link spheres) away from spheres in 3-D. Both check the
swept path by default (``swept=True``): the straight segment between consecutive
states, not only the states, so a fast plan cannot cut a corner between two
samples (``clearance_slack``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numba as nb
import numpy as np
from numpy.typing import ArrayLike

from cost.composite import Term
from imle_mpc.core.kernels.bits import bits_as_float, float_as_bits
from imle_mpc.core.kernels.geometry import swept_sphere_clearance
from imle_mpc.core.kernels.sums import NUMPY_PAIRWISE_BLOCK, numpy_row_sum
from imle_mpc.core.validation import FloatArray, require_non_negative

ViolationFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
PointsFn = Callable[[np.ndarray], np.ndarray]
"""``points(X Shape=(K, T, nx)) -> Shape=(K, T, P, 3)``: robot points in the world frame."""

DEFAULT_PENALTY_WEIGHT = 1e3


def _check_weight(owner: str, weight: float) -> None:
    if not (np.isfinite(weight) and weight > 0):
        raise ValueError(f"{owner}.weight must be finite and > 0, got {weight!r}.")


def _limits(owner: str, low: ArrayLike, high: ArrayLike) -> tuple[FloatArray, FloatArray]:
    lo = np.atleast_1d(np.asarray(low, dtype=np.float64))
    hi = np.atleast_1d(np.asarray(high, dtype=np.float64))
    lo, hi = np.broadcast_arrays(lo, hi)
    if lo.ndim != 1 or np.isnan(lo).any() or np.isnan(hi).any():
        raise ValueError(f"{owner}: low/high must be 1-D vectors without NaN, got {lo}, {hi}.")
    if np.any(lo > hi):
        bad = np.flatnonzero(lo > hi).tolist()
        raise ValueError(
            f"{owner}: low > high at indices {bad} ({lo[bad]} > {hi[bad]}); the box is empty, "
            "no state or action can satisfy it. Swap or widen the limits."
        )
    return np.ascontiguousarray(lo), np.ascontiguousarray(hi)


def _box_excess(values: np.ndarray, first: int, low: FloatArray, high: FloatArray) -> np.ndarray:
    """Largest amount by which any entry of ``values[:, first:]`` leaves [low, high], per
    sample, Shape=(K,). values Shape=(K, T, n), any strides (copied when not C-contiguous)."""
    if low.size not in (1, values.shape[-1]):
        raise ValueError(
            f"box limits have {low.size} entries but the values have {values.shape[-1]} "
            "per step; give one limit per state (or action) entry, or a scalar."
        )
    K, T, n = values.shape
    out = np.zeros(K)
    if first >= T or n == 0:
        return out
    # a full-size bound as it is (np.broadcast_to costs ~5 us a call)
    lo = low if low.size == n else np.full(n, low.reshape(-1)[0])
    hi = high if high.size == n else np.full(n, high.reshape(-1)[0])
    rows = np.ascontiguousarray(values).reshape(K, T * n)  # a view of a planner's buffers
    _box_excess_kernel(rows, first * n, lo, hi, out)
    return out


@nb.njit(cache=True, error_model="numpy")
def _box_excess_kernel(rows, start, low, high, out):  # pragma: no cover - compiled
    """``out[k] = max(0, max_j max(low_j - v, v - high_j))`` over ``rows[k, start:]``, NaN if
    any term is NaN; ``low``/``high`` Shape=(n,) repeat along the row.

    NumPy's ``np.maximum(np.maximum(low - v, v - high), 0).max(axis=(1, 2))`` in one pass
    without its three (K, T, n) temporaries: the same subtractions, and max is exact, so
    the same numbers, NaN included (an unjudgeable sample stays NaN; the planners treat it
    as unsafe). The maximum is taken over the excesses' bit patterns, from +0.0's
    (``core.kernels.bits``: negative numbers read as negative ints), which packs where a
    float maximum runs one at a time: Panda, 256 x 16 x 14 states, one thread, 37 -> 15 us.
    The bounds are tiled to the row's length once, so the loop runs over one flat row (a
    loop over n = 14 entries does not pack).
    """
    K, m = rows.shape
    n = low.shape[0]
    width = m - start
    low_row = np.empty(width)
    high_row = np.empty(width)
    for j in range(width):
        low_row[j] = low[j % n]
        high_row[j] = high[j % n]
    for k in range(K):
        row = rows[k, start:]
        top = 0  # the bits of +0.0
        unjudgeable = False
        for j in range(width):
            v = row[j]
            below = low_row[j] - v
            above = v - high_row[j]
            unjudgeable |= (below != below) | (above != above)
            # negative numbers (-0.0 too) have the sign bit: as int64 below the start's 0
            bits = float_as_bits(below if below > above else above)
            top = top if top > bits else bits
        out[k] = np.nan if unjudgeable else bits_as_float(top)


def clearance_slack(margin: float, points: FloatArray, segments: FloatArray | None) -> FloatArray:
    """By how much each sample keeps ``margin`` (negative: by how much it does not), Shape=(K,).

    The violation of an obstacle constraint is ``max(0, -slack)``.

    Args:
        margin: the clearance to keep (m).
        points: signed distances of the states X[:, 0..H], Shape=(K, H+1). Column 0
            is the current state; only X[:, 1:] is judged as a point.
        segments: signed distances over the segments X[:, t] -> X[:, t+1], Shape=(K, H),
            or None for the point check alone. (In exact arithmetic the segments
            cover the states; taking both makes "never below the point check" hold
            to the last bit.)

    The first segment starts at the measured state, which no plan can choose: when that
    state is already inside the margin, the first segment is only held to not come
    closer than it (``min(margin, d(X[:, 0]))``); X[:, 1] must still keep the margin. So
    the slack is never larger than the point check's, and a state pushed into the
    margin band can still be left.
    """
    K = points.shape[0]
    slack = points[:, 1:].min(axis=1) - margin if points.shape[1] > 1 else np.full(K, np.inf)
    if segments is not None and segments.shape[1] > 0:
        first = segments[:, 0] - np.minimum(margin, points[:, 0])
        slack = np.minimum(slack, first)
        if segments.shape[1] > 1:
            slack = np.minimum(slack, segments[:, 1:].min(axis=1) - margin)
    return np.asarray(slack)


def clearance_violation(
    margin: float, points: FloatArray, segments: FloatArray | None
) -> FloatArray:
    """``max(0, -clearance_slack(...))``: 0 for a safe sample, Shape=(K,); no states: 0."""
    if points.shape[1] < 2:
        return np.zeros(points.shape[0])
    out = np.empty(points.shape[0])
    steps = _NO_SEGMENTS if segments is None else segments
    _clearance_violation_kernel(float(margin), points, steps, segments is not None, out)
    return out


_NO_SEGMENTS = np.empty((0, 0))


def clearance_proximity(margin: float, points: FloatArray) -> FloatArray:
    """``sum_t max(0, margin - d_t)^2`` over the states X[:, 1:], Shape=(K,): a soft cost
    that grows as a sample comes within ``margin`` of an obstacle.

    Args:
        margin: where the cost starts (m).
        points: signed distances of the states X[:, 0..H], Shape=(K, H+1) (column 0, the
            measured state, is not charged).

    NumPy's ``(np.maximum(margin - d, 0) ** 2).sum(axis=1)`` to the bit (its pairwise
    order, ``core.kernels.sums``) in one compiled pass, without its three temporaries:
    13-18 -> 3-3.6 us for the Panda's 256 x 17 distances. Horizons past 128 steps go
    through NumPy. NaN distances give NaN.
    """
    d = np.asarray(points, dtype=np.float64)
    K, T = d.shape
    if T - 1 > NUMPY_PAIRWISE_BLOCK:
        gap = np.maximum(margin - d[:, 1:], 0.0)
        return np.asarray((gap * gap).sum(axis=1))
    out = np.empty(K)
    _proximity_kernel(float(margin), d, out)
    return out


@nb.njit(cache=True)
def _proximity_kernel(margin, d, out):  # pragma: no cover - compiled
    """``clearance_proximity`` of distances ``d`` Shape=(K, T) into ``out`` Shape=(K,)."""
    K, T = d.shape
    squares = np.empty(max(T - 1, 0))
    for k in range(K):
        for t in range(1, T):
            gap = margin - d[k, t]
            gap = gap if (gap >= 0.0 or gap != gap) else 0.0  # np.maximum(gap, 0): NaN stays
            squares[t - 1] = gap * gap
        out[k] = numpy_row_sum(squares, T - 1)


@nb.njit(inline="always")
def _smaller(a, b):  # pragma: no cover - compiled
    """``np.minimum(a, b)``: NaN if either is NaN."""
    if a != a or b != b:
        return np.nan
    return a if a < b else b


@nb.njit(cache=True)
def _clearance_violation_kernel(margin, points, segments, swept, out):  # pragma: no cover
    """``max(0, -clearance_slack(margin, points, segments))`` per sample, into out (K,).

    ``clearance_slack``'s reductions (its minima over steps, NaN propagating) and then
    ``np.maximum(-slack, 0)`` in one pass per sample: min is exact, so the same numbers
    without the five (K,) temporaries and four NumPy reductions (~25 us a Panda step).
    ``points`` Shape=(K, H+1) with H >= 1; ``segments`` Shape=(K, H) read when ``swept``.
    """
    K, T = points.shape
    for k in range(K):
        lowest = points[k, 1]
        for t in range(2, T):
            lowest = _smaller(lowest, points[k, t])
        slack = lowest - margin
        if swept and segments.shape[1] > 0:
            first = segments[k, 0] - _smaller(margin, points[k, 0])
            slack = _smaller(slack, first)
            if segments.shape[1] > 1:
                rest = segments[k, 1]
                for t in range(2, segments.shape[1]):
                    rest = _smaller(rest, segments[k, t])
                slack = _smaller(slack, rest - margin)
        out[k] = np.nan if slack != slack else max(-slack, 0.0)


@dataclass(frozen=True)
class _Box:
    """Shared fields and checks of ``StateBox`` and ``ActionBox``."""

    low: ArrayLike
    high: ArrayLike
    name: str = "box"
    hard: bool = True
    weight: float = DEFAULT_PENALTY_WEIGHT
    _low: FloatArray = field(init=False, repr=False)
    _high: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        lo, hi = _limits(type(self).__name__, self.low, self.high)
        object.__setattr__(self, "_low", lo)
        object.__setattr__(self, "_high", hi)
        _check_weight(type(self).__name__, self.weight)


@dataclass(frozen=True)
class StateBox(_Box):
    """``low <= x_t <= high`` for every predicted state (use ±inf for a free entry).

    Joint position and velocity limits are a ``StateBox`` over the joint entries.
    """

    name: str = "state_box"

    def violation(self, X: FloatArray, U: FloatArray) -> FloatArray:
        return _box_excess(np.asarray(X), 1, self._low, self._high)


@dataclass(frozen=True)
class ActionBox(_Box):
    """``low <= u_t <= high`` for every planned action (torque limits, for instance).

    Planners clip to the model's actuator box already; this constraint is for a
    tighter box (a safety limit below the motor's rating) or for checking a plan
    that came from elsewhere.
    """

    name: str = "action_box"

    def violation(self, X: FloatArray, U: FloatArray) -> FloatArray:
        return _box_excess(np.asarray(U), 0, self._low, self._high)


@dataclass(frozen=True)
class RateLimit:
    """``|u_t - u_{t-1}| <= max_delta`` per step and action entry (slew-rate limits).

    Args:
        max_delta: largest change per control step, scalar or Shape=(nu,), > 0.
    """

    max_delta: ArrayLike
    name: str = "rate_limit"
    hard: bool = True
    weight: float = DEFAULT_PENALTY_WEIGHT
    _max_delta: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        delta = np.atleast_1d(np.asarray(self.max_delta, dtype=np.float64))
        if delta.ndim != 1 or not np.all(delta > 0) or np.isnan(delta).any():
            raise ValueError(f"RateLimit.max_delta must be > 0 (scalar or (nu,)), got {delta}.")
        object.__setattr__(self, "_max_delta", delta)
        _check_weight(type(self).__name__, self.weight)

    def violation(self, X: FloatArray, U: FloatArray) -> FloatArray:
        U = np.asarray(U)
        if U.shape[1] < 2:
            return np.zeros(U.shape[0])
        rate = np.abs(np.diff(U, axis=1))
        return np.asarray(np.maximum(rate - self._max_delta, 0.0).max(axis=(1, 2)))


@dataclass(frozen=True)
class JointLimits:
    """Joint position, velocity and torque limits of an arm with state (q, v), action tau.

    Args:
        position_low: lower joint position limits, Shape=(nq,).
        position_high: upper joint position limits, Shape=(nq,).
        velocity_limit: |v| <= velocity_limit, Shape=(nq,) or scalar.
        torque_limit: |tau| <= torque_limit, Shape=(nq,) or scalar; ``None`` to
            leave torques to the actuator box.
    """

    position_low: ArrayLike
    position_high: ArrayLike
    velocity_limit: ArrayLike
    torque_limit: ArrayLike | None = None
    name: str = "joint_limits"
    hard: bool = True
    weight: float = DEFAULT_PENALTY_WEIGHT
    _states: StateBox = field(init=False, repr=False)
    _torques: ActionBox | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        q_lo, q_hi = _limits("JointLimits.position", self.position_low, self.position_high)
        v_max = np.broadcast_to(np.asarray(self.velocity_limit, dtype=np.float64), q_lo.shape)
        states = StateBox(np.concatenate([q_lo, -v_max]), np.concatenate([q_hi, v_max]))
        torques = None
        if self.torque_limit is not None:
            tau = np.broadcast_to(np.asarray(self.torque_limit, dtype=np.float64), q_lo.shape)
            torques = ActionBox(-tau, tau)
        object.__setattr__(self, "_states", states)
        object.__setattr__(self, "_torques", torques)
        _check_weight(type(self).__name__, self.weight)

    def violation(self, X: FloatArray, U: FloatArray) -> FloatArray:
        v = self._states.violation(X, U)
        if self._torques is not None:
            v = np.maximum(v, self._torques.violation(X, U))
        return v


@dataclass(frozen=True)
class SphereConstraint:
    """Robot points (with radii) stay ``margin`` away from spherical obstacles in 3-D.

    Args:
        points: ``fn(X Shape=(K, T, nx)) -> Shape=(K, T, P, 3)``, e.g. the
            end effector and link-sphere centres from forward kinematics.
        point_radii: radius of each robot sphere, Shape=(P,) or scalar (0 for points).
        spheres: obstacles, rows (cx, cy, cz, radius), Shape=(n, 4).
        margin: extra clearance (m), >= 0.
        swept: also check each robot sphere's straight path between consecutive
            states (its centre's segment from X[t] to X[t+1]) against the obstacles,
            not only the states (``clearance_slack``). Default True: the robot spheres
            move centimetres per step, as much as the margins.
    """

    points: PointsFn
    spheres: ArrayLike
    point_radii: ArrayLike = 0.0
    margin: float = 0.0
    name: str = "spheres"
    hard: bool = True
    weight: float = DEFAULT_PENALTY_WEIGHT
    swept: bool = True
    _spheres: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        spheres = np.asarray(self.spheres, dtype=np.float64).reshape(-1, 4)
        if not np.all(np.isfinite(spheres)) or np.any(spheres[:, 3] <= 0):
            raise ValueError(
                f"SphereConstraint.spheres needs rows (cx, cy, cz, radius > 0), got {spheres}."
            )
        require_non_negative("SphereConstraint", "margin", self.margin)
        _check_weight(type(self).__name__, self.weight)
        object.__setattr__(self, "_spheres", spheres)

    def _points(self, X: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Robot sphere centres Shape=(K, T, P, 3) and radii Shape=(P,)."""
        P = np.asarray(self.points(np.asarray(X)), dtype=np.float64)
        if P.ndim != 4 or P.shape[-1] != 3 or P.shape[:2] != np.asarray(X).shape[:2]:
            raise ValueError(
                f"SphereConstraint.points must return Shape=(K, T, P, 3) for X of shape "
                f"{np.asarray(X).shape}, got {P.shape}."
            )
        radii = np.broadcast_to(np.asarray(self.point_radii, dtype=np.float64), P.shape[2:3])
        return P, np.ascontiguousarray(radii)

    def _gaps(self, P: FloatArray, point_radii: FloatArray) -> FloatArray:
        centres, radii = self._spheres[:, :3], self._spheres[:, 3]
        gaps = np.linalg.norm(P[:, :, :, None, :] - centres, axis=-1) - radii
        gaps -= point_radii[:, None]
        return np.asarray(gaps.min(axis=(2, 3)))

    def _swept(self, P: FloatArray, point_radii: FloatArray) -> FloatArray:
        out = np.empty((P.shape[0], max(P.shape[1] - 1, 0)))
        swept_sphere_clearance(np.ascontiguousarray(P), point_radii, self._spheres, out)
        return out

    def distances(self, X: FloatArray) -> FloatArray:
        """Smallest signed clearance of any robot sphere to any obstacle, Shape=(K, T)."""
        return self._gaps(*self._points(X))

    def swept_distances(self, X: FloatArray) -> FloatArray:
        """Smallest signed clearance over each step's motion, Shape=(K, T-1).

        Entry t: every robot sphere's centre on the segment from its place at X[:, t]
        to X[:, t+1], against every obstacle sphere.
        """
        return self._swept(*self._points(X))

    def violation(self, X: FloatArray, U: FloatArray) -> FloatArray:
        P, point_radii = self._points(X)
        swept = self._swept(P, point_radii) if self.swept else None
        return clearance_violation(self.margin, self._gaps(P, point_radii), swept)


@dataclass(frozen=True)
class FunctionConstraint:
    """A user's constraint: ``fn(X, U) -> Shape=(K,)`` violation, plain NumPy or ``@njit``.

    Example:
        >>> import numpy as np
        >>> def speed_limit(X, U):  # |v| <= 1.5 on every predicted state
        ...     speed = np.hypot(X[:, 1:, 2], X[:, 1:, 3])
        ...     return np.maximum(speed - 1.5, 0.0).max(axis=1)
        >>> c = FunctionConstraint("speed", speed_limit, hard=False, weight=100.0)
    """

    name: str
    fn: ViolationFn
    hard: bool = True
    weight: float = DEFAULT_PENALTY_WEIGHT

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"FunctionConstraint {self.name!r}: fn must be fn(X, U) -> (K,).")
        _check_weight(type(self).__name__, self.weight)

    def violation(self, X: FloatArray, U: FloatArray) -> FloatArray:
        v = np.asarray(self.fn(X, U), dtype=np.float64)
        if v.shape != (np.asarray(X).shape[0],):
            raise ValueError(
                f"constraint {self.name!r} returned shape {v.shape}; violation(X, U) must return "
                f"one number per sample, Shape=({np.asarray(X).shape[0]},)."
            )
        return v


class Penalty:
    """A soft constraint as a cost term: ``violation(X, U)``, NaN -> +inf (weight via ``Term``)."""

    def __init__(self, constraint: Any) -> None:
        self.constraint = constraint

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        v = np.asarray(self.constraint.violation(X, U), dtype=np.float64)
        return np.where(np.isnan(v), np.inf, v)


def constraint_name(constraint: Any) -> str:
    """A constraint's ``name``, or its class name when it has none."""
    return str(getattr(constraint, "name", type(constraint).__name__))


def split_constraints(constraints: Sequence[Any]) -> tuple[tuple[Any, ...], tuple[Term, ...]]:
    """Sort constraints into hard ones and soft ones turned into cost terms.

    A constraint is soft when its ``hard`` attribute is False; its term is named
    ``soft:<name>`` with the constraint's ``weight``.

    Raises:
        TypeError: an entry has no ``violation(X, U)`` method.
    """
    hard: list[Any] = []
    soft: list[Term] = []
    for c in constraints:
        if not callable(getattr(c, "violation", None)):
            raise TypeError(
                f"{c!r} is not a constraint: it needs a violation(X, U) -> (K,) method. "
                "Wrap a plain function with cost.FunctionConstraint(name, fn)."
            )
        if getattr(c, "hard", True):
            hard.append(c)
        else:
            weight = float(getattr(c, "weight", DEFAULT_PENALTY_WEIGHT))
            soft.append(Term(f"soft:{constraint_name(c)}", Penalty(c), weight))
    return tuple(hard), tuple(soft)
