"""One base for planners that wrap a planner: the forwarding is written once.

A wrapper (the safety guard, offset-free MPC, fault injection, the NMPC
refinement) is a planner itself, so wrappers nest. Each must hand ``horizon``,
``reset`` and ``set_nominal`` down to the planner it wraps; forgetting
``set_nominal`` in one link of a chain silently leaves the inner planner's warm
start out of step with what was executed. ``PlannerWrapper`` does it for all.
"""

from __future__ import annotations

from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import NominalSettable, Planner
from imle_mpc.core.validation import FloatArray


class PlannerWrapper(NominalSettable):
    """A planner around ``planner`` that forwards ``horizon``, ``reset`` and ``set_nominal``.

    Subclasses override ``plan`` and extend ``reset`` (calling
    ``super().reset(seed)``) for state of their own.

    Args:
        planner: the wrapped planner, kept as ``self.planner``.
    """

    def __init__(self, planner: Planner) -> None:
        self.planner = planner

    @property
    def horizon(self) -> int:
        """H, the wrapped planner's horizon."""
        return int(self.planner.horizon)

    def reset(self, seed: int | None = None) -> None:
        """Reset the wrapped planner (a new episode; ``seed`` re-seeds it)."""
        self.planner.reset(seed)

    def set_nominal(self, plan: FloatArray) -> None:
        """Hand the warm start ``plan`` Shape=(H, nu) to the wrapped planner.

        A no-op where the wrapped planner keeps no warm start (it is not
        ``NominalSettable``); its own ``ValueError`` on a wrong shape propagates.
        """
        if isinstance(self.planner, NominalSettable):
            self.planner.set_nominal(plan)

    def plan(self, state: FloatArray) -> PlanResult:
        """The wrapped planner's plan for ``state`` Shape=(nx,) (subclasses add their part)."""
        return self.planner.plan(state)
