"""The conformance helpers accept good models and name what is wrong with bad ones."""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest

from dynamics import Pendulum, PointMass2D
from imle_mpc import StepDynamics
from imle_mpc.core.checks import ConformanceError, check_cost, check_dynamics


@nb.njit
def _integrator(x, u, p, out):
    out[0] = x[0] + p[0] * u[0]


@pytest.mark.parametrize(
    "model",
    [Pendulum(), PointMass2D(), StepDynamics(_integrator, [0.1], nx=1, nu=1, dt=0.1)],
    ids=lambda m: type(m).__name__,
)
def test_good_models_pass(model) -> None:
    assert check_dynamics(model)["ok"]


class _Leaky:
    """A numpy model that shares one buffer across samples (a classic batching bug)."""

    nx, nu, dt = 1, 1, 0.1
    action_low = np.array([-1.0])
    action_high = np.array([1.0])

    def rollout(self, x0, U, out=None):
        U = np.asarray(U)
        if U.ndim != 3 or U.shape[2] != 1:
            raise ValueError("bad shape")
        X = np.empty((U.shape[0], U.shape[1] + 1, 1))
        X[:, 0] = x0
        X[:, 1:, 0] = x0[0] + np.cumsum(U[:, :, 0], axis=1) + U[:, :, 0].mean()  # cross-talk
        return X


class _NoShapeCheck(_Leaky):
    def rollout(self, x0, U, out=None):
        U = np.atleast_3d(U)
        X = np.empty((U.shape[0], U.shape[1] + 1, 1))
        X[:, 0] = x0
        X[:, 1:, 0] = x0[0] + np.cumsum(U[:, :, 0], axis=1)
        return X


def test_cross_talk_is_caught() -> None:
    with pytest.raises(ConformanceError, match="depends on the other samples"):
        check_dynamics(_Leaky())


def test_missing_shape_check_is_caught() -> None:
    with pytest.raises(ConformanceError, match="accepted actions of shape"):
        check_dynamics(_NoShapeCheck())


def test_cost_of_wrong_shape_is_caught() -> None:
    with pytest.raises(ConformanceError, match=r"Shape=\(8,\)"):
        check_cost(lambda X, U: (U**2).sum(axis=2), nx=2, nu=1)


def test_cost_that_mutates_is_caught() -> None:
    def mutating(X, U):
        X[:] = 0.0
        return X[:, 0, 0]

    with pytest.raises(ConformanceError, match="modified its inputs"):
        check_cost(mutating, nx=2, nu=1)


def test_rollout_errors_name_the_fix() -> None:
    model = Pendulum()
    with pytest.raises(ValueError, match=r"U\[None\]"):
        model.rollout(np.zeros(2), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="NaN"):
        model.rollout(np.array([np.nan, 0.0]), np.zeros((1, 5, 1)))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        model.rollout(np.zeros(3), np.zeros((1, 5, 1)))
    with pytest.raises(TypeError, match="njit"):
        StepDynamics(lambda x, u, p, out: None, [0.0], nx=1, nu=1, dt=0.1)
