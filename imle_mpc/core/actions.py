"""Actions outside a plan: the neutral action, and commands on their way to the actuators."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.protocols import Dynamics
from imle_mpc.core.validation import FloatArray, require_int_at_least


def neutral_action(dynamics: Dynamics) -> FloatArray:
    """The action closest to zero inside the actuator box, Shape=(nu,), float64.

    What a robot plays before its first command and what "hold" executes.
    """
    low = np.asarray(dynamics.action_low, dtype=np.float64)
    high = np.asarray(dynamics.action_high, dtype=np.float64)
    return np.asarray(np.clip(np.zeros(dynamics.nu), low, high))


class DelayLine:
    """A fixed actuation delay: an action pushed in comes out ``steps`` pushes later.

    Until ``steps`` actions have gone in, the ``fill`` action comes out (the
    robot plays the neutral action until the first command arrives). With
    ``steps == 0`` every action comes straight out again.

    Args:
        steps: the delay in control steps (>= 0).
        fill: what is in flight at the start, Shape=(nu,).
    """

    def __init__(self, steps: int, fill: ArrayLike) -> None:
        require_int_at_least("DelayLine", "steps", steps, 0)
        self.steps = int(steps)
        self.fill = np.array(fill, dtype=np.float64)
        self._queue: list[FloatArray] = []
        self.reset()

    def reset(self) -> None:
        """Back to the start: ``steps`` copies of ``fill`` in flight."""
        self._queue = [self.fill.copy() for _ in range(self.steps)]

    @property
    def pending(self) -> FloatArray:
        """The actions in flight, oldest (next out) first, Shape=(steps, nu)."""
        return np.array(self._queue)

    def push(self, action: ArrayLike) -> FloatArray:
        """Send ``action`` Shape=(nu,) (copied); returns the one that takes effect now."""
        self._queue.append(np.asarray(action, dtype=np.float64).copy())
        return self._queue.pop(0)
