"""Residual refinement of a frozen base controller (Policy Decorator, Yuan et al. 2024).

A controller learned from a few demonstrations is short where the real system
differs from them. Policy Decorator keeps the base frozen and adds a small bounded
residual learned online::

    a = a_base + alpha * r,    r in [-1, 1]^nu  (a tanh output),

with ``alpha`` per action entry in the action's units: ``residual_scale(dynamics,
fraction)`` is ``fraction * (action_high - action_low) / 2`` (the paper's range
is a fraction of about 0.03-0.3). ``ResidualPlanner`` decorates any planner (the
IMLE policy alone, IMLE-MPC, MPPI: the base is a black box) and is a planner
itself, so the safety guard wraps it like any other and checks what it proposes.

Only the executed action, ``actions[0]``, gets the residual; the plan's tail stays
the base's. The residual is a function of the state measured now and is
re-evaluated every step, so it says nothing about the states later steps start
from; the guard checks the whole plan, and "this corrected step, then the base's
plan" is the plan that is actually on offer (its ``PreviousPlan`` fallback plays
the base's next actions). The result is clipped to the actuator box.

The residual is a small protocol, ``residual(state, base_action) -> r``, so this
module needs no torch: the trained network lives in ``imle_mpc.learn.residual``,
``SetResidual`` is the residual of online training (the learner sets each step's
``r``), and ``PlannedAhead`` lets a learner see the base's action before it picks
``r`` (its observation holds both).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import Dynamics, Planner
from imle_mpc.core.validation import FloatArray, as_float_vector
from imle_mpc.core.wrapper import PlannerWrapper


@runtime_checkable
class Residual(Protocol):
    """A bounded correction of the base's action: ``residual(state, base_action) -> r``."""

    def __call__(self, state: FloatArray, base_action: FloatArray) -> FloatArray:
        """The residual for this step.

        Args:
            state: the state the plan is made from, Shape=(nx,).
            base_action: the base's action for it, Shape=(nu,).

        Returns:
            ``r`` Shape=(nu,), each entry in [-1, 1] (a larger one is clipped).
        """
        ...


@runtime_checkable
class EpisodicResidual(Residual, Protocol):
    """A residual with state of its own over an episode (e.g. the time step it is at)."""

    def reset(self) -> None:
        """A new episode starts (``ResidualPlanner.reset`` calls it)."""
        ...


class ZeroResidual:
    """The residual that changes nothing (``ResidualPlanner`` then returns the base's plan)."""

    def __init__(self, nu: int) -> None:
        self._zero = np.zeros(nu)

    def __call__(self, state: FloatArray, base_action: FloatArray) -> FloatArray:
        return self._zero


class SetResidual:
    """A residual set from outside before each step: online training's (the learner's ``r``).

    Args:
        nu: the action size.
    """

    def __init__(self, nu: int) -> None:
        self._value = np.zeros(nu)

    @property
    def value(self) -> FloatArray:
        """The residual the next step applies (a copy), Shape=(nu,)."""
        return self._value.copy()

    def set(self, r: ArrayLike) -> None:
        """Make ``r`` Shape=(nu,) the residual of the next step.

        Raises:
            ValueError: wrong shape, NaN/inf, or an entry outside [-1, 1].
        """
        value = as_float_vector("SetResidual.set(r)", r, self._value.shape[0])
        if not np.all(np.isfinite(value)) or np.abs(value).max(initial=0.0) > 1.0:
            raise ValueError(f"a residual must be finite with entries in [-1, 1], got {value}.")
        self._value = value

    def __call__(self, state: FloatArray, base_action: FloatArray) -> FloatArray:
        return self._value


def residual_scale(dynamics: Dynamics, fraction: float | ArrayLike) -> FloatArray:
    """``alpha`` Shape=(nu,) in action units: ``fraction`` of the actuator box's half range.

    Args:
        dynamics: the model whose actuator box the residual acts in.
        fraction: a scalar or Shape=(nu,), each in (0, 1] (the paper: about 0.03-0.3).

    Raises:
        ValueError: a fraction outside (0, 1], or an unbounded actuator box (say
            alpha in action units instead: ``ResidualPlanner(..., scale=...)``).
    """
    frac = as_float_vector("residual_scale(fraction)", fraction, dynamics.nu)
    if not np.all((frac > 0) & (frac <= 1)):
        raise ValueError(f"residual_scale: fraction must be in (0, 1], got {frac}.")
    half = (np.asarray(dynamics.action_high) - np.asarray(dynamics.action_low)) / 2.0
    if not np.all(np.isfinite(half)):
        raise ValueError(
            "residual_scale: the actuator box is unbounded, so a fraction of it means nothing; "
            "give ResidualPlanner the scale in action units instead."
        )
    return np.asarray(frac * half, dtype=np.float64)


class ResidualPlanner(PlannerWrapper):
    """The base's plan with ``scale * residual(state, a_base)`` added to its first action.

    With ``r == 0`` the base's ``PlanResult`` is returned as it is (bit for bit).
    Otherwise the first action is ``clip(a_base + scale * r, low, high)``, the tail
    is the base's, and the result no longer carries the base's cost, term costs or
    predicted states (they describe another plan); ``num_feasible`` stays the base's.

    Args:
        base: the frozen base planner (``self.planner``).
        residual: ``residual(state, base_action) -> r`` (see ``Residual``); its output
            is clipped to [-1, 1] and must be finite (NaN raises: the guard falls back).
        dynamics: the model whose actuator box the action is clipped to.
        scale: alpha Shape=(nu,) (or a scalar) in action units, >= 0
            (``residual_scale(dynamics, fraction)``).
    """

    def __init__(
        self, base: Planner, residual: Residual, dynamics: Dynamics, scale: float | ArrayLike
    ) -> None:
        super().__init__(base)
        self.residual = residual
        self.scale = as_float_vector("ResidualPlanner.scale", scale, dynamics.nu)
        if not np.all(np.isfinite(self.scale) & (self.scale >= 0)):
            raise ValueError(f"ResidualPlanner.scale must be finite and >= 0, got {self.scale}.")
        self._low = np.asarray(dynamics.action_low, dtype=np.float64)
        self._high = np.asarray(dynamics.action_high, dtype=np.float64)

    def reset(self, seed: int | None = None) -> None:
        """Reset the base, and the residual where it keeps episode state (``EpisodicResidual``)."""
        super().reset(seed)
        if isinstance(self.residual, EpisodicResidual):
            self.residual.reset()

    def plan(self, state: FloatArray) -> PlanResult:
        """The base's plan for ``state`` Shape=(nx,), its first action corrected."""
        t0 = time.perf_counter()
        result = self.planner.plan(state)
        r = np.asarray(self.residual(state, np.asarray(result.action)), dtype=np.float64)
        if r.shape != self._low.shape or not np.all(np.isfinite(r)):
            raise ValueError(
                f"the residual returned {r!r}; it must be finite with Shape=({self._low.size},)."
            )
        if not np.any(r):
            return result
        actions = np.array(result.actions, dtype=np.float64)
        correction = self.scale * np.clip(r, -1.0, 1.0)
        actions[0] = np.clip(actions[0] + correction, self._low, self._high)
        timings = {**result.timings, "residual": time.perf_counter() - t0}
        return dataclasses.replace(
            result, actions=actions, cost=float("nan"), term_costs={},
            predicted_states=np.empty((0, 0)), timings=timings,
        )  # fmt: skip


class PlannedAhead(PlannerWrapper):
    """A planner whose next plan can be made before it is asked for (``peek``).

    A learner whose observation holds the base's action (``(state, a_base)``) must
    see that action before it picks the residual, and the base must plan only once
    per step (a chunk policy advances its chunk on every call). ``peek(state)``
    plans and keeps the result; the next ``plan`` for the same state returns it.

    Args:
        planner: the base.
    """

    def __init__(self, planner: Planner) -> None:
        super().__init__(planner)
        self._ahead: tuple[FloatArray, PlanResult] | None = None

    @property
    def pending(self) -> bool:
        """Whether a peeked plan is waiting for its ``plan`` call."""
        return self._ahead is not None

    def peek(self, state: FloatArray) -> PlanResult:
        """Plan for ``state`` Shape=(nx,) now; ``plan(state)`` returns this result.

        Raises:
            RuntimeError: a peeked plan is still waiting (the base would plan twice).
        """
        if self._ahead is not None:
            raise RuntimeError(
                "PlannedAhead.peek: the last peeked plan was never used; call plan(state) "
                "(or reset) before peeking again."
            )
        result = self.planner.plan(state)
        self._ahead = (np.array(state, dtype=np.float64), result)
        return result

    def plan(self, state: FloatArray) -> PlanResult:
        """The peeked plan if there is one (for the same state), else a new plan.

        Raises:
            RuntimeError: the peeked plan was made for another state.
        """
        if self._ahead is None:
            return self.planner.plan(state)
        peeked, result = self._ahead
        self._ahead = None
        if not np.array_equal(peeked, np.asarray(state, dtype=np.float64)):
            raise RuntimeError(
                "PlannedAhead.plan: asked for another state than the peeked plan's (an "
                "actuation delay or a lost measurement changes the state planned from); "
                "peek the state the planner will be asked for."
            )
        return result

    def reset(self, seed: int | None = None) -> None:
        """Reset the base and drop a peeked plan."""
        super().reset(seed)
        self._ahead = None
