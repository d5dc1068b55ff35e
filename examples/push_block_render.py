"""Pushing a block past a post in MuJoCo, rendered: the executed paths and the first proposals.

python examples/push_block_render.py --out out/

One guarded IMLE-MPC episode of ``push_block`` (16 generator chunks a step: 33
proposals with their perturbations and the warm start). The picture is MuJoCo's
own offscreen render (``mujoco.Renderer``; ``MUJOCO_GL`` defaults to ``egl``
here, the headless GL) of the episode's final state from an oblique camera over
the table, with the paths drawn into the 3-D scene as capsules, so the post and
the block hide what lies behind them: the block's executed path (orange), the
pusher's (blue), and the pusher paths of the first step's proposals coloured by
their cost (yellow: cheapest, purple: dearest; grey: rejected as unsafe), and a
green ring, just over the block's top, round where its centre must end.
Faded copies of the block and the pusher mark where they started. Prints the
episode's success, route and safety-violation steps, and writes
``push_block.png`` in ``--out``.
"""

from __future__ import annotations

import os

# Before mujoco is imported: it picks its GL backend then (GLFW needs a display).
os.environ.setdefault("MUJOCO_GL", "egl")

import argparse
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from imle_mpc.core.validation import FloatArray
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode
from imle_mpc.eval.factory import build_guarded, make_planner
from imle_mpc.loop.runner import EpisodeRecord
from imle_mpc.tasks import Task, make_task
from imle_mpc.tasks.push import (
    BLOCK_DIMS,
    PUSH_GOAL,
    PUSH_GOAL_TOLERANCE,
    PUSH_XML,
    PUSHER_DIMS,
)

BLOCK_PATH_RGBA = (0.85, 0.35, 0.0, 1.0)
PUSHER_PATH_RGBA = (0.1, 0.25, 0.95, 1.0)
INFEASIBLE_RGBA = (0.45, 0.45, 0.45, 0.8)
GOAL_RGBA = (0.1, 0.6, 0.1, 1.0)
PROPOSAL_CMAP = "plasma"
# Heights (m) of the drawn paths over the table: the executed ones above the proposals.
EXECUTED_Z, PROPOSAL_Z = 0.004, 0.002
EXECUTED_RADIUS, PROPOSAL_RADIUS = 0.003, 0.0015


@dataclass(frozen=True)
class PushEpisode:
    """One guarded episode of ``push_block`` and its first step's proposals.

    Attributes:
        task: the task.
        record: the episode (its true states: ``record.true_states`` Shape=(T+1, 8)).
        proposals: the model's states under each first-step proposal, Shape=(K, H+1, 8).
        costs: the proposals' costs, Shape=(K,) (inf: rejected by a constraint).
    """

    task: Task
    record: EpisodeRecord
    proposals: FloatArray
    costs: FloatArray

    @property
    def states(self) -> FloatArray:
        """The executed (true) states, Shape=(T+1, 8)."""
        states = self.record.true_states
        return self.record.states if states is None else states


def run_push(seed: int = 0, chunks: int = 16) -> PushEpisode:
    """Run one guarded IMLE-MPC episode (``chunks`` generator chunks a step)."""
    task = make_task("push_block")
    planner = make_planner("imle_mpc", task, seed, num_samples=chunks, record_samples=True)
    # The episode resets the planner with its seed and plans first from the initial
    # state, so this plan is the episode's first, proposals included.
    planner.reset(seed)
    first = planner.plan(task.initial_state)
    assert first.samples is not None  # record_samples=True
    U, costs = first.samples
    proposals = task.dynamics.rollout(task.initial_state, U)
    record = run_episode(task, build_guarded(task, planner, guard=True), seed)
    return PushEpisode(task, record, proposals, costs)


def scene_camera() -> mujoco.MjvCamera:
    """A free camera looking obliquely down at the table's centre from the -y side."""
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.lookat[:] = (0.25, 0.0, 0.0)
    camera.distance = 0.85
    camera.azimuth = 90.0  # looking along +y: x (start -> goal) runs left to right
    camera.elevation = -65.0
    return camera


def add_geom(
    scene: mujoco.MjvScene,
    kind: mujoco.mjtGeom,
    rgba: Sequence[float],
    size: Sequence[float] = (0.0, 0.0, 0.0),
    pos: Sequence[float] = (0.0, 0.0, 0.0),
) -> mujoco.MjvGeom:
    """Append a decorative geom to ``scene`` (not in the model: no physics) and return it.

    Raises:
        ValueError: the scene is full; build the ``mujoco.Renderer`` with a larger
            ``max_geom``.
    """
    if scene.ngeom >= scene.maxgeom:
        raise ValueError(
            f"the scene holds at most {scene.maxgeom} geoms; pass a larger max_geom to "
            "mujoco.Renderer."
        )
    geom = scene.geoms[scene.ngeom]
    mujoco.mjv_initGeom(
        geom,
        kind,
        np.asarray(size, dtype=np.float64),
        np.asarray(pos, dtype=np.float64),
        np.eye(3).ravel(),
        np.asarray(rgba, dtype=np.float32),
    )
    scene.ngeom += 1
    return geom


def add_path(
    scene: mujoco.MjvScene, xy: FloatArray, z: float, rgba: Sequence[float], radius: float
) -> None:
    """Draw the polyline through ``xy`` Shape=(T, 2) at height ``z`` as capsules."""
    points = np.column_stack([xy, np.full(len(xy), z)])
    for a, b in itertools.pairwise(points):
        if np.linalg.norm(b - a) < 1e-6:  # standing still: nothing to draw
            continue
        geom = add_geom(scene, mujoco.mjtGeom.mjGEOM_CAPSULE, rgba)
        mujoco.mjv_connector(geom, mujoco.mjtGeom.mjGEOM_CAPSULE, radius, a, b)


def proposal_colours(costs: FloatArray) -> list[tuple[float, ...]]:
    """RGBA per proposal, Shape=(K,) costs: the colour map over the finite costs, grey if inf."""
    import matplotlib

    finite = np.isfinite(costs)
    if not finite.any():
        return [INFEASIBLE_RGBA] * len(costs)
    low, high = costs[finite].min(), costs[finite].max()
    cmap = matplotlib.colormaps[PROPOSAL_CMAP]
    share = (costs - low) / max(high - low, 1e-12)
    # Reversed: the cheapest is the map's bright end.
    return [
        tuple(cmap(1.0 - s)) if f else INFEASIBLE_RGBA for s, f in zip(share, finite, strict=True)
    ]


def add_start_ghosts(scene: mujoco.MjvScene, model: mujoco.MjModel, start: FloatArray) -> None:
    """Faded copies of the block and the pusher where the state ``start`` Shape=(8,) has them."""
    for name, dims in (("block", BLOCK_DIMS), ("pusher", PUSHER_DIMS)):
        geom_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)
        rgba = model.geom_rgba[geom_id].copy()
        rgba[3] = 0.3
        pos = (*start[list(dims)], model.body_pos[model.geom_bodyid[geom_id], 2])
        add_geom(scene, model.geom_type[geom_id], rgba, model.geom_size[geom_id], pos)


def add_goal_ring(scene: mujoco.MjvScene, model: mujoco.MjModel) -> None:
    """A ring around the goal, of the success radius, just over the block's top.

    The block ends on the goal's disc and hides it; on the table the ring would hide
    under the block too.
    """
    block = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "block")
    top = model.body_pos[model.geom_bodyid[block], 2] + model.geom_size[block, 2]
    angle = np.linspace(0.0, 2.0 * np.pi, 49)
    ring = np.asarray(PUSH_GOAL) + PUSH_GOAL_TOLERANCE * np.column_stack(
        [np.cos(angle), np.sin(angle)]
    )
    add_path(scene, ring, top + EXECUTED_Z, GOAL_RGBA, EXECUTED_RADIUS)


def draw_overlay(scene: mujoco.MjvScene, model: mujoco.MjModel, episode: PushEpisode) -> None:
    """The start ghosts, the goal ring, the proposals' pusher paths and the executed paths."""
    states = episode.states
    add_start_ghosts(scene, model, states[0])
    add_goal_ring(scene, model)
    # Rejected and dearest first, so the cheap ones lie on top.
    order = np.argsort(-np.where(np.isfinite(episode.costs), episode.costs, np.inf))
    colours = proposal_colours(episode.costs)
    for k in order:
        xy = episode.proposals[k][:, list(PUSHER_DIMS)]
        add_path(scene, xy, PROPOSAL_Z, colours[k], PROPOSAL_RADIUS)
    add_path(scene, states[:, list(PUSHER_DIMS)], EXECUTED_Z, PUSHER_PATH_RGBA, EXECUTED_RADIUS)
    add_path(scene, states[:, list(BLOCK_DIMS)], EXECUTED_Z, BLOCK_PATH_RGBA, EXECUTED_RADIUS)


def offscreen_renderer(model: mujoco.MjModel, height: int, width: int) -> mujoco.Renderer:
    """A ``mujoco.Renderer``; raises RuntimeError naming the fix when there is no GL context."""
    try:
        return mujoco.Renderer(model, height, width)
    except mujoco.FatalError as error:
        backend = os.environ.get("MUJOCO_GL", "")
        raise RuntimeError(
            f"MuJoCo could not render offscreen (MUJOCO_GL={backend!r}, read when mujoco was "
            "first imported): set MUJOCO_GL=egl (or osmesa) before anything imports mujoco, "
            f"e.g. MUJOCO_GL=egl python examples/push_block_render.py. ({error})"
        ) from error


def render(
    episode: PushEpisode, width: int = 960, height: int = 600, overlay: bool = True
) -> np.ndarray:
    """The episode's final state rendered offscreen, paths drawn in (``overlay``).

    Returns:
        RGB pixels, Shape=(height, width, 3), uint8.
    """
    model = mujoco.MjModel.from_xml_path(str(PUSH_XML))  # a copy of its own: visuals only
    # The offscreen buffer must hold the picture (the MJCF keeps MuJoCo's 640x480).
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
    model.vis.global_.offheight = max(model.vis.global_.offheight, height)
    data = mujoco.MjData(model)
    final = episode.states[-1]
    data.qpos[:] = final[: model.nq]
    data.qvel[:] = final[model.nq : model.nq + model.nv]
    mujoco.mj_forward(model, data)
    with offscreen_renderer(model, height, width) as renderer:
        renderer.update_scene(data, scene_camera())
        if overlay:
            draw_overlay(renderer.scene, model, episode)
        return np.asarray(renderer.render())


def save_picture(image: np.ndarray, episode: PushEpisode, title: str, path: Path) -> Path:
    """Write ``image`` Shape=(H, W, 3) as a PNG of the same size, with a key and ``title``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    from imle_mpc.core.io import write_atomic

    height, width = image.shape[:2]
    dpi = 100
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.imshow(image, interpolation="none")
    ax.set_axis_off()
    ax.text(
        0.01, 0.98, title, transform=ax.transAxes, va="top", fontsize=10,
        bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"},
    )  # fmt: skip
    finite = episode.costs[np.isfinite(episode.costs)]
    k = len(episode.costs)
    key = [
        Line2D([], [], color=GOAL_RGBA, lw=3,
               label=f"goal: the block's centre ends within {PUSH_GOAL_TOLERANCE * 100:.0f} cm"),
        Line2D([], [], color=BLOCK_PATH_RGBA, lw=3, label="block, executed"),
        Line2D([], [], color=PUSHER_PATH_RGBA, lw=3, label="pusher, executed"),
        Line2D([], [], color=matplotlib.colormaps[PROPOSAL_CMAP](0.9), lw=1.5,
               label=f"pusher under the first step's {k} proposals"),
        Line2D([], [], color=INFEASIBLE_RGBA, lw=1.5,
               label=f"rejected proposals ({k - len(finite)})"),
    ]  # fmt: skip
    ax.legend(handles=key, loc="lower left", fontsize=9, framealpha=0.85)
    if finite.size:
        bar = fig.add_axes((0.70, 0.06, 0.25, 0.025))
        norm = Normalize(finite.min(), finite.max())
        mappable = plt.cm.ScalarMappable(norm, matplotlib.colormaps[PROPOSAL_CMAP + "_r"])
        fig.colorbar(mappable, cax=bar, orientation="horizontal")
        bar.set_title("proposal cost", fontsize=9)
        bar.tick_params(labelsize=8)
    write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi))
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=16, help="generator chunks a step")
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--height", type=int, default=600)
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args(argv)

    episode = run_push(args.seed, args.chunks)
    outcome = EpisodeOutcome.of(episode.task, episode.record)
    print(
        f"push_block, guarded IMLE-MPC ({args.chunks} chunks), seed {args.seed}: "
        f"success {outcome.success}, route {outcome.route}, "
        f"violation steps {outcome.violation_steps}"
    )
    title = (
        f"push_block, guarded IMLE-MPC ({args.chunks} chunks), seed {args.seed}: "
        f"{'success' if outcome.success else 'failure'}, route {outcome.route}, "
        f"{outcome.violation_steps} violation steps"
    )
    image = render(episode, args.width, args.height)
    path = save_picture(image, episode, title, args.out / "push_block.png")
    print(f"picture ({args.width}x{args.height}) written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
