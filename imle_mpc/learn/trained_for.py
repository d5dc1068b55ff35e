"""What a generator was trained for (control period, observation, action box), and the check.

A generator proposes actions for one model: its chunks are sequences at one
control period, inside one actuator box, conditioned on one kind of
observation. ``TrainedFor`` records these from the demonstrations' metadata
into the checkpoint, and ``check`` refuses a model they do not fit, naming
both values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from imle_mpc.core.errors import InputError


@dataclass(frozen=True)
class TrainedFor:
    """The model a generator was trained for (None: not known; then not checked).

    Attributes:
        dt: seconds per step of the demonstrations.
        observation: what the observation is (``"state"``: the full state vector).
        action_low, action_high: the demonstrations' actuator box, Shape=(nu,).
        task: the task the demonstrations came from.
    """

    dt: float | None = None
    observation: str | None = None
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None
    task: str | None = None

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> TrainedFor:
        """Read a ``DemoDataset.meta`` (or a checkpoint's record of it); missing keys -> None."""

        def box(key: str) -> tuple[float, ...] | None:
            value = meta.get(key)
            return None if value is None else tuple(float(v) for v in value)

        dt = meta.get("dt")
        return cls(
            dt=None if dt is None else float(dt),
            observation=meta.get("observation"),
            action_low=box("action_low"),
            action_high=box("action_high"),
            task=meta.get("task"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dt": self.dt,
            "observation": self.observation,
            "action_low": None if self.action_low is None else list(self.action_low),
            "action_high": None if self.action_high is None else list(self.action_high),
            "task": self.task,
        }

    def check(self, dynamics: Any, obs_dim: int, where: str = "the generator") -> None:
        """Raise ``InputError`` if ``dynamics`` is not the model this was trained for.

        Args:
            dynamics: the planner's model (``dt``, ``nx``, ``action_low``, ``action_high``).
            obs_dim: the generator's observation size.
            where: how to name the generator in the message (e.g. its file).
        """
        fix = "train a generator on demonstrations of this model (imle-mpc train --data)."
        if self.dt is not None and not math.isclose(self.dt, float(dynamics.dt), rel_tol=1e-9):
            raise InputError(
                f"{where} was trained for dt={self.dt:g} s but the planner's model has "
                f"dt={float(dynamics.dt):g} s: its chunks would play at the wrong speed; {fix}"
            )
        if self.observation == "state" and obs_dim != int(dynamics.nx):
            raise InputError(
                f"{where} observes the full state (obs_dim={obs_dim}) but the planner's model "
                f"has nx={int(dynamics.nx)}; {fix}"
            )
        for name, trained, model in (
            ("action_low", self.action_low, dynamics.action_low),
            ("action_high", self.action_high, dynamics.action_high),
        ):
            if trained is None:
                continue
            have = np.asarray(model, dtype=np.float64).ravel()
            if have.shape != (len(trained),) or not np.allclose(trained, have, rtol=1e-9):
                raise InputError(
                    f"{where} was trained for {name}={list(trained)} but the planner's model "
                    f"has {name}={have.tolist()}; {fix}"
                )
