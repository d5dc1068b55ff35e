"""Each side of the bridge killed and restarted, with real processes over loopback.

The controller is `imle-mpc bridge controller nav_one_obstacle` (guarded MPPI), the robot
`imle-mpc bridge robot nav_one_obstacle` (the task's plant), both at a 0.05 s period with
0.3 s timeouts. A side is killed with SIGKILL (a crash: no goodbye), and the other side
must stop the robot on its own within the stated time, without a violation, and take up
the loop again when the killed side is back.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from imle_mpc.eval.episodes import violation_per_step
from imle_mpc.tasks import load_task
from imle_mpc.tasks.navigation import NAV_MASS, NAV_MAX_FORCE

pytestmark = pytest.mark.slow
STOPPED = 1e-3
"""m/s: a speed this small is stopped (the brake reaches zero to rounding)."""


def _moving(lines: list[dict[str, Any]], steps: int) -> bool:
    return sum(line["mode"] == "controller" for line in lines) >= steps


def _brake_steps(speed: float, dt: float) -> int:
    """Control steps the brake needs from ``speed`` at full force (drag only helps)."""
    return math.ceil(speed / (NAV_MAX_FORCE / NAV_MASS * dt)) + 1


def _violations(task: Any, lines: list[dict[str, Any]]) -> int:
    states = np.array([line["x"] for line in lines])
    actions = np.array([line["u"] for line in lines[1:]])
    return int(np.count_nonzero(violation_per_step(task.safety, states, actions) > 0))


def test_controller_killed_the_robot_brakes_to_zero_and_the_loop_resumes(bridge: Any) -> None:
    task = load_task(bridge.TASK)
    dt = float(task.dynamics.dt)
    port = bridge.free_port()
    controller = bridge.controller(port)
    robot = bridge.robot(port)
    bridge.wait_until(lambda: _moving(robot.trace_lines(), 15), 20, "the robot moves")
    controller.kill()
    # The successor compiles while the robot is on its own.
    successor = bridge._start(
        "controller",
        ["controller", bridge.TASK, "--port", str(port), "--period", str(bridge.PERIOD),
         "--state-timeout", str(bridge.TIMEOUT)],
    )  # fmt: skip

    def stopped() -> bool:
        lines = robot.trace_lines()
        modes = [line["mode"] for line in lines]
        return "brake" in modes and lines[-1]["speed"] < STOPPED

    bridge.wait_until(stopped, 20, "the robot brakes to a stop on its own")
    lines = robot.trace_lines()
    modes = [line["mode"] for line in lines]
    last_action = max(i for i, m in enumerate(modes) if m == "controller")
    first_brake = modes.index("brake", last_action)
    # No action for the timeout -> the robot brakes; a tick or two of slack for a loaded
    # machine (the timeout is measured on the wall clock, the steps are ticks).
    assert first_brake - last_action <= math.ceil(bridge.TIMEOUT / bridge.PERIOD) + 2
    speed = lines[first_brake - 1]["speed"]
    assert speed > 0.3, "the robot was moving when the controller died"
    zero = next(i for i in range(first_brake, len(lines)) if lines[i]["speed"] < STOPPED)
    assert zero - first_brake + 1 <= _brake_steps(speed, dt)
    assert all(m == "brake" for m in modes[first_brake : zero + 1])

    successor.wait_for_log(r"controller ready on", 120)
    bridge.wait_until(
        lambda: robot.trace_lines()[-1]["mode"] == "controller", 10, "the loop resumes"
    )
    bridge.wait_until(
        lambda: task.success(np.array([line["x"] for line in robot.trace_lines()])),
        20, "the robot reaches the goal",
    )  # fmt: skip
    summary = robot.stop()
    assert summary["violation_steps"] == 0
    assert _violations(task, robot.trace_lines()) == 0
    assert summary["success"]


def test_robot_killed_the_guard_stops_and_a_restarted_robot_is_served(bridge: Any) -> None:
    task = load_task(bridge.TASK)
    port = bridge.free_port()
    controller = bridge.controller(port)
    robot = bridge.robot(port)
    bridge.wait_until(lambda: _moving(robot.trace_lines(), 15), 20, "the robot moves")
    robot.kill()
    last = robot.trace_lines()[-1]

    assert last["speed"] > 0.3, "the robot was moving when it died"
    brake = _brake_steps(last["speed"], float(task.dynamics.dt))

    def stopped() -> bool:
        return sum(line["stop"] for line in controller.trace_lines()) > brake

    bridge.wait_until(stopped, 10, "the controller's guard stops the lost robot")
    ticks = controller.trace_lines()
    last_fresh = max(i for i, line in enumerate(ticks) if line["fresh"])
    first_stop = next(i for i, line in enumerate(ticks) if line["stop"])
    stale_steps = math.floor(bridge.TIMEOUT / bridge.PERIOD + 1e-9)
    # The guard bridges stale_steps ticks on its prediction, then stops: exactly.
    assert first_stop - last_fresh == stale_steps + 1
    # What it sends from then on stops the robot: its commands from the last state it
    # received (state seq s is what the robot sent after step s - 1), on the task's
    # model, bring the speed to zero.
    seq = ticks[last_fresh]["state_seq"]
    x = np.array(next(line["x"] for line in robot.trace_lines() if line["step"] == seq - 1))
    for line in ticks[last_fresh:]:
        x = task.dynamics.rollout(x, np.array(line["u"])[None, None])[0, -1]
    assert np.linalg.norm(x[list(task.velocity_dims)]) < STOPPED

    # A new robot process, resumed where the old one stood, is a new session: served.
    start = ",".join(repr(v) for v in last["x"])
    restarted = bridge.robot(port, "--start", start)
    bridge.wait_until(
        lambda: _moving(restarted.trace_lines(), 5), 10, "the controller serves the new robot"
    )
    bridge.wait_until(
        lambda: task.success(np.array([line["x"] for line in restarted.trace_lines()])),
        20, "the restarted robot reaches the goal",
    )  # fmt: skip
    robot_summary = restarted.stop()
    summary = controller.stop()
    assert robot_summary["violation_steps"] == 0
    assert summary["sessions"] == 2
    assert summary["safe_stops"] >= 1
    session = restarted.trace_lines()[0]["session"]
    resumed = [line for line in controller.trace_lines() if line["session"] == session]
    assert sum(line["fresh"] and not line["stop"] for line in resumed) >= 5
