"""MPPI, CEM and predictive sampling: the sampling planner with Gaussian proposals.

Each is a ``SamplingPlanner`` with a particular sampler and selector; only the
configuration differs, so there is one hot loop to optimise and test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from cost.composite import CostSum
from imle_mpc.core.protocols import Constraint, Dynamics, Selector
from imle_mpc.core.validation import FloatArray, require_int_at_least, require_positive
from planners.knots import KnotSchedule
from planners.samplers import CrossEntropySampler, GaussianSampler
from planners.sampling import SamplingConfig, SamplingPlanner
from planners.selectors import ArgminSelector, EliteMeanSelector, SoftmaxSelector

CostLike = CostSum | Callable[[FloatArray, FloatArray], FloatArray]


def _check_sigma(owner: str, sigma: float | tuple[float, ...]) -> None:
    values = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
    if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"{owner}.noise_sigma must be finite and > 0, got {sigma!r}.")


@dataclass(frozen=True)
class MPPIConfig(SamplingConfig):
    """Model Predictive Path Integral control.

    Attributes:
        temperature: lambda of the softmax weights ``exp(-cost / lambda)``.
        noise_sigma: std of the Gaussian perturbations, scalar or per action.
    """

    temperature: float = 1.0
    noise_sigma: float | tuple[float, ...] = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require_positive("MPPIConfig", "temperature", self.temperature)
        _check_sigma("MPPIConfig", self.noise_sigma)


@dataclass(frozen=True)
class CEMConfig(SamplingConfig):
    """Cross-entropy method.

    Attributes:
        num_elites: samples the mean and std are refit to (2 <= elites <= K).
        noise_sigma: initial std at every control step.
        min_sigma: floor on the refit std, so the search never collapses.
    """

    iterations: int = 4
    num_elites: int = 16
    noise_sigma: float | tuple[float, ...] = 1.0
    min_sigma: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        require_int_at_least("CEMConfig", "num_elites", self.num_elites, 2)
        if self.num_elites > self.num_samples:
            raise ValueError(
                f"CEMConfig.num_elites={self.num_elites} must be <= num_samples="
                f"{self.num_samples}; lower num_elites or raise num_samples."
            )
        _check_sigma("CEMConfig", self.noise_sigma)
        require_positive("CEMConfig", "min_sigma", self.min_sigma)


@dataclass(frozen=True)
class PredictiveSamplingConfig(SamplingConfig):
    """MuJoCo MPC's predictive sampling: perturb the nominal, keep the best.

    Attributes:
        noise_sigma: std of the Gaussian perturbations.
    """

    noise_sigma: float | tuple[float, ...] = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_sigma("PredictiveSamplingConfig", self.noise_sigma)


class _GaussianPlanner(SamplingPlanner):
    """The shared constructor: a subclass names its config type, sampler and selector.

    With ``config.knots`` the sampler is built for M knot rows and the planner searches
    them (``planners.knots``); its noise std is then per knot.
    """

    config_type: ClassVar[type[SamplingConfig]]

    def __init__(
        self,
        dynamics: Dynamics,
        cost: CostLike,
        config: Any = None,
        constraints: Sequence[Constraint] = (),
        initial_plan: ArrayLike | None = None,
        *,
        fused: bool = True,
    ) -> None:
        config = self.config_type() if config is None else config
        if not isinstance(config, self.config_type):
            raise TypeError(
                f"{type(self).__name__} takes a {self.config_type.__name__}, got "
                f"{type(config).__name__}."
            )
        knots = KnotSchedule.from_config(config.knots, config.horizon, config.interpolation)
        rows = config.horizon if knots is None else knots.num_knots
        super().__init__(
            dynamics,
            cost,
            self._make_sampler(config, dynamics, rows),
            self._make_selector(config),
            config,
            constraints,
            initial_plan,
            fused=fused,
            knots=knots,
        )

    @staticmethod
    def _make_sampler(config: Any, dynamics: Dynamics, rows: int) -> GaussianSampler:
        """The sampler for ``rows`` rows a sample (H steps, or M knots)."""
        return GaussianSampler(
            config.noise_sigma,
            rows,
            dynamics.nu,
            dynamics.action_low,
            dynamics.action_high,
        )

    @staticmethod
    def _make_selector(config: Any) -> Selector:
        raise NotImplementedError


class MPPI(_GaussianPlanner):
    """MPPI: Gaussian samples around the shifted plan, softmax-weighted average.

    The MPPI control-cost term ``lambda * u^T Sigma^-1 eps`` is left out (as in
    MuJoCo MPC); add a ``ControlEffort`` term to the cost to penalise effort.

    Args:
        dynamics: as ``SamplingPlanner``.
        cost: as ``SamplingPlanner``.
        constraints: as ``SamplingPlanner``.
        initial_plan: as ``SamplingPlanner``.
        fused: as ``SamplingPlanner``.
        config: ``MPPIConfig``.
    """

    config_type = MPPIConfig

    @staticmethod
    def _make_selector(config: MPPIConfig) -> Selector:
        return SoftmaxSelector(config.temperature)


class CEM(_GaussianPlanner):
    """Cross-entropy method: refit a Gaussian to the elites for a few iterations.

    Args:
        dynamics: as ``SamplingPlanner``.
        cost: as ``SamplingPlanner``.
        constraints: as ``SamplingPlanner``.
        initial_plan: as ``SamplingPlanner``.
        fused: as ``SamplingPlanner``.
        config: ``CEMConfig``.
    """

    config_type = CEMConfig

    @staticmethod
    def _make_sampler(config: CEMConfig, dynamics: Dynamics, rows: int) -> GaussianSampler:
        return CrossEntropySampler(
            config.noise_sigma,
            rows,
            dynamics.nu,
            dynamics.action_low,
            dynamics.action_high,
            num_elites=config.num_elites,
            min_sigma=config.min_sigma,
        )

    @staticmethod
    def _make_selector(config: CEMConfig) -> Selector:
        return EliteMeanSelector(config.num_elites)


class PredictiveSampling(_GaussianPlanner):
    """Predictive sampling: Gaussian samples around the plan, keep the single best.

    Args:
        dynamics: as ``SamplingPlanner``.
        cost: as ``SamplingPlanner``.
        constraints: as ``SamplingPlanner``.
        initial_plan: as ``SamplingPlanner``.
        fused: as ``SamplingPlanner``.
        config: ``PredictiveSamplingConfig``.
    """

    config_type = PredictiveSamplingConfig

    @staticmethod
    def _make_selector(config: PredictiveSamplingConfig) -> Selector:
        return ArgminSelector()
