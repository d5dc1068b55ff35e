"""A planner on a worker thread and a plant on the same MuJoCo instance take turns.

The guard's deadline runs the planner on a worker thread while the main
thread steps the plant; when both use one ``PinocchioDynamics`` or
``MujocoDynamics`` (the Panda task does), their shared work buffers must not
be written by both at once. Each call here is compared with the same call
made alone. Without the backend's lock this fails (``mujoco.rollout`` releases
the GIL, and the other thread resizes the buffers under it). PinocchioDynamics
takes the same lock, but no test here could fail without it today:
``abaInParallel`` holds the GIL, so its calls never overlap.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

ROUNDS = 30


def _hammer(model: Any, x0: np.ndarray, nu: int) -> None:
    rng = np.random.default_rng(0)
    batch = 0.1 * rng.standard_normal((64, 12, nu))
    single = 0.1 * rng.standard_normal((1, 1, nu))
    expected_batch = model.rollout(x0, batch).copy()
    expected_single = model.rollout(x0, single).copy()
    errors: list[str] = []

    def calls(U: np.ndarray, expected: np.ndarray, rounds: int) -> None:
        try:
            for _ in range(rounds):
                if not np.array_equal(model.rollout(x0, U), expected):
                    errors.append(f"wrong states for K={U.shape[0]}")
        except Exception as err:  # a torn buffer shows up as a shape error
            errors.append(f"K={U.shape[0]}: {err!r}")

    threads = [
        threading.Thread(target=calls, args=(batch, expected_batch, ROUNDS)),  # the planner
        threading.Thread(target=calls, args=(single, expected_single, 10 * ROUNDS)),  # plant
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"concurrent calls gave wrong results: {sorted(set(errors))}"


def test_mujoco_rollouts_from_two_threads() -> None:
    pytest.importorskip("mujoco", reason="needs `pip install mujoco`")
    from dynamics.mujoco_model import MujocoDynamics

    xml = """<mujoco><worldbody><body><joint name="h" type="hinge" axis="0 1 0"/>
      <geom type="capsule" fromto="0 0 0 0 0 -1" size="0.05" mass="1"/></body></worldbody>
      <actuator><motor joint="h"/></actuator></mujoco>"""
    model = MujocoDynamics(xml, frame_skip=2, num_threads=2)
    _hammer(model, np.array([0.3, 0.0]), model.nu)
