"""What a bare planner does when nothing is feasible, and why the documented loop is guarded.

Mechanism protected: the guard's check of a plan with ``num_feasible == 0`` (and the
fallbacks after it). The passage to the goal is walled off, so every proposal of the
generator runs into the wall: the bare planner hands back its least-violating sample,
as documented, and driving it goes through the wall; the guarded loop stops short.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cost import ObstacleConstraint, Scene
from imle_mpc.eval.episodes import run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.tasks import Task, make_task
from imle_mpc.tasks.navigation import NAV_OBSTACLE_MARGIN


def _blocked_passage() -> Task:
    """nav_one_obstacle with a wall across the way, in front of the goal (4, 0)."""
    task = make_task("nav_one_obstacle")
    scene = Scene(
        circles=task.scene.circle_array,
        capsules=np.vstack([task.scene.capsule_array, [[3.0, -3.0, 3.0, 3.0, 0.1]]]),
    )
    return dataclasses.replace(
        task,
        scene=scene,
        constraints=(ObstacleConstraint(scene, margin=NAV_OBSTACLE_MARGIN),),
        safety_constraints=(ObstacleConstraint(scene, margin=0.0, name="collision"),),
    )


@pytest.mark.slow
@pytest.mark.parametrize("guard", [None, True], ids=["bare", "guarded"])
def test_a_blocked_passage_is_driven_through_only_by_the_bare_planner(guard: bool | None) -> None:
    task = _blocked_passage()
    record = run_episode(task, make_planner("imle_mpc", task, seed=0), 0, guard=guard, steps=50)
    clearance = task.scene.distances(record.true_states[None])[0].min()
    infeasible = int(np.sum(np.asarray(record.num_feasible) == 0))
    assert infeasible > 0  # the wall really leaves nothing feasible on some steps
    if guard is None:
        # Documented: no feasible sample -> the least-violating one, executed as it is.
        assert clearance < 0.0, "the bare planner was expected to hit the wall"
    else:
        assert clearance > 0.0
        assert record.fallback_steps >= infeasible
