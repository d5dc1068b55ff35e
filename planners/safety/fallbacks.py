"""The safety guard's fallbacks: what to execute when the planner's plan is not usable.

Each fallback is an object with a ``name`` (what the guard's events and the
episode record show) and one method, ``propose(state, context) -> plan or
None``: a plan Shape=(H, nu) the guard then checks like any other, or None
when it has nothing to offer this step. The guard tries them in the order
``GuardConfig.fallbacks`` lists them:

* ``PreviousPlan`` (``"previous"``): the rest of the last executed plan;
* ``Brake`` (``"brake"``): a stopping feedback law rolled out in closed loop;
* ``Hold`` (``"hold"``): the neutral action held over the horizon;
* ``SafePlan`` (``"casadi"``): a user-supplied optimiser (e.g. the CBF safety filter).

A fallback of your own is any object with the same ``name`` and ``propose``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from imle_mpc.core.protocols import Dynamics
from imle_mpc.core.validation import FloatArray

BrakeFn = Callable[[FloatArray], FloatArray]
"""``brake(state Shape=(nx,)) -> action Shape=(nu,)``: a feedback law that stops the robot."""
SafePlanFn = Callable[[FloatArray, FloatArray], "FloatArray | None"]
"""``safe_plan(state, reference_plan Shape=(H, nu)) -> plan Shape=(H, nu) or None``."""


@dataclass(frozen=True)
class FallbackContext:
    """What the guard knows at a step, for the fallbacks to propose from.

    Attributes:
        dynamics: the model the guard checks with.
        horizon: H, the plan length.
        previous: the last executed plan shifted to start now, Shape=(H, nu)
            (None before the first step).
        neutral: the neutral action, Shape=(nu,).
        low, high: the actuator box, Shape=(nu,).
        brake: the guard's stopping law (None: it has none).
        safe_plan: the guard's safe-plan optimiser (None: it has none).
    """

    dynamics: Dynamics
    horizon: int
    previous: FloatArray | None
    neutral: FloatArray
    low: FloatArray
    high: FloatArray
    brake: BrakeFn | None = None
    safe_plan: SafePlanFn | None = None

    def hold_plan(self) -> FloatArray:
        """The neutral action held over the horizon, Shape=(H, nu)."""
        return np.tile(self.neutral, (self.horizon, 1))


@runtime_checkable
class Fallback(Protocol):
    """One way to get a plan when the planner's is not usable."""

    @property
    def name(self) -> str:
        """Shown in ``GuardEvent.fallback`` and the episode record's fallbacks."""
        ...

    def propose(self, state: FloatArray, context: FallbackContext) -> FloatArray | None:
        """A plan Shape=(H, nu) from ``state`` Shape=(nx,), or None (nothing to offer)."""
        ...


@dataclass(frozen=True)
class PreviousPlan:
    """The rest of the last executed plan (what a plain MPC loop would play on)."""

    name: ClassVar[str] = "previous"

    def propose(self, state: FloatArray, context: FallbackContext) -> FloatArray | None:
        """``context.previous``; None before the first step."""
        return context.previous


@dataclass(frozen=True)
class Hold:
    """The neutral action held over the horizon."""

    name: ClassVar[str] = "hold"

    def propose(self, state: FloatArray, context: FallbackContext) -> FloatArray | None:
        """``context.hold_plan()``, Shape=(H, nu)."""
        return context.hold_plan()


@dataclass(frozen=True)
class Brake:
    """A stopping feedback law rolled forward in closed loop over the horizon.

    Args:
        law: the stopping law; None uses the guard's (``SafetyGuard(brake=...)``,
            or its ``StoppingBrake`` from ``velocity_dims``). Without any law
            this fallback offers nothing.
    """

    law: BrakeFn | None = None
    name: ClassVar[str] = "brake"

    def propose(self, state: FloatArray, context: FallbackContext) -> FloatArray | None:
        """The brake law's actions, clipped to the box, from ``state`` on the model."""
        law = self.law if self.law is not None else context.brake
        if law is None:
            return None
        H, nu = context.horizon, context.dynamics.nu
        plan = np.empty((H, nu))
        U1 = np.empty((1, 1, nu))
        x = state.copy()
        for t in range(H):
            u = np.clip(np.asarray(law(x), dtype=np.float64), context.low, context.high)
            plan[t] = u if np.all(np.isfinite(u)) else context.neutral
            U1[0, 0] = plan[t]
            x = context.dynamics.rollout(x, U1)[0, 1]
            if not np.all(np.isfinite(x)):
                plan[t + 1 :] = context.neutral
                break
        return plan


@dataclass(frozen=True)
class SafePlan:
    """A user-supplied optimiser's plan near the previous one (e.g. ``CBFSafetyFilter.safe_plan``).

    Args:
        fn: ``fn(state, reference) -> plan or None``; None uses the guard's
            ``safe_plan``. The reference is the previous plan (the held neutral
            action before the first step). An optimiser that raises or returns
            a plan of the wrong shape offers nothing: one fallback fewer, not a crash.
    """

    fn: SafePlanFn | None = None
    name: ClassVar[str] = "casadi"

    def propose(self, state: FloatArray, context: FallbackContext) -> FloatArray | None:
        """The optimiser's plan Shape=(H, nu), or None."""
        fn = self.fn if self.fn is not None else context.safe_plan
        if fn is None:
            return None
        reference = context.previous if context.previous is not None else context.hold_plan()
        try:
            plan = fn(state, reference)
        except Exception:  # a failing optimiser is one fallback fewer, not a crash
            return None
        if plan is None:
            return None
        plan = np.asarray(plan, dtype=np.float64)
        return plan if plan.shape == (context.horizon, context.dynamics.nu) else None


FALLBACK_TYPES: dict[str, type[PreviousPlan | Brake | Hold | SafePlan]] = {
    PreviousPlan.name: PreviousPlan,
    Brake.name: Brake,
    Hold.name: Hold,
    SafePlan.name: SafePlan,
}
"""The shipped fallbacks by name (the names ``GuardConfig`` still accepts, deprecated)."""
