"""Swept checks: the straight path between consecutive states, not only the states."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cost import ObstacleConstraint, ObstacleProximity, Scene, SphereConstraint
from cost.sdf import (
    LANES,
    scene_distance,
    scene_segment_distance,
    swept_trajectory_distances,
    trajectory_distances,
)
from dynamics.kinematics import ChainKinematics

MARGIN = 0.05
DEPTH = 0.0015  # how far the path between two states cuts into the box corner (m)


def corner_cut() -> tuple[Scene, np.ndarray]:
    """A box corner at the origin and a 2.25 m/s path past it, sampled every 0.1 s.

    Every state keeps 7.8 cm (> MARGIN) from the box; the straight segment
    between the middle two cuts the corner DEPTH deep.
    """
    scene = Scene(boxes=[[-0.5, -0.5, 0.5, 0.5]])  # corner (0, 0), the box below-left of it
    speed, dt = 2.25, 0.1
    direction = np.array([1.0, -1.0]) / np.sqrt(2.0)
    middle = np.array([-DEPTH, -DEPTH])  # on the line x + y = -2 DEPTH, inside the corner
    t = np.arange(-2, 2) + 0.5  # the middle falls between states 1 and 2
    positions = middle + (t * speed * dt)[:, None] * direction
    X = np.concatenate([positions, np.tile(speed * direction, (4, 1))], axis=1)[None]
    return scene, X


@pytest.mark.parametrize("swept", [True, False], ids=["swept", "swept=False"])
def test_a_corner_cut_between_safe_states_is_a_violation(swept: bool) -> None:
    scene, X = corner_cut()
    assert scene.distances(X)[0].min() > MARGIN + 0.02  # every state keeps the margin
    v = ObstacleConstraint(scene, margin=MARGIN, swept=swept).violation(X, np.zeros((1, 3, 2)))
    if swept:
        assert v[0] == pytest.approx(MARGIN + DEPTH, abs=1e-12)
        assert scene.swept_distances(X)[0, 1] == pytest.approx(-DEPTH, abs=1e-12)
    else:
        assert v[0] == 0.0  # the miss the swept check exists for


def _dense_min(fn, a: np.ndarray, b: np.ndarray, n: int = 200) -> float:
    s = np.linspace(0.0, 1.0, n)[:, None]
    return float(np.min(fn(a + s * (b - a))))


coord = st.floats(-2.0, 2.0, allow_nan=False)
size = st.floats(0.05, 1.0, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    a=st.tuples(coord, coord), b=st.tuples(coord, coord), centre=st.tuples(coord, coord),
    other=st.tuples(coord, coord), w=size, h=size,
    kind=st.sampled_from(["circle", "box", "capsule"]),
)  # fmt: skip
def test_swept_distance_is_exact_against_dense_sampling(a, b, centre, other, w, h, kind) -> None:
    a, b = np.array(a), np.array(b)
    if kind == "circle":
        scene = Scene(circles=[[*centre, w]])
    elif kind == "box":
        scene = Scene(boxes=[[*centre, w, h]])
    else:
        scene = Scene(capsules=[[*centre, *other, w]])

    def at(points: np.ndarray) -> np.ndarray:
        X = np.zeros((1, len(points), 4))
        X[0, :, :2] = points
        return scene.distances(X)[0]

    X = np.zeros((1, 2, 4))
    X[0, :, :2] = [a, b]
    swept = scene.swept_distances(X)[0, 0]
    reference = _dense_min(at, a, b)
    # Never above any sampled point; below the sampled minimum by at most half a
    # sample spacing (the signed distances are 1-Lipschitz).
    assert swept <= reference + 1e-9
    assert swept >= reference - 0.5 * np.linalg.norm(b - a) / 199 - 1e-9


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), margin=st.floats(0.0, 0.5), scale=st.floats(0.05, 2.0),
)  # fmt: skip
def test_swept_violation_is_never_below_the_point_one(seed: int, margin: float, scale) -> None:
    rng = np.random.default_rng(seed)
    scene = Scene(
        circles=[[0.5, 0.0, 0.4]], boxes=[[-1.0, 1.0, 0.3, 0.5]], capsules=[[0, -1, 1, -1, 0.1]]
    )
    X = np.cumsum(rng.normal(size=(16, 6, 4)) * scale, axis=1)
    U = np.zeros((16, 5, 2))
    point = ObstacleConstraint(scene, margin, swept=False).violation(X, U)
    swept = ObstacleConstraint(scene, margin).violation(X, U)
    assert np.all(swept >= point)
    slack = ObstacleConstraint(scene, margin).slack(X)
    np.testing.assert_array_equal(swept, np.maximum(-slack, 0.0))


def test_a_state_already_inside_the_margin_can_still_be_left() -> None:
    """The first segment starts at the measured state: it must only not come closer."""
    scene = Scene(circles=[[0.0, 0.0, 1.0]])
    X = np.zeros((2, 3, 4))
    X[0, :, 0] = [1.02, 1.2, 1.4]  # starts 2 cm out, inside the 5 cm margin; moves away
    X[1, :, 0] = [1.02, 1.01, 1.4]  # first moves closer: a violation of 1 cm beyond the start
    v = ObstacleConstraint(scene, MARGIN).violation(X, np.zeros((2, 2, 2)))
    assert v[0] == 0.0
    assert v[1] == pytest.approx(MARGIN - 0.01)  # X[1] is judged as a point too


def _one_joint_arm() -> ChainKinematics:
    """One revolute joint about z at the origin, a point 1 m out along the link's x axis."""
    return ChainKinematics(np.eye(3)[None], np.zeros((1, 3)), [2], [1], [[1.0, 0.0, 0.0]])


@pytest.mark.parametrize("swept", [True, False], ids=["swept", "swept=False"])
def test_a_robot_sphere_passing_through_an_obstacle_between_steps(swept: bool) -> None:
    # The point turns from -0.3 to 0.3 rad: its centre's straight path (the chord at
    # x = cos 0.3 = 0.955) passes 0.255 m from a ball at (0.7, 0, 0), radius 0.25,
    # while both ends are 0.39 m from it: with a 2 cm robot sphere the chord cuts in.
    kin, ball, radius = _one_joint_arm(), [[0.7, 0.0, 0.0, 0.25]], 0.02
    X = np.array([[[-0.6], [-0.3], [0.3]]])  # (K, T, nq); the arm's state is its angle
    generic = SphereConstraint(kin, ball, radius, margin=MARGIN, swept=swept)
    assert generic.distances(X)[0].min() > MARGIN
    chord = np.cos(0.3) - 0.7 - 0.25 - radius
    point, moved = kin.path_clearance(X, ball, radius)
    np.testing.assert_allclose(point, generic.distances(X), atol=1e-12)
    np.testing.assert_allclose(moved, generic.swept_distances(X), atol=1e-12)
    assert moved[0, 1] == pytest.approx(chord, abs=1e-12)
    v = generic.violation(X, np.zeros((1, 2, 1)))
    if swept:
        assert v[0] == pytest.approx(MARGIN - chord, abs=1e-12)
    else:
        assert v[0] == 0.0


@pytest.mark.parametrize("steps", [1, 2, 16])
@pytest.mark.parametrize("swept", [True, False])
def test_clearance_violation_is_max_of_zero_and_minus_the_slack(steps: int, swept: bool) -> None:
    """Protects: the one-pass kernel gives ``max(0, -clearance_slack)`` to the bit, NaN
    (unjudgeable) included, the first segment held to the measured state's distance."""
    from cost.constraints import clearance_slack, clearance_violation

    rng = np.random.default_rng(steps)
    K, margin = 40, 0.05
    points = rng.uniform(-0.1, 0.4, (K, steps + 1))
    segments = rng.uniform(-0.1, 0.4, (K, steps)) if swept else None
    points[0, 0] = 0.01  # measured inside the margin: the first segment keeps 0.01
    points[1, -1] = np.nan
    points[2, 0] = np.nan
    if segments is not None:
        segments[3, -1] = np.nan
        segments[4, 0] = -np.inf
    points[5, 1:] = np.inf
    expected = np.maximum(-clearance_slack(margin, points, segments), 0.0)
    got = clearance_violation(margin, points, segments)
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(got[1]) and (np.isnan(got[2]) == swept)
    assert np.all(got[np.isfinite(expected)] >= 0.0)


@pytest.mark.parametrize("steps", [1, 5, 16, 128, 129])
def test_clearance_proximity_is_numpys_squared_gap_sum_to_the_bit(steps: int) -> None:
    """Protects: the one-pass kernel of the soft clearance cost (the Panda's
    ``SphereProximity``) gives NumPy's numbers, its summation order included; NaN stays
    NaN, the measured state (column 0) is not charged. 129 steps: NumPy's own path."""
    from cost.constraints import clearance_proximity

    rng = np.random.default_rng(steps)
    K, margin = 64, 0.1
    points = rng.uniform(-0.3, 0.3, (K, steps + 1)) * 10.0 ** rng.integers(-6, 1, (K, steps + 1))
    points[0, 0] = -5.0  # column 0 deep inside: not charged
    points[1, -1] = np.nan
    points[2, 1:] = np.inf  # far away: 0
    points[3, 1:] = margin  # on the margin: 0
    expected = (np.maximum(margin - points[:, 1:], 0.0) ** 2).sum(axis=1)
    got = clearance_proximity(margin, points)
    assert np.array_equal(got, expected, equal_nan=True)
    finite = ~np.isnan(got)
    assert np.array_equal(got[finite].view(np.int64), expected[finite].view(np.int64))
    assert np.isnan(got[1]) and got[2] == 0.0 and got[3] == 0.0 and (got > 0.0).sum() > K // 2
    row0 = (np.maximum(margin - points[0, 1:], 0.0) ** 2).sum()
    assert got[0] == row0  # the -5.0 in column 0 left out


@pytest.mark.parametrize("K", [1, 37, LANES, 2 * LANES + 9])
def test_batch_scene_kernels_give_each_positions_and_segments_own_distance(K: int) -> None:
    """Protects: the lane-major batch kernels (every obstacle kind, the pruning as a select,
    spare lanes of the last group) give each position ``scene_distance`` and each segment
    ``scene_segment_distance`` to the bit, including touching, crossing and zero-length
    segments and positions inside obstacles; an empty scene gives +inf."""
    rng = np.random.default_rng(K)
    circles = np.array([[0.4, 0.1, 0.3], [-0.6, 0.5, 0.2]])
    boxes = np.array([[0.0, -0.7, 0.4, 0.2], [0.9, 0.8, 0.1, 0.3]])
    capsules = np.array([[-1.0, -1.0, -0.2, -0.4, 0.1], [0.5, 0.6, 0.5, 0.6, 0.2]])  # one a disc
    X = rng.uniform(-1.3, 1.3, (K, 9, 4))
    X[:, 3] = X[:, 2]  # zero-length segments
    X[0, 5, :2] = [0.0, -0.5]  # the top edge of the first box, touched
    X[0, 6, :2] = [0.0, -0.9]  # ... and the segment on to its bottom edge, crossing it
    X[-1, 7, 1] = np.nan  # a diverged sample: NaN where the per-segment functions give it
    ix, iy = 0, 1
    points, swept = np.empty((K, 9)), np.empty((K, 8))
    trajectory_distances(X, ix, iy, circles, boxes, capsules, points)
    swept_trajectory_distances(X, ix, iy, circles, boxes, capsules, swept)
    want_points = [
        [scene_distance(X[k, t, 0], X[k, t, 1], circles, boxes, capsules) for t in range(9)]
        for k in range(K)
    ]
    want_swept = [
        [
            scene_segment_distance(*X[k, t, :2], *X[k, t + 1, :2], circles, boxes, capsules)
            for t in range(8)
        ]
        for k in range(K)
    ]
    np.testing.assert_array_equal(points, want_points)  # NaN where NaN
    np.testing.assert_array_equal(swept, want_swept)
    assert np.any(points < 0.0) and np.any(swept < 0.0) and np.any(swept > 0.0)
    # the diverged state and both its segments are unknown, not clear
    assert np.isnan(points[-1, 7]) and np.isnan(swept[-1, 6:]).all()
    assert np.isfinite(points[-1, :7]).all() and np.isfinite(swept[-1, :6]).all()
    empty3, empty4, empty5 = np.zeros((0, 3)), np.zeros((0, 4)), np.zeros((0, 5))
    swept_trajectory_distances(X, ix, iy, empty3, empty4, empty5, swept)
    trajectory_distances(X, ix, iy, empty3, empty4, empty5, points)
    known_points, known_swept = np.isfinite(X[:, :, 1]), np.isfinite(X[:, :, 1]).copy()
    known_swept = known_swept[:, 1:] & known_swept[:, :-1]
    assert np.all(np.isinf(points[known_points])) and np.all(np.isnan(points[~known_points]))
    assert np.all(np.isinf(swept[known_swept])) and np.all(np.isnan(swept[~known_swept]))


def test_a_diverged_state_is_never_clear_of_the_obstacles() -> None:
    """Protects: a NaN or infinite position has no distance (NaN), so the obstacle
    constraint cannot call its trajectory safe; the minimum over obstacles alone dropped
    the NaN distances and gave +inf, a violation of 0 (a defect until 2026-12-04)."""
    scene = Scene(circles=[[0.4, 0.1, 0.3]], boxes=[[0.0, -0.7, 0.4, 0.2]])
    X = np.zeros((3, 4, 4))
    X[:, :, 0] = np.linspace(-1.0, -0.5, 4)
    X[1, 2, 1] = np.nan
    X[2, 3, 0] = np.inf
    for swept in (True, False):
        v = ObstacleConstraint(scene, margin=0.1, swept=swept).violation(X, np.zeros((3, 3, 2)))
        assert v[0] == 0.0 and np.isnan(v[1]) and np.isnan(v[2]), (swept, v)
        # the soft cost (also the fused kernel's running form) is NaN there too: no free row
        c = ObstacleProximity(scene, margin=0.6, swept=swept)(X, np.zeros((3, 3, 2)))
        assert c[0] > 0.0 and np.isnan(c[1]) and np.isnan(c[2]), (swept, c)
