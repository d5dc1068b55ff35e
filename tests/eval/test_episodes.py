"""The one episode runner and the one summary."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cost import ObstacleConstraint, Scene
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode, violation_per_step
from imle_mpc.eval.factory import make_planner
from imle_mpc.eval.summary import summarise
from imle_mpc.loop.runner import EpisodeRecord
from imle_mpc.tasks import make_task


def test_run_episode_resets_and_reseeds_the_planner() -> None:
    task = make_task("point_mass")
    planner = make_planner("mppi", task, seed=0)
    a = run_episode(task, planner, seed=5, steps=25)
    b = run_episode(task, planner, seed=5, steps=25)  # same planner object, used before
    np.testing.assert_array_equal(a.actions, b.actions)
    c = run_episode(task, planner, seed=6, steps=25)
    assert not np.array_equal(a.actions, c.actions)


def test_outcome_and_summary_read_the_tasks_own_hooks() -> None:
    task = make_task("nav_one_obstacle")
    planner = make_planner("mppi", task, seed=0, num_samples=64)
    records = [run_episode(task, planner, seed=s, guard=True) for s in range(2)]
    outcomes = [EpisodeOutcome.of(task, r) for r in records]
    for record, outcome in zip(records, outcomes, strict=True):
        assert outcome.route == task.route_of(record.states)
        assert outcome.min_clearance == task.min_clearance(record.states)
        assert outcome.steps == task.steps
    summary = summarise([o.to_dict() for o in outcomes])
    assert summary["episodes"] == 2
    assert sum(summary["routes"].values()) == 2
    assert summary["collisions"] == sum(o.min_clearance < 0 for o in outcomes)


def test_summary_counts_collisions_and_violations() -> None:
    base = {
        "success": True, "violation_steps": 0, "fallback_steps": 1, "deadline_overruns": 0,
        "min_clearance": 0.2, "plan_ms_mean": 1.0, "plan_ms_p95": 2.0, "route": "above",
    }  # fmt: skip
    hit = dict(base, success=False, violation_steps=3, min_clearance=-0.05, route="through")
    summary = summarise([base, hit, dict(base, min_clearance=None, route=None)])
    assert summary["success_rate"] == 2 / 3
    assert summary["violation_steps"] == 3 and summary["violation_episodes"] == 1
    assert summary["collisions"] == 1 and summary["min_clearance"] == -0.05
    assert summary["routes"] == {"above": 1, "through": 1}
    assert summary["plan_ms_p95"] == 2.0 and summary["fallback_steps"] == 3


def test_a_corner_cut_between_true_states_is_counted() -> None:
    """The evaluation judges the straight path between consecutive true states."""
    # A box corner at the origin; the path passes 2.25 m/s by it, sampled every 0.1 s:
    # every state 7.8 cm clear, the segment between the middle two 1.5 mm inside.
    scene = Scene(boxes=[[-0.5, -0.5, 0.5, 0.5]])
    heading = np.array([1.0, -1.0]) / np.sqrt(2.0)
    positions = -0.0015 + ((np.arange(-2, 2) + 0.5) * 0.225)[:, None] * heading
    states = np.concatenate([positions, np.tile(2.25 * heading, (4, 1))], axis=1)
    actions = np.zeros((3, 2))
    task = dataclasses.replace(
        make_task("nav_one_obstacle"),
        scene=scene,
        safety_constraints=(ObstacleConstraint(scene, margin=0.0, name="collision"),),
    )
    np.testing.assert_array_equal(violation_per_step(task.safety, states, actions) > 0,
                                  [False, True, False])  # fmt: skip
    assert not np.any(violation_per_step(task.safety, states, actions, swept=False) > 0)
    assert task.scene.distances(states[None]).min() > 0.07
    assert task.min_clearance(states) == pytest.approx(-0.0015, abs=1e-12)
    record = EpisodeRecord(
        states=states, actions=actions, plan_costs=np.zeros(3), term_costs={},
        plan_times=np.zeros(3), num_feasible=np.ones(3, dtype=int), true_states=states,
    )  # fmt: skip
    outcome = EpisodeOutcome.of(task, record)
    assert outcome.violation_steps == 1 and outcome.point_violation_steps == 0
    summary = summarise([outcome.to_dict()])
    assert summary["collisions"] == 1 and summary["violation_episodes"] == 1
    assert summary["point_violation_steps"] == 0
