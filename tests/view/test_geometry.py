"""What the view draws for a task: the MJCF's geoms posed by MuJoCo, a planar scene's solids.

Mechanism protected: ``geometry_of`` picks the MuJoCo model's own geoms for a MuJoCo task
and places the moving ones by forward kinematics at the given state; trajectories are
drawn by the tracked body (MuJoCo) or the scene's ``position_dims`` (planar).
"""

from __future__ import annotations

import numpy as np
import pytest

from imle_mpc.tasks import load_task
from imle_mpc.view.geometry import (
    MujocoGeometry,
    NoGeometry,
    PinocchioGeometry,
    PlanarGeometry,
    geometry_of,
)


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


def test_a_pinocchio_robot_is_its_chain_and_draws_its_tool_path() -> None:
    pytest.importorskip("pinocchio")
    from imle_mpc.tasks.panda.robot import panda_tcp

    task = load_task("panda_reach_around")
    geometry = geometry_of(task)
    assert isinstance(geometry, PinocchioGeometry)
    assert geometry.model.frames[geometry.tool].name == "panda_hand_tcp"
    X = task.initial_state + np.random.default_rng(0).normal(0, 0.3, (2, 3, task.dynamics.nx))
    np.testing.assert_allclose(geometry.points(X), panda_tcp(X), atol=1e-9)
    links = [s for s in geometry.moving(X[0, 0]) if s.kind == "capsule"]
    # the chain from the base to the tool: its last link ends at the tool
    last = links[-1]
    axis = _rotate_z(last.wxyz) * last.size[1] / 2
    np.testing.assert_allclose(np.array(last.position) + axis, panda_tcp(X[0, 0]), atol=1e-9)


def _rotate_z(wxyz: tuple[float, float, float, float]) -> np.ndarray:
    """The z axis turned by the unit quaternion ``wxyz``."""
    w, x, y, z = wxyz
    return np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])
