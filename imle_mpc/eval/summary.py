"""The one summary of a set of episodes: used by the CLI, ``evaluate``, sweeps and reports."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def summarise(outcomes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Figures over episodes, each an ``EpisodeOutcome.to_dict()`` (or a sweep record).

    Returns:
        ``episodes``, ``success_rate``, ``violation_steps``, ``violation_episodes``
        (judged on the swept path), ``point_violation_steps`` (judged on the states
        alone; where every outcome has it),
        ``fallback_steps``, ``deadline_overruns``, ``overruns`` (plans longer than the
        control period), ``collisions`` (episodes whose clearance went below zero),
        ``min_clearance`` (None where the task has no clearance measure),
        ``plan_ms_mean`` (mean of the episodes' means), ``plan_ms_p95`` (the worst
        episode's p95) and, for tasks with routes, ``routes`` (label -> episodes).
    """
    n = len(outcomes)
    clearances = [float(o["min_clearance"]) for o in outcomes if _finite(o.get("min_clearance"))]
    summary: dict[str, Any] = {
        "episodes": n,
        "success_rate": sum(bool(o["success"]) for o in outcomes) / n if n else math.nan,
        "violation_steps": int(sum(o["violation_steps"] for o in outcomes)),
        "violation_episodes": int(sum(o["violation_steps"] > 0 for o in outcomes)),
        "fallback_steps": int(sum(o["fallback_steps"] for o in outcomes)),
        "deadline_overruns": int(sum(o["deadline_overruns"] for o in outcomes)),
        "overruns": int(sum(o.get("overruns", 0) for o in outcomes)),
        "collisions": int(sum(c < 0.0 for c in clearances)),
        "min_clearance": min(clearances) if clearances else None,
        "plan_ms_mean": _mean([o["plan_ms_mean"] for o in outcomes]),
        "plan_ms_p95": max((float(o["plan_ms_p95"]) for o in outcomes), default=math.nan),
    }
    if outcomes and all("point_violation_steps" in o for o in outcomes):
        summary["point_violation_steps"] = int(sum(o["point_violation_steps"] for o in outcomes))
    routes = [o["route"] for o in outcomes if o.get("route") is not None]
    if routes:
        summary["routes"] = {r: routes.count(r) for r in sorted(set(routes))}
    return summary


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else math.nan
