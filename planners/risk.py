"""Risk-aware scoring: each sample's cost over a model ensemble, aggregated by a risk measure.

``RiskScoring(ModelEnsemble(...), RiskMeasure.cvar(0.2))`` in a sampling planner's
config (``SamplingConfig.risk``) rolls every one of the K samples out on each of the
ensemble's M members in the same batch (K x M rollouts; ``dynamics.ensemble``),
charges every member's rollout the full cost, and hands the selector one number per
sample:

* ``mean``: the members' average cost;
* ``worst``: the largest;
* ``cvar`` at ``alpha`` in (0, 1]: the mean of the worst ``n = ceil(alpha * M)``
  members (the discrete CVaR of the members as equally likely models). ``alpha = 1``
  is the mean, any ``alpha <= 1/M`` the worst case.

A sample is feasible when the hard constraints hold on at least
``ceil(feasible_fraction * M)`` members (all of them by default); otherwise its cost
is +inf, as on one model. A member whose cost is not finite (a diverged rollout)
makes the aggregate +inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dynamics.ensemble import ModelEnsemble
from imle_mpc.core.errors import InputError
from imle_mpc.core.validation import FloatArray

RISK_KINDS = ("mean", "worst", "cvar")


def _count(alpha: float, members: int) -> int:
    """``ceil(alpha * M)`` members, robust to the float error of ``alpha * M`` (0.3 * 10)."""
    return max(1, min(members, math.ceil(alpha * members - 1e-9)))


@dataclass(frozen=True)
class RiskMeasure:
    """How the members' costs of one sample become its cost (see the module docstring).

    Attributes:
        kind: ``"mean"``, ``"worst"`` or ``"cvar"``.
        alpha: CVaR's tail fraction, 0 < alpha <= 1 (``cvar`` only; 1 otherwise).
    """

    kind: Literal["mean", "worst", "cvar"] = "mean"
    alpha: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in RISK_KINDS:
            raise InputError(f"RiskMeasure.kind must be one of {RISK_KINDS}, got {self.kind!r}.")
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, int | float) or not 0.0 < a <= 1.0:
            raise InputError(
                f"RiskMeasure.alpha must be a fraction in (0, 1] (cvar: the mean of the worst "
                f"ceil(alpha * M) members), got {a!r}."
            )
        if self.kind != "cvar" and a != 1.0:
            raise InputError(
                f"RiskMeasure.alpha is CVaR's; kind={self.kind!r} takes none: use "
                f"RiskMeasure('cvar', {a})."
            )

    @classmethod
    def cvar(cls, alpha: float) -> RiskMeasure:
        """CVaR at ``alpha``: the mean of the worst ``ceil(alpha * M)`` members."""
        return cls("cvar", alpha)

    @classmethod
    def parse(cls, text: str) -> RiskMeasure:
        """``"mean"``, ``"worst"`` or ``"cvar:ALPHA"`` (the CLI's ``--risk``).

        Raises:
            InputError: anything else (the message shows the forms).
        """
        kind, _, arg = str(text).strip().partition(":")
        if kind == "cvar":
            try:
                alpha = float(arg)
            except ValueError:
                raise InputError(
                    f"--risk {text!r}: CVaR needs its tail fraction, e.g. cvar:0.2 (the mean "
                    "of the worst 20 % of the members)."
                ) from None
            return cls("cvar", alpha)
        if kind in ("mean", "worst") and not arg:
            return cls(kind)  # type: ignore[arg-type]
        raise InputError(f"--risk {text!r}: use mean, worst or cvar:ALPHA (0 < ALPHA <= 1).")

    def tail(self, members: int) -> int:
        """How many of ``members`` costs the measure averages (M, 1 or ceil(alpha M))."""
        if self.kind == "mean":
            return members
        if self.kind == "worst":
            return 1
        return _count(self.alpha, members)

    def aggregate(self, costs: FloatArray, out: FloatArray | None = None) -> FloatArray:
        """One cost per sample from the members' costs.

        Args:
            costs: Shape=(M, K), member ``m``'s cost of sample ``k`` (+inf allowed).
            out: optional result buffer, Shape=(K,).

        Returns:
            Shape=(K,): the mean, the maximum, or the mean of the ``tail(M)`` largest.
        """
        M = costs.shape[0]
        out = np.empty(costs.shape[1]) if out is None else out
        n = self.tail(M)
        if n == M:
            np.mean(costs, axis=0, out=out)
        elif n == 1:
            np.max(costs, axis=0, out=out)
        else:
            worst = np.partition(costs, M - n, axis=0)[M - n :]
            np.mean(worst, axis=0, out=out)
        with np.errstate(invalid="ignore"):
            out[np.isnan(out)] = np.inf  # inf - inf cannot arise; NaN only from NaN costs
        return out


@dataclass(frozen=True)
class RiskScoring:
    """Score each sample over a model ensemble (a sampling planner's ``config.risk``).

    Attributes:
        ensemble: the members (``dynamics.ensemble.ModelEnsemble``; member 0 the nominal).
        measure: how a sample's member costs are aggregated (``RiskMeasure``).
        feasible_fraction: the fraction of members on which every hard constraint must
            hold for a sample to be feasible, in (0, 1]; 1 (the default): on all of them.
    """

    ensemble: ModelEnsemble
    measure: RiskMeasure = RiskMeasure()
    feasible_fraction: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.ensemble, ModelEnsemble):
            raise InputError(
                "RiskScoring.ensemble must be a ModelEnsemble(ranges={...}, members=M, seed=S), "
                f"got {type(self.ensemble).__name__}."
            )
        if not isinstance(self.measure, RiskMeasure):
            raise InputError(
                "RiskScoring.measure must be a RiskMeasure (e.g. RiskMeasure.cvar(0.2) or "
                f"RiskMeasure.parse('worst')), got {self.measure!r}."
            )
        f = self.feasible_fraction
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0.0 < f <= 1.0:
            raise InputError(
                "RiskScoring.feasible_fraction must be in (0, 1] (1: the constraints hold on "
                f"every member), got {f!r}."
            )

    @property
    def members(self) -> int:
        """M."""
        return self.ensemble.members

    @property
    def required(self) -> int:
        """Members on which the constraints must hold: ``ceil(feasible_fraction * M)``."""
        return _count(self.feasible_fraction, self.ensemble.members)

    def combine(
        self, costs: FloatArray, violation: FloatArray, out: FloatArray, total: FloatArray
    ) -> None:
        """The samples' costs and summed violations from the members'.

        Args:
            costs: Shape=(M, K), each member's cost (not yet rejected for constraints).
            violation: Shape=(M, K), each member's summed hard violation (0: feasible
                there; +inf where its cost is not finite).
            out: Shape=(K,), written: the aggregate, +inf for an infeasible sample.
            total: Shape=(K,), written: the violation summed over members (what the
                planner's least-violating fallback ranks).
        """
        self.measure.aggregate(costs, out)
        feasible = np.count_nonzero(violation == 0.0, axis=0) >= self.required
        out[~feasible] = np.inf
        np.sum(violation, axis=0, out=total)
