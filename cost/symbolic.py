"""CasADi forms of the built-in cost terms and of the obstacle constraint.

A symbolic trajectory stores time along the columns, as CasADi does:
``X`` Shape=(nx, H+1) with ``X[:, 0]`` the current state and ``U`` Shape=(nu, H)
(the transpose of one sample of the NumPy batch ``X[k]`` Shape=(H+1, nx)).
``symbolic_cost(cost, X, U)`` then equals ``cost.evaluate(X[None], U[None])``
for that sample, term by term, with two deliberate differences:

* Angle errors of ``StateTracking(angle_dims=...)`` are wrapped with the smooth
  ``atan2(sin e, cos e)`` instead of ``floor``: the same value (up to rounding;
  it lands in (-pi, pi] rather than [-pi, pi), which squares the same), but
  differentiable everywhere except at the wrap point itself.
* Distances to circles and boxes take the square root through ``if_else`` with
  a safe argument (``sqrt(r2)`` where ``r2 > 0``, else 0): the same value, and
  a finite (zero) gradient at a circle's centre or inside a box instead of NaN.

Terms without a symbolic form raise ``TypeError``; give their CasADi form in
``overrides={"term name": fn}`` (``fn(X, U) -> scalar``, the layout above).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import casadi as ca
import numpy as np

from cost.composite import CostSum
from cost.terms import (
    ControlEffort,
    ObstacleConstraint,
    ObstacleProximity,
    Scene,
    Smoothness,
    StateTracking,
)
from cost.value import QuadraticTerminalValue

Expr = Any
"""A CasADi expression (``SX`` or ``MX``)."""
SymbolicTerm = Callable[[Expr, Expr], Expr]
"""``fn(X Shape=(nx, H+1), U Shape=(nu, H)) -> scalar`` CasADi expression."""


def _safe_norm(dx: Expr, dy: Expr) -> Expr:
    """``sqrt(dx^2 + dy^2)`` with a zero (not NaN) derivative at the origin."""
    r2 = dx * dx + dy * dy
    positive = r2 > 0.0
    return ca.if_else(positive, ca.sqrt(ca.if_else(positive, r2, 1.0)), 0.0)


def obstacle_distances(scene: Scene, x: Expr) -> list[Expr]:
    """Signed distance of the state's position to every obstacle (negative inside).

    Args:
        scene: the obstacles; ``scene.position_dims`` says where the position is.
        x: one state, Shape=(nx, 1).

    Returns:
        One expression per obstacle: circles, then boxes, then capsules (where
        the scene has them), each in the order of its array. Same values as
        ``cost.circle_distance`` / ``box_distance`` / ``capsule_distance``.
    """
    scene.check_state_size(x.shape[0])
    ix, iy = scene.position_dims
    px, py = x[ix], x[iy]
    out = [_safe_norm(px - cx, py - cy) - r for cx, cy, r in scene.circle_array]
    for cx, cy, half_w, half_h in scene.box_array:
        dx = ca.fabs(px - cx) - half_w
        dy = ca.fabs(py - cy) - half_h
        outside = _safe_norm(ca.fmax(dx, 0.0), ca.fmax(dy, 0.0))
        out.append(outside + ca.fmin(ca.fmax(dx, dy), 0.0))
    for ax, ay, bx, by, r in getattr(scene, "capsule_array", ()):
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        s = 0.0
        if length2 > 0.0:
            s = ca.fmin(ca.fmax(((px - ax) * dx + (py - ay) * dy) / length2, 0.0), 1.0)
        out.append(_safe_norm(px - (ax + s * dx), py - (ay + s * dy)) - r)
    return out


def _min(values: list[Expr]) -> Expr:
    result = values[0]
    for v in values[1:]:
        result = ca.fmin(result, v)
    return result


def _broadcast(value: Any, size: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (size,)).copy()


def _state_tracking(term: StateTracking, X: Expr, U: Expr) -> Expr:
    target = np.atleast_1d(np.asarray(term.target, dtype=np.float64))
    nx = target.size
    if X.shape[0] != nx:
        raise ValueError(
            f"{type(term).__name__}.target has {nx} entries but the states have nx="
            f"{X.shape[0]}; give one target per state entry."
        )
    weights = _broadcast(term.weights, nx)
    angles = set(term.angle_dims)
    steps = [X.shape[1] - 1] if term.terminal_only else range(1, X.shape[1])
    total: Expr = 0.0
    for t in steps:
        for i in range(nx):
            if weights[i] == 0.0:
                continue
            e = X[i, t] - target[i]
            if i in angles:
                e = ca.atan2(ca.sin(e), ca.cos(e))
            total += weights[i] * e * e
    return total


def _action_penalty(order: int, reference: Any, weights: Any, U: Expr) -> Expr:
    nu, H = U.shape
    ref = _broadcast(reference, nu)
    w = _broadcast(weights, nu)
    total: Expr = 0.0
    for t in range(order, H):
        for j in range(nu):
            if order == 0:
                e = U[j, t] - ref[j]
            elif order == 1:
                e = U[j, t] - U[j, t - 1]
            else:
                e = U[j, t] - 2.0 * U[j, t - 1] + U[j, t - 2]
            total += w[j] * e * e
    return total


def _proximity(term: ObstacleProximity, X: Expr, U: Expr) -> Expr:
    total: Expr = 0.0
    for t in range(1, X.shape[1]):
        distances = obstacle_distances(term.scene, X[:, t])
        if not distances:
            return total
        d = _min(distances)
        v = ca.fmax(term.margin - d, 0.0)
        total += v * v
    return total


def _terminal_value(term: QuadraticTerminalValue, X: Expr) -> Expr:
    reference = term.operating_point
    if X.shape[0] != reference.size:
        raise ValueError(
            f"QuadraticTerminalValue.reference has {reference.size} entries but the states "
            f"have nx={X.shape[0]}; give the operating point as a full state."
        )
    dims = list(term.state_dims)
    e = X[dims, X.shape[1] - 1] - reference[dims]
    return ca.dot(e, ca.mtimes(ca.DM(term.matrix), e))


def symbolic_term(fn: Any, X: Expr, U: Expr, name: str = "") -> Expr:
    """The CasADi form of one built-in cost term (unweighted).

    Args:
        fn: a ``StateTracking``, ``TerminalState``, ``ControlEffort``,
            ``Smoothness``, ``ObstacleProximity``, ``QuadraticTerminalValue`` (or a
            nested ``CostSum``).
        X: states, Shape=(nx, H+1).
        U: actions, Shape=(nu, H).
        name: the term's name, for the error message.

    Raises:
        TypeError: ``fn`` has no symbolic form.
    """
    if isinstance(fn, StateTracking):  # TerminalState too
        return _state_tracking(fn, X, U)
    if isinstance(fn, Smoothness):
        return _action_penalty(fn.order, 0.0, fn.weights, U)
    if isinstance(fn, ControlEffort):
        return _action_penalty(0, fn.reference, fn.weights, U)
    if isinstance(fn, ObstacleProximity):
        return _proximity(fn, X, U)
    if isinstance(fn, QuadraticTerminalValue):
        return _terminal_value(fn, X)
    if isinstance(fn, CostSum):
        return symbolic_cost(fn, X, U)
    label = f"cost term {name!r}" if name else "a cost term"
    raise TypeError(
        f"{label} ({type(fn).__name__}) has no CasADi form; built-in forms exist for "
        "StateTracking, TerminalState, ControlEffort, Smoothness, ObstacleProximity, "
        "QuadraticTerminalValue and nested CostSum. "
        f"Pass its form as casadi_cost={{{name or 'name'!r}: fn}} with "
        "fn(X Shape=(nx, H+1), U Shape=(nu, H)) -> CasADi scalar, or drop the term."
    )


def symbolic_cost(
    cost: CostSum, X: Expr, U: Expr, overrides: Mapping[str, SymbolicTerm] | None = None
) -> Expr:
    """``sum_i weight_i * term_i(X, U)`` as one CasADi scalar.

    Args:
        cost: the task's cost.
        X: states, Shape=(nx, H+1), column 0 the current state.
        U: actions, Shape=(nu, H).
        overrides: CasADi forms by term name; they replace the built-in form
            and are the way to give one to a custom term. Unweighted: the
            term's weight is applied here.

    Raises:
        TypeError: a term has no symbolic form and no override.
        ValueError: an override names no term of ``cost``.
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(cost.names))
    if unknown:
        raise ValueError(
            f"casadi_cost names {unknown}, which are not terms of the cost; its terms are "
            f"{list(cost.names)}."
        )
    total: Expr = 0.0
    for term in cost.terms:
        if term.weight == 0.0:
            continue
        form = overrides.get(term.name)
        value = form(X, U) if form is not None else symbolic_term(term.fn, X, U, term.name)
        total += term.weight * value
    return total


def cost_function(
    cost: CostSum,
    nx: int,
    nu: int,
    horizon: int,
    overrides: Mapping[str, SymbolicTerm] | None = None,
) -> ca.Function:
    """``symbolic_cost`` compiled into a ``casadi.Function`` ``(X, U) -> cost``.

    ``X`` Shape=(nx, H+1), ``U`` Shape=(nu, H); handy to compare with
    ``CostSum.evaluate`` or to evaluate a plan without the Numba kernels.
    """
    X = ca.SX.sym("X", nx, horizon + 1)
    U = ca.SX.sym("U", nu, horizon)
    return ca.Function("cost", [X, U], [symbolic_cost(cost, X, U, overrides)], ["X", "U"], ["J"])


def obstacle_margins(
    constraint: Any, X: Expr, backoff: float = 0.0, segment_points: int = 0
) -> list[Expr]:
    """Expressions that are >= 0 exactly where an ``ObstacleConstraint`` holds at the nodes.

    One per obstacle and running state ``t = 1..H``: ``d_i(p_t) - margin - backoff``
    (the constraint checks X[:, 1:], so the current state is not constrained).
    With ``segment_points`` > 0 and a swept constraint, also that many evenly spaced
    points inside every segment X[:, t] -> X[:, t+1]: an approximation of the
    exact swept check from inside (the path between the points can still dip, by
    about 1 / (segment_points + 1)^2 of what it would between the nodes alone; the
    backoff covers the rest). On the first segment the margin is
    ``min(margin, d_i(X[:, 0]))``, as in ``cost.constraints.clearance_slack``.

    Args:
        constraint: a ``cost.ObstacleConstraint``.
        X: states, Shape=(nx, H+1).
        backoff: extra clearance (m), so that a solution on the boundary still
            passes the NumPy check after solver and integration round-off.
        segment_points: points constrained inside each segment (swept constraints only).

    Raises:
        TypeError: ``constraint`` is not an ``ObstacleConstraint``.
    """
    if not isinstance(constraint, ObstacleConstraint):
        name = getattr(constraint, "name", type(constraint).__name__)
        raise TypeError(
            f"constraint {name!r} ({type(constraint).__name__}) has no CasADi form; only "
            "cost.ObstacleConstraint has a built-in one. Pass its form as "
            "casadi_constraints=[fn] with fn(X Shape=(nx, H+1), U Shape=(nu, H)) -> list of "
            "expressions that must be >= 0, or drop the constraint."
        )
    scene, margin = constraint.scene, constraint.margin
    out = []
    for t in range(1, X.shape[1]):
        for d in obstacle_distances(scene, X[:, t]):
            out.append(d - margin - backoff)
    if segment_points > 0 and constraint.swept:
        start = [ca.fmin(margin, d) for d in obstacle_distances(scene, X[:, 0])]
        for t in range(X.shape[1] - 1):
            for j in range(1, segment_points + 1):
                w = j / (segment_points + 1)
                p = (1.0 - w) * X[:, t] + w * X[:, t + 1]
                for i, d in enumerate(obstacle_distances(scene, p)):
                    out.append(d - (start[i] if t == 0 else margin) - backoff)
    return out


__all__ = [
    "SymbolicTerm",
    "cost_function",
    "obstacle_distances",
    "obstacle_margins",
    "symbolic_cost",
    "symbolic_term",
]
