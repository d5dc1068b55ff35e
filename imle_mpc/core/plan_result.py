"""What one planning step returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PlanResult:
    """Everything a planning step produced; the planner keeps none of it.

    Attributes:
        actions: the chosen plan, Shape=(H, nu). ``actions[0]`` is executed.
        cost: total cost of the best sample (inf if none was feasible).
        term_costs: weighted per-term costs of the best sample, by term name.
        num_feasible: samples with a finite cost in the last iteration.
        best_index: index of the best sample in the last iteration (-1 if none).
        predicted_states: states the model predicts for the best sample,
            Shape=(H+1, nx).
        timings: seconds spent per phase (``propose``, ``rollout``, ``cost``,
            ``select``, ``total``).
        samples: optional copies of the last iteration's proposals
            Shape=(K, H, nu) and their costs Shape=(K,), for plots.
        fallback: why the safety guard replaced the planner's plan (e.g.
            ``"no feasible sample -> previous"``); ``None`` when it did not.
        deadline_missed: planning did not finish within the control period;
            the guard executed the previous plan's next action instead.
    """

    actions: np.ndarray
    cost: float
    term_costs: dict[str, float]
    num_feasible: int
    best_index: int
    predicted_states: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    samples: tuple[np.ndarray, np.ndarray] | None = None
    fallback: str | None = None
    deadline_missed: bool = False

    @property
    def action(self) -> np.ndarray:
        """The first action of the plan, Shape=(nu,)."""
        return self.actions[0]

    @property
    def feasible(self) -> bool:
        """Whether any sample was feasible."""
        return self.num_feasible > 0
