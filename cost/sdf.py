"""Signed distances in the plane to circles and axis-aligned boxes (negative inside)."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def circle_distance(px, py, cx, cy, radius):  # pragma: no cover - compiled
    """Signed distance from (px, py) to a disc."""
    return np.sqrt((px - cx) ** 2 + (py - cy) ** 2) - radius


@nb.njit(cache=True)
def box_distance(px, py, cx, cy, half_w, half_h):  # pragma: no cover - compiled
    """Signed distance from (px, py) to an axis-aligned box given by centre and half extents."""
    dx = abs(px - cx) - half_w
    dy = abs(py - cy) - half_h
    ox = max(dx, 0.0)
    oy = max(dy, 0.0)
    return np.sqrt(ox * ox + oy * oy) + min(max(dx, dy), 0.0)


@nb.njit(cache=True)
def scene_distance(px, py, circles, boxes):  # pragma: no cover - compiled
    """Smallest signed distance to any obstacle; +inf for an empty scene.

    circles Shape=(nc, 3) rows (cx, cy, r); boxes Shape=(nb, 4) rows (cx, cy, half_w, half_h).
    """
    d = np.inf
    for i in range(circles.shape[0]):
        d = min(d, circle_distance(px, py, circles[i, 0], circles[i, 1], circles[i, 2]))
    for i in range(boxes.shape[0]):
        d = min(d, box_distance(px, py, boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]))
    return d


@nb.njit(parallel=True, cache=True)
def trajectory_distances(X, ix, iy, circles, boxes, out):  # pragma: no cover - compiled
    """out[k, t] = scene distance of the position (X[k, t, ix], X[k, t, iy]). out Shape=(K, H+1)."""
    K, T, _ = X.shape
    for k in nb.prange(K):
        for t in range(T):
            out[k, t] = scene_distance(X[k, t, ix], X[k, t, iy], circles, boxes)
