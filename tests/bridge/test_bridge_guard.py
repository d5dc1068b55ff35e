"""The controller's watchdog and its gate, against a real controller process over loopback.

The robot here is this test process: a ``RobotClient`` around the task's plant, so a test
can do what a broken robot does (freeze its sensor, stamp its states late, send garbage,
come with the wrong key) while the real `imle-mpc bridge controller` serves it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imle_mpc.bridge.robot_client import BridgeRefusedError, RobotClient
from imle_mpc.bridge.schema import encode, state_message
from imle_mpc.bridge.transport import CurveKeys, load_keys, make_keys
from imle_mpc.eval.episodes import make_plant
from imle_mpc.loop.faults import FaultConfig
from imle_mpc.tasks import load_task
from imle_mpc.tasks.navigation import NAV_MASS, NAV_MAX_FORCE

pytestmark = pytest.mark.slow
STOPPED = 1e-3
"""m/s: stopped. The guard's stop is planned on its prediction (it has no measurement)."""


class TestRobot:
    """The task's plant behind a ``RobotClient``, ticked by the test."""

    __test__ = False

    def __init__(self, task: Any, client: RobotClient, period: float) -> None:
        self.task, self.client, self.period = task, client, period
        self.plant = make_plant(task, FaultConfig())
        self.plant.reset(seed=0)
        self.speeds: list[float] = []
        self.commanded: list[bool] = []

    def speed(self) -> float:
        return float(np.linalg.norm(self.plant.state[list(self.task.velocity_dims)]))

    def run(self, ticks: int, send: Callable[[np.ndarray], None] | None = None) -> None:
        """``ticks`` ticks: apply the newest action (the neutral one without), step, send."""
        send = send or self.client.send_state
        for _ in range(ticks):
            end = time.monotonic() + self.period
            while (left := end - time.monotonic()) > 0:
                self.client.receive(wait=left)
            u = self.client.command()
            self.commanded.append(u is not None)
            self.plant.step(np.zeros(2) if u is None else u)
            self.speeds.append(self.speed())
            send(self.plant.state)

    def run_until_stopped(self, limit: int, send: Callable[[np.ndarray], Any]) -> tuple[int, int]:
        """Tick (sending with ``send``) until the robot is stopped, at most ``limit`` ticks;
        ``(served ticks, ticks)`` it took. A tick the controller's answer missed (a cold or loaded
        machine) applies no force, so the robot coasts: the stop's bound counts the
        served ticks only."""
        start = len(self.commanded)
        while len(self.commanded) - start < limit and not (
            len(self.speeds) > start and self.speeds[-1] < STOPPED
        ):
            self.run(1, send=send)
        return sum(self.commanded[start:]), len(self.commanded) - start

    def run_until_served(self, ticks: int = 3, limit: int = 100) -> int:
        """Tick until the last ``ticks`` ticks were all served (the controller's first
        plans may miss the action timeout while it warms up; the guard refuses those
        late actions); the tick count then. Fails the test after ``limit`` ticks."""
        for _ in range(limit):
            if len(self.commanded) >= ticks and all(self.commanded[-ticks:]):
                return len(self.commanded)
            self.run(1)
        raise AssertionError(f"the controller served no {ticks} ticks in a row in {limit}")


def _stop_ticks(speed: float, stale_steps: int, dt: float) -> int:
    """Ticks to a stop from ``speed``: the guard plans on its prediction for
    ``stale_steps`` ticks (at full force the speed may grow), then brakes at full force;
    two ticks of slack for the clocks of two processes on a loaded machine."""
    accel = NAV_MAX_FORCE / NAV_MASS * dt
    top = speed + (stale_steps + 1) * accel
    return stale_steps + 1 + math.ceil(top / accel) + 1 + 2


def test_frozen_or_late_states_make_the_guard_stop_the_robot(bridge: Any) -> None:
    task = load_task(bridge.TASK)
    dt = float(task.dynamics.dt)
    port = bridge.free_port()
    controller = bridge.controller(port)
    client = RobotClient(4, 2, port, action_timeout=bridge.TIMEOUT)
    robot = TestRobot(task, client, bridge.PERIOD)
    stale_steps = math.floor(bridge.TIMEOUT / bridge.PERIOD + 1e-9)
    try:
        client.send_state(robot.plant.state)
        robot.run(12)
        assert robot.speeds[-1] > 0.3, "the robot moves under the controller"
        # A frozen sensor driver: the same state message again and again (a repeat), one
        # a step as before (the controller takes a step's actions per message).
        frozen = encode(state_message("robot", client.session, client._seq, client.clock(),
                                      robot.plant.state))  # fmt: skip
        speed = robot.speed()
        bound = _stop_ticks(speed, stale_steps, dt)
        served, ticks = robot.run_until_stopped(
            3 * bound, send=lambda x: client.socket.send(frozen)
        )
        phase = f"speeds {robot.speeds[-ticks:]}, served {robot.commanded[-ticks:]}"
        assert robot.speeds[-1] < STOPPED, phase
        assert served <= bound, f"stopped after {served} served ticks, bound {bound}: {phase}"
        # most ticks answered (its stop); a cold machine's answer may miss one or two
        assert 2 * served >= ticks, f"the controller kept answering: its stop; {phase}"
        robot.run(12)  # the sensor is back: the loop resumes
        assert robot.speeds[-1] > 0.3
        # States stamped a second late (a stalled link, a backlog): stale as well.
        speed = robot.speed()
        bound = _stop_ticks(speed, stale_steps, dt)
        served, ticks = robot.run_until_stopped(
            3 * bound, send=lambda x: client.send_state(x, t=client.clock() - 1.0)
        )
        phase = f"speeds {robot.speeds[-ticks:]}, served {robot.commanded[-ticks:]}"
        assert robot.speeds[-1] < STOPPED, phase
        assert served <= bound, f"stopped after {served} served ticks, bound {bound}: {phase}"
        robot.run(10)
        assert client.latest is not None and client.latest.state_seq > 0  # planned afresh
        assert not client.latest.stop
    finally:
        client.close()
    summary = controller.stop()
    assert summary["safe_stops"] >= 2  # and one more once this robot is gone
    assert summary["refused"]["stale"] >= 2 * stale_steps
    assert "the guard stops it" in controller.log_text()


def test_wrong_keys_malformed_and_foreign_messages_are_refused_and_the_loop_goes_on(
    bridge: Any, tmp_path: Path
) -> None:
    task = load_task(bridge.TASK)
    keys, other = tmp_path / "keys", tmp_path / "other"
    make_keys(keys)
    make_keys(other)
    port = bridge.free_port()
    controller = bridge.controller(port, "--keys", str(keys))
    good = RobotClient(4, 2, port, keys=load_keys(keys, "robot"), action_timeout=bridge.TIMEOUT)
    robot = TestRobot(task, good, bridge.PERIOD)
    mine, stranger = load_keys(keys, "robot"), load_keys(other, "robot")
    # The impostor knows the controller's public key but holds another robot key.
    impostor = RobotClient(4, 2, port, keys=CurveKeys(stranger.public, stranger.secret,
                                                      mine.peer_public))  # fmt: skip
    plaintext = RobotClient(4, 2, port)  # no CURVE at all
    second = RobotClient(4, 2, port, keys=mine)  # the right key, while `good` is live
    other_name = RobotClient(4, 2, port, robot="intruder", keys=mine)
    vandal = RobotClient(4, 2, port, keys=mine)
    outsiders = (impostor, plaintext, second, other_name)
    try:
        good.send_state(robot.plant.state)
        robot.run(10)
        attack = robot.run_until_served()
        for tick in range(30):
            x = robot.plant.state
            for client in outsiders:
                client.send_state(x + 0.5)
            vandal.socket.send([b"not json", b"[1,2]", b'{"schema": "x"}'][tick % 3])
            vandal.socket.socket.send_multipart([b"two", b"parts"])
            robot.run(1)
        for client in outsiders:
            client.receive()
        # A peer of another schema version is told why.
        body = json.loads(encode(state_message("robot", vandal.session, 1, 0.0, x)))
        vandal.socket.send(json.dumps({**body, "schema": "imle_mpc.bridge/2"}).encode())
        robot.run(5)
        with pytest.raises(BridgeRefusedError, match=r"imle_mpc.bridge/2"):
            for _ in range(20):
                vandal.receive(wait=0.05)
        assert all(client.latest is None for client in outsiders), "actions only to the robot"
        assert all(robot.commanded[attack:]), "the robot was served every tick of the attack"
        assert good.latest is not None and not good.latest.stop
        assert good.latest.state_seq >= good.states_sent - 2  # planned on its newest states
        assert max(robot.speeds) > 0.3  # and it drove
    finally:
        for client in (good, vandal, *outsiders):
            client.close()
    summary = controller.stop()
    assert summary["curve"] and summary["sessions"] == 1 and summary["safe_stops"] == 0
    assert summary["refused_peers"] >= 1
    refused = summary["refused"]
    assert refused["malformed"] >= 60 and refused["schema"] == 1
    assert refused["second session"] >= 1 and refused["other robot"] >= 1
    assert "refused (wrong key, 1 so far): a peer with CURVE public key" in controller.log_text()
