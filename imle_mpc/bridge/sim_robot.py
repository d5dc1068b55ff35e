"""A simulated robot on the bridge: a task's plant driven through ``RobotClient``.

Each tick (``SimRobotConfig.period``; the plant advances one control step of the
task's model per tick) it applies the newest valid action, steps the plant and sends
the new state. Without a valid action within ``action_timeout`` (the controller died,
hung, or the link broke) it brakes on its own: the task's stopping law
(``planners.safety.guard.StoppingBrake`` on the task's model and ``velocity_dims``,
the guard's brake), which brings the speed to zero and then holds it there; a task
without velocity entries holds the neutral action. It is what a real driver does with
``RobotClient.command() is None``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from imle_mpc.bridge.robot_client import RobotClient
from imle_mpc.core.actions import neutral_action
from imle_mpc.core.validation import FloatArray, check_state, require_positive
from imle_mpc.eval.episodes import make_plant, violation_per_step
from imle_mpc.loop.faults import FaultConfig
from imle_mpc.tasks.base import Task
from planners.safety.guard import StoppingBrake


@dataclass(frozen=True)
class SimRobotConfig:
    """How the simulated robot runs.

    Attributes:
        period: wall-clock seconds per tick (one control step of the task's model;
            shorter than the model's ``dt`` runs the simulation faster than real time).
        duration: seconds to run (None: until ``stop`` says so).
        start: the state to start from, Shape=(nx,) (None: the task's start); a
            restarted robot resumes where it stood.
    """

    period: float = 0.1
    duration: float | None = None
    start: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        require_positive("SimRobotConfig", "period (seconds)", self.period)
        if self.duration is not None:
            require_positive("SimRobotConfig", "duration (seconds)", self.duration)


def task_brake(task: Task) -> Callable[[FloatArray], FloatArray]:
    """The robot side's own stop for ``task``: ``brake(x Shape=(nx,)) -> u Shape=(nu,)``."""
    if task.velocity_dims:
        return StoppingBrake(task.dynamics, task.velocity_dims)
    neutral = neutral_action(task.dynamics)
    return lambda x: neutral


class SimulatedRobot:
    """``task``'s plant as a robot on the bridge (see the module docstring).

    Args:
        task: the task; its plant (``Task.plant`` or its model) is simulated.
        client: the connected ``RobotClient`` (its ``nx``/``nu`` the task's).
        config: period, duration, start.
        trace: a file to write one JSON line per tick to (None: none).
        clock: seconds, monotonic.
    """

    def __init__(
        self,
        task: Task,
        client: RobotClient,
        config: SimRobotConfig = SimRobotConfig(),
        trace: str | Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.task = task
        self.client = client
        self.config = config
        self.clock = clock
        self.plant = make_plant(task, FaultConfig())
        self.plant.reset(seed=0)
        if config.start is not None:
            start = check_state(np.asarray(config.start), task.dynamics.nx, "start")
            self.plant.apply_impulse(start - self.plant.state)  # the Plant protocol's way in
        self.brake = task_brake(task)
        self.states: list[FloatArray] = [self.plant.state]
        self.actions: list[FloatArray] = []
        self.modes: list[str] = []
        self._trace: IO[str] | None = open(trace, "a", buffering=1) if trace else None  # noqa: SIM115

    def speed(self, x: FloatArray) -> float:
        """The norm of ``x``'s velocity entries (0 for a task without them)."""
        dims = list(self.task.velocity_dims)
        return float(np.linalg.norm(x[dims])) if dims else 0.0

    def tick(self) -> None:
        """Apply the newest valid action (or brake), step the plant, send the state."""
        x = self.plant.state
        self.client.receive()
        command = self.client.command()
        if command is None:
            u, mode = self.brake(x), "brake"
        else:
            latest = self.client.latest
            u, mode = command, "stop" if latest is not None and latest.stop else "controller"
        u = np.clip(u, self.task.dynamics.action_low, self.task.dynamics.action_high)
        self.plant.step(u)
        x_next = self.plant.state
        self.client.send_state(x_next)
        self.states.append(x_next)
        self.actions.append(np.asarray(u, dtype=np.float64))
        self.modes.append(mode)
        if self._trace is not None:
            line = {
                "t": self.clock(), "step": len(self.actions), "x": x_next.tolist(),
                "u": self.actions[-1].tolist(), "mode": mode, "speed": self.speed(x_next),
                "session": self.client.session,
            }  # fmt: skip
            self._trace.write(json.dumps(line) + "\n")

    def run(
        self, stop: Callable[[], bool] | None = None, ready: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """Tick at the fixed period until ``config.duration`` is over or ``stop()`` is True.

        The first state is sent at once, so the controller can answer before the first tick.
        """
        period = self.config.period
        self.client.send_state(self.plant.state)
        start = self.clock()
        next_tick = start + period
        if ready is not None:
            ready()
        try:
            while stop is None or not stop():
                now = self.clock()
                if self.config.duration is not None and now - start >= self.config.duration:
                    break
                if now < next_tick:
                    self.client.receive(wait=next_tick - now)
                    continue
                self.tick()
                next_tick += period
                if self.clock() > next_tick:
                    next_tick = self.clock() + period
        except KeyboardInterrupt:
            pass
        return self.summary()

    def summary(self) -> dict[str, Any]:
        """The run's figures (plain JSON data)."""
        states = np.array(self.states)
        actions = np.array(self.actions).reshape(-1, self.task.dynamics.nu)
        modes = np.array(self.modes, dtype=str)
        violations = (
            violation_per_step(self.task.safety, states, actions) if len(actions) else np.zeros(0)
        )
        rtt = np.asarray(self.client.round_trips) * 1e3
        return {
            "role": "robot", "robot": self.client.robot, "session": self.client.session,
            "address": self.client.socket.address, "curve": self.client.socket.curve,
            "period_s": self.config.period, "action_timeout_s": self.client.action_timeout,
            "steps": len(actions),
            "controller_steps": int(np.count_nonzero(modes == "controller")),
            "stop_steps": int(np.count_nonzero(modes == "stop")),
            "brake_steps": int(np.count_nonzero(modes == "brake")),
            "violation_steps": int(np.count_nonzero(np.asarray(violations) > 0)),
            "final_state": states[-1].tolist(), "final_speed": self.speed(states[-1]),
            "success": bool(self.task.success(states)),
            "states_sent": self.client.states_sent, "states_dropped": self.client.states_dropped,
            "refused": dict(self.client.refusals.counts),
            "round_trip_ms_p50": float(np.percentile(rtt, 50)) if rtt.size else None,
            "round_trip_ms_p99": float(np.percentile(rtt, 99)) if rtt.size else None,
        }  # fmt: skip

    def close(self) -> None:
        """Close the trace file (the client is the caller's)."""
        if self._trace is not None:
            self._trace.close()
            self._trace = None
