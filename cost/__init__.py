"""Composable cost terms and constraints for imle_mpc planners.

A cost term is anything callable as ``term(X, U) -> Shape=(K,)``; combine
terms with ``CostSum(Term(name, fn, weight), ...)``.
"""

from cost.composite import CostSum, Term
from cost.sdf import box_distance, circle_distance, scene_distance
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

__all__ = [
    "ControlEffort",
    "CostSum",
    "ObstacleConstraint",
    "ObstacleProximity",
    "Scene",
    "Smoothness",
    "StageCost",
    "StateTracking",
    "Term",
    "TerminalState",
    "box_distance",
    "circle_distance",
    "scene_distance",
]
