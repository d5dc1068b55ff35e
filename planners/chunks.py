"""Chunk playback: execute a chunk's first actions open loop, then ask for the next chunk.

The model-free policies (``planners.imle.IMLEPolicy``, ``planners.bc.MSEPolicy``)
decide a whole chunk Shape=(H, nu) at once and play its first
``action_horizon`` actions before deciding again; ``ChunkPlayer`` is that
schedule, written once.
"""

from __future__ import annotations

import numpy as np

from imle_mpc.core.validation import FloatArray


class ChunkPlayer:
    """Plays a chunk one action per step; after ``action_horizon`` steps a new one is ``due``.

    Each plan handed out is the chunk's unexecuted rest, padded with its last
    action to the full horizon H (so every plan is Shape=(H, nu)).

    Args:
        owner: the policy's name, for the error message.
        action_horizon: steps played from each chunk, 1 <= action_horizon <= horizon.
        horizon: H, the chunk length.

    Raises:
        ValueError: ``action_horizon`` is outside [1, horizon].
    """

    def __init__(self, owner: str, action_horizon: int, horizon: int) -> None:
        if not 1 <= action_horizon <= horizon:
            raise ValueError(
                f"{owner}.action_horizon must be in [1, {horizon}], got {action_horizon}."
            )
        self.action_horizon = action_horizon
        self._chunk: FloatArray | None = None
        self._executed = 0

    @property
    def chunk(self) -> FloatArray | None:
        """The chunk being played, Shape=(H, nu), or None before the first one."""
        return self._chunk

    @property
    def executed(self) -> int:
        """Actions of the current chunk already handed out."""
        return self._executed

    @property
    def due(self) -> bool:
        """Whether a new chunk is needed before the next ``next_plan``."""
        return self._chunk is None or self._executed >= self.action_horizon

    def load(self, chunk: FloatArray) -> None:
        """Start playing ``chunk`` Shape=(H, nu) from its first action."""
        self._chunk = chunk
        self._executed = 0

    def next_plan(self) -> FloatArray:
        """The rest of the chunk from the next action on, padded to Shape=(H, nu); advances."""
        assert self._chunk is not None, "load a chunk first (ChunkPlayer.due)"
        remaining = self._chunk[self._executed :]
        # Pad with the last action so every plan has the full horizon.
        actions = np.concatenate([remaining, np.repeat(remaining[-1:], self._executed, axis=0)])
        self._executed += 1
        return actions

    def reset(self) -> None:
        """Forget the chunk: the next step needs a new one."""
        self._chunk = None
        self._executed = 0
