"""The controller as its own process: states in, guarded actions out, at a fixed rate.

The robot sends its state at its fixed rate; the controller ticks on each state message
of the configured robot as it arrives (at most one tick per half ``period``), and on its
own timer when none has come for ``TIMER_PERIODS`` periods. Ticking on the robot's
messages keeps one action per robot step, in step with it: on two free-running clocks
of the same period the robot now and then takes two actions in one step or none, and
each such slip at full force is a 0.2 m/s error in a stop planned on a prediction
(measured on ``nav_one_obstacle``: 0.06-0.18 m/s left after the guard's stop with a
free-running timer, none in step). It also makes the round trip the plan time plus the
link, without waiting for a timer's phase.

Each tick takes the newest fresh state that arrived since the last one, plans on it
behind the safety guard, and sends the action to that robot, and to nobody else. A
tick without a fresh state hands the guard no measurement (NaN): the guard's
stale-state policy (``planners.safety.guard``) then predicts the state from the last
one for ``stale_steps`` ticks and past that stops the robot (``GuardConfig.stale_stop``:
a brake, then the held neutral action). So the watchdog is the guard's: no state, or
only stale ones, for longer than ``state_timeout`` seconds -> the guard's safe stop,
sent ``stale_steps + 1`` ticks after the last fresh state: within ``state_timeout +
period`` while stale states keep coming, within ``TIMER_PERIODS`` times that when
nothing does.

A state is *stale* when it is not newer than the last one of its session (a repeat,
or out of order), or when it arrived later after it was stamped than the quickest
state of its session did by more than ``state_timeout`` (a backlog, a stalled link;
the two clocks need not agree, only their difference must stay put).

Which robot: states must name ``ControllerConfig.robot``. The first session that
does is the robot; another session (a restarted robot) takes over only once the
current one has been silent longer than ``state_timeout`` (the planner and the guard
are then reset). Everything else is refused, logged and counted, and the loop goes
on: malformed frames, messages of another schema version (answered with an
``error`` message, so the peer can say why), states for another robot, a second
live session. With CURVE keys a peer with the wrong key does not get that far
(``transport``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from imle_mpc.bridge.refusals import Refusals
from imle_mpc.bridge.schema import (
    BridgeMessageError,
    ErrorMessage,
    SchemaMismatchError,
    StateMessage,
    action_message,
    decode,
    encode,
)
from imle_mpc.bridge.transport import ControllerSocket
from imle_mpc.bridge.watchdog import Watchdog
from imle_mpc.core.protocols import Planner
from imle_mpc.core.validation import FloatArray, require_positive
from imle_mpc.core.wrapper import PlannerWrapper
from imle_mpc.eval.factory import build_guarded, make_planner
from imle_mpc.tasks.base import Task
from planners.safety.guard import SafetyGuard

LOG = logging.getLogger("imle_mpc.bridge")
TIMER_PERIODS = 1.5
"""Periods without a state message after which the controller ticks on its own timer."""


@dataclass(frozen=True)
class ControllerConfig:
    """How the controller runs.

    Attributes:
        robot: the configured robot's name; states naming another are refused and
            actions go only to the session that sends this name.
        period: the robot's seconds per step (by default the task's ``dt``): the
            controller ticks on each state, and on its own after ``TIMER_PERIODS`` of them.
        state_timeout: seconds without a fresh, valid state after which the guard
            stops the robot (also the age past which a state counts as stale).
        duration: seconds to run (None: until ``stop`` says so).
    """

    robot: str = "robot"
    period: float = 0.1
    state_timeout: float = 0.3
    duration: float | None = None

    def __post_init__(self) -> None:
        require_positive("ControllerConfig", "period (seconds)", self.period)
        require_positive("ControllerConfig", "state_timeout (seconds)", self.state_timeout)
        if self.duration is not None:
            require_positive("ControllerConfig", "duration (seconds)", self.duration)
        if not self.robot:
            raise ValueError("ControllerConfig.robot is empty: name the robot to serve.")

    @property
    def stale_steps(self) -> int:
        """Ticks the guard bridges without a state (its ``stale_timeout``), then it stops."""
        return math.floor(self.state_timeout / self.period + 1e-9)


def guarded_planner(
    task: Task,
    config: ControllerConfig,
    planner: str = "mppi",
    seed: int = 0,
    num_samples: int | None = None,
    generator: Any = None,
    offset_free: bool = True,
) -> Planner:
    """``planner`` (one of ``imle_mpc.eval.factory.PLANNERS``) for ``task``, guarded as
    the bridge needs: the guard's stale timeout is ``config.stale_steps``; with the
    action-offset estimate (``OffsetFree``) around the guard unless ``offset_free`` is
    False, as in ``run`` and ``eval``."""
    inner = make_planner(planner, task, seed=seed, num_samples=num_samples, generator=generator)
    return build_guarded(
        task, inner, True, offset_free=offset_free, stale_timeout=config.stale_steps
    )


def _guard_of(planner: Planner) -> SafetyGuard | None:
    while not isinstance(planner, SafetyGuard):
        if not isinstance(planner, PlannerWrapper):
            return None
        planner = planner.planner
    return planner


@dataclass
class _Robot:
    """The session being served and what the controller knows of it."""

    peer: bytes
    session: str
    last_seq: int = 0
    min_delay: float = math.inf  # receipt minus stamp, the quickest seen


@dataclass
class _Counts:
    ticks: int = 0
    planned: int = 0
    fresh: int = 0
    stale_ticks: int = 0
    stop_ticks: int = 0
    safe_stops: int = 0
    sent: int = 0
    undelivered: int = 0
    overruns: int = 0
    timer_ticks: int = 0
    sessions: int = 0
    plan_ms: list[float] = field(default_factory=list)


class BridgeController:
    """Serves one robot over a ``ControllerSocket`` with a guarded planner.

    Args:
        planner: a ``SafetyGuard`` (or a wrapper around one, e.g. ``OffsetFree``) whose
            ``config.stale_timeout`` is ``config.stale_steps``; ``guarded_planner``
            builds one.
        nx: the state size; a state of another size is refused.
        nu: the action size.
        socket: the bound socket.
        config: robot name, period, state timeout, duration.
        trace: a file to write one JSON line per tick to (None: none).
        clock: seconds, monotonic.

    Raises:
        ValueError: the planner is not guarded, or its guard's stale timeout differs.
    """

    def __init__(
        self,
        planner: Planner,
        nx: int,
        nu: int,
        socket: ControllerSocket,
        config: ControllerConfig = ControllerConfig(),
        trace: str | Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        guard = _guard_of(planner)
        if guard is None:
            raise ValueError(
                "the bridge controller needs a guarded planner (SafetyGuard): its stale-state "
                "policy is the controller's watchdog. Build one with guarded_planner(...)."
            )
        if guard.config.stale_timeout != config.stale_steps:
            raise ValueError(
                f"the guard bridges {guard.config.stale_timeout} step(s) without a state, the "
                f"controller's state_timeout {config.state_timeout} s at a period of "
                f"{config.period} s is {config.stale_steps}: build the planner with "
                "guarded_planner(task, config)."
            )
        self.planner = planner
        self.nx, self.nu = nx, nu
        self.socket = socket
        self.config = config
        self.clock = clock
        self.watchdog = Watchdog(config.state_timeout, clock)
        self.robot: _Robot | None = None
        self.counts = _Counts()
        self.refusals = Refusals()
        self._fresh: StateMessage | None = None
        self._heard = False  # a state message of the served robot since the last tick
        self._stale_run = 0  # consecutive ticks without a fresh state (the guard's count)
        self._trace: IO[str] | None = open(trace, "a", buffering=1) if trace else None  # noqa: SIM115

    # -- receiving ------------------------------------------------------------------------

    def receive(self) -> None:
        """Take every waiting frame: keep the newest fresh state, refuse the rest."""
        for peer, parts in self.socket.receive_all():
            now = self.clock()
            if len(parts) != 1:
                self.refusals.refuse("malformed", f"a message of {len(parts)} parts, expected 1")
                continue
            try:
                message = decode(parts[0])
            except SchemaMismatchError as err:
                self.refusals.refuse("schema", str(err))
                self.socket.send(peer, encode(ErrorMessage(str(err))))
                continue
            except BridgeMessageError as err:
                self.refusals.refuse("malformed", str(err))
                continue
            if isinstance(message, ErrorMessage):
                self.refusals.refuse("peer error", f"the peer says: {message.reason}")
            elif not isinstance(message, StateMessage):
                self.refusals.refuse(
                    "malformed", f"a robot sends states, not {message.kind} messages"
                )
            else:
                self._take_state(peer, message, now)

    def _take_state(self, peer: bytes, message: StateMessage, now: float) -> None:
        cfg = self.config
        if message.robot != cfg.robot:
            self.refusals.refuse(
                "other robot", f"a state for robot {message.robot!r}, not {cfg.robot!r}"
            )
            return
        if len(message.x) != self.nx:
            self.refusals.refuse(
                "size", f"a state of {len(message.x)} numbers, the task's has {self.nx}"
            )
            return
        robot = self.robot
        if robot is None or robot.session != message.session or robot.peer != peer:
            if robot is not None and not self.watchdog.expired(now):
                self.refusals.refuse(
                    "second session",
                    f"session {message.session!r} claims robot {cfg.robot!r} while session "
                    f"{robot.session!r} is live",
                )
                return
            LOG.warning(
                "robot %r: session %r connected%s",
                cfg.robot,
                message.session,
                "" if robot is None else f" (replacing {robot.session!r}, silent)",
            )
            robot = self.robot = _Robot(peer, message.session)
            self.counts.sessions += 1
            self.planner.reset()
            self._stale_run = 0
        self._heard = True  # the robot is stepping: a tick is due, fresh state or not
        delay = now - message.t
        if message.seq <= robot.last_seq:
            self.refusals.refuse("stale", f"state {message.seq} after {robot.last_seq} (a repeat)")
            return
        robot.last_seq = message.seq
        robot.min_delay = min(robot.min_delay, delay)
        if delay - robot.min_delay > cfg.state_timeout:
            late = delay - robot.min_delay
            self.refusals.refuse("stale", f"state {message.seq} arrived {late:.3f} s late")
            return
        self.watchdog.feed(now)
        self._fresh = message

    # -- one tick -------------------------------------------------------------------------

    def tick(self) -> None:
        """Plan on the fresh state (or none), send the action to the robot."""
        counts = self.counts
        counts.ticks += 1
        if self.robot is None:
            return  # nobody to serve yet
        fresh, self._fresh = self._fresh, None
        counts.timer_ticks += not self._heard
        self._heard = False
        if fresh is not None:
            x: FloatArray = fresh.state
            self._stale_run = 0
            counts.fresh += 1
        else:
            x = np.full(self.nx, np.nan)  # the guard's stale-state policy takes over
            self._stale_run += 1
            counts.stale_ticks += 1
        stopping = self._stale_run > self.config.stale_steps
        if stopping:
            counts.stop_ticks += 1
            if self._stale_run == self.config.stale_steps + 1:
                counts.safe_stops += 1
                LOG.warning(
                    "watchdog: no fresh state from robot %r for %.3f s (timeout %.3f s): "
                    "the guard stops it",
                    self.config.robot,
                    self.watchdog.age(),
                    self.config.state_timeout,
                )
        t0 = self.clock()
        result = self.planner.plan(x)
        now = self.clock()
        counts.planned += 1
        counts.plan_ms.append((now - t0) * 1e3)
        counts.overruns += now - t0 > self.config.period
        message = action_message(
            self.config.robot,
            counts.ticks,
            now,
            0 if fresh is None else fresh.seq,
            0.0 if fresh is None else fresh.t,
            stopping,
            result.action,
        )
        if self.socket.send(self.robot.peer, encode(message)):
            counts.sent += 1
        else:
            counts.undelivered += 1
        if self._trace is not None:
            line = {
                "t": now, "tick": counts.ticks, "fresh": fresh is not None,
                "state_seq": message.state_seq, "stale_ticks": self._stale_run,
                "stop": stopping, "u": list(message.u), "fallback": result.fallback or "",
                "session": self.robot.session,
            }  # fmt: skip
            self._trace.write(json.dumps(line) + "\n")

    def run(
        self, stop: Callable[[], bool] | None = None, ready: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """Tick until ``config.duration`` is over or ``stop()`` is True.

        A tick is due on a state message of the served robot (at least half a period
        after the last tick) or ``TIMER_PERIODS`` periods after the last tick; between
        ticks the controller waits on the socket. A plan longer than the period is
        counted (``overruns``).

        Returns:
            ``summary()``.
        """
        period = self.config.period
        start = last = self.clock()
        if ready is not None:
            ready()
        try:
            while stop is None or not stop():
                now = self.clock()
                if self.config.duration is not None and now - start >= self.config.duration:
                    break
                early = last + period / 2
                due = last + TIMER_PERIODS * period
                if not ((self._heard and now >= early) or now >= due):
                    until = early if self._heard else due
                    if self.socket.poll(until - now):
                        self.receive()
                    continue
                last = now
                self.receive()
                self.tick()
        except KeyboardInterrupt:
            pass
        return self.summary()

    def summary(self) -> dict[str, Any]:
        """The run's figures (plain JSON data)."""
        c, cfg = self.counts, self.config
        ms = np.asarray(c.plan_ms) if c.plan_ms else np.full(1, np.nan)
        return {
            "role": "controller", "robot": cfg.robot, "address": self.socket.address,
            "curve": self.socket.curve, "period_s": cfg.period,
            "state_timeout_s": cfg.state_timeout, "stale_steps": cfg.stale_steps,
            "ticks": c.ticks, "planned": c.planned, "fresh_states": c.fresh,
            "stale_ticks": c.stale_ticks, "stop_ticks": c.stop_ticks,
            "safe_stops": c.safe_stops, "actions_sent": c.sent,
            "actions_undelivered": c.undelivered, "overruns": c.overruns,
            "timer_ticks": c.timer_ticks,
            "sessions": c.sessions, "refused": dict(self.refusals.counts),
            "refused_peers": self.socket.refused_peers,
            "plan_ms_p50": float(np.nanpercentile(ms, 50)) if c.plan_ms else None,
            "plan_ms_p99": float(np.nanpercentile(ms, 99)) if c.plan_ms else None,
        }  # fmt: skip

    def close(self) -> None:
        """Close the trace file (the socket is the caller's)."""
        if self._trace is not None:
            self._trace.close()
            self._trace = None
