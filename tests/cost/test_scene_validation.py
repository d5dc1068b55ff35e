"""``Scene.position_dims``: checked when built and against the states' size before any kernel
reads ``x[ix], x[iy]`` unchecked (an index past the state read neighbouring memory)."""

from __future__ import annotations

import numpy as np
import pytest

from cost import ObstacleConstraint, ObstacleProximity, Scene
from tests.conftest import run_python_snippet

CIRCLE = [[0.0, 0.0, 0.5]]


@pytest.mark.parametrize(
    "dims", [(0, 0), (-1, 1), (0, 1.0), (True, 1), (0,), (0, 1, 2), "xy", None]
)
def test_bad_position_dims_are_refused_when_built(dims: object) -> None:
    with pytest.raises(ValueError, match="position_dims must be two distinct integers >= 0"):
        Scene(circles=CIRCLE, position_dims=dims)  # type: ignore[arg-type]


def test_numpy_integers_are_accepted_and_stored_as_ints() -> None:
    scene = Scene(circles=CIRCLE, position_dims=(np.int64(2), np.int32(0)))
    assert scene.position_dims == (2, 0)
    assert all(type(i) is int for i in scene.position_dims)


@pytest.mark.parametrize(
    "evaluate",
    [
        lambda scene, X: scene.distances(X),
        lambda scene, X: ObstacleProximity(scene)(X, np.zeros((X.shape[0], 1, 1))),
        lambda scene, X: ObstacleConstraint(scene).violation(X, np.zeros((X.shape[0], 1, 1))),
        lambda scene, X: ObstacleProximity(scene).stage_form(X.shape[2], 1),
    ],
    ids=["distances", "proximity", "constraint", "stage_form"],
)
def test_position_dims_past_the_state_are_a_clear_error(evaluate) -> None:
    X = np.zeros((3, 2, 4))
    scene = Scene(circles=CIRCLE, position_dims=(2, 4))  # nx = 4: index 4 is past the end
    with pytest.raises(ValueError, match=r"outside the state of size nx=4.*each < 4"):
        evaluate(scene, X)
    ok = Scene(circles=CIRCLE, position_dims=(2, 3))
    evaluate(ok, X)  # the last entries are fine


def test_symbolic_distances_check_the_state_size_too() -> None:
    ca = pytest.importorskip("casadi")
    from cost.symbolic import obstacle_distances

    with pytest.raises(ValueError, match="outside the state of size nx=2"):
        obstacle_distances(Scene(circles=CIRCLE, position_dims=(0, 2)), ca.SX.sym("x", 2))


_HUGE_INDEX = """
import numpy as np
from cost import Scene
try:
    Scene(circles=[[0.0, 0.0, 0.5]], position_dims=(0, 10**9)).distances(np.zeros((2, 3, 4)))
except ValueError as err:
    print("ValueError", err)
"""


def test_a_huge_index_is_an_error_not_a_crash() -> None:
    # In a subprocess: on the old code this read far past the array (SIGSEGV).
    done = run_python_snippet(_HUGE_INDEX)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ValueError Scene.position_dims=(0, 1000000000)")


def test_the_swept_distances_check_the_state_size_too() -> None:
    scene = Scene(circles=CIRCLE, position_dims=(0, 5))
    with pytest.raises(ValueError, match="point outside the state of size nx=4"):
        scene.swept_distances(np.zeros((2, 3, 4)))
