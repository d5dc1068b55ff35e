"""The bridge's watchdog: how long since the last good message, against a stated timeout.

Both sides keep one. The controller's is fed by each fresh, valid state from the
configured robot; past its timeout the guard stops the robot (``BridgeController``).
The robot side's is fed by each valid action; past its timeout the robot brakes and
holds on its own (``RobotClient.command``), whatever the controller is doing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from imle_mpc.core.validation import require_positive


class Watchdog:
    """Time since the last ``feed``, against ``timeout`` seconds.

    Args:
        timeout: seconds without a ``feed`` after which ``expired`` is True.
        clock: seconds, monotonic (``time.monotonic`` by default).

    Before the first ``feed`` the watchdog is expired: nothing good has arrived yet.
    """

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        require_positive("Watchdog", "timeout (seconds)", timeout)
        self.timeout = float(timeout)
        self.clock = clock
        self.last_feed: float | None = None
        self.expiries = 0  # times it went from fed to expired
        self._was_expired = True

    def feed(self, now: float | None = None) -> None:
        """Something good arrived (at ``now``, the clock's time by default)."""
        self.last_feed = self.clock() if now is None else now
        self._was_expired = False

    def age(self, now: float | None = None) -> float:
        """Seconds since the last ``feed`` (inf before the first)."""
        if self.last_feed is None:
            return math.inf
        return (self.clock() if now is None else now) - self.last_feed

    def expired(self, now: float | None = None) -> bool:
        """Whether more than ``timeout`` seconds passed since the last ``feed``."""
        expired = self.age(now) > self.timeout
        if expired and not self._was_expired:
            self.expiries += 1
        self._was_expired = expired
        return expired
