"""imle_mpc: safe model-predictive control with learned proposals.

The layers (see the README's architecture): ``imle_mpc.core`` (protocols, kernels,
validation: what ``dynamics``, ``cost`` and ``planners`` build on), then
``imle_mpc.loop``, ``imle_mpc.learn``, ``imle_mpc.tasks``, ``imle_mpc.eval`` and the
CLI on top. This top package re-exports the core's main names only.
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
