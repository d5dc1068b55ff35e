"""The guard checks with the planner's constraints, so it sees corner cuts between states."""

from __future__ import annotations

import numpy as np
import pytest

from cost import ObstacleConstraint, Scene
from dynamics import PointMass2D
from imle_mpc.core.plan_result import PlanResult
from planners.safety.guard import GuardConfig, SafetyGuard

H, MARGIN, DEPTH = 6, 0.05, 0.0015
MODEL = PointMass2D(dt=0.1, max_force=2.0)


class Coast:
    """Plans to coast (zero force) whatever the state."""

    horizon = H

    def reset(self, seed: int | None = None) -> None:
        pass

    def plan(self, state: np.ndarray) -> PlanResult:
        return PlanResult(
            actions=np.zeros((H, 2)), cost=0.0, term_costs={}, num_feasible=1, best_index=0,
            predicted_states=np.empty((0, 0)),
        )  # fmt: skip


def _corner_on_the_path(x0: np.ndarray) -> tuple[Scene, np.ndarray]:
    """A box whose corner pokes DEPTH into the coasting path between states 2 and 3."""
    X = MODEL.rollout(x0, np.zeros((1, H, 2)))[0]
    middle = 0.5 * (X[2, :2] + X[3, :2])  # on the line x + y = 0 (heading (1, -1))
    corner = middle + DEPTH  # the corner sits DEPTH above-right of the path's middle
    return Scene(boxes=[[*(corner - 0.5), 0.5, 0.5]]), X


@pytest.mark.parametrize("swept", [True, False], ids=["swept", "swept=False"])
def test_the_guard_rejects_a_plan_that_cuts_a_corner_between_safe_states(swept: bool) -> None:
    speed = 2.25
    x0 = np.array([0.0, 0.0, speed / np.sqrt(2.0), -speed / np.sqrt(2.0)])
    scene, X = _corner_on_the_path(x0)
    assert scene.distances(X[None])[0, 1:].min() > MARGIN  # every predicted state is clear
    constraint = ObstacleConstraint(scene, margin=MARGIN, swept=swept)
    guard = SafetyGuard(Coast(), MODEL, [constraint], GuardConfig(), velocity_dims=(2, 3))
    result = guard.plan(x0)
    if swept:
        assert result.fallback is not None  # the plan's path enters the box: replaced
        assert guard.events and "check failed" in guard.events[0].reason
    else:
        assert result.fallback is None  # the point check passes it: the miss
