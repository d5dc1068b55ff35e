"""Batched forward kinematics of a serial arm: points fixed to its links, in the world frame.

``ChainKinematics`` reads a Pinocchio model ONCE (each joint's placement in its
parent and its rotation axis) and then evaluates the positions of a few points
(collision-sphere centres, the tool centre point) for a whole batch of
configurations in one parallel Numba kernel, with a CasADi twin of the same
arithmetic for trajectory optimisation::

    oM_0 = identity,  oM_j = oM_{j-1} * placement_j * Rot(axis_j, q_j)
    point_i = oM_{joint_i} * offset_i

The kernel is tested equal to ``pin.framesForwardKinematics`` to 1e-9
(``tests/test_panda_task.py``).

Why a kernel of its own. Measured on the 7-DoF Panda (fingers locked), one
batch of K x (H+1) = 256 x 17 = 4352 random configurations (one IMLE-MPC
control step), 2-core machine shared with other jobs (1-min load average
2.6-2.8), medians:

* ``PinocchioDynamics.frame_positions`` (a Python loop over
  ``pin.framesForwardKinematics``), 3 frames: 28-32 ms per batch, more than
  the whole 20 ms budget of a 50 Hz control step on its own;
* ``ChainKinematics.positions`` (this kernel, ``parallel=True``), 11 points:
  1.6-1.7 ms (1 thread: 1.6-1.8 ms; under that load the second thread buys
  nothing) - about 18x faster, all in compiled code;
* the robot-sphere clearance to an obstacle for the whole batch:
  ``cost.SphereConstraint`` on these points (NumPy broadcasting over
  (K, T, P, S, 3)) 10-11 ms; ``ChainKinematics.clearance`` (FK and distances
  fused in one pass, no intermediate arrays) 1.4 ms, equal to the last bit.
  Its kernel now evaluates 32 candidates side by side (``_LANES``, SIMD across
  candidates; each lane does one configuration's operations in their order) with
  ``imle_mpc.core.kernels.trig.sincos`` (branch-free, vectorised; libm's ``sin`` /
  ``cos``, one call each, was half the time): with the swept gaps, K = 256, T = 17,
  one thread, 400 calls interleaved with the previous kernel in one process (load
  average 4.5): median 2.43 -> 0.84 ms, fastest 1.66 -> 0.61 ms, gaps within 2.2e-16.

Only serial chains of revolute joints about a frame axis (Pinocchio's
``JointModelRX/RY/RZ``, e.g. every joint of the Panda) are supported; the
constructor names the joint otherwise. This module does not import
``pinocchio`` (it reads the model it is given) nor ``casadi`` (imported by
``symbolic`` when called).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba as nb
import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.errors import InputError
from imle_mpc.core.kernels.geometry import lower_keeping_nan, point_segment_distance3
from imle_mpc.core.kernels.trig import needs_libm, sincos
from imle_mpc.core.validation import FloatArray

_AXES = {"JointModelRX": 0, "JointModelRY": 1, "JointModelRZ": 2}


@nb.njit(inline="always")
def _rotate_about(R, axis, c, s, out):  # pragma: no cover - compiled
    """``out = R @ Rot(axis, angle)`` for a frame axis, with c = cos, s = sin of the angle."""
    a = (axis + 1) % 3
    b = (axis + 2) % 3
    for r in range(3):
        out[r, axis] = R[r, axis]
        out[r, a] = c * R[r, a] + s * R[r, b]
        out[r, b] = -s * R[r, a] + c * R[r, b]


@nb.njit(inline="always")
def _chain_frames(q, rot, trans, axes, R, p, A):  # pragma: no cover - compiled
    """Joint frames of one configuration: ``R[j], p[j]`` = rotation, origin of joint j (0 = base).

    ``R[0]`` must hold the identity and ``p[0]`` zeros; ``A`` is 3x3 scratch.
    """
    for j in range(rot.shape[0]):
        for r in range(3):
            p[j + 1, r] = p[j, r]
            for k in range(3):
                p[j + 1, r] += R[j, r, k] * trans[j, k]
                acc = 0.0
                for m in range(3):
                    acc += R[j, r, m] * rot[j, m, k]
                A[r, k] = acc
        s, c = _joint_sincos(q[j])
        _rotate_about(A, axes[j], c, s, R[j + 1])


@nb.njit(inline="always")
def _joint_sincos(q):  # pragma: no cover - compiled
    """``(sin q, cos q)``: the vectorisable kind (``core.kernels.trig``), libm out of its range."""
    if needs_libm(q):
        return np.sin(q), np.cos(q)
    return sincos(q)


@nb.njit(inline="always")
def _point(R, p, joint, offset, r):  # pragma: no cover - compiled
    """Coordinate r of a point fixed at ``offset`` in joint ``joint``'s frame."""
    acc = p[joint, r]
    for k in range(3):
        acc += R[joint, r, k] * offset[k]
    return acc


@nb.njit(inline="always")
def _scratch(nj):  # pragma: no cover - compiled
    R = np.zeros((nj + 1, 3, 3))
    for d in range(3):
        R[0, d, d] = 1.0
    return R, np.zeros((nj + 1, 3)), np.empty((3, 3))


_BLOCKS = 64
"""Work blocks of the parallel kernels: scratch arrays are allocated once per block."""


@nb.njit(parallel=True, cache=True)
def _chain_points(Q, rot, trans, axes, point_joint, point_offset, out):  # pragma: no cover
    """World positions of link-fixed points for every configuration.

    Args:
        Q: configurations, Shape=(N, nj).
        rot, trans: joint placements in the parent joint, Shape=(nj, 3, 3), (nj, 3).
        axes: rotation axis index of each joint (0, 1, 2), Shape=(nj,).
        point_joint: joint each point is fixed to, 0 = base, j = joint j, Shape=(P,).
        point_offset: each point in its joint's frame, Shape=(P, 3).
        out: Shape=(N, P, 3).
    """
    N = Q.shape[0]
    blocks = min(N, _BLOCKS)
    for blk in nb.prange(blocks):
        R, p, A = _scratch(rot.shape[0])
        for n in range(blk * N // blocks, (blk + 1) * N // blocks):
            _chain_frames(Q[n], rot, trans, axes, R, p, A)
            for i in range(point_joint.shape[0]):
                for r in range(3):
                    out[n, i, r] = _point(R, p, point_joint[i], point_offset[i], r)


_LANES = 32
"""Candidates the clearance kernel evaluates side by side, every work array's last axis.
The per-configuration arithmetic of a serial chain is a chain of dependent scalar
operations; across candidates it vectorises. LLVM vectorised loops of 32 and 64 lanes
(packed AVX-512), not of 8 or 16 (the aliasing checks do not pay at that trip count)."""


@nb.njit(parallel=True, cache=True, error_model="numpy")
def _chain_path_clearance(
    Q, rot, trans, axes, point_joint, point_offset, point_radius, spheres, out, swept
):  # pragma: no cover - compiled
    """Point gaps of every configuration and swept gaps of every step, in one FK pass.

    ``gap = |point - centre| - obstacle radius - point radius``; spheres rows
    ``(cx, cy, cz, radius)``, Shape=(S, 4). Q: trajectories, Shape=(K, T, nj);
    out: the smallest gap of each configuration, Shape=(K, T); swept: Shape=(K, T-1),
    entry t the smallest gap of any point sphere's centre on its straight segment
    from configuration t to t+1 (T = 1: single configurations, nothing swept). A
    point nobody can place (a NaN or infinite joint before it) makes the gap NaN, and
    the swept gaps of both its segments: the minima keep NaN (``lower_keeping_nan``).

    ``_LANES`` candidates at a time, each lane doing exactly ``_chain_frames`` /
    ``_point``'s operations in their order (the results are those of one
    configuration at a time, to the bit; no contraction into FMAs, no reordering);
    spare lanes of the last group repeat the last candidate and are not written.
    ``error_model="numpy"``: the one division (in the segment distance) is guarded,
    and the zero check of Python's error model would keep the loop scalar.
    """
    K, T, nj = Q.shape
    n = point_joint.shape[0]
    L = _LANES
    groups = (K + L - 1) // L
    blocks = min(groups, _BLOCKS)
    # A planner's batch starts every trajectory at the measured state: then configuration
    # t = 0 is evaluated once here (one lane's operations, so the same bits) and copied
    # into every group (1/T of the kernel's work).
    shared = T > 0 and K > 1
    for k in range(1, K if shared else 1):
        for j in range(nj):
            if Q[k, 0, j] != Q[0, 0, j]:  # NaN never equal: such a batch takes the lanes
                shared = False
        if not shared:
            break
    here0 = np.empty((n, 3))
    best0 = np.inf
    if shared:
        R0, p0, A0 = _scratch(nj)
        _chain_frames(Q[0, 0], rot, trans, axes, R0, p0, A0)
        for i in range(n):
            for r in range(3):
                here0[i, r] = _point(R0, p0, point_joint[i], point_offset[i], r)
            radius = point_radius[i]
            for o in range(spheres.shape[0]):
                dx = here0[i, 0] - spheres[o, 0]
                dy = here0[i, 1] - spheres[o, 1]
                dz = here0[i, 2] - spheres[o, 2]
                gap = np.sqrt(dx * dx + dy * dy + dz * dz) - spheres[o, 3] - radius
                best0 = lower_keeping_nan(best0, gap)
    for blk in nb.prange(blocks):
        R = np.zeros((nj + 1, 3, 3, L))  # joint frames, lane last; R[0] the identity
        for d in range(3):
            for w in range(L):
                R[0, d, d, w] = 1.0
        p = np.zeros((nj + 1, 3, L))
        A = np.empty((3, 3, L))
        c = np.empty(L)
        s = np.empty(L)
        angle = np.empty(L)
        here = np.empty((n, 3, L))
        prev = np.empty((n, 3, L))
        best = np.empty(L)
        moved = np.empty(L)
        for g in range(blk * groups // blocks, (blk + 1) * groups // blocks):
            k0 = g * L
            for t in range(T):
                if t == 0 and shared:  # the one start configuration, evaluated once above
                    for w in range(L):
                        best[w] = best0
                    for i in range(n):
                        for r in range(3):
                            for w in range(L):
                                here[i, r, w] = here0[i, r]
                else:
                    for j in range(nj):
                        # gathered first: the strided reads kept sincos's loop from packing
                        # (a third of the kernel's time on a Zen 4 core)
                        for w in range(L):
                            angle[w] = Q[min(k0 + w, K - 1), t, j]
                        for w in range(L):  # packed: no branch, no call
                            sin_w, cos_w = sincos(angle[w])
                            s[w] = sin_w
                            c[w] = cos_w
                        for w in range(L):  # as _joint_sincos: libm beyond the reduction's range
                            q = angle[w]
                            if needs_libm(q):
                                s[w], c[w] = np.sin(q), np.cos(q)
                        # one pass over the lanes per row of the frame (the translation and
                        # the three products, each in _chain_frames's order): 27 % less time
                        # than a loop per product
                        t0, t1, t2 = trans[j, 0], trans[j, 1], trans[j, 2]
                        m00, m01, m02 = rot[j, 0, 0], rot[j, 0, 1], rot[j, 0, 2]
                        m10, m11, m12 = rot[j, 1, 0], rot[j, 1, 1], rot[j, 1, 2]
                        m20, m21, m22 = rot[j, 2, 0], rot[j, 2, 1], rot[j, 2, 2]
                        for r in range(3):
                            for w in range(L):
                                r0, r1, r2 = R[j, r, 0, w], R[j, r, 1, w], R[j, r, 2, w]
                                acc = p[j, r, w]
                                acc += r0 * t0
                                acc += r1 * t1
                                acc += r2 * t2
                                p[j + 1, r, w] = acc
                                acc = 0.0
                                acc += r0 * m00
                                acc += r1 * m10
                                acc += r2 * m20
                                A[r, 0, w] = acc
                                acc = 0.0
                                acc += r0 * m01
                                acc += r1 * m11
                                acc += r2 * m21
                                A[r, 1, w] = acc
                                acc = 0.0
                                acc += r0 * m02
                                acc += r1 * m12
                                acc += r2 * m22
                                A[r, 2, w] = acc
                        axis = axes[j]
                        a = (axis + 1) % 3
                        b = (axis + 2) % 3
                        for r in range(3):
                            for w in range(L):
                                R[j + 1, r, axis, w] = A[r, axis, w]
                                R[j + 1, r, a, w] = c[w] * A[r, a, w] + s[w] * A[r, b, w]
                                R[j + 1, r, b, w] = -s[w] * A[r, a, w] + c[w] * A[r, b, w]
                    for w in range(L):
                        best[w] = np.inf
                        moved[w] = np.inf
                    for i in range(n):
                        joint = point_joint[i]
                        o0, o1, o2 = point_offset[i, 0], point_offset[i, 1], point_offset[i, 2]
                        for r in range(3):
                            for w in range(L):
                                acc = p[joint, r, w]
                                acc += R[joint, r, 0, w] * o0
                                acc += R[joint, r, 1, w] * o1
                                acc += R[joint, r, 2, w] * o2
                                here[i, r, w] = acc
                        radius = point_radius[i]
                        for o in range(spheres.shape[0]):
                            cx, cy, cz = spheres[o, 0], spheres[o, 1], spheres[o, 2]
                            reach = spheres[o, 3]
                            for w in range(L):
                                dx = here[i, 0, w] - cx
                                dy = here[i, 1, w] - cy
                                dz = here[i, 2, w] - cz
                                gap = np.sqrt(dx * dx + dy * dy + dz * dz) - reach - radius
                                best[w] = lower_keeping_nan(best[w], gap)
                            if t > 0:
                                for w in range(L):
                                    d = point_segment_distance3(
                                        cx, cy, cz, prev[i, 0, w], prev[i, 1, w], prev[i, 2, w],
                                        here[i, 0, w], here[i, 1, w], here[i, 2, w],
                                    )  # fmt: skip
                                    moved[w] = lower_keeping_nan(moved[w], d - reach - radius)
                for w in range(L):
                    if k0 + w < K:
                        out[k0 + w, t] = best[w]
                        if t > 0:
                            swept[k0 + w, t - 1] = moved[w]
                prev, here = here, prev


_SCALAR_BELOW = 4
"""Fewer candidates than this go through ``_chain_path_clearance_scalar``: the lane kernel
computes all ``_LANES`` lanes whatever K is, so one trajectory (the safety guard's check
of the plan it sends, a success test) cost as much as 32 (0.083 ms for 1 x 17 Panda
configurations, measured; the scalar kernel a few microseconds)."""


@nb.njit(cache=True, error_model="numpy")
def _chain_path_clearance_scalar(
    Q, rot, trans, axes, point_joint, point_offset, point_radius, spheres, out, swept
):  # pragma: no cover - compiled
    """``_chain_path_clearance`` one configuration at a time, the same numbers to the bit.

    ``_chain_frames`` and ``_point`` are the operations each lane of the lane kernel does,
    in their order; the gaps and the minima follow the lane kernel's loops (points, then
    obstacles). For a handful of trajectories; arguments as ``_chain_path_clearance``.
    """
    K, T, nj = Q.shape
    n = point_joint.shape[0]
    R, p, A = _scratch(nj)
    here = np.empty((n, 3))
    prev = np.empty((n, 3))
    for k in range(K):
        for t in range(T):
            _chain_frames(Q[k, t], rot, trans, axes, R, p, A)
            best = np.inf
            moved = np.inf
            for i in range(n):
                for r in range(3):
                    here[i, r] = _point(R, p, point_joint[i], point_offset[i], r)
                radius = point_radius[i]
                for o in range(spheres.shape[0]):
                    cx, cy, cz = spheres[o, 0], spheres[o, 1], spheres[o, 2]
                    reach = spheres[o, 3]
                    dx = here[i, 0] - cx
                    dy = here[i, 1] - cy
                    dz = here[i, 2] - cz
                    gap = np.sqrt(dx * dx + dy * dy + dz * dz) - reach - radius
                    best = lower_keeping_nan(best, gap)
                    if t > 0:
                        d = point_segment_distance3(
                            cx, cy, cz, prev[i, 0], prev[i, 1], prev[i, 2],
                            here[i, 0], here[i, 1], here[i, 2],
                        )  # fmt: skip
                        moved = lower_keeping_nan(moved, d - reach - radius)
            out[k, t] = best
            if t > 0:
                swept[k, t - 1] = moved
            prev, here = here, prev


def _path_clearance_kernel(K: int) -> Any:
    """The kernel for ``K`` candidates (``_SCALAR_BELOW``): lanes, or one at a time."""
    return _chain_path_clearance_scalar if K < _SCALAR_BELOW else _chain_path_clearance


class ChainKinematics:
    """Positions of points fixed to the links of a serial arm, for batches of configurations.

    Args:
        rotations: each joint's placement rotation in its parent joint, Shape=(nj, 3, 3).
        translations: the placement translations, Shape=(nj, 3).
        axes: each joint's rotation axis (0 = x, 1 = y, 2 = z), Shape=(nj,).
        point_joints: the joint (1-based; 0 = the base) each point moves with, Shape=(P,).
        point_offsets: each point in its joint's frame, Shape=(P, 3).

    Build it from a model with ``from_pinocchio``.
    """

    def __init__(
        self,
        rotations: ArrayLike,
        translations: ArrayLike,
        axes: ArrayLike,
        point_joints: ArrayLike,
        point_offsets: ArrayLike,
    ) -> None:
        self.rotations = np.ascontiguousarray(rotations, dtype=np.float64)
        self.translations = np.ascontiguousarray(translations, dtype=np.float64)
        self.axes = np.ascontiguousarray(axes, dtype=np.int64)
        self.point_joints = np.ascontiguousarray(point_joints, dtype=np.int64)
        self.point_offsets = np.ascontiguousarray(point_offsets, dtype=np.float64).reshape(-1, 3)
        nj = self.rotations.shape[0]
        if self.rotations.shape != (nj, 3, 3) or self.translations.shape != (nj, 3):
            raise ValueError(
                f"rotations must be Shape=(nj, 3, 3) and translations (nj, 3), got "
                f"{self.rotations.shape} and {self.translations.shape}."
            )
        if self.axes.shape != (nj,) or np.any((self.axes < 0) | (self.axes > 2)):
            raise ValueError(f"axes must be {nj} entries in {{0, 1, 2}}, got {self.axes}.")
        P = self.point_joints.shape[0]
        if self.point_offsets.shape != (P, 3):
            raise ValueError(
                f"point_offsets must be Shape=({P}, 3) like point_joints, got "
                f"{self.point_offsets.shape}."
            )
        if np.any((self.point_joints < 0) | (self.point_joints > nj)):
            raise ValueError(f"point_joints must lie in [0, {nj}], got {self.point_joints}.")

    @classmethod
    def from_pinocchio(
        cls, model: Any, points: Sequence[tuple[str, Sequence[float]]]
    ) -> ChainKinematics:
        """Read joint placements and axes from a ``pinocchio.Model`` once.

        Args:
            model: a fixed-base serial chain of ``JointModelRX/RY/RZ`` joints.
            points: ``(frame name, offset in that frame)`` per point: any
                Pinocchio frame (a joint, a link, a tool frame such as ``panda_hand_tcp``).

        Raises:
            InputError: a joint is not a revolute joint about a frame axis, the
                chain branches, or a frame name is unknown.
        """
        nj = int(model.njoints) - 1
        rotations = np.empty((nj, 3, 3))
        translations = np.empty((nj, 3))
        axes = np.empty(nj, dtype=np.int64)
        for j in range(1, nj + 1):
            kind = model.joints[j].shortname()
            if kind not in _AXES:
                raise InputError(
                    f"joint {model.names[j]!r} is a {kind}; ChainKinematics supports revolute "
                    f"joints about a frame axis ({sorted(_AXES)}). Lock it or use "
                    "PinocchioDynamics.frame_positions."
                )
            if int(model.parents[j]) != j - 1:
                raise InputError(
                    f"joint {model.names[j]!r} hangs off joint {int(model.parents[j])}, not "
                    f"{j - 1}: ChainKinematics needs a serial chain (lock the branches)."
                )
            placement = model.jointPlacements[j]
            rotations[j - 1] = placement.rotation
            translations[j - 1] = placement.translation
            axes[j - 1] = _AXES[kind]
        joints = np.empty(len(points), dtype=np.int64)
        offsets = np.empty((len(points), 3))
        for i, (name, offset) in enumerate(points):
            if not model.existFrame(name):
                known = [f.name for f in model.frames][-8:]
                raise InputError(f"no frame named {name!r} in the model; frames include {known}.")
            frame = model.frames[model.getFrameId(name)]
            local = np.asarray(offset, dtype=np.float64)
            joints[i] = int(frame.parentJoint)
            offsets[i] = frame.placement.rotation @ local + frame.placement.translation
        return cls(rotations, translations, axes, joints, offsets)

    @property
    def nq(self) -> int:
        """Joints in the chain (entries of a configuration)."""
        return int(self.rotations.shape[0])

    @property
    def num_points(self) -> int:
        return int(self.point_joints.shape[0])

    def positions(self, Q: ArrayLike) -> FloatArray:
        """World positions of the points, Shape=(..., P, 3), for configurations Shape=(..., nq)."""
        Q = np.asarray(Q, dtype=np.float64)
        if Q.ndim == 0 or Q.shape[-1] != self.nq:
            raise ValueError(f"configurations must have Shape=(..., {self.nq}), got {Q.shape}.")
        flat = np.ascontiguousarray(Q.reshape(-1, self.nq))
        out = np.empty((flat.shape[0], self.num_points, 3))
        _chain_points(
            flat, self.rotations, self.translations, self.axes, self.point_joints,
            self.point_offsets, out,
        )  # fmt: skip
        return out.reshape(*Q.shape[:-1], self.num_points, 3)

    def _obstacles_and_radii(
        self, spheres: ArrayLike, radii: ArrayLike
    ) -> tuple[FloatArray, FloatArray]:
        """The kernels' obstacle rows Shape=(S, 4) and point radii Shape=(P,), float64,
        C-contiguous; arrays already in that form are passed on as they are (the planner's
        constraint asks twice a step: ``broadcast_to`` and the copies cost ~8 us a call)."""
        obstacles = np.ascontiguousarray(spheres, dtype=np.float64).reshape(-1, 4)
        r = np.asarray(radii, dtype=np.float64)
        if r.shape != (self.num_points,) or not r.flags.c_contiguous:
            r = np.ascontiguousarray(np.broadcast_to(r, self.num_points))
        return obstacles, r

    def clearance(self, Q: ArrayLike, spheres: ArrayLike, radii: ArrayLike) -> FloatArray:
        """Smallest signed gap of the points (as spheres) to obstacle spheres, FK fused in.

        ``min_{i, s} |point_i - centre_s| - radius_s - radii_i`` per
        configuration, in one pass without the (..., P, 3) intermediate.

        Args:
            Q: configurations, Shape=(..., nq).
            spheres: obstacles, rows ``(cx, cy, cz, radius)``, Shape=(S, 4).
            radii: radius of each point's sphere, Shape=(P,) or scalar.

        Returns:
            Shape=(...,), negative where a point sphere overlaps an obstacle.
        """
        Q = np.asarray(Q, dtype=np.float64)
        if Q.ndim == 0 or Q.shape[-1] != self.nq:
            raise ValueError(f"configurations must have Shape=(..., {self.nq}), got {Q.shape}.")
        obstacles, r = self._obstacles_and_radii(spheres, radii)
        flat = np.ascontiguousarray(Q.reshape(-1, 1, self.nq))
        out = np.empty(flat.shape[:2])
        _path_clearance_kernel(flat.shape[0])(
            flat, self.rotations, self.translations, self.axes, self.point_joints,
            self.point_offsets, r, obstacles, out, np.empty((flat.shape[0], 0)),
        )  # fmt: skip
        return out.reshape(Q.shape[:-1])

    def path_clearance(
        self, Q: ArrayLike, spheres: ArrayLike, radii: ArrayLike
    ) -> tuple[FloatArray, FloatArray]:
        """``clearance`` of every configuration of trajectories, and over every step between.

        The swept gap of step t is the smallest ``dist(centre_s, segment) - radius_s -
        radii_i`` over every point i's straight path from its place at ``Q[..., t, :]``
        to ``Q[..., t+1, :]`` (one FK per configuration for both results).

        Args:
            Q: trajectories of configurations, Shape=(..., T, nq).
            spheres: as ``clearance``.
            radii: as ``clearance``.

        Returns:
            Point gaps Shape=(..., T) and swept gaps Shape=(..., T-1).
        """
        Q = np.asarray(Q, dtype=np.float64)
        if Q.ndim < 2 or Q.shape[-1] != self.nq:
            raise ValueError(f"trajectories must have Shape=(..., T, {self.nq}), got {Q.shape}.")
        obstacles, r = self._obstacles_and_radii(spheres, radii)
        T = Q.shape[-2]
        flat = np.ascontiguousarray(Q.reshape(-1, T, self.nq))
        out = np.empty(flat.shape[:2])
        swept = np.empty((flat.shape[0], max(T - 1, 0)))
        _path_clearance_kernel(flat.shape[0])(
            flat, self.rotations, self.translations, self.axes, self.point_joints,
            self.point_offsets, r, obstacles, out, swept,
        )  # fmt: skip
        return out.reshape(Q.shape[:-1]), swept.reshape(*Q.shape[:-2], max(T - 1, 0))

    def __call__(self, X: ArrayLike) -> FloatArray:
        """Points of states ``(q, v, ...)``, Shape=(..., nx) -> (..., P, 3) (the first nq entries).

        This is the ``points`` function of ``cost.SphereConstraint``.
        """
        X = np.asarray(X, dtype=np.float64)
        return self.positions(X[..., : self.nq])

    def symbolic(self, q: Any) -> list[Any]:
        """The same kinematics on a CasADi column ``q`` (``SX`` or ``MX``): P 3x1 expressions."""
        import casadi as ca

        R: Any = ca.DM.eye(3)
        p: Any = ca.DM.zeros(3, 1)
        frames = [(R, p)]
        for j in range(self.nq):
            p = p + ca.mtimes(R, ca.DM(self.translations[j]))
            A = ca.mtimes(R, ca.DM(self.rotations[j]))
            c, s = ca.cos(q[j]), ca.sin(q[j])
            axis = int(self.axes[j])
            a, b = (axis + 1) % 3, (axis + 2) % 3
            cols = [A[:, 0], A[:, 1], A[:, 2]]
            cols[a], cols[b] = c * A[:, a] + s * A[:, b], -s * A[:, a] + c * A[:, b]
            R = ca.horzcat(*cols)
            frames.append((R, p))
        out = []
        for joint, offset in zip(self.point_joints, self.point_offsets, strict=True):
            Rj, pj = frames[int(joint)]
            out.append(pj + ca.mtimes(Rj, ca.DM(offset)))
        return out
