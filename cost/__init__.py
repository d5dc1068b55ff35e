"""Composable cost terms and constraints for imle_mpc planners.

A cost term is anything callable as ``term(X, U) -> Shape=(K,)``; combine
terms with ``CostSum(Term(name, fn, weight), ...)``.
"""

from cost.composite import CostSum, Term
from cost.constraints import (
    ActionBox,
    FunctionConstraint,
    JointLimits,
    Penalty,
    RateLimit,
    SphereConstraint,
    StateBox,
    split_constraints,
)
from cost.density import DensityConstraint, DensityCost
from cost.sdf import box_distance, capsule_distance, circle_distance, scene_distance
from cost.terms import (
    ControlEffort,
    ObstacleConstraint,
    ObstacleProximity,
    Scene,
    Smoothness,
    StageCost,
    StateTracking,
    TerminalState,
)
from cost.value import QuadraticTerminalValue, lqr_value

__all__ = [
    "ActionBox",
    "ControlEffort",
    "CostSum",
    "DensityConstraint",
    "DensityCost",
    "FunctionConstraint",
    "JointLimits",
    "ObstacleConstraint",
    "ObstacleProximity",
    "Penalty",
    "QuadraticTerminalValue",
    "RateLimit",
    "Scene",
    "Smoothness",
    "SphereConstraint",
    "StageCost",
    "StateBox",
    "StateTracking",
    "Term",
    "TerminalState",
    "box_distance",
    "capsule_distance",
    "circle_distance",
    "lqr_value",
    "scene_distance",
    "split_constraints",
]
