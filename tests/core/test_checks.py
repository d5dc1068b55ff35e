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

    crosstalk = True

    def rollout(self, x0, U, out=None):
        U = np.asarray(U)
        if U.ndim != 3 or U.shape[2] != 1:
            raise ValueError("bad shape")
        X = np.empty((U.shape[0], U.shape[1] + 1, 1))
        X[:, 0] = x0
        X[:, 1:, 0] = x0[0] + np.cumsum(U[:, :, 0], axis=1)
        if self.crosstalk:
            X[:, 1:, 0] += U[:, :, 0].mean()  # every sample sees the batch's mean
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


class _Good(_Leaky):
    """A correct integrator: x_t = x0 + cumsum(u)."""

    crosstalk = False


class _Drifting(_Good):
    """Each call adds a little more: two rollouts of the same input differ."""

    calls = 0

    def rollout(self, x0, U, out=None):
        self.calls += 1
        X = super().rollout(x0, U)
        X[:, 1:] += 1e-9 * self.calls
        return X


class _MutatesU(_Good):
    def rollout(self, x0, U, out=None):
        X = super().rollout(x0, U)
        np.clip(U, -0.5, 0.5, out=U)  # clips in place: the caller's samples change
        return X


class _MutatesX0(_Good):
    def rollout(self, x0, U, out=None):
        X = super().rollout(x0, U)
        x0 += 1.0
        return X


class _NaNSpreads(_Good):
    """Exact with finite actions; one NaN reaches every sample (0 * NaN = NaN)."""

    def rollout(self, x0, U, out=None):
        X = super().rollout(x0, U)
        X[:, 1:] += 0.0 * np.asarray(U).sum()
        return X


class _NaNFromFinite(_Good):
    def rollout(self, x0, U, out=None):
        X = super().rollout(x0, U)
        X[0, -1, 0] = np.nan
        return X


class _WrongStart(_Good):
    def rollout(self, x0, U, out=None):
        X = super().rollout(x0, U)
        X[:, 0] = X[:, 1]
        return X


class _Float32(_Good):
    def rollout(self, x0, U, out=None):
        return super().rollout(x0, U).astype(np.float32)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (_Good(), None),  # the control: the bad ones differ from it in one place each
        (_Drifting(), "two rollouts of the same input differ"),
        (_MutatesU(), "modified its inputs"),
        (_MutatesX0(), "modified its inputs"),
        (_NaNSpreads(), "NaN action in sample 0 changed other samples"),
        (_NaNFromFinite(), "NaN/inf from finite inputs"),
        (_WrongStart(), "X\\[:, 0\\] differs from x0"),
        (_Float32(), "dtype float32"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str | None) else "",
)
def test_each_contract_check_catches_its_bad_model(model, message) -> None:
    """The determinism, input-mutation, NaN, start-state and dtype checks each fire on a
    model broken in exactly that way (the MuJoCo and Pinocchio conformance rests on them)."""
    state = np.array([0.3])
    if message is None:
        assert check_dynamics(model, state)["ok"]
        return
    with pytest.raises(ConformanceError, match=message):
        check_dynamics(model, state)
