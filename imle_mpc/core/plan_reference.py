"""The per-step reference a planner's proposals are compared with (the consistency term's input)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PlanReference:
    """What a step's proposals are compared with, made fresh by the sampler each step.

    The planner takes it from its sampler right after the proposals
    (``ReferenceSampler``) and hands it to the cost with the rollouts
    (``CostSum.evaluate(X, U, reference)``); cost terms that read it are
    ``ReferenceCost``. Nothing is shared or changed behind the cost's back.

    Attributes:
        plan: the warm start of the step (the previous plan shifted by the
            executed steps), Shape=(H, nu).
        overlap: how many leading steps of ``plan`` are real (``H - shift``); the
            rest are held copies of the last action and are not compared.
        active: False drops the comparison for this step (there is no previous
            plan, or a deliberate switch of mode).
    """

    plan: np.ndarray
    overlap: int
    active: bool
