"""3-D point-to-segment distance, shared by the sphere checks in ``cost`` and ``dynamics``."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(inline="always")
def point_segment_distance3(px, py, pz, ax, ay, az, bx, by, bz):  # pragma: no cover - compiled
    """Distance from the point p to the segment a-b in 3-D (a == b: to the point a)."""
    ux, uy, uz = bx - ax, by - ay, bz - az
    wx, wy, wz = px - ax, py - ay, pz - az
    length2 = ux * ux + uy * uy + uz * uz
    s = 0.0
    if length2 > 0.0:
        s = min(max((wx * ux + wy * uy + wz * uz) / length2, 0.0), 1.0)
    dx, dy, dz = wx - s * ux, wy - s * uy, wz - s * uz
    return np.sqrt(dx * dx + dy * dy + dz * dz)


@nb.njit(inline="always")
def lower_keeping_nan(best, gap):  # pragma: no cover - compiled
    """``min(best, gap)`` that keeps a NaN: a robot point nobody can place (a NaN or
    infinite joint before it) makes the whole minimum NaN, so no check reads it as clear
    (the plain minimum dropped NaN gaps and could end at +inf)."""
    return gap if (gap < best or gap != gap) else best


@nb.njit(parallel=True, cache=True)
def swept_sphere_clearance(P, radii, spheres, out):  # pragma: no cover - compiled
    """Smallest gap between moving robot spheres and obstacle spheres over each step.

    ``out[k, t] = min_{i, s} dist(centre_s, segment P[k, t, i] -> P[k, t+1, i]) - r_s - radii[i]``,
    NaN where a centre is NaN.

    Args:
        P: robot sphere centres, Shape=(K, T, n, 3).
        radii: robot sphere radii, Shape=(n,).
        spheres: obstacles, rows (cx, cy, cz, radius), Shape=(S, 4).
        out: Shape=(K, T-1), written.
    """
    K, T, n, _ = P.shape
    for k in nb.prange(K):
        for t in range(T - 1):
            best = np.inf
            for i in range(n):
                a = P[k, t, i]
                b = P[k, t + 1, i]
                for s in range(spheres.shape[0]):
                    c = spheres[s]
                    d = point_segment_distance3(
                        c[0], c[1], c[2], a[0], a[1], a[2], b[0], b[1], b[2]
                    )
                    best = lower_keeping_nan(best, d - c[3] - radii[i])
            out[k, t] = best
