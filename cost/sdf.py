"""Signed distances in the plane to circles, axis-aligned boxes and capsules (negative inside)."""

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
def capsule_distance(px, py, ax, ay, bx, by, radius):  # pragma: no cover - compiled
    """Signed distance from (px, py) to a capsule: the segment a-b thickened by ``radius``."""
    dx = bx - ax
    dy = by - ay
    length2 = dx * dx + dy * dy
    s = 0.0
    if length2 > 0.0:
        s = min(max(((px - ax) * dx + (py - ay) * dy) / length2, 0.0), 1.0)
    qx = px - (ax + s * dx)
    qy = py - (ay + s * dy)
    return np.sqrt(qx * qx + qy * qy) - radius


@nb.njit(cache=True)
def scene_distance(px, py, circles, boxes, capsules):  # pragma: no cover - compiled
    """Smallest signed distance to any obstacle; +inf for an empty scene.

    circles Shape=(nc, 3) rows (cx, cy, r); boxes Shape=(nb, 4) rows (cx, cy, half_w, half_h);
    capsules Shape=(ns, 5) rows (ax, ay, bx, by, r).
    """
    d = np.inf
    for i in range(circles.shape[0]):
        d = min(d, circle_distance(px, py, circles[i, 0], circles[i, 1], circles[i, 2]))
    for i in range(boxes.shape[0]):
        d = min(d, box_distance(px, py, boxes[i, 0], boxes[i, 1], boxes[i, 2], boxes[i, 3]))
    for i in range(capsules.shape[0]):
        c = capsules[i]
        d = min(d, capsule_distance(px, py, c[0], c[1], c[2], c[3], c[4]))
    return d


@nb.njit(parallel=True, cache=True)
def trajectory_distances(X, ix, iy, circles, boxes, capsules, out):  # pragma: no cover - compiled
    """out[k, t] = scene distance of the position (X[k, t, ix], X[k, t, iy]). out Shape=(K, H+1)."""
    K, T, _ = X.shape
    for k in nb.prange(K):
        for t in range(T):
            out[k, t] = scene_distance(X[k, t, ix], X[k, t, iy], circles, boxes, capsules)
