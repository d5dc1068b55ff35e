"""ChunkPlayer: the open-loop chunk schedule of the model-free policies."""

from __future__ import annotations

import numpy as np
import pytest

from planners.chunks import ChunkPlayer


def test_plays_action_horizon_steps_padded_to_the_horizon() -> None:
    player = ChunkPlayer("Policy", action_horizon=2, horizon=4)
    assert player.due and player.chunk is None
    chunk = np.arange(4.0)[:, None]
    player.load(chunk)
    np.testing.assert_array_equal(player.next_plan()[:, 0], [0, 1, 2, 3])
    assert not player.due and player.executed == 1
    np.testing.assert_array_equal(player.next_plan()[:, 0], [1, 2, 3, 3])
    assert player.due and player.chunk is chunk
    player.reset()
    assert player.due and player.chunk is None and player.executed == 0


def test_action_horizon_outside_the_chunk_names_the_owner() -> None:
    with pytest.raises(ValueError, match=r"MSEPolicy.action_horizon must be in \[1, 4\], got 5"):
        ChunkPlayer("MSEPolicy", 5, 4)
    with pytest.raises(ValueError, match="got 0"):
        ChunkPlayer("IMLEPolicy", 0, 4)
