"""Spline knots: a plan of H steps written as M knot values per action (M <= H).

Per-step Gaussian noise makes jerky commands; sampling M knots and interpolating them
makes smooth ones with fewer numbers to search (judo, Hydrax and MuJoCo MPC do the
same). Every interpolation here is linear in the knot values, so one basis matrix
``B`` Shape=(H, M) expands any of them: ``U = clip(B @ Z)``, in the planners' fused
kernel too (``imle_mpc.core.kernels.sampling.expand_knots_row``).

Knot times, in steps (step ``t`` is the action applied at ``t = 0 .. H-1``):

* ``"zero"`` (zero-order hold): knot ``m`` at ``m * H / M``; step ``t`` takes the last
  knot at or before it, so each knot holds ``H / M`` steps (1 knot: a constant plan).
* ``"linear"``: knots at ``linspace(0, H - 1, M)``, straight lines between them.
* ``"cubic"``: the same times; the *natural* cubic spline through them (C2, second
  derivative 0 at both ends; not Catmull-Rom or Akima, whose support is local), i.e.
  ``scipy.interpolate.CubicSpline(times, Z, bc_type="natural")`` at the integer steps.
  It may overshoot the knots; the expansion clips to the actuator box.

The warm start shifts in time by re-fitting: the expanded plan is shifted per step
(the last action held), then the knots are its least-squares fit (``fit``), so a
spline plan moves along the time axis instead of having its knots re-indexed (which
would shift it by ``H / M`` steps per executed step).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from imle_mpc.core.kernels.sampling import expand_knots, expand_knots_row
from imle_mpc.core.validation import FloatArray

Interpolation = Literal["zero", "linear", "cubic"]
"""How knots become per-step actions: zero-order hold, linear, natural cubic spline."""
INTERPOLATIONS: tuple[Interpolation, ...] = ("zero", "linear", "cubic")


def check_knots(owner: str, knots: int | None, interpolation: str, horizon: int) -> None:
    """Raise a ``ValueError`` naming the fix when ``knots`` / ``interpolation`` are unusable.

    Args:
        owner: the config's name, for the message.
        knots: M, or None (one value per step).
        interpolation: one of ``INTERPOLATIONS``.
        horizon: H.
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"{owner}.interpolation must be one of {list(INTERPOLATIONS)}, got {interpolation!r}."
        )
    if knots is None:
        return
    minimum = 1 if interpolation == "zero" else 2
    if isinstance(knots, bool) or not isinstance(knots, int | np.integer) or knots < minimum:
        raise ValueError(
            f"{owner}.knots must be None (one action per step) or an integer >= {minimum} for "
            f"interpolation={interpolation!r}, got {knots!r}"
            + ("; a line or a spline needs two knots, or use 'zero'." if minimum == 2 else ".")
        )
    if knots > horizon:
        raise ValueError(
            f"{owner}.knots={knots} must be <= horizon={horizon} (more knots than steps "
            "cannot be fitted); lower knots, or set knots=None for one action per step."
        )


def knot_times(num_knots: int, horizon: int, interpolation: Interpolation) -> FloatArray:
    """The knots' times in steps, Shape=(M,) (see the module docstring)."""
    if interpolation == "zero":
        return np.arange(num_knots, dtype=np.float64) * (horizon / num_knots)
    return np.linspace(0.0, horizon - 1.0, num_knots, dtype=np.float64)


def _natural_second_derivatives(times: FloatArray) -> FloatArray:
    """D Shape=(M, M): the natural spline's second derivatives at the knots are ``D @ y``."""
    M = times.size
    D = np.zeros((M, M))
    if M < 3:
        return D  # two knots: the natural spline is the line through them
    h = np.diff(times)
    # Rows i = 1..M-2 of the tridiagonal system; m_0 = m_{M-1} = 0.
    A = np.zeros((M - 2, M - 2))
    R = np.zeros((M - 2, M))
    for r, i in enumerate(range(1, M - 1)):
        A[r, r] = (h[i - 1] + h[i]) / 3.0
        if r > 0:
            A[r, r - 1] = h[i - 1] / 6.0
        if r < M - 3:
            A[r, r + 1] = h[i] / 6.0
        R[r, i - 1] = 1.0 / h[i - 1]
        R[r, i] = -1.0 / h[i - 1] - 1.0 / h[i]
        R[r, i + 1] = 1.0 / h[i]
    D[1:-1] = np.linalg.solve(A, R)
    return D


def knot_basis(num_knots: int, horizon: int, interpolation: Interpolation) -> FloatArray:
    """The expansion matrix B Shape=(H, M): step ``t``'s action is ``B[t] @ Z``.

    ``M == H`` gives the identity for every kind (the knots are the steps).
    """
    M, H = num_knots, horizon
    B = np.zeros((H, M))
    steps = np.arange(H)
    if interpolation == "zero":
        B[steps, (steps * M) // H] = 1.0  # integer arithmetic: no rounding at a knot time
        return B
    times = knot_times(M, H, interpolation)
    seg = np.minimum(np.searchsorted(times, steps, side="right") - 1, M - 2)
    h = times[seg + 1] - times[seg]
    b = (steps - times[seg]) / h  # 0 at knot seg, 1 at knot seg + 1
    a = 1.0 - b
    B[steps, seg] += a
    B[steps, seg + 1] += b
    if interpolation == "cubic":
        D = _natural_second_derivatives(times)
        B += ((a**3 - a) * h**2 / 6.0)[:, None] * D[seg] + ((b**3 - b) * h**2 / 6.0)[:, None] * D[
            seg + 1
        ]
    return B


class KnotSchedule:
    """M knots per action expanded to H steps: the sampling planners' control parameterization.

    Args:
        num_knots: M (>= 1 for ``"zero"``, >= 2 otherwise; <= H).
        horizon: H.
        interpolation: ``"zero"``, ``"linear"`` or ``"cubic"`` (natural spline).

    Attributes:
        times: knot times in steps, Shape=(M,).
        basis: B, Shape=(H, M), C-contiguous (what the kernels read).
    """

    def __init__(self, num_knots: int, horizon: int, interpolation: Interpolation) -> None:
        check_knots("KnotSchedule", num_knots, interpolation, horizon)
        self.num_knots = int(num_knots)
        self.horizon = int(horizon)
        self.interpolation = interpolation
        self.times = knot_times(self.num_knots, self.horizon, interpolation)
        self.basis = np.ascontiguousarray(knot_basis(self.num_knots, self.horizon, interpolation))
        self._least_squares = np.linalg.pinv(self.basis)  # Shape=(M, H); B has full rank

    @classmethod
    def from_config(cls, knots: int | None, horizon: int, interpolation: Interpolation) -> (
        KnotSchedule | None
    ):  # fmt: skip
        """The schedule a config asks for; None for one action per step (``knots`` None or H,
        where every kind is the identity: the planner then runs exactly as without knots)."""
        if knots is None or knots == horizon:
            return None
        return cls(knots, horizon, interpolation)

    def expand(self, Z: FloatArray, low: FloatArray, high: FloatArray, out: FloatArray) -> (
        FloatArray
    ):  # fmt: skip
        """A batch's per-step actions, clipped: Z Shape=(K, M, nu) -> out Shape=(K, H, nu)."""
        expand_knots(Z, self.basis, low, high, out)
        return out

    def expand_plan(self, z: FloatArray, low: FloatArray, high: FloatArray, out: FloatArray) -> (
        FloatArray
    ):  # fmt: skip
        """One plan's per-step actions: z Shape=(M, nu) -> out Shape=(H, nu), clipped.

        The same arithmetic as the kernels' rows, so a selected sample expands to the
        very actions that were scored.
        """
        expand_knots_row(z, self.basis, low, high, out)
        return out

    def fit(self, plan: FloatArray, out: FloatArray) -> FloatArray:
        """The knots whose expansion is closest to ``plan`` Shape=(H, nu) in least squares.

        Exact for a plan that is an unclipped expansion; for a shifted one it is the
        best spline on this knot grid (the warm start's re-fit). out Shape=(M, nu).
        """
        np.matmul(self._least_squares, plan, out=out)
        return out
