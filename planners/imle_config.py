"""IMLE-MPC's settings in parts: sampling, proposals, selection, lookahead.

``IMLEMPCConfig`` is the shared ``SamplingConfig`` plus three parts, each a
small frozen dataclass that checks its own fields:

* ``IMLEProposals``: the rows of a step's batch (generator chunks, their
  perturbations, Gaussian rows) and how they relate to the warm start;
* a selection, ``ArgminSelection()`` or ``ModeSoftmaxSelection(...)``, which
  builds the ``Selector``;
* ``Lookahead``: the generator's continuation past the horizon (``PolicyCostToGo``),
  shared with ``LatentPlanConfig``.

The flat keywords of the one-piece config (``num_imle=``, ``selection=``,
``temperature=``, ``cost_to_go_steps=``, ...) still construct it, and read back as
properties.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Literal

import numpy as np

from imle_mpc.core.kernels.select import elite_indices
from imle_mpc.core.protocols import Selector
from imle_mpc.core.threads import PLANNING_THREADS, ThreadPolicy
from imle_mpc.core.validation import (
    FloatArray,
    require_int_at_least,
    require_non_negative,
    require_positive,
)
from planners.knots import Interpolation
from planners.risk import RiskScoring
from planners.sampling import SamplingConfig
from planners.selectors import ArgminSelector, ModeAwareSelector


@dataclass(frozen=True)
class IMLEProposals:
    """The rows of IMLE-MPC's batch, besides row 0 (the warm start).

    Attributes:
        num_imle: chunks drawn from the generator per step (one forward pass).
        perturb_sigma: std of the noise added to IMLE chunks for the perturbed rows.
        num_gaussian: rows of Gaussian noise around the warm start (0 = none).
        gaussian_sigma: their std.
        consistency_weight: weight of the consistency term, which charges a
            proposal for leaving the warm start (0 turns it off).
        max_plan_age: steps a plan may be executed, counting the step it was
            chosen on, while it keeps winning as the warm start (``None``:
            forever). A shifted plan is padded with its held last action,
            which is made up, not planned; after this many steps the
            warm-start row is replaced by a fresh chunk and the consistency
            term picks the chunk closest to what is left of the old plan (the
            IMLE policy's re-sampling every executed horizon, inside the MPC).
    """

    num_imle: int = 16
    perturb_sigma: float = 0.1
    num_gaussian: int = 0
    gaussian_sigma: float = 0.3
    consistency_weight: float = 0.1
    max_plan_age: int | None = 8

    def __post_init__(self) -> None:
        owner = type(self).__name__
        require_int_at_least(owner, "num_imle", self.num_imle, 1)
        if self.max_plan_age is not None:
            require_int_at_least(owner, "max_plan_age", self.max_plan_age, 1)
        require_int_at_least(owner, "num_gaussian", self.num_gaussian, 0)
        require_non_negative(owner, "perturb_sigma", self.perturb_sigma)
        require_non_negative(owner, "gaussian_sigma", self.gaussian_sigma)
        require_non_negative(owner, "consistency_weight", self.consistency_weight)


@dataclass(frozen=True)
class ArgminSelection:
    """Execute the single best sample (``ArgminSelector``)."""

    name: ClassVar[Literal["argmin"]] = "argmin"

    def build(self, action_low: FloatArray, action_high: FloatArray) -> Selector:
        """The selector for a planner with this actuator box."""
        return ArgminSelector()


@dataclass(frozen=True)
class ModeSoftmaxSelection:
    """Softmax-average the elites of the best sample's mode (``ModeAwareSelector``).

    Attributes:
        temperature: of the softmax (> 0).
        num_elites: best samples considered (>= 1).
        mode_radius: samples whose RMS action distance to the best (in units of
            half the actuator range) is below it count as the same mode.
    """

    temperature: float = 1.0
    num_elites: int = 8
    mode_radius: float = 0.25
    name: ClassVar[Literal["mode_softmax"]] = "mode_softmax"

    def __post_init__(self) -> None:
        owner = type(self).__name__
        require_positive(owner, "temperature", self.temperature)
        require_int_at_least(owner, "num_elites", self.num_elites, 1)
        require_positive(owner, "mode_radius", self.mode_radius)

    def build(self, action_low: FloatArray, action_high: FloatArray) -> Selector:
        """The selector for a planner with this actuator box."""
        return ModeAwareSelector(
            self.temperature, self.num_elites, self.mode_radius, action_low, action_high
        )


Selection = ArgminSelection | ModeSoftmaxSelection
"""How IMLE-MPC turns scored samples into a plan."""
SELECTIONS = ("argmin", "mode_softmax")


@dataclass(frozen=True)
class Lookahead:
    """The generator's own continuation past each candidate's end (``PolicyCostToGo``).

    Attributes:
        steps: continuation steps whose task cost is added (0 = off). It lets
            the MPC see around what its horizon cannot (a dead end that looks
            like progress); each step costs one more batched generator pass per
            ``action_horizon`` steps.
        weight: weight of that term.
    """

    steps: int = 0
    weight: float = 1.0

    def __post_init__(self) -> None:
        require_int_at_least("Lookahead", "steps (cost_to_go_steps)", self.steps, 0)
        require_non_negative("Lookahead", "weight (cost_to_go_weight)", self.weight)

    @property
    def active(self) -> bool:
        """Whether the term is on (``steps > 0`` and ``weight > 0``)."""
        return self.steps > 0 and self.weight > 0


class _Unset(enum.Enum):
    UNSET = 0


_UNSET = _Unset.UNSET


@dataclass(frozen=True, init=False)
class IMLEMPCConfig(SamplingConfig):
    """IMLE-MPC settings: the sampling settings and three parts. ``num_samples`` is K.

    The defaults are the CLI's and the README's: 16 generator chunks, 16 perturbed
    copies of them and the warm start (K = 33). The lookahead is off unless asked
    for: it is a property of the task (``PlannerHints.policy_lookahead``: 32 steps
    on the navigation tasks, where it is what sees around ``nav_trap``'s cup).

    Attributes:
        horizon: must equal the generator's chunk length H.
        proposals: the batch's rows (``IMLEProposals``).
        selector: ``ArgminSelection()`` or ``ModeSoftmaxSelection(...)``.
        lookahead: the generator's continuation past the horizon (``Lookahead``).

    The one-piece keywords ``num_imle``, ``perturb_sigma``, ``num_gaussian``,
    ``gaussian_sigma``, ``consistency_weight``, ``max_plan_age`` (proposals),
    ``selection`` (``"argmin"`` / ``"mode_softmax"``), ``temperature``,
    ``num_elites``, ``mode_radius`` (selection), ``cost_to_go_steps`` and
    ``cost_to_go_weight`` (lookahead) override the parts' fields, and read back
    as properties.

    ``knots`` and ``interpolation`` (``SamplingConfig``) shape only the Gaussian rows
    (``num_gaussian``): they are drawn as spline knots around the warm start's knots and
    expanded to per-step actions before they join the batch; the generator's chunks
    stay per step, and so does the search (the selector sees per-step rows).
    """

    horizon: int = 16
    num_samples: int = 33
    proposals: IMLEProposals = IMLEProposals()
    selector: Selection = ArgminSelection()
    lookahead: Lookahead = Lookahead()

    def __init__(
        self,
        num_samples: int = 33,
        horizon: int = 16,
        iterations: int = 1,
        shift: int = 1,
        seed: int = 0,
        record_samples: bool = False,
        proposals: IMLEProposals = IMLEProposals(),
        selector: Selection = ArgminSelection(),
        lookahead: Lookahead = Lookahead(),
        *,
        threads: ThreadPolicy = PLANNING_THREADS,
        knots: int | None = None,
        interpolation: Interpolation = "cubic",
        risk: RiskScoring | None = None,
        num_imle: int | None = None,
        perturb_sigma: float | None = None,
        num_gaussian: int | None = None,
        gaussian_sigma: float | None = None,
        consistency_weight: float | None = None,
        max_plan_age: int | _Unset | None = _UNSET,
        selection: str | None = None,
        temperature: float | None = None,
        num_elites: int | None = None,
        mode_radius: float | None = None,
        cost_to_go_steps: int | None = None,
        cost_to_go_weight: float | None = None,
    ) -> None:
        for name, value in (
            ("num_samples", num_samples), ("horizon", horizon), ("iterations", iterations),
            ("shift", shift), ("seed", seed), ("record_samples", record_samples),
            ("threads", threads), ("knots", knots), ("interpolation", interpolation),
            ("risk", risk),
        ):  # fmt: skip
            object.__setattr__(self, name, value)
        SamplingConfig.__post_init__(self)
        flat: dict[str, Any] = {
            "num_imle": num_imle, "perturb_sigma": perturb_sigma, "num_gaussian": num_gaussian,
            "gaussian_sigma": gaussian_sigma, "consistency_weight": consistency_weight,
        }  # fmt: skip
        changes = {k: v for k, v in flat.items() if v is not None}
        if max_plan_age is not _UNSET:
            changes["max_plan_age"] = max_plan_age
        object.__setattr__(self, "proposals", replace(proposals, **changes))
        object.__setattr__(
            self, "selector", _selection(selector, selection, temperature, num_elites, mode_radius)
        )
        steps = lookahead.steps if cost_to_go_steps is None else cost_to_go_steps
        weight = lookahead.weight if cost_to_go_weight is None else cost_to_go_weight
        object.__setattr__(self, "lookahead", Lookahead(steps, weight))
        rows = self.proposals
        if 1 + rows.num_imle + rows.num_gaussian > self.num_samples:
            raise ValueError(
                f"IMLEMPCConfig.num_samples={self.num_samples} must be >= 1 (warm start) + "
                f"num_imle={rows.num_imle} + num_gaussian={rows.num_gaussian}; raise num_samples."
            )
        if self.knots is not None and rows.num_gaussian == 0:
            raise ValueError(
                f"IMLEMPCConfig.knots={self.knots} shapes the Gaussian rows, and num_gaussian=0 "
                "makes none (the generator's chunks stay per step); set num_gaussian > 0 or "
                "knots=None."
            )

    # -- the one-piece names, read from the parts --------------------------------------------

    @property
    def num_imle(self) -> int:
        """``proposals.num_imle``."""
        return self.proposals.num_imle

    @property
    def perturb_sigma(self) -> float:
        """``proposals.perturb_sigma``."""
        return self.proposals.perturb_sigma

    @property
    def num_gaussian(self) -> int:
        """``proposals.num_gaussian``."""
        return self.proposals.num_gaussian

    @property
    def gaussian_sigma(self) -> float:
        """``proposals.gaussian_sigma``."""
        return self.proposals.gaussian_sigma

    @property
    def consistency_weight(self) -> float:
        """``proposals.consistency_weight``."""
        return self.proposals.consistency_weight

    @property
    def max_plan_age(self) -> int | None:
        """``proposals.max_plan_age``."""
        return self.proposals.max_plan_age

    @property
    def selection(self) -> str:
        """``selector.name``: ``"argmin"`` or ``"mode_softmax"``."""
        return self.selector.name

    @property
    def temperature(self) -> float:
        """The mode softmax's ``temperature`` (its default under argmin)."""
        return self._softmax.temperature

    @property
    def num_elites(self) -> int:
        """The mode softmax's ``num_elites`` (its default under argmin)."""
        return self._softmax.num_elites

    @property
    def mode_radius(self) -> float:
        """The mode softmax's ``mode_radius`` (its default under argmin)."""
        return self._softmax.mode_radius

    @property
    def _softmax(self) -> ModeSoftmaxSelection:
        selector = self.selector
        return selector if isinstance(selector, ModeSoftmaxSelection) else ModeSoftmaxSelection()

    @property
    def cost_to_go_steps(self) -> int:
        """``lookahead.steps``."""
        return self.lookahead.steps

    @property
    def cost_to_go_weight(self) -> float:
        """``lookahead.weight``."""
        return self.lookahead.weight


def _selection(
    selector: Selection,
    selection: str | None,
    temperature: float | None,
    num_elites: int | None,
    mode_radius: float | None,
) -> Selection:
    """The selection part from ``selector`` and the one-piece keywords (which win)."""
    if selection is not None and selection not in SELECTIONS:
        raise ValueError(
            f"IMLEMPCConfig.selection must be 'argmin' or 'mode_softmax', got {selection!r}."
        )
    base = selector if isinstance(selector, ModeSoftmaxSelection) else ModeSoftmaxSelection()
    flat: dict[str, Any] = {
        "temperature": temperature, "num_elites": num_elites, "mode_radius": mode_radius,
    }  # fmt: skip
    softmax = replace(base, **{k: v for k, v in flat.items() if v is not None})  # checks them
    name = selector.name if selection is None else selection
    return softmax if name == "mode_softmax" else ArgminSelection()


@dataclass(frozen=True)
class EliteRefit:
    """CEM in the latent: refit the latent mean and std to the ``num_elites`` cheapest samples."""

    name: ClassVar[Literal["cem"]] = "cem"

    def refit(
        self, z: FloatArray, costs: FloatArray, config: LatentPlanConfig
    ) -> tuple[FloatArray, FloatArray] | None:
        """New mean and std Shape=(latent_dim,) from latents Shape=(n, d) and their costs."""
        elites = elite_indices(costs, config.num_elites)
        if elites.size < 2:
            return None
        return z[elites].mean(axis=0), np.maximum(z[elites].std(axis=0), config.min_sigma)


@dataclass(frozen=True)
class SoftmaxRefit:
    """MPPI in the latent: move the mean to the latents' average weighted by
    ``exp(-(cost - min cost) / temperature)``; the std stays at ``init_sigma``.

    Attributes:
        temperature: of the softmax, in cost units (> 0).
    """

    temperature: float = 1.0
    name: ClassVar[Literal["mppi"]] = "mppi"

    def __post_init__(self) -> None:
        require_positive("SoftmaxRefit", "temperature", self.temperature)

    def refit(
        self, z: FloatArray, costs: FloatArray, config: LatentPlanConfig
    ) -> tuple[FloatArray, FloatArray] | None:
        """New mean (and the unchanged std) from latents Shape=(n, d) and their costs."""
        finite = np.isfinite(costs)
        if not finite.any():
            return None
        c = costs[finite]
        w = np.exp(-(c - c.min()) / self.temperature)
        mean = (w[:, None] * z[finite]).sum(axis=0) / w.sum()
        return mean, np.full(z.shape[1], config.init_sigma)


LatentUpdate = EliteRefit | SoftmaxRefit
"""How the latent search adapts: CEM (``EliteRefit``) or MPPI (``SoftmaxRefit``)."""


@dataclass(frozen=True)
class LatentPlanConfig(SamplingConfig):
    """CEM (or MPPI) over the generator's latent space, kept inside a box (the CNF idea).

    Every candidate is a decoded latent, so it stays on the demonstrated
    manifold; the box ``[-latent_bound, latent_bound]`` keeps the search away
    from the tails of the latent prior, where the generator has seen nothing. A
    generator with a bounded latent (``BoundedLatent``: the flow, whose box [-1, 1]
    decodes into the demonstrations' action range) is searched inside the smaller
    of the two boxes.

    Attributes:
        latent_bound: half-width of the latent box (in prior standard deviations;
            for a flow, in units of its box, of which 1 is all).
        init_sigma: latent std at the start of each step.
        min_sigma: floor on the refit latent std.
        num_elites: samples the latent mean and std are refit to (CEM).
        cost_to_go_steps, cost_to_go_weight: as in ``IMLEMPCConfig``.
        update: how the latent mean (and std) adapt between iterations and steps:
            ``EliteRefit()`` (CEM, the default) or ``SoftmaxRefit(temperature)`` (MPPI).
    """

    horizon: int = 16
    num_samples: int = 64
    iterations: int = 3
    latent_bound: float = 2.0
    init_sigma: float = 1.0
    min_sigma: float = 0.05
    num_elites: int = 8
    cost_to_go_steps: int = 0
    cost_to_go_weight: float = 1.0
    update: LatentUpdate = EliteRefit()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.knots is not None:
            raise ValueError(
                f"LatentPlanConfig.knots={self.knots}: the latent search proposes decoded "
                "chunks, not knots; set knots=None (use MPPI / CEM / predictive sampling, or "
                "IMLE-MPC's Gaussian rows, for knot samples)."
            )
        if not isinstance(self.update, EliteRefit | SoftmaxRefit):
            raise TypeError(
                f"LatentPlanConfig.update must be EliteRefit() or SoftmaxRefit(temperature), "
                f"got {self.update!r}."
            )
        require_int_at_least("LatentPlanConfig", "cost_to_go_steps", self.cost_to_go_steps, 0)
        require_non_negative("LatentPlanConfig", "cost_to_go_weight", self.cost_to_go_weight)
        require_positive("LatentPlanConfig", "latent_bound", self.latent_bound)
        require_positive("LatentPlanConfig", "init_sigma", self.init_sigma)
        require_positive("LatentPlanConfig", "min_sigma", self.min_sigma)
        require_int_at_least("LatentPlanConfig", "num_elites", self.num_elites, 2)
        if self.num_elites >= self.num_samples:
            raise ValueError(
                f"LatentPlanConfig.num_elites={self.num_elites} must be < num_samples="
                f"{self.num_samples} (row 0 is the warm start)."
            )

    @property
    def lookahead(self) -> Lookahead:
        """``cost_to_go_steps`` and ``cost_to_go_weight`` as the ``Lookahead`` part."""
        return Lookahead(self.cost_to_go_steps, self.cost_to_go_weight)
