"""Plots of closed-loop episodes (PNG, written atomically). Uses matplotlib's Agg backend."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imle_mpc.core.io import write_atomic
from imle_mpc.loop.runner import EpisodeRecord


def new_figure(n_panels: int) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n_panels, figsize=(5.2 * n_panels, 4.4), squeeze=False)
    return fig, axes[0]


def draw_scene(ax: Any, scene: Any) -> None:
    """Draw the circles, boxes and capsules of a ``cost.Scene`` on a matplotlib axis."""
    from matplotlib.patches import Circle, Polygon, Rectangle

    for cx, cy, r in scene.circle_array:
        ax.add_patch(Circle((cx, cy), r, color="0.35", alpha=0.8))
    for cx, cy, hw, hh in scene.box_array:
        ax.add_patch(Rectangle((cx - hw, cy - hh), 2 * hw, 2 * hh, color="0.35", alpha=0.8))
    for *ends, r in scene.capsule_array:  # a capsule: a band between two discs
        a, b = np.asarray(ends[:2]), np.asarray(ends[2:])
        along = (b - a) / max(float(np.linalg.norm(b - a)), 1e-12)
        side = r * np.array([-along[1], along[0]])
        band = [a + side, b + side, b - side, a - side]
        ax.add_patch(Polygon(band, closed=True, color="0.35", alpha=0.8, linewidth=0))
        for centre in (a, b):
            ax.add_patch(Circle(tuple(centre), r, color="0.35", alpha=0.8, linewidth=0))


def plot_paths(
    ax: Any,
    records: Sequence[EpisodeRecord],
    scene: Any = None,
    proposals: np.ndarray | None = None,
    goal: np.ndarray | None = None,
) -> None:
    """Executed (x, y) paths, optional proposal rollouts Shape=(K, H+1, nx), obstacles, goal."""
    if proposals is not None:
        for path in proposals:
            ax.plot(path[:, 0], path[:, 1], color="tab:blue", alpha=0.25, lw=0.8)
    if scene is not None:
        draw_scene(ax, scene)
    for rec in records:
        style = "-" if rec.success else "--"
        ax.plot(
            rec.states[:, 0],
            rec.states[:, 1],
            style,
            lw=1.8,
            label=f"seed {rec.info.get('seed', '?')}",
        )
    if goal is not None:
        ax.plot(*goal, marker="*", ms=14, color="tab:red", label="goal")
    ax.set_aspect("equal")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.legend(fontsize=7, loc="upper left")


def plot_angle(
    ax: Any, records: Sequence[EpisodeRecord], index: int, dt: float, title: str
) -> None:
    """Wrapped angle over time for each episode, with the +-0.3 rad upright band."""
    for rec in records:
        t = np.arange(rec.states.shape[0]) * dt
        angle = (rec.states[:, index] + np.pi) % (2 * np.pi) - np.pi
        angle[1:][np.abs(np.diff(angle)) > np.pi] = np.nan  # no vertical lines at the wrap
        ax.plot(t, angle, lw=1.4, label=f"seed {rec.info.get('seed', '?')}")
    ax.axhspan(-0.3, 0.3, color="tab:green", alpha=0.15, label="upright band")
    ax.set_title(title)
    ax.set_xlabel("time [s]")
    ax.set_ylabel("angle from upright [rad]")
    ax.legend(fontsize=7)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save a figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    write_atomic(path, lambda fh: fig.savefig(fh, dpi=110, format="png"))
    plt.close(fig)
    return Path(path)
