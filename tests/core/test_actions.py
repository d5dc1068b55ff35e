"""The neutral action and the delay line shared by the plant, the guard and offset-free MPC."""

from __future__ import annotations

import numpy as np
import pytest

from dynamics import PointMass2D
from imle_mpc.core.actions import DelayLine, neutral_action
from imle_mpc.core.model import StepDynamics


def test_neutral_action_is_zero_clipped_into_the_box() -> None:
    np.testing.assert_array_equal(neutral_action(PointMass2D(max_force=2.0)), [0.0, 0.0])
    lifted = StepDynamics(
        PointMass2D.step_function, [1.0, 0.5, 0.1], nx=4, nu=2, dt=0.1,
        action_low=[0.5, -1.0], action_high=[1.0, -0.25],
    )  # fmt: skip
    neutral = neutral_action(lifted)
    assert neutral.dtype == np.float64
    np.testing.assert_array_equal(neutral, [0.5, -0.25])


@pytest.mark.parametrize("steps", [0, 1, 3])
def test_delay_line_delays_by_whole_steps(steps: int) -> None:
    line = DelayLine(steps, [-1.0])
    sent = [np.array([float(i)]) for i in range(6)]
    out = [line.push(a) for a in sent]
    expected = [[-1.0]] * steps + [a.tolist() for a in sent[: len(sent) - steps]]
    assert [o.tolist() for o in out] == expected
    assert line.pending.shape[0] == steps
    sent[-1][0] = 99.0  # pushed actions are copies
    assert 99.0 not in line.pending
    line.reset()
    assert [p.tolist() for p in line.pending] == [[-1.0]] * steps


def test_delay_line_rejects_a_negative_delay() -> None:
    with pytest.raises(ValueError, match="steps"):
        DelayLine(-1, [0.0])
