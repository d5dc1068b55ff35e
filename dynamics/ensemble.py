"""A model ensemble: the task's model with its physical parameters drawn from stated ranges.

``ModelEnsemble(ranges={"mass": (0.8, 1.2)}, members=4, seed=0)`` is the spec: each
range is a factor on the nominal model's parameter (the convention of the
model-mismatch fault, ``FaultConfig.model_mismatch``), drawn uniformly and seeded.
Member 0 is always the nominal model (every factor 1), so a one-member ensemble is
today's model exactly; members 1..M-1 are drawn.

``ensemble.build(model)`` gives the ``MemberRollout`` the sampling planner scores
with (``planners.risk``):

* an analytic model (a dataclass ``AnalyticModel``): its step function and a table
  of parameter rows, Shape=(M, P), one parallel Numba pass over all M x K rollouts
  (``imle_mpc.core.kernels.members``); no M Python model objects at rollout time;
* a model that builds its own members (``MemberModels``: ``MujocoDynamics``, whose
  members are copied ``MjModel`` s with the named arrays scaled, all M x K rollouts
  one call of its ``mujoco.rollout`` pool).

Names: an analytic model's float fields that enter its step (``mass``, ``drag``,
``link2_mass``, ``damping``, ...); MuJoCo's ``<array>:<element>`` names
(``body_mass:block``, ``geom_friction:pusher``, ``dof_damping:block``), as for the
mismatch fault. An actuation delay is not a model parameter here (it is the plant's
``action_delay`` fault, compensated by the guard), so it cannot be randomized.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from imle_mpc.core.errors import InputError
from imle_mpc.core.kernels.members import make_member_rollout_kernel
from imle_mpc.core.model import AnalyticModel
from imle_mpc.core.protocols import Dynamics, MemberModels, MemberRollout, ParameterRows
from imle_mpc.core.validation import FloatArray


@dataclass(frozen=True)
class ModelEnsemble:
    """The spec of a model ensemble (see the module docstring).

    Attributes:
        ranges: parameter name -> ``(low, high)`` factor on the nominal value,
            ``0 < low <= high``, finite; drawn uniformly per member.
        members: M, models per sample (>= 1); member 0 is the nominal.
        seed: seed of the draw (the same seed, the same members).

    Raises:
        InputError: a bad range, M < 1, or M > 1 with no ranges (every member would be
            the nominal).
    """

    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    members: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.members, bool) or not isinstance(self.members, int | np.integer):
            raise InputError(f"ModelEnsemble.members must be an int >= 1, got {self.members!r}.")
        if self.members < 1:
            raise InputError(
                f"ModelEnsemble.members must be >= 1 (member 0 is the nominal model), "
                f"got {self.members}."
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise InputError(f"ModelEnsemble.seed must be an int >= 0, got {self.seed!r}.")
        if self.seed < 0:
            raise InputError(f"ModelEnsemble.seed must be >= 0, got {self.seed}.")
        if not isinstance(self.ranges, Mapping):
            raise InputError(
                "ModelEnsemble.ranges must be a mapping name -> (low, high) factor, e.g. "
                f"{{'mass': (0.8, 1.2)}}; got {type(self.ranges).__name__}."
            )
        ranges: dict[str, tuple[float, float]] = {}
        for name, bounds in self.ranges.items():
            try:
                low, high = (float(b) for b in bounds)
            except (TypeError, ValueError):
                raise InputError(
                    f"ModelEnsemble.ranges[{name!r}] must be a (low, high) pair of factors on "
                    f"the nominal value, e.g. (0.8, 1.2); got {bounds!r}."
                ) from None
            if not (np.isfinite(low) and np.isfinite(high) and 0.0 < low <= high):
                raise InputError(
                    f"ModelEnsemble.ranges[{name!r}] = ({low}, {high}) must satisfy "
                    "0 < low <= high (finite factors on the nominal value; 1 is the nominal)."
                )
            ranges[str(name)] = (low, high)
        if self.members > 1 and not ranges:
            raise InputError(
                f"ModelEnsemble(members={self.members}) names no parameter ranges, so every "
                "member would be the nominal model: give ranges, e.g. "
                "ranges={'mass': (0.8, 1.2)}, or members=1."
            )
        object.__setattr__(self, "ranges", ranges)

    @classmethod
    def covering(
        cls, mismatch: Mapping[str, float], members: int = 4, seed: int = 0
    ) -> ModelEnsemble:
        """An ensemble spanning each stated mismatch factor ``f`` and its inverse.

        Each range is ``(min(f, 1/f), max(f, 1/f))``: the size of the uncertainty is
        known (a task's ``FaultConfig.model_mismatch``), its direction is not.

        Raises:
            InputError: no mismatch stated (nothing to span), or a factor that is not > 0.
        """
        if not mismatch:
            raise InputError(
                "the task states no model mismatch to span; give the ensemble's ranges "
                "yourself, e.g. ModelEnsemble(ranges={'mass': (0.8, 1.2)}, members=4)."
            )
        ranges = {}
        for name, f in mismatch.items():
            if not (np.isfinite(f) and f > 0):
                raise InputError(f"the mismatch factor of {name!r} must be > 0, got {f!r}.")
            ranges[name] = (min(f, 1.0 / f), max(f, 1.0 / f))
        return cls(ranges, members, seed)

    @property
    def names(self) -> tuple[str, ...]:
        """The randomized parameters, in the order of ``factors``' columns."""
        return tuple(self.ranges)

    def factors(self) -> FloatArray:
        """Each member's factors, Shape=(M, len(ranges)); row 0 is all ones (the nominal).

        Row ``m`` is drawn uniformly in the ranges from ``np.random.default_rng(seed)``.
        """
        M = self.members
        out = np.ones((M, len(self.ranges)))
        if M > 1 and self.ranges:
            low = np.array([lo for lo, _ in self.ranges.values()])
            high = np.array([hi for _, hi in self.ranges.values()])
            out[1:] = np.random.default_rng(self.seed).uniform(low, high, size=(M - 1, low.size))
        return out

    def scales(self) -> tuple[dict[str, float], ...]:
        """``factors`` as one ``name -> factor`` mapping per member."""
        return tuple(
            {n: float(f) for n, f in zip(self.names, row, strict=True)} for row in self.factors()
        )

    def build(self, model: Dynamics) -> MemberRollout:
        """The members of ``model`` as one batched rollout (see the module docstring).

        Raises:
            InputError: ``model`` cannot be randomized (neither an ``AnalyticModel`` nor a
                ``MemberModels``), or a range names a parameter it does not have.
        """
        scales = self.scales()
        if isinstance(model, MemberModels):
            return model.member_rollout(scales)
        if isinstance(model, AnalyticModel) and dataclasses.is_dataclass(model):
            return AnalyticMembers(model, scales)
        raise InputError(
            f"a model ensemble needs an analytic dataclass model (an AnalyticModel: its "
            f"fields are scaled) or one that builds its own members (MemberModels, e.g. "
            f"MujocoDynamics); {type(model).__name__} is neither. Plan without an ensemble "
            "(risk=None), or give the model member_rollout(scales)."
        )


class AnalyticMembers(MemberRollout, ParameterRows):
    """An analytic model's members: its step function and one parameter row per member.

    Args:
        model: the nominal ``AnalyticModel``.
        scales: one ``name -> factor`` mapping per member (member 0 the nominal).

    Raises:
        InputError: a name that is not a float field of the model that enters its step
            (``params_vector``); the message lists the ones that do.
    """

    def __init__(self, model: AnalyticModel, scales: Sequence[Mapping[str, float]]) -> None:
        names = sorted({n for s in scales for n in s})
        allowed = _step_parameters(model)
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise InputError(
                f"the ensemble randomizes {unknown}, which {type(model).__name__} does not "
                f"have as a parameter of its step; name some of {sorted(allowed)}."
            )
        self._scales = tuple(dict(s) for s in scales)
        rows = [
            dataclasses.replace(model, **{n: getattr(model, n) * f for n, f in s.items()})
            for s in self._scales
        ]
        self._rows = np.ascontiguousarray(np.stack([m.params_vector() for m in rows]))
        self._kernel = make_member_rollout_kernel(type(model).step_function)

    @property
    def members(self) -> int:
        return int(self._rows.shape[0])

    @property
    def scales(self) -> tuple[Mapping[str, float], ...]:
        return self._scales

    @property
    def parameter_rows(self) -> FloatArray:
        return self._rows

    def rollout_members(self, x0: FloatArray, U: FloatArray, out: FloatArray) -> FloatArray:
        self._kernel(x0, U, self._rows, out)
        return out


def _step_parameters(model: AnalyticModel) -> set[str]:
    """The model's float fields whose change changes ``params_vector`` (what the step reads)."""
    base = model.params_vector()
    names = set()
    for f in dataclasses.fields(model):
        value = getattr(model, f.name)
        if f.name == "dt" or isinstance(value, bool) or not isinstance(value, float):
            continue  # the control period, ints (substeps) and flags are not physics to scale
        try:
            changed = dataclasses.replace(model, **{f.name: value * 1.5 + 0.5}).params_vector()
        except (ValueError, InputError):
            continue
        if changed.shape != base.shape or not np.array_equal(changed, base):
            names.add(f.name)
    return names
