"""What a task looks like, as plain data the view draws (no viser here).

``geometry_of(task)`` picks the task's geometry:

* a MuJoCo model (``MujocoDynamics``, the push task, Gymnasium MuJoCo environments):
  the MJCF's own geoms, posed by MuJoCo's forward kinematics at each state; the world
  body's geoms are fixed (table, post), the others move. A trajectory is drawn by the
  position of one body (``MujocoGeometry.track_body``: by default the deepest body below
  the first actuated joint, e.g. the pusher or a fingertip).
* a planar ``cost.Scene`` (the navigation tasks, ``point_mass``): its circles, boxes and
  capsules as upright solids on the ground, the robot a sphere at the state's
  ``position_dims``, the goal a flat disc.
* a Pinocchio model (the Panda): the kinematic chain as a stick figure, a capsule from
  each joint to the next and to the tool frame (the frame farthest out on the last joint),
  which draws the trajectories; no meshes (the URDF's visual meshes are not loaded).
* anything else: no 3-D geometry (the view still plots the costs and lists the events).

Shapes are in the world frame; ``Shape.wxyz`` is a unit quaternion (w, x, y, z).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from cost import Scene
from imle_mpc.core.validation import FloatArray
from imle_mpc.tasks.base import Task

ShapeKind = Literal["sphere", "box", "cylinder", "capsule", "ellipsoid", "plane", "mesh"]
IDENTITY = (1.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Shape:
    """One solid of the scene.

    Attributes:
        name: unique within the scene (a moving shape keeps its name from state to state).
        kind: the primitive.
        size: sphere (radius,); box (full x, y, z); cylinder and capsule (radius, full
            length along the local z); ellipsoid (three radii); plane (full x, y); mesh ().
        position: centre in the world, Shape=(3,).
        wxyz: orientation in the world (unit quaternion), Shape=(4,).
        rgba: colour and opacity in [0, 1].
        vertices: a mesh's vertices in its local frame, Shape=(V, 3) (None: not a mesh).
        faces: a mesh's triangles, Shape=(F, 3).
    """

    name: str
    kind: ShapeKind
    size: tuple[float, ...]
    position: tuple[float, float, float]
    wxyz: tuple[float, float, float, float] = IDENTITY
    rgba: tuple[float, float, float, float] = (0.6, 0.6, 0.6, 1.0)
    vertices: FloatArray | None = None
    faces: np.ndarray | None = None


class TaskGeometry(Protocol):
    """A task's look: fixed shapes, the robot at a state, and where trajectories run."""

    def fixed(self) -> list[Shape]:
        """The shapes that never move (obstacles, table, goal)."""
        ...

    def moving(self, state: FloatArray) -> list[Shape]:
        """The robot (and what it moves) at ``state`` Shape=(nx,); the same names each call."""
        ...

    def points(self, X: FloatArray) -> FloatArray:
        """Where each state is drawn on a trajectory, Shape=(..., nx) -> (..., 3)."""
        ...

    def extent(self) -> float:
        """The scene's size (m): the camera distance and marker sizes follow it."""
        ...

    def centre(self) -> FloatArray:
        """The scene's middle, Shape=(3,): where the camera looks."""
        ...


def geometry_of(task: Task) -> TaskGeometry:
    """The geometry the view draws for ``task`` (see the module docstring)."""
    dynamics: Any = task.dynamics
    if _is_instance(dynamics, "dynamics.mujoco_model", "MujocoDynamics"):
        return MujocoGeometry(dynamics.model, goal=task.goal)
    if _is_instance(dynamics, "dynamics.pinocchio_model", "PinocchioDynamics"):
        return PinocchioGeometry(dynamics.model)
    if isinstance(task.scene, Scene):
        return PlanarGeometry(task.scene, task.goal, task.initial_state)
    return NoGeometry()


def _is_instance(obj: Any, module: str, name: str) -> bool:
    """``isinstance(obj, module.name)`` without importing the module (mujoco, pinocchio):
    an object of that class exists only once its module was imported."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(obj, getattr(loaded, name))


class NoGeometry:
    """A task the view has no shapes for (a pendulum's angle, a joint-space arm)."""

    def fixed(self) -> list[Shape]:
        return []

    def moving(self, state: FloatArray) -> list[Shape]:
        return []

    def points(self, X: FloatArray) -> FloatArray:
        return np.zeros((*np.shape(X)[:-1], 3))

    def extent(self) -> float:
        return 1.0

    def centre(self) -> FloatArray:
        return np.zeros(3)


class PlanarGeometry:
    """A planar scene's obstacles as solids on the ground; the robot a sphere.

    Args:
        scene: the obstacles and which state entries are the (x, y) position.
        goal: the goal in the plane (None: none drawn).
        start: a state, to size the scene (with the goal and the obstacles).
    """

    OBSTACLE = (0.42, 0.44, 0.5, 1.0)
    ROBOT = (0.15, 0.35, 0.85, 1.0)
    GOAL = (0.2, 0.7, 0.25, 0.8)

    def __init__(self, scene: Scene, goal: tuple[float, float] | None, start: FloatArray) -> None:
        self.scene = scene
        self.goal = goal
        ix, iy = scene.position_dims
        start = np.asarray(start, dtype=np.float64)
        corners = [start[[ix, iy]]] + ([np.asarray(goal)] if goal is not None else [])
        for cx, cy, r in scene.circle_array:
            corners += [np.array([cx - r, cy - r]), np.array([cx + r, cy + r])]
        for cx, cy, hw, hh in scene.box_array:
            corners += [np.array([cx - hw, cy - hh]), np.array([cx + hw, cy + hh])]
        for ax, ay, bx, by, _ in scene.capsule_array:
            corners += [np.array([ax, ay]), np.array([bx, by])]
        corners_array = np.array(corners)
        span = np.ptp(corners_array, axis=0)
        self._centre = np.array([*(corners_array.min(0) + span / 2), 0.0])
        self._extent = float(max(span.max(), 1e-3))
        self.height = 0.08 * self._extent
        self.radius = 0.025 * self._extent

    def extent(self) -> float:
        return self._extent

    def centre(self) -> FloatArray:
        return self._centre

    def fixed(self) -> list[Shape]:
        h = self.height
        shapes = [
            Shape(f"circle{i}", "cylinder", (r, h), (cx, cy, h / 2), rgba=self.OBSTACLE)
            for i, (cx, cy, r) in enumerate(self.scene.circle_array)
        ]
        shapes += [
            Shape(f"box{i}", "box", (2 * hw, 2 * hh, h), (cx, cy, h / 2), rgba=self.OBSTACLE)
            for i, (cx, cy, hw, hh) in enumerate(self.scene.box_array)
        ]
        for i, (ax, ay, bx, by, r) in enumerate(self.scene.capsule_array):
            # a wall: a box from a to b as wide as the capsule, round ends
            length = float(np.hypot(bx - ax, by - ay))
            yaw = float(np.arctan2(by - ay, bx - ax))
            mid = ((ax + bx) / 2, (ay + by) / 2, h / 2)
            shapes.append(
                Shape(f"wall{i}", "box", (length, 2 * r, h), mid, _yaw(yaw), self.OBSTACLE)
            )
            for end, (px, py) in (("a", (ax, ay)), ("b", (bx, by))):
                shapes.append(
                    Shape(f"wall{i}{end}", "cylinder", (r, h), (px, py, h / 2), rgba=self.OBSTACLE)
                )
        if self.goal is not None:
            gx, gy = self.goal
            shapes.append(Shape("goal", "cylinder", (2 * self.radius, 0.002), (gx, gy, 0.001),
                                rgba=self.GOAL))  # fmt: skip
        return shapes

    def moving(self, state: FloatArray) -> list[Shape]:
        x, y, _ = self.points(np.asarray(state, dtype=np.float64))
        return [Shape("robot", "sphere", (self.radius,), (x, y, self.radius), rgba=self.ROBOT)]

    def points(self, X: FloatArray) -> FloatArray:
        X = np.asarray(X, dtype=np.float64)
        ix, iy = self.scene.position_dims
        z = np.full(X.shape[:-1], self.radius)
        return np.stack([X[..., ix], X[..., iy], z], axis=-1)


def _yaw(angle: float) -> tuple[float, float, float, float]:
    return (float(np.cos(angle / 2)), 0.0, 0.0, float(np.sin(angle / 2)))


class MujocoGeometry:
    """An MJCF's geoms posed by MuJoCo's forward kinematics.

    Args:
        model: the ``mujoco.MjModel`` (its state is ``x = (qpos, qvel, act)``).
        goal: a goal in the plane to mark (None: none).
        track_body: the body whose position draws a trajectory (None: the deepest body
            below the first actuated joint).
    """

    GOAL = (0.2, 0.7, 0.25, 0.8)

    def __init__(
        self, model: Any, goal: tuple[float, float] | None = None, track_body: int | None = None
    ) -> None:
        import mujoco

        self._mj = mujoco
        self.model = model
        self.data = mujoco.MjData(model)
        self.goal = goal
        self.track_body = _default_track_body(model) if track_body is None else int(track_body)
        mujoco.mj_kinematics(model, self.data)
        self._extent = _model_extent(model, self.data)
        self._centre = np.array(self.data.geom_xpos).mean(axis=0) if model.ngeom else np.zeros(3)

    def extent(self) -> float:
        return self._extent

    def centre(self) -> FloatArray:
        return self._centre

    def _pose(self, qpos: FloatArray) -> None:
        self.data.qpos[:] = qpos
        self._mj.mj_kinematics(self.model, self.data)

    def _geoms(self, moving: bool) -> list[Shape]:
        m, d = self.model, self.data
        shapes = []
        for g in range(m.ngeom):
            if (m.geom_bodyid[g] != 0) != moving or m.geom_rgba[g, 3] == 0:
                continue
            shape = _geom_shape(self._mj, m, g, d.geom_xpos[g], d.geom_xmat[g])
            if shape is not None:
                shapes.append(shape)
        return shapes

    def fixed(self) -> list[Shape]:
        self._pose(self.model.qpos0)
        shapes = self._geoms(moving=False)
        if self.goal is not None:
            r = 0.03 * self._extent
            gx, gy = self.goal
            shapes.append(Shape("goal", "cylinder", (r, 0.002), (gx, gy, 0.002), rgba=self.GOAL))
        return shapes

    def moving(self, state: FloatArray) -> list[Shape]:
        self._pose(np.asarray(state, dtype=np.float64)[: self.model.nq])
        return self._geoms(moving=True)

    def points(self, X: FloatArray) -> FloatArray:
        X = np.asarray(X, dtype=np.float64)
        flat = X.reshape(-1, X.shape[-1])[:, : self.model.nq]
        out = np.empty((len(flat), 3))
        for i, q in enumerate(flat):
            if np.all(np.isfinite(q)):
                self._pose(q)
                out[i] = self.data.xpos[self.track_body]
            else:  # a rollout that failed (nan): no point
                out[i] = np.nan
        return out.reshape(*X.shape[:-1], 3)


def _default_track_body(model: Any) -> int:
    """The deepest body below the first actuated joint's body (the body itself if a leaf)."""
    if model.nu == 0 or model.actuator_trntype[0] != 0:  # not a joint actuator
        return int(model.nbody - 1)
    root = int(model.jnt_bodyid[model.actuator_trnid[0, 0]])
    best, depth_best = root, 0
    for b in range(root + 1, model.nbody):
        depth, p = 0, b
        while p not in (root, 0):
            p, depth = int(model.body_parentid[p]), depth + 1
        if p == root and depth >= depth_best:
            best, depth_best = b, depth
    return best


def _model_extent(model: Any, data: Any) -> float:
    """The size of the posed model (geom centres and radii), planes' sizes included."""
    pts = [data.geom_xpos[g] for g in range(model.ngeom)]
    span = float(np.ptp(np.array(pts), axis=0).max()) if pts else 0.0
    radius = float(model.geom_rbound.max()) if model.ngeom else 0.0
    planes = [
        2 * model.geom_size[g, :2].max() for g in range(model.ngeom) if model.geom_type[g] == 0
    ]
    return max(span + 2 * radius if radius < 1e3 else span, *planes, 1e-2)


def _geom_shape(mujoco: Any, m: Any, g: int, pos: FloatArray, xmat: FloatArray) -> Shape | None:
    """Geom ``g`` of ``m`` at ``pos`` (Shape=(3,)) and ``xmat`` (Shape=(9,)) as a ``Shape``."""
    G = mujoco.mjtGeom
    kind, size = int(m.geom_type[g]), [float(v) for v in m.geom_size[g]]
    vertices = faces = None
    shape: ShapeKind
    dims: tuple[float, ...]
    if kind == G.mjGEOM_PLANE:
        # size 0: an infinite plane, drawn 10 m wide
        shape, dims = "plane", (2 * size[0], 2 * size[1]) if min(size[:2]) > 0 else (10.0, 10.0)
    elif kind == G.mjGEOM_SPHERE:
        shape, dims = "sphere", (size[0],)
    elif kind in (G.mjGEOM_CAPSULE, G.mjGEOM_CYLINDER):
        shape = "capsule" if kind == G.mjGEOM_CAPSULE else "cylinder"
        dims = (size[0], 2 * size[1])
    elif kind == G.mjGEOM_ELLIPSOID:
        shape, dims = "ellipsoid", tuple(size)
    elif kind == G.mjGEOM_BOX:
        shape, dims = "box", tuple(2 * v for v in size)
    elif kind == G.mjGEOM_MESH:
        mesh = int(m.geom_dataid[g])
        v0, nv = m.mesh_vertadr[mesh], m.mesh_vertnum[mesh]
        f0, nf = m.mesh_faceadr[mesh], m.mesh_facenum[mesh]
        shape, dims = "mesh", ()
        vertices, faces = np.array(m.mesh_vert[v0 : v0 + nv]), np.array(m.mesh_face[f0 : f0 + nf])
    else:
        return None  # height fields and SDF plug-ins: not drawn
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, np.asarray(xmat, dtype=np.float64))
    name = mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, g) or f"geom{g}"
    x, y, z = (float(v) for v in pos)
    w, qx, qy, qz = (float(v) for v in quat)
    r, gr, b, a = (float(v) for v in m.geom_rgba[g])
    return Shape(f"{g}_{name}", shape, dims, (x, y, z), (w, qx, qy, qz), (r, gr, b, a),
                 vertices, faces)  # fmt: skip


class PinocchioGeometry:
    """A Pinocchio model's kinematic chain as a stick figure, posed at each state.

    Args:
        model: the ``pinocchio.Model`` (state ``x = (q, v)``).
    """

    LINK = (0.85, 0.55, 0.2, 1.0)
    JOINT = (0.25, 0.25, 0.3, 1.0)

    def __init__(self, model: Any) -> None:
        import pinocchio

        self._pin = pinocchio
        self.model = model
        self.data = model.createData()
        self._pose(pinocchio.neutral(model))
        last = model.njoints - 1
        origin = self.data.oMi[last].translation
        on_last = [f for f in range(model.nframes) if model.frames[f].parentJoint == last]
        # the tool: the frame farthest out on the last joint (the last of equals)
        reach = [np.linalg.norm(self.data.oMf[f].translation - origin) for f in on_last]
        self.tool = on_last[int(len(reach) - 1 - np.argmax(reach[::-1]))] if on_last else None
        lengths = [np.linalg.norm(a - b) for a, b in self._segments()]
        self._extent = float(max(1.2 * sum(lengths), 0.1))
        self.radius = 0.02 * self._extent

    def _pose(self, q: FloatArray) -> None:
        self._pin.forwardKinematics(self.model, self.data, q)
        self._pin.updateFramePlacements(self.model, self.data)

    def _segments(self) -> list[tuple[FloatArray, FloatArray]]:
        m, d = self.model, self.data
        pairs = [
            (d.oMi[m.parents[j]].translation, d.oMi[j].translation) for j in range(1, m.njoints)
        ]
        if self.tool is not None:
            pairs.append((d.oMi[m.njoints - 1].translation, d.oMf[self.tool].translation))
        return [(np.array(a), np.array(b)) for a, b in pairs if np.linalg.norm(b - a) > 1e-6]

    def extent(self) -> float:
        return self._extent

    def centre(self) -> FloatArray:
        return np.array([0.0, 0.0, self._extent / 4])

    def fixed(self) -> list[Shape]:
        r = 2 * self.radius
        return [Shape("base", "cylinder", (r, r / 2), (0.0, 0.0, r / 4), rgba=self.JOINT)]

    def moving(self, state: FloatArray) -> list[Shape]:
        self._pose(np.asarray(state, dtype=np.float64)[: self.model.nq])
        shapes = []
        for i, (a, b) in enumerate(self._segments()):
            mid = tuple(float(v) for v in (a + b) / 2)
            length = float(np.linalg.norm(b - a))
            wxyz = _z_to(b - a)
            shapes.append(Shape(f"link{i}", "capsule", (self.radius, length), mid, wxyz, self.LINK))  # type: ignore[arg-type]
            shapes.append(Shape(f"joint{i}", "sphere", (1.3 * self.radius,),
                                tuple(float(v) for v in a), rgba=self.JOINT))  # type: ignore[arg-type]  # fmt: skip
        return shapes

    def points(self, X: FloatArray) -> FloatArray:
        X = np.asarray(X, dtype=np.float64)
        flat = X.reshape(-1, X.shape[-1])[:, : self.model.nq]
        out = np.full((len(flat), 3), np.nan)
        for i, q in enumerate(flat):
            if np.all(np.isfinite(q)):
                self._pose(q)
                where = self.data.oMf[self.tool] if self.tool is not None else self.data.oMi[-1]
                out[i] = where.translation
        return out.reshape(*X.shape[:-1], 3)


def _z_to(direction: FloatArray) -> tuple[float, float, float, float]:
    """The unit quaternion (w, x, y, z) turning the z axis onto ``direction`` Shape=(3,)."""
    v = np.asarray(direction, dtype=np.float64) / np.linalg.norm(direction)
    w = 1.0 + v[2]
    if w < 1e-9:  # pointing down: half a turn about x
        return (0.0, 1.0, 0.0, 0.0)
    q = np.array([w, -v[1], v[0], 0.0])  # (1 + z.v, z x v)
    q /= np.linalg.norm(q)
    return (float(q[0]), float(q[1]), float(q[2]), float(q[3]))
