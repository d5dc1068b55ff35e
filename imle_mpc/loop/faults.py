"""Fault injection for guarded rollouts in simulation.

Six kinds of fault, each off by default, each seeded, each recorded:

* ``observation_noise``: Gaussian noise on every measured state entry (std per entry);
* ``action_delay``: actions reach the plant this many control steps late
  (the neutral action plays until the first one arrives);
* ``model_mismatch``: plant parameters scaled against the planner's model,
  e.g. ``{"mass": 1.2}`` (an ``AnalyticModel`` field name -> factor);
* pushes: with ``push_probability`` per step, a velocity impulse of size
  ``push_magnitude`` in a random direction over the ``push_dims`` entries;
* ``drop_probability``: a planning step is dropped (its plan arrives too late);
  the planner raises ``PlanningTimeoutError`` and the guard (or the unguarded loop)
  plays the previous plan's next action;
* sensor dropouts: with ``dropout_probability`` per step, the measurement is lost
  (all NaN) for the next ``dropout_steps`` reads; the guard's stale-state policy
  (``GuardConfig.stale_timeout``) then bridges or stops.

``FaultyRobot`` wraps a plant (``Plant``: a ``DynamicsEnv``, or a Gymnasium MuJoCo
environment through ``MujocoEnvPlant``) and applies the plant-side faults;
``DroppedPlanning`` wraps a planner. ``FaultConfig.scaled(f)`` scales
every magnitude by ``f``, for the violation-rate-vs-magnitude curve.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imle_mpc.core.actions import DelayLine, neutral_action
from imle_mpc.core.errors import PlanningTimeoutError
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import Dynamics, Planner, ScalableParameters
from imle_mpc.core.validation import FloatArray, require_int_at_least
from imle_mpc.core.wrapper import PlannerWrapper
from imle_mpc.loop.plant import Plant

FAULT_KINDS = ("noise", "delay", "mismatch", "push", "drop", "dropout")
"""Names for ``FaultConfig.only`` and the CLI's ``--faults`` list."""


def _probability(owner: str, name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{owner}.{name} must be a probability in [0, 1], got {value!r}.")


@dataclass(frozen=True)
class FaultConfig:
    """Fault magnitudes (all off by default). See the module docstring.

    Attributes:
        observation_noise: std of the noise per state entry, scalar or Shape=(nx,).
        action_delay: control steps between a command and its effect (>= 0).
        model_mismatch: plant parameter -> factor, applied to the plant's model.
        push_probability: chance per step of a push.
        push_magnitude: size of a push (norm of the impulse over ``push_dims``).
        push_dims: state entries a push changes (velocities).
        drop_probability: chance per step that the plan is dropped.
        dropout_probability: chance per step that a sensor outage starts.
        dropout_steps: how many reads an outage lasts (>= 1 when outages are on).
    """

    observation_noise: float | tuple[float, ...] = 0.0
    action_delay: int = 0
    model_mismatch: Mapping[str, float] = field(default_factory=dict)
    push_probability: float = 0.0
    push_magnitude: float = 0.0
    push_dims: tuple[int, ...] = ()
    drop_probability: float = 0.0
    dropout_probability: float = 0.0
    dropout_steps: int = 0

    def __post_init__(self) -> None:
        noise = np.atleast_1d(np.asarray(self.observation_noise, dtype=np.float64))
        if np.any(noise < 0) or not np.all(np.isfinite(noise)):
            raise ValueError(f"FaultConfig.observation_noise must be finite and >= 0, got {noise}.")
        require_int_at_least("FaultConfig", "action_delay", self.action_delay, 0)
        for name, factor in self.model_mismatch.items():
            if not (np.isfinite(factor) and factor > 0):
                raise ValueError(
                    f"FaultConfig.model_mismatch[{name!r}] must be a factor > 0, got {factor!r}."
                )
        _probability("FaultConfig", "push_probability", self.push_probability)
        _probability("FaultConfig", "drop_probability", self.drop_probability)
        _probability("FaultConfig", "dropout_probability", self.dropout_probability)
        require_int_at_least("FaultConfig", "dropout_steps", self.dropout_steps, 0)
        if self.dropout_probability > 0 and self.dropout_steps == 0:
            raise ValueError(
                "FaultConfig.dropout_steps must be >= 1 when dropout_probability > 0: "
                "say how many reads a sensor outage lasts."
            )
        if self.push_magnitude < 0:
            raise ValueError(f"FaultConfig.push_magnitude must be >= 0, got {self.push_magnitude}.")
        if self.push_probability > 0 and self.push_magnitude > 0 and not self.push_dims:
            raise ValueError("FaultConfig.push_dims must name the state entries a push changes.")
        object.__setattr__(self, "model_mismatch", dict(self.model_mismatch))

    @property
    def active(self) -> tuple[str, ...]:
        """The kinds (``FAULT_KINDS``) switched on."""
        on = {
            "noise": bool(np.any(np.asarray(self.observation_noise) > 0)),
            "delay": self.action_delay > 0,
            "mismatch": any(f != 1.0 for f in self.model_mismatch.values()),
            "push": self.push_probability > 0 and self.push_magnitude > 0,
            "drop": self.drop_probability > 0,
            "dropout": self.dropout_probability > 0 and self.dropout_steps > 0,
        }
        return tuple(k for k in FAULT_KINDS if on[k])

    def only(self, kinds: str | tuple[str, ...]) -> FaultConfig:
        """This config with every kind not in ``kinds`` switched off."""
        keep = (kinds,) if isinstance(kinds, str) else tuple(kinds)
        unknown = [k for k in keep if k not in FAULT_KINDS]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; choose from {FAULT_KINDS}.")
        return FaultConfig(
            observation_noise=self.observation_noise if "noise" in keep else 0.0,
            action_delay=self.action_delay if "delay" in keep else 0,
            model_mismatch=self.model_mismatch if "mismatch" in keep else {},
            push_probability=self.push_probability if "push" in keep else 0.0,
            push_magnitude=self.push_magnitude if "push" in keep else 0.0,
            push_dims=self.push_dims,
            drop_probability=self.drop_probability if "drop" in keep else 0.0,
            dropout_probability=self.dropout_probability if "dropout" in keep else 0.0,
            dropout_steps=self.dropout_steps,
        )

    def scaled(self, factor: float) -> FaultConfig:
        """Every magnitude times ``factor``: noise, delay (rounded), mismatch's
        deviation from 1, push size, and the three probabilities (capped at 1); an
        outage's length stays as it is."""
        if not factor >= 0:
            raise ValueError(f"scale factor must be >= 0, got {factor!r}.")
        noise = np.asarray(self.observation_noise, dtype=np.float64) * factor
        return FaultConfig(
            observation_noise=float(noise) if noise.ndim == 0 else tuple(noise.tolist()),
            action_delay=round(self.action_delay * factor),
            model_mismatch={
                k: max(1.0 + (f - 1.0) * factor, 0.05) for k, f in self.model_mismatch.items()
            },
            push_probability=min(self.push_probability * factor, 1.0),
            push_magnitude=self.push_magnitude * factor,
            push_dims=self.push_dims,
            drop_probability=min(self.drop_probability * factor, 1.0),
            dropout_probability=min(self.dropout_probability * factor, 1.0),
            dropout_steps=self.dropout_steps,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for records and JSON."""
        out = dataclasses.asdict(self)
        noise = np.asarray(self.observation_noise)
        out["observation_noise"] = float(noise) if noise.ndim == 0 else noise.tolist()
        out["push_dims"] = list(self.push_dims)
        return out


def mismatched_model(model: Dynamics, mismatch: Mapping[str, float]) -> Dynamics:
    """A copy of ``model`` with the named parameters scaled (the plant's model).

    A ``ScalableParameters`` model copies itself (``MujocoDynamics``:
    ``body_mass:block``); a dataclass model gets its named fields scaled.
    """
    if not mismatch:
        return model
    if isinstance(model, ScalableParameters):
        return model.with_scaled_parameters(mismatch)
    if not dataclasses.is_dataclass(model):
        raise TypeError(
            f"model mismatch needs a dataclass model (an AnalyticModel) or one with "
            f"with_scaled_parameters (ScalableParameters, e.g. MujocoDynamics) to copy with "
            f"scaled parameters; {type(model).__name__} is neither."
        )
    names = {f.name for f in dataclasses.fields(model)}
    unknown = sorted(set(mismatch) - names)
    if unknown:
        raise ValueError(
            f"model_mismatch names {unknown}, which {type(model).__name__} does not have; "
            f"its parameters are {sorted(names)}."
        )
    changes = {k: getattr(model, k) * f for k, f in mismatch.items()}
    return dataclasses.replace(model, **changes)


@dataclass
class FaultLog:
    """What the faults did in one episode (stored in the episode record's ``info``)."""

    true_states: list[FloatArray] = field(default_factory=list)
    pushes: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    dropouts: list[int] = field(default_factory=list)  # steps whose measurement was lost

    def to_dict(self) -> dict[str, Any]:
        return {
            "pushes": list(self.pushes),
            "dropped_plans": list(self.dropped),
            "sensor_dropouts": list(self.dropouts),
        }


class FaultyRobot:
    """A simulated plant with noisy sensing, delayed actuation, random pushes and sensor outages.

    Args:
        env: the plant (its model may already be mismatched, see ``mismatched_model``).

    Attributes:
        done: the plant ended the episode (terminated or truncated).
        terminated: the plant ended it as a failure (Gymnasium's ``terminated``).
        config: the fault magnitudes.
        rng: the faults' own generator (seeded per episode).
        seed: seed for ``env.reset``.
        log: where to record true states and events (a fresh one by default).
    """

    def __init__(
        self,
        env: Plant,
        config: FaultConfig,
        rng: np.random.Generator,
        seed: int | None = None,
        log: FaultLog | None = None,
    ) -> None:
        self.env = env
        self.config = config
        self.rng = rng
        self.log = log if log is not None else FaultLog()
        env.reset(seed=seed)
        nx = env.dynamics.nx
        self._noise = np.broadcast_to(np.asarray(config.observation_noise, dtype=np.float64), (nx,))
        self._delay = DelayLine(config.action_delay, neutral_action(env.dynamics))
        self._step = 0
        self._outage_left = 0  # reads still lost in the current sensor outage
        self.log.true_states.append(env.state)
        self.done = False
        self.terminated = False

    def read_state(self) -> FloatArray:
        """The measured state: the true one plus noise, all NaN during a sensor outage."""
        true = self.env.state
        config = self.config
        starts = self._outage_left == 0 and config.dropout_probability > 0
        if starts and self.rng.random() < config.dropout_probability:
            self._outage_left = config.dropout_steps
        if self._outage_left > 0:
            self._outage_left -= 1
            self.log.dropouts.append(self._step)
            return np.full_like(true, np.nan)
        if not np.any(self._noise > 0):
            return true
        return np.asarray(true + self.rng.normal(size=true.shape) * self._noise)

    def send_action(self, action: FloatArray) -> None:
        _, _, terminated, truncated, _ = self.env.step(self._delay.push(action))
        config = self.config
        if config.push_probability > 0 and self.rng.random() < config.push_probability:
            direction = self.rng.normal(size=len(config.push_dims))
            direction /= max(float(np.linalg.norm(direction)), 1e-12)
            delta = np.zeros(self.env.dynamics.nx)
            delta[list(config.push_dims)] = config.push_magnitude * direction
            self.env.apply_impulse(delta)
            self.log.pushes.append(self._step)
        self.log.true_states.append(self.env.state)
        self.terminated = bool(terminated)
        self.done = bool(terminated or truncated)
        self._step += 1


class DroppedPlanning(PlannerWrapper):
    """A planner whose steps are dropped at random: ``plan`` raises ``PlanningTimeoutError``.

    A dropped step does not run the planner at all (its result never arrives).
    """

    def __init__(
        self, planner: Planner, probability: float, rng: np.random.Generator, log: FaultLog
    ) -> None:
        _probability("DroppedPlanning", "probability", probability)
        super().__init__(planner)
        self.probability = probability
        self.rng = rng
        self.log = log
        self._step = 0

    def reset(self, seed: int | None = None) -> None:
        """Reset the planner and the step count."""
        super().reset(seed)
        self._step = 0

    def plan(self, state: FloatArray) -> PlanResult:
        """The planner's plan, or ``PlanningTimeoutError`` on a dropped step."""
        step = self._step
        self._step += 1
        if self.probability > 0 and self.rng.random() < self.probability:
            self.log.dropped.append(step)
            raise PlanningTimeoutError(f"planning step {step} dropped (fault injection)")
        return super().plan(state)
