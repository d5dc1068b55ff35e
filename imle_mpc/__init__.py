"""imle_mpc: safe model-predictive control with learned proposals.

The core package: protocols, Numba kernels, the closed-loop runner. Models live
in ``dynamics``, costs in ``cost``, planners in ``planners``.
"""

from imle_mpc.core.model import AnalyticModel, StepDynamics
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import (
    Constraint,
    CostTerm,
    Dynamics,
    Planner,
    ProposalSampler,
    Selector,
)

__version__ = "0.1.0"

__all__ = [
    "AnalyticModel",
    "Constraint",
    "CostTerm",
    "Dynamics",
    "PlanResult",
    "Planner",
    "ProposalSampler",
    "Selector",
    "StepDynamics",
    "__version__",
]
