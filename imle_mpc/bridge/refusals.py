"""What the bridge refused, counted by reason and logged without flooding the log.

Both sides refuse messages (malformed, another schema, stale, a stranger's) and go on;
each refusal is counted under its reason, and logged on the ``imle_mpc.bridge`` logger
in full the first ``LOGGED_PER_REASON`` times per reason, then every 100th, so a peer
that retries or floods stays readable.
"""

from __future__ import annotations

import logging

LOG = logging.getLogger("imle_mpc.bridge")
LOGGED_PER_REASON = 5


class Refusals:
    """Counts of refused messages by reason (``counts``), logged rate-limited."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def refuse(self, reason: str, detail: str) -> None:
        """Count one refusal under ``reason``; log ``detail`` unless it is one of many."""
        n = self.counts.get(reason, 0) + 1
        self.counts[reason] = n
        if n <= LOGGED_PER_REASON or n % 100 == 0:
            LOG.warning("refused (%s, %d so far): %s", reason, n, detail)

    def total(self, reason: str) -> int:
        """Refusals under ``reason`` so far."""
        return self.counts.get(reason, 0)
