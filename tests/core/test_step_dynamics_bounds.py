"""``StepDynamics`` refuses NaN action bounds at construction (a NaN bound clips every
action to NaN, silently)."""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest

from imle_mpc.core.model import StepDynamics


@nb.njit
def _integrator(x, u, p, out):  # pragma: no cover - compiled
    out[0] = x[0] + p[0] * u[0]


@pytest.mark.parametrize(
    ("low", "high", "match"),
    [
        (np.nan, 1.0, "low is NaN at indices"),
        (-1.0, np.nan, "high is NaN at indices"),
        ([-1.0, np.nan], 1.0, r"high is NaN|low is NaN at indices \[1\]"),
        (np.inf, np.inf, "low must be < \\+inf"),
        (-np.inf, -np.inf, "high > -inf"),
    ],
)
def test_step_dynamics_refuses_nan_action_bounds(low, high, match) -> None:  # type: ignore[no-untyped-def]
    nu = np.size(low) if np.ndim(low) else 1
    with pytest.raises(ValueError, match=match):
        StepDynamics(_integrator, [0.1], nx=1, nu=nu, dt=0.1, action_low=low, action_high=high)


def test_unbounded_step_dynamics_still_works() -> None:
    model = StepDynamics(_integrator, [0.1], nx=1, nu=1, dt=0.1)
    np.testing.assert_array_equal(model.action_low, [-np.inf])
