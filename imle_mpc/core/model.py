"""Dynamics built from a single-step ``@njit`` function.

Two ways to get a fast batched model, both sharing one rollout path:

* ``StepDynamics(step, params, ...)`` wraps any user ``@njit`` step function.
* ``AnalyticModel`` is the base for the shipped models in ``dynamics``: a frozen
  dataclass of physical parameters whose subclass names its step function.
  One rollout kernel is built per model class, not per instance, so a
  parameter sweep over masses compiles once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.kernels.rollout import make_rollout_kernel
from imle_mpc.core.protocols import MultiStartRollout, UncheckedRollout
from imle_mpc.core.validation import (
    FloatArray,
    check_actions,
    check_bounds,
    check_state,
    require_int_at_least,
    require_positive,
    states_buffer,
)


class RolloutMixin(UncheckedRollout, MultiStartRollout):
    """Shape-checked ``rollout`` and ``step`` on top of a compiled rollout kernel.

    Subclasses provide ``nx``, ``nu``, ``_kernel`` and ``params_vector()``, and a
    ``step_function`` for the fused path (``StepModel``, as ``StepDynamics`` and
    ``AnalyticModel`` do). Declares ``UncheckedRollout`` and ``MultiStartRollout``.
    """

    _kernel: Any
    _multi_start_kernel: Any

    @property
    def nx(self) -> int:
        """State size."""
        raise NotImplementedError

    @property
    def nu(self) -> int:
        """Action size."""
        raise NotImplementedError

    def params_vector(self) -> FloatArray:
        raise NotImplementedError

    def rollout(self, x0: ArrayLike, U: ArrayLike, out: FloatArray | None = None) -> FloatArray:
        """Simulate each action sequence from ``x0``.

        Args:
            x0: initial state, Shape=(nx,).
            U: action sequences, Shape=(K, H, nu). Not clipped here: clip to the
                actuator bounds before calling if the actuator saturates.
            out: optional preallocated result, Shape=(K, H+1, nx).

        Returns:
            States, Shape=(K, H+1, nx).
        """
        x0 = check_state(x0, self.nx, "x0")
        U = check_actions(U, self.nu)
        K, H, _ = U.shape
        out = states_buffer(out, (K, H + 1, self.nx))
        self._kernel(x0, U, self.params_vector(), out)
        return out

    def rollout_from_states(
        self, X0: ArrayLike, U: ArrayLike, out: FloatArray | None = None
    ) -> FloatArray:
        """Simulate action sequence ``k`` from its own start ``X0[k]``.

        Args:
            X0: initial states, Shape=(K, nx). A NaN row gives a NaN rollout
                (nothing is raised: a diverged candidate stays diverged).
            U: action sequences, Shape=(K, H, nu).
            out: optional preallocated result, Shape=(K, H+1, nx).

        Returns:
            States, Shape=(K, H+1, nx), with ``X[:, 0] == X0``.
        """
        U = check_actions(U, self.nu)
        K, H, _ = U.shape
        starts = np.ascontiguousarray(X0, dtype=np.float64)
        if starts.shape != (K, self.nx):
            raise ValueError(
                f"X0 must have Shape=(K, nx)=({K}, {self.nx}) (one start per action "
                f"sequence), got {starts.shape}."
            )
        out = states_buffer(out, (K, H + 1, self.nx))
        self._multi_start_kernel(starts, U, self.params_vector(), out)
        return out

    def rollout_unchecked(self, x0: FloatArray, U: FloatArray, out: FloatArray) -> FloatArray:
        """``rollout`` without validation, for planners that validated once up front."""
        self._kernel(x0, U, self.params_vector(), out)
        return out

    def step(self, x: ArrayLike, u: ArrayLike) -> FloatArray:
        """One step from a single state: Shape=(nx,), (nu,) -> (nx,)."""
        u_arr = np.asarray(u, dtype=np.float64).reshape(1, 1, self.nu)
        return self.rollout(x, u_arr)[0, 1].copy()

    def warmup(self) -> None:
        """Compile the rollout kernel now, so the first control step does not pay for it."""
        self.rollout(np.zeros(self.nx), np.zeros((2, 2, self.nu)))


class StepDynamics(RolloutMixin):
    """A batched model from a user's single-step ``@njit`` function.

    Example:
        >>> import numba
        >>> @numba.njit
        ... def integrator(x, u, p, out):
        ...     out[0] = x[0] + p[0] * u[0]
        >>> model = StepDynamics(integrator, params=[0.1], nx=1, nu=1, dt=0.1)
        >>> model.rollout([0.0], np.ones((4, 3, 1)))[0, -1]
        array([0.3])
    """

    def __init__(
        self,
        step: Any,
        params: ArrayLike,
        nx: int,
        nu: int,
        dt: float,
        action_low: ArrayLike = -np.inf,
        action_high: ArrayLike = np.inf,
    ) -> None:
        # Checked, not coerced: int(3.5) or dt=inf would quietly build another model.
        require_int_at_least("StepDynamics", "nx", nx, 1)
        require_int_at_least("StepDynamics", "nu", nu, 1)
        require_positive("StepDynamics", "dt (seconds per step)", dt)
        self._nx = int(nx)
        self._nu = int(nu)
        self.dt = float(dt)
        self._params = np.ascontiguousarray(np.atleast_1d(np.asarray(params, dtype=np.float64)))
        lo, hi = check_bounds("action bounds", action_low, action_high, self.nu)
        self.action_low, self.action_high = lo, hi
        self.step_function = step
        self._kernel = make_rollout_kernel(step)
        self._multi_start_kernel = make_rollout_kernel(step, multi_start=True)

    @property
    def nx(self) -> int:
        return self._nx

    @property
    def nu(self) -> int:
        return self._nu

    def params_vector(self) -> FloatArray:
        return self._params


@dataclass(frozen=True)
class AnalyticModel(RolloutMixin):
    """Base of the shipped analytic models: a frozen dataclass of parameters.

    A subclass sets ``nx``, ``nu``, ``step_function`` (an ``@njit``
    ``step(x, u, params, out)``), declares a ``dt`` field, and implements
    ``params_vector`` and the action bounds. Its fields are plain data: copy with
    ``dataclasses.replace(model, mass=2.0)`` to get a mismatched plant.
    """

    nx: ClassVar[int]
    nu: ClassVar[int]
    step_function: ClassVar[Any]
    lane_step_function: ClassVar[Any] = None
    """Optional ``@njit lane_step(X (nx, L), U (nu, L), params, out (nx, L))``: the step
    for a block of L samples, lane last, each lane's arithmetic in ``step_function``'s
    order. The planners' fused kernel then runs packed (``core.kernels.lanes``)."""
    state_names: ClassVar[tuple[str, ...]] = ()
    action_names: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step_function")
        if step is not None:
            # staticmethod: a numba dispatcher would otherwise bind as a method, so
            # ``model.step_function`` is the plain @njit function (planners fuse it).
            step = step.__func__ if isinstance(step, staticmethod) else step
            cls.step_function = staticmethod(step)
            # A new step with no lane step of its own must not inherit its parent's.
            lanes = cls.__dict__.get("lane_step_function")
            lanes = lanes.__func__ if isinstance(lanes, staticmethod) else lanes
            cls.lane_step_function = None if lanes is None else staticmethod(lanes)
            cls._kernel = staticmethod(make_rollout_kernel(step))
            cls._multi_start_kernel = staticmethod(make_rollout_kernel(step, multi_start=True))

    @property
    def action_low(self) -> FloatArray:
        raise NotImplementedError

    @property
    def action_high(self) -> FloatArray:
        raise NotImplementedError
