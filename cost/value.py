"""A quadratic terminal value, and the LQR value that gives its matrix.

A horizon that fits the control period is often too short to see that a
balancing system is falling: every sampled plan ends while the fall has only
begun. A terminal value prices what happens after the horizon.
``QuadraticTerminalValue(P, reference)`` charges the final predicted state
``(x_H - x_ref)^T P (x_H - x_ref)``; ``lqr_value(A, B, Q, R)`` is the ``P`` of the
infinite-horizon LQR cost-to-go of a linear(ised) model, from SciPy's discrete
algebraic Riccati solver, with the reasons it can fail checked first.
``planners.terminal_value`` goes from a model and a cost to the term.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numba as nb
import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike

from imle_mpc.core.errors import InputError
from imle_mpc.core.kernels.fused import StageForm
from imle_mpc.core.validation import FloatArray


@nb.njit(inline="always")
def _quadratic_value(x, p):  # pragma: no cover - compiled
    """e^T P e with e = x[dims] - ref; p = (n, dims (n), ref (n), P row-major (n*n))."""
    n = int(p[0])
    acc = 0.0
    for i in range(n):
        ei = x[int(p[1 + i])] - p[1 + n + i]
        row = 1 + 2 * n + i * n
        s = 0.0
        for j in range(n):
            s += p[row + j] * (x[int(p[1 + j])] - p[1 + n + j])
        acc += ei * s
    return acc


@nb.njit(parallel=True, cache=True, error_model="numpy")
def _terminal_values(X, params, out):  # pragma: no cover - compiled
    K, T, _ = X.shape
    for k in nb.prange(K):
        out[k] = _quadratic_value(X[k, T - 1], params)


def _square(name: str, value: ArrayLike, n: int | None = None) -> FloatArray:
    arr = np.atleast_2d(np.asarray(value, dtype=np.float64))
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or (n is not None and arr.shape[0] != n):
        want = f"({n}, {n})" if n is not None else "(n, n)"
        raise InputError(f"{name} must be a square matrix Shape={want}, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} must be finite, got {arr}.")
    return arr


def _symmetric(name: str, M: FloatArray, definite: bool) -> FloatArray:
    """``M`` symmetrised; refused unless positive semidefinite (definite: positive definite)."""
    scale = max(1.0, float(np.abs(M).max()))
    if np.abs(M - M.T).max() > 1e-8 * scale:
        raise InputError(f"{name} must be symmetric, got {M}.")
    M = 0.5 * (M + M.T)
    low = float(np.linalg.eigvalsh(M).min()) if M.size else 0.0
    if (definite and low <= 1e-12 * scale) or low < -1e-9 * scale:
        kind = "positive definite" if definite else "positive semidefinite"
        raise InputError(
            f"{name} must be {kind}; its smallest eigenvalue is {low:.3g}. "
            + (
                "Give every action a cost (R > 0): the LQR needs it to trade effort for error."
                if definite
                else "A cost that curves down somewhere has no quadratic value there."
            )
        )
    return M


@dataclass(frozen=True)
class QuadraticTerminalValue:
    """``(x_H[dims] - reference[dims])^T P (x_H[dims] - reference[dims])`` on the final state.

    A terminal-only cost term (like ``TerminalState``): charged once, on X[:, H]. With
    ``P`` from ``lqr_value`` it is the LQR cost-to-go of the model linearised at
    ``reference``: what holding the system at the operating point costs after the
    horizon (``planners.terminal_value.lqr_terminal_value`` builds it).

    Args:
        P: the value matrix, Shape=(n, n), symmetric positive semidefinite, with
            n = ``len(dims)`` (or nx).
        reference: the operating point, a full state Shape=(nx,).
        dims: the state entries the value is over (None: all of them), e.g. the
            joints of an arm whose target is also part of the state.

    Raises:
        InputError: a shape that does not match, a ``P`` that is not symmetric
            positive semidefinite, or repeated / out-of-range ``dims``.
    """

    P: ArrayLike
    reference: ArrayLike
    dims: Sequence[int] | None = None
    _P: FloatArray = field(init=False, repr=False)
    _reference: FloatArray = field(init=False, repr=False)
    _dims: np.ndarray = field(init=False, repr=False)
    _params: FloatArray = field(init=False, repr=False)

    terminal_only = True

    def __post_init__(self) -> None:
        reference = np.asarray(self.reference, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(reference)):
            raise InputError(f"QuadraticTerminalValue.reference must be finite, got {reference}.")
        nx = reference.size
        dims = np.arange(nx) if self.dims is None else np.asarray(self.dims, dtype=np.int64)
        if dims.ndim != 1 or np.unique(dims).size != dims.size or np.any((dims < 0) | (dims >= nx)):
            raise InputError(
                f"QuadraticTerminalValue.dims must be distinct state indices in [0, {nx}), got "
                f"{self.dims!r}."
            )
        P = _symmetric(
            "QuadraticTerminalValue.P",
            _square("QuadraticTerminalValue.P", self.P, dims.size),
            False,
        )
        sub = reference[dims]
        params = np.concatenate([[float(dims.size)], dims.astype(np.float64), sub, P.ravel()])
        object.__setattr__(self, "_P", P)
        object.__setattr__(self, "_reference", reference)
        object.__setattr__(self, "_dims", dims)
        object.__setattr__(self, "_params", np.ascontiguousarray(params))

    @property
    def matrix(self) -> FloatArray:
        """The symmetrised ``P``, Shape=(n, n)."""
        return self._P.copy()

    @property
    def state_dims(self) -> tuple[int, ...]:
        """The state entries the value is over."""
        return tuple(int(i) for i in self._dims)

    @property
    def operating_point(self) -> FloatArray:
        """The reference state, Shape=(nx,)."""
        return self._reference.copy()

    def _check(self, nx: int) -> None:
        if nx != self._reference.size:
            raise ValueError(
                f"QuadraticTerminalValue.reference has {self._reference.size} entries but the "
                f"states have nx={nx}; give the operating point as a full state."
            )

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        """The value of each sample's final state, Shape=(K,), for X Shape=(K, H+1, nx)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 3:
            raise ValueError(f"QuadraticTerminalValue expects X Shape=(K, H+1, nx), got {X.shape}.")
        self._check(X.shape[2])
        out = np.empty(X.shape[0])
        _terminal_values(X, self._params, out)
        return out

    def stage_form(self, nx: int, nu: int) -> StageForm:
        """The per-step form (terminal only), for the planner's fused kernel."""
        self._check(nx)
        return StageForm(None, _quadratic_value, self._params)


def _uncontrollable(A: FloatArray, B: FloatArray, tol: float = 1e-9) -> list[complex]:
    """Eigenvalues of A on or outside the unit circle that B cannot move (the PBH test)."""
    n = A.shape[0]
    scale = max(1.0, float(np.abs(A).max()), float(np.abs(B).max()) if B.size else 0.0)
    bad = []
    for lam in np.linalg.eigvals(A):
        if abs(lam) < 1.0 - 1e-9:
            continue
        pencil = np.hstack([A - lam * np.eye(n), B])
        if np.linalg.svd(pencil, compute_uv=False)[-1] < tol * scale:
            bad.append(complex(lam))
    return bad


def lqr_value(
    A: ArrayLike, B: ArrayLike, Q: ArrayLike, R: ArrayLike, S: ArrayLike | None = None
) -> FloatArray:
    """The LQR value matrix ``P`` of ``x_{t+1} = A x_t + B u_t`` with stage cost
    ``x'Qx + u'Ru + 2 x'Su``: ``min sum_{t>=0} (...) = x_0' P x_0``.

    ``P`` solves the discrete algebraic Riccati equation
    ``P = Q + A'PA - (A'PB + S)(R + B'PB)^-1 (B'PA + S')`` (``scipy.linalg.solve_discrete_are``),
    and ``A - BK``, ``K = (R + B'PB)^-1 (B'PA + S')``, is stable.

    Args:
        A: Shape=(n, n). B: Shape=(n, m). Q: Shape=(n, n), symmetric positive
            semidefinite. R: Shape=(m, m), symmetric positive definite. S: the
            cross term, Shape=(n, m), or None.

    Returns:
        ``P`` Shape=(n, n), symmetric positive semidefinite.

    Raises:
        InputError: wrong shapes; Q or R not (semi)definite; (A, B) not stabilisable
            (a mode on or outside the unit circle that no action moves: the message
            names its eigenvalues); or no stabilising solution (a mode that neither
            decays nor costs anything: give it a cost in Q).
    """
    A = _square("A", A)
    n = A.shape[0]
    B = np.asarray(B, dtype=np.float64)
    if B.ndim == 1:
        B = B[:, None]
    if B.ndim != 2 or B.shape[0] != n or not np.all(np.isfinite(B)):
        raise InputError(f"B must be finite with Shape=({n}, m), got shape {B.shape}.")
    m = B.shape[1]
    Q = _symmetric("Q", _square("Q", Q, n), False)
    R = _symmetric("R", _square("R", R, m), True)
    S_arr = None if S is None else np.asarray(S, dtype=np.float64).reshape(n, m)
    stuck = _uncontrollable(A, B)
    if stuck:
        raise InputError(
            f"(A, B) is not stabilisable: the modes with eigenvalues {np.round(stuck, 6)} do "
            "not decay and no action moves them, so no controller holds the operating point "
            "and the LQR cost-to-go is infinite. Restrict the value to the states the actions "
            "reach (dims=...), e.g. leave out a target that is part of the state."
        )
    try:
        P = scipy.linalg.solve_discrete_are(A, B, Q, R, s=S_arr)
    except (np.linalg.LinAlgError, ValueError) as err:
        raise InputError(
            f"the Riccati equation has no stabilising solution ({err}). Usually a mode that "
            "does not decay costs nothing in Q (a free integrator): give it a weight."
        ) from None
    P = 0.5 * (P + P.T)
    cross = B.T @ P @ A + (0.0 if S_arr is None else S_arr.T)
    K = np.linalg.solve(R + B.T @ P @ B, cross)
    if np.abs(np.linalg.eigvals(A - B @ K)).max() >= 1.0:
        raise InputError(
            "the Riccati solution does not stabilise the model (a mode on the unit circle "
            "that costs nothing): give every undamped mode a weight in Q."
        )
    return P


__all__ = ["QuadraticTerminalValue", "lqr_value"]
