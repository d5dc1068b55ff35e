"""Offset-free MPC: estimate how the plant's actuators differ from the model's, and undo it.

A model that is wrong by a constant (a link heavier than in the URDF, a motor
weaker than its data sheet) makes every MPC settle short of its goal: the
plan is right for the model, and the plant does something else, every step.
Re-planning does not fix it, because each new plan is right for the same wrong
model. The standard cure is to estimate the error from what the plant did and
plan with it.

Here the error is modelled as an action offset: the plant behaves like the
model driven by ``u + b``. Each step, after the command ``u`` took the plant
from ``x`` to the measured ``x'``, one batched model call gives the residual
``x' - f(x, u + b)`` and the action Jacobian; a damped least-squares step moves
``b`` toward explaining the residual (an exponential filter of gain
``gain``, so measurement noise averages out). A disturbance that enters through
the actuators (gravity of a heavier link, a drag or mass error of a thrusted
body) is fully explained this way; the rest is absorbed as well as an action
offset can.

``OffsetFree`` wraps any planner (the guard included): the planner plans
"effective" actions for the nominal model, and the command sent to the robot
is the effective action minus the estimate. Put it outside the guard, so that
the guard's checks on the nominal model describe what the plant will do.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from imle_mpc.core.actions import DelayLine, neutral_action
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import Dynamics, Planner
from imle_mpc.core.threads import PLANNING_THREADS, ThreadPolicy, under_thread_policy
from imle_mpc.core.validation import (
    FloatArray,
    require_int_at_least,
    require_positive,
    valid_measurement,
)
from imle_mpc.core.wrapper import PlannerWrapper


class ActionOffsetEstimator:
    """Filtered least-squares estimate of ``b`` in ``plant(x, u) ~ model(x, u + b)``.

    Args:
        dynamics: the planner's (nominal) model.
        gain: filter gain in (0, 1]: the share of each step's least-squares
            correction that is applied (1: trust every measurement fully).
        max_offset: bound on ``|b|`` per action entry; default half the actuator
            range (or 1 where the range is unbounded). Keeps a bad measurement
            from commanding the robot around.
        damping: Tikhonov damping of the least-squares step (relative to the
            Jacobian's scale), for directions the state barely reveals.
    """

    def __init__(
        self,
        dynamics: Dynamics,
        gain: float = 0.3,
        max_offset: FloatArray | float | None = None,
        damping: float = 1e-3,
    ) -> None:
        if not 0.0 < gain <= 1.0:
            raise ValueError(f"ActionOffsetEstimator.gain must be in (0, 1], got {gain}.")
        require_positive("ActionOffsetEstimator", "damping", damping)
        self.dynamics = dynamics
        self.gain = float(gain)
        self.damping = float(damping)
        low = np.asarray(dynamics.action_low, dtype=np.float64)
        high = np.asarray(dynamics.action_high, dtype=np.float64)
        span = np.where(np.isfinite(high - low), (high - low) / 2.0, 1.0)
        bound = span if max_offset is None else np.broadcast_to(max_offset, span.shape)
        self.max_offset = np.asarray(bound, dtype=np.float64).copy()
        # Finite-difference steps: a thousandth of the span, the same units as the action.
        self._eps = np.maximum(1e-3 * span, 1e-6)
        self.offset = np.zeros(dynamics.nu)

    def reset(self) -> None:
        self.offset[:] = 0.0

    def update(self, state: FloatArray, command: FloatArray, next_state: FloatArray) -> FloatArray:
        """Account for one measured transition ``state --command--> next_state``.

        Returns:
            The updated offset ``b``, Shape=(nu,). A non-finite measurement is ignored.
        """
        x = np.asarray(state, dtype=np.float64)
        x_next = np.asarray(next_state, dtype=np.float64)
        u = np.asarray(command, dtype=np.float64) + self.offset
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(x_next)) and np.all(np.isfinite(u))):
            return self.offset
        nu = u.shape[0]
        # One model call: row 0 the current explanation, rows 1..nu a nudge of each action.
        U = np.repeat(u[None, None, :], nu + 1, axis=0)
        U[1:, 0] += np.diag(self._eps)
        predicted = self.dynamics.rollout(x, U)[:, 1]
        residual = x_next - predicted[0]
        J = ((predicted[1:] - predicted[0]) / self._eps[:, None]).T  # (nx, nu)
        scale = max(float(np.max(np.abs(J))), 1e-12)
        lhs = J.T @ J + (self.damping * scale) ** 2 * np.eye(nu)
        step = np.linalg.solve(lhs, J.T @ residual)
        if np.all(np.isfinite(step)):
            self.offset = np.clip(self.offset + self.gain * step, -self.max_offset, self.max_offset)
        return self.offset


class OffsetFree(PlannerWrapper):
    """A planner whose commands undo the estimated action offset (see the module docstring).

    Args:
        planner: plans effective actions for the nominal model (e.g. a ``SafetyGuard``).
        dynamics: that nominal model.
        gain: for the ``ActionOffsetEstimator``.
        max_offset: for the ``ActionOffsetEstimator``.
        action_delay: steps a command takes to reach the actuators (the same
            delay the guard compensates): the transition measured now was
            driven by the command sent that many steps before the last one.

    ``thread_policy``: the threads a step may use (``imle_mpc.core.threads``).
    """

    thread_policy: ThreadPolicy = PLANNING_THREADS

    def __init__(
        self,
        planner: Planner,
        dynamics: Dynamics,
        gain: float = 0.3,
        max_offset: FloatArray | float | None = None,
        action_delay: int = 0,
    ) -> None:
        require_int_at_least("OffsetFree", "action_delay", action_delay, 0)
        super().__init__(planner)
        self.estimator = ActionOffsetEstimator(dynamics, gain, max_offset)
        self.action_delay = int(action_delay)
        self._low = np.asarray(dynamics.action_low, dtype=np.float64)
        self._high = np.asarray(dynamics.action_high, dtype=np.float64)
        self._previous_state: FloatArray | None = None
        # The commands on their way; what came out of it last drove the last transition.
        self._delay = DelayLine(self.action_delay, neutral_action(dynamics))
        self._applied = self._delay.fill

    @property
    def offset(self) -> FloatArray:
        """The current estimate ``b`` (a copy), Shape=(nu,)."""
        return self.estimator.offset.copy()

    def reset(self, seed: int | None = None) -> None:
        """Reset the planner, zero the estimate and forget the sent commands."""
        super().reset(seed)
        self.estimator.reset()
        self._previous_state = None
        self._delay.reset()
        self._applied = self._delay.fill

    @under_thread_policy
    def plan(self, state: FloatArray) -> PlanResult:
        """Update the estimate from the last transition; plan; return offset-free commands."""
        x = valid_measurement(state, self.estimator.dynamics.nx)
        if x is not None and self._previous_state is not None:
            # The command that acted over the last step was sent action_delay steps earlier.
            self.estimator.update(self._previous_state, self._applied, x)
        # A lost measurement goes on to the planner as it came (the guard handles it);
        # the transition across it is unknown, so the next one is not learnt from.
        result = self.planner.plan(state if x is None else x)
        commands = np.clip(result.actions - self.estimator.offset, self._low, self._high)
        self._applied = self._delay.push(commands[0])
        self._previous_state = x
        return replace(result, actions=commands)
