"""What the view draws for a task: the MJCF's geoms posed by MuJoCo, a planar scene's solids.

Mechanism protected: ``geometry_of`` picks the MuJoCo model's own geoms for a MuJoCo task
and places the moving ones by forward kinematics at the given state; trajectories are
drawn by the tracked body (MuJoCo) or the scene's ``position_dims`` (planar).
"""

from __future__ import annotations

import numpy as np
import pytest

from imle_mpc.tasks import load_task
from imle_mpc.view.geometry import MujocoGeometry, NoGeometry, PlanarGeometry, geometry_of


def test_a_mujoco_task_is_drawn_from_its_mjcf_at_the_state() -> None:
    pytest.importorskip("mujoco")
    task = load_task("push_block")
    geometry = geometry_of(task)
    assert isinstance(geometry, MujocoGeometry)
    fixed = {s.name.split("_", 1)[-1]: s for s in geometry.fixed()}
    assert fixed["table"].kind == "plane" and fixed["post"].kind == "cylinder"
    np.testing.assert_allclose(fixed["post"].position, (0.3, 0.0, 0.05))
    assert fixed["post"].size == pytest.approx((0.04, 0.1))  # radius, full height
    state = np.array([0.1, 0.2, 0.35, -0.05, 0, 0, 0, 0])
    moving = {s.name.split("_", 1)[-1]: s for s in geometry.moving(state)}
    assert set(moving) == {"pusher", "block"}
    np.testing.assert_allclose(moving["pusher"].position, (0.1, 0.2, 0.02), atol=1e-9)
    np.testing.assert_allclose(moving["block"].position, (0.35, -0.05, 0.02), atol=1e-9)
    assert moving["block"].kind == "box" and moving["block"].size == pytest.approx(
        (0.08,) * 2 + (0.04,)
    )
    # a trajectory is drawn by the pusher (the body the first actuator drives)
    X = np.stack([state, state + np.r_[0.1, -0.1, 0, 0, 0, 0, 0, 0]])[None]
    np.testing.assert_allclose(geometry.points(X)[0, :, :2], [[0.1, 0.2], [0.2, 0.1]], atol=1e-9)


def test_a_planar_scene_is_its_obstacles_and_a_robot_at_the_position() -> None:
    task = load_task("nav_trap")
    geometry = geometry_of(task)
    assert isinstance(geometry, PlanarGeometry)
    walls = [s for s in geometry.fixed() if s.name.startswith("wall") and s.kind == "box"]
    assert len(walls) == len(task.scene.capsule_array) > 0
    (robot,) = geometry.moving(np.array([1.5, -0.5, 0.0, 0.0]))
    assert robot.position[:2] == (1.5, -0.5)
    assert geometry.points(np.zeros((3, 5, 4))).shape == (3, 5, 3)


def test_a_task_without_geometry_draws_nothing() -> None:
    geometry = geometry_of(load_task("pendulum"))
    assert isinstance(geometry, NoGeometry) and geometry.fixed() == []
