"""One step (a ``Frame``) drawn into a viser scene: robot, proposals by cost, plan, events.

What is drawn, under these scene names:

* ``/fixed/*``: the task's fixed shapes (obstacles, table, goal), once;
* ``/robot/*``: the robot at the step's state (moved, not re-added, from step to step);
* ``/proposals/feasible``: the kept proposals' paths, coloured by cost rank from
  dark teal (cheapest) to orange (dearest);
* ``/proposals/infeasible``: proposals with an infinite cost (a hard constraint
  violated), thin red;
* ``/plan``: the chosen plan's predicted path, thick magenta;
* ``/trail``: the executed path up to the step, dark blue;
* ``/event``: the guard's event of the step as a label at the robot, with a red ring.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import viser

from imle_mpc.core.validation import FloatArray
from imle_mpc.view.geometry import Shape, TaskGeometry
from imle_mpc.view.recording import Frame

CHEAP = np.array([0, 110, 130])
DEAR = np.array([245, 160, 0])
INFEASIBLE = (220, 40, 40)
PLAN = (200, 0, 200)
TRAIL = (20, 30, 120)


def _rgb(rgba: tuple[float, ...]) -> tuple[int, int, int]:
    return (int(255 * rgba[0]), int(255 * rgba[1]), int(255 * rgba[2]))


def add_shape(scene: Any, name: str, shape: Shape) -> Any:
    """Add ``shape`` to the viser ``scene`` as ``name``; returns its handle (None: not drawn)."""
    color = _rgb(shape.rgba)
    opacity = None if shape.rgba[3] >= 1.0 else float(shape.rgba[3])
    pose = {"position": shape.position, "wxyz": shape.wxyz}
    if shape.kind == "sphere":
        return scene.add_icosphere(name, radius=shape.size[0], color=color, opacity=opacity, **pose)
    if shape.kind == "box":
        return scene.add_box(name, color=color, dimensions=shape.size, opacity=opacity, **pose)
    if shape.kind == "cylinder":
        radius, height = shape.size
        return scene.add_cylinder(name, radius=radius, height=height, color=color,
                                  opacity=opacity, **pose)  # fmt: skip
    if shape.kind == "plane":
        dims = (shape.size[0], shape.size[1], 1e-3)
        return scene.add_box(name, color=color, dimensions=dims, opacity=opacity, **pose)
    import trimesh  # viser's own dependency: capsules, ellipsoids

    if shape.kind == "capsule":
        mesh = trimesh.creation.capsule(height=shape.size[1], radius=shape.size[0])
    elif shape.kind == "ellipsoid":
        mesh = trimesh.creation.icosphere(subdivisions=2)
        mesh.apply_scale(shape.size)
    else:
        assert shape.vertices is not None and shape.faces is not None
        mesh = trimesh.Trimesh(shape.vertices, shape.faces, process=False)
    return scene.add_mesh_simple(name, np.asarray(mesh.vertices, dtype=np.float32),
                                 np.asarray(mesh.faces, dtype=np.uint32), color=color,
                                 opacity=opacity, **pose)  # fmt: skip


def path_segments(points: FloatArray) -> FloatArray:
    """Consecutive points of each path as segments, Shape=(k, n, 3) -> (k, n-1, 2, 3)."""
    return np.stack([points[:, :-1], points[:, 1:]], axis=2)


def cost_colors(costs: FloatArray) -> np.ndarray:
    """RGB by cost rank (cheapest dark teal, dearest orange), Shape=(k,) -> (k, 3)."""
    order = np.argsort(np.argsort(costs))
    share = order / max(len(costs) - 1, 1)
    return np.round(CHEAP + share[:, None] * (DEAR - CHEAP)).astype(np.uint8)


class SceneView:
    """Draws a task's geometry and one step at a time into a viser server's scene.

    Args:
        server: the viser server.
        geometry: what the task looks like.
    """

    def __init__(self, server: viser.ViserServer, geometry: TaskGeometry) -> None:
        self.server = server
        self.geometry = geometry
        self.scene = server.scene
        self._robot: dict[str, Any] = {}
        size = geometry.extent()
        self.thickness = 0.005 * size
        self.scene.set_up_direction("+z")
        for shape in geometry.fixed():
            add_shape(self.scene, f"/fixed/{shape.name}", shape)
        self.scene.add_grid(
            "/grid", width=2 * size, height=2 * size, cell_size=size / 10,
            section_size=size / 2, position=(0, 0, -1e-3),
        )  # fmt: skip

    def draw(self, frame: Frame, trail: FloatArray | None = None) -> None:
        """Draw ``frame``; ``trail``: the states executed up to it, Shape=(t, nx)."""
        for shape in self.geometry.moving(frame.state):
            handle = self._robot.get(shape.name)
            if handle is None:
                self._robot[shape.name] = add_shape(self.scene, f"/robot/{shape.name}", shape)
            else:
                handle.position, handle.wxyz = shape.position, shape.wxyz
        self._draw_proposals(frame)
        plan = self.geometry.points(frame.plan_states)[None]
        self._lines("/plan", plan, np.array(PLAN), 3 * self.thickness)
        if trail is not None and len(trail) > 1:
            self._lines("/trail", self.geometry.points(trail)[None], np.array(TRAIL),
                        2 * self.thickness)  # fmt: skip
        self._draw_event(frame)

    def _draw_proposals(self, frame: Frame) -> None:
        paths = self.geometry.points(frame.proposal_states)  # Shape=(k, H+1, 3)
        feasible = frame.feasible
        if feasible.any():
            colors = cost_colors(frame.proposal_costs[feasible])
            self._lines("/proposals/feasible", paths[feasible], colors, self.thickness)
        else:
            self._hide("/proposals/feasible")
        if (~feasible).any():
            self._lines("/proposals/infeasible", paths[~feasible], np.array(INFEASIBLE),
                        0.6 * self.thickness)  # fmt: skip
        else:
            self._hide("/proposals/infeasible")

    def _lines(self, name: str, paths: FloatArray, colors: np.ndarray, thickness: float) -> None:
        """Add paths Shape=(k, n, 3) as one segment set; ``colors`` Shape=(3,) or (k, 3)."""
        segments = path_segments(paths)  # Shape=(k, n-1, 2, 3)
        per_segment = np.broadcast_to(
            colors.reshape(-1, 1, 1, 3) if colors.ndim == 2 else colors, segments.shape
        )
        keep = np.isfinite(segments).all(axis=(2, 3))
        if not keep.any():
            self._hide(name)
            return
        self.scene.add_line_segments(
            name, segments[keep].astype(np.float32), per_segment[keep].astype(np.uint8),
            thickness=thickness,
        )  # fmt: skip

    def _hide(self, name: str) -> None:
        empty = np.zeros((1, 2, 3), dtype=np.float32)
        self.scene.add_line_segments(name, empty, (0, 0, 0), visible=False)

    def _draw_event(self, frame: Frame) -> None:
        x, y, z = self.geometry.points(frame.state)
        if not frame.fallback:
            self.scene.add_label("/event", "", visible=False)
            self.scene.add_icosphere("/event_marker", radius=1e-3, visible=False)
            return
        lift = 0.05 * self.geometry.extent()
        self.scene.add_label("/event", f"guard: {frame.fallback}", position=(x, y, z + lift))
        self.scene.add_icosphere("/event_marker", radius=2 * lift / 3, color=INFEASIBLE,
                                 opacity=0.35, position=(x, y, z))  # fmt: skip
