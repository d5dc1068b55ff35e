"""The robot side of the bridge: a small client any robot driver can wrap.

A driver's loop, at the robot's own rate::

    client = RobotClient(nx=4, nu=2, port=5555)
    while running:
        client.send_state(read_sensors())      # stamped with the robot's clock
        u = client.command()                   # None: no valid action in time
        drive(u if u is not None else brake())  # the robot stops on its own

``command()`` is the robot side's watchdog: it gives the newest valid action only
while one arrived within ``action_timeout`` seconds, else None, and the driver must
then hold or brake by itself (the simulated robot, ``sim_robot``, brakes with the
task's stopping law). An action is valid when it is well formed, names this robot,
has ``nu`` finite numbers, and was planned from a state this client sent less than
``action_timeout`` ago (or from none: the guard's stop). A refusal from the
controller (an ``error`` message, e.g. a schema mismatch) raises
``BridgeRefusedError`` with its reason.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from imle_mpc.bridge.refusals import Refusals
from imle_mpc.bridge.schema import (
    ActionMessage,
    BridgeMessageError,
    ErrorMessage,
    decode,
    encode,
    state_message,
)
from imle_mpc.bridge.transport import LOOPBACK, CurveKeys, RobotSocket
from imle_mpc.bridge.watchdog import Watchdog
from imle_mpc.core.errors import InputError
from imle_mpc.core.validation import FloatArray

SENT_REMEMBERED = 256
"""States whose send times are kept, to match actions to them (round trip, staleness)."""


class BridgeRefusedError(InputError):
    """The controller refused this robot's messages (its reason is the message)."""


class RobotClient:
    """Sends timestamped states to the controller and keeps its newest valid action.

    Args:
        nx: the robot's state size.
        nu: the robot's action size.
        host: the controller's address (loopback by default; another needs keys).
        port: the controller's port.
        robot: this robot's name, as the controller is configured with it.
        keys: the robot's CURVE keys (``transport.load_keys(DIR, "robot")``), or None.
        action_timeout: seconds an action stays valid; past it ``command()`` is None.
        clock: seconds, monotonic: the states' stamps.
    """

    def __init__(
        self,
        nx: int,
        nu: int,
        port: int,
        host: str = LOOPBACK,
        robot: str = "robot",
        keys: CurveKeys | None = None,
        action_timeout: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nx, self.nu, self.robot = nx, nu, robot
        self.clock = clock
        self.session = secrets.token_hex(8)
        # The session is the routing id: a reconnect of this client is the same robot.
        self.socket = RobotSocket(host, port, keys, routing_id=self.session.encode())
        self.watchdog = Watchdog(action_timeout, clock)
        self.action_timeout = float(action_timeout)
        self.latest: ActionMessage | None = None
        self.round_trips: list[float] = []  # seconds from a state's send to its action
        self.refusals = Refusals()
        self.states_sent = 0
        self.states_dropped = 0
        self._seq = 0
        self._sent: deque[tuple[int, float]] = deque(maxlen=SENT_REMEMBERED)

    def send_state(self, x: FloatArray, t: float | None = None) -> bool:
        """Send ``x`` Shape=(nx,) stamped ``t`` (the clock's time by default).

        Returns:
            False when it was dropped (no connection up, or the queue is full): a
            late state is a wrong one, the controller's watchdog handles the gap.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.nx,):
            raise ValueError(f"a state has shape ({self.nx},), got {x.shape}.")
        self._seq += 1
        stamp = self.clock() if t is None else float(t)
        sent = self.socket.send(
            encode(state_message(self.robot, self.session, self._seq, stamp, x))
        )
        if sent:
            self.states_sent += 1
            self._sent.append((self._seq, stamp))
        else:
            self.states_dropped += 1
        return sent

    def receive(self, wait: float = 0.0) -> None:
        """Take every waiting message (waiting at most ``wait`` seconds for the first).

        Raises:
            BridgeRefusedError: the controller refused this robot (e.g. a schema mismatch).
        """
        if wait > 0:
            self.socket.poll(wait)
        for parts in self.socket.receive_all():
            now = self.clock()
            if len(parts) != 1:
                self.refusals.refuse("malformed", f"a message of {len(parts)} parts, expected 1")
                continue
            try:
                message = decode(parts[0])
            except BridgeMessageError as err:
                self.refusals.refuse("malformed", str(err))
                continue
            if isinstance(message, ErrorMessage):
                raise BridgeRefusedError(
                    f"the controller refused robot {self.robot!r}: {message.reason}"
                )
            if not isinstance(message, ActionMessage):
                self.refusals.refuse("malformed", f"a controller sends actions, not {message.kind}")
                continue
            self._take_action(message, now)

    def _take_action(self, message: ActionMessage, now: float) -> None:
        if message.robot != self.robot:
            self.refusals.refuse(
                "other robot", f"an action for {message.robot!r}, not {self.robot!r}"
            )
            return
        if len(message.u) != self.nu:
            self.refusals.refuse(
                "size", f"an action of {len(message.u)} numbers, expected {self.nu}"
            )
            return
        if message.state_seq:
            sent = next((t for seq, t in self._sent if seq == message.state_seq), None)
            if sent is None or now - sent > self.action_timeout:
                self.refusals.refuse("stale", f"an action for state {message.state_seq}, too old")
                return
            self.round_trips.append(now - sent)
        self.latest = message
        self.watchdog.feed(now)

    def command(self) -> FloatArray | None:
        """The newest valid action Shape=(nu,), or None when none came in ``action_timeout``."""
        if self.latest is None or self.watchdog.expired():
            return None
        return self.latest.action

    def close(self) -> None:
        """Close the socket."""
        self.socket.close()
