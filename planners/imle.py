"""IMLE-MPC: a trained chunk generator proposes, the model and the costs decide.

Each control step the proposals are, in rows:

* row 0: the previous plan shifted by the executed steps (the warm start);
* ``num_imle`` chunks from ONE batched generator pass;
* perturbations of those chunks (small Gaussian noise), filling the batch up
  to the last ``num_gaussian`` rows;
* optional Gaussian samples around the warm start (per step, or spline knots
  around the warm start's knots expanded to per-step rows: ``config.knots``).

A consistency term keeps the planner from hopping between modes: after
executing ``k`` steps, the new chunk's steps ``0..H-k-1`` are compared with the
old chunk's steps ``k..H-1`` — exactly the warm start's first ``H-k`` rows.
(The IMLE Policy reference code is off by one here.) Selection is argmin or a
softmax average over elites of ONE mode, never across modes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from cost.composite import CostSum, Term
from imle_mpc.core.kernels.compare import squared_distance_to_plan
from imle_mpc.core.kernels.pcg64 import generator_normals
from imle_mpc.core.kernels.perturb import perturb_and_clip
from imle_mpc.core.kernels.select import argmin_finite
from imle_mpc.core.plan_reference import PlanReference
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import (
    BoundedLatent,
    ChunkGenerator,
    Constraint,
    Dynamics,
    ReferenceCost,
    ReferenceSampler,
)
from imle_mpc.core.threads import PLANNING_THREADS, ThreadPolicy, under_thread_policy
from imle_mpc.core.validation import (
    FloatArray,
    require_int_at_least,
)
from planners.chunks import ChunkPlayer
from planners.cost_to_go import PolicyCostToGo
from planners.imle_config import (
    ArgminSelection,
    EliteRefit,
    IMLEMPCConfig,
    IMLEProposals,
    LatentPlanConfig,
    Lookahead,
    ModeSoftmaxSelection,
    SoftmaxRefit,
)
from planners.knots import KnotSchedule
from planners.sampling import SamplingConfig, SamplingPlanner, as_cost_sum
from planners.selectors import ArgminSelector, ModeAwareSelector

ObservationFn = Callable[[FloatArray], FloatArray]


class ObservationHistory:
    """The last ``length`` observations, oldest first; padded by repeating the first one.

    Padding by repetition matches how training pairs are built at episode starts.

    Args:
        length: observations kept (the generator's ``obs_horizon``).
        obs_dim: size of one observation.
        observation_fn: state -> observation, for ``observe``.
    """

    def __init__(
        self, length: int, obs_dim: int, observation_fn: ObservationFn | None = None
    ) -> None:
        require_int_at_least("ObservationHistory", "length", length, 1)
        self._buffer = np.zeros((length, obs_dim))
        self._count = 0
        self.observation_fn = observation_fn

    def observe(self, state: FloatArray) -> None:
        """Push the observation of ``state``; a wrong observation size is a clear error."""
        if self.observation_fn is None:
            raise ValueError("ObservationHistory.observe needs an observation_fn.")
        obs = np.asarray(self.observation_fn(state), dtype=np.float64)
        if obs.shape != self._buffer.shape[1:]:
            raise ValueError(
                f"observation_fn returned shape {obs.shape}; the generator expects "
                f"{self._buffer.shape[1:]}. Use the observation function the generator "
                "was trained with."
            )
        self.push(obs)

    def push(self, obs: FloatArray) -> None:
        if self._count == 0:
            self._buffer[:] = obs
        else:
            self._buffer[:-1] = self._buffer[1:]
            self._buffer[-1] = obs
        self._count += 1

    def clear(self) -> None:
        self._count = 0

    @property
    def array(self) -> FloatArray:
        """Shape=(length, obs_dim), oldest first."""
        return self._buffer


class ConsistencyCost(ReferenceCost):
    """``sum_{t < overlap} ||u_t - reference_t||^2``: how far a proposal leaves the current plan.

    The reference comes with each evaluation (``CostSum.evaluate(X, U, reference)``,
    made by the ``IMLESampler`` for the step); without one the term is 0.
    """

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        """0 for every sample: there is no reference to compare with."""
        return self.with_reference(X, U, None)

    def with_reference(
        self, X: FloatArray, U: FloatArray, reference: PlanReference | None
    ) -> FloatArray:
        """Shape=(K,): the squared distance of ``U``'s first ``overlap`` steps to the reference."""
        ref = reference
        if ref is None or not ref.active or ref.overlap == 0:
            return np.zeros(U.shape[0])
        out = np.empty(U.shape[0])
        steps = min(ref.overlap, U.shape[1], ref.plan.shape[0])  # as the slices were
        squared_distance_to_plan(U, ref.plan, steps, out)
        return out


class IMLESampler(ReferenceSampler):
    """Proposals from a chunk generator, perturbations of them, and the warm start.

    Args:
        generator: the trained ``ChunkGenerator``.
        observation_fn: maps a state to the generator's observation, Shape=(obs_dim,).
        config: row counts and noise levels.
        action_low: actuator box's lower corner, Shape=(nu,).
        action_high: actuator box's upper corner, Shape=(nu,).
        knots: the Gaussian rows' spline knots (None: per-step noise). The rows are
            expanded to per-step actions here, so they share one batch with the chunks.

    Each step's ``reference(nominal)`` is what the consistency term compares with.
    """

    def __init__(
        self,
        generator: ChunkGenerator,
        observation_fn: ObservationFn,
        config: IMLEMPCConfig,
        action_low: FloatArray,
        action_high: FloatArray,
        knots: KnotSchedule | None = None,
    ) -> None:
        self.generator = generator
        self.config = config
        self.low = np.ascontiguousarray(action_low, dtype=np.float64)
        self.high = np.ascontiguousarray(action_high, dtype=np.float64)
        self.history = ObservationHistory(generator.obs_horizon, generator.obs_dim, observation_fn)
        self.knots = knots
        self._warm = False
        self._age = 0
        self._noise: FloatArray | None = None

    def start_step(self, state: FloatArray) -> None:
        self.history.observe(state)

    def propose(
        self, state: FloatArray, nominal: FloatArray, rng: np.random.Generator, out: FloatArray
    ) -> FloatArray:
        cfg = self.config.proposals
        K = out.shape[0]
        n_imle = cfg.num_imle
        end_perturbed = K - cfg.num_gaussian
        chunks = self.generator.sample(self.history.array, n_imle, rng)
        stale = cfg.max_plan_age is not None and self._age >= cfg.max_plan_age
        out[0] = chunks[0] if stale else nominal
        out[1 : 1 + n_imle] = chunks
        noise = self._noise_buffer(max(end_perturbed - 1 - n_imle, 0), out.shape)
        generator_normals(rng, noise)  # the numbers rng.standard_normal(out=noise) gives
        knots = self.knots
        if cfg.num_gaussian and knots is None:
            gauss = rng.standard_normal((cfg.num_gaussian, *nominal.shape))
            rows = out[end_perturbed:]
            np.add(nominal, cfg.gaussian_sigma * gauss, out=rows)
            np.clip(rows, self.low, self.high, out=rows)
        elif cfg.num_gaussian and knots is not None:
            # Knots around the warm start's fit, expanded before they join the chunks.
            centre = knots.fit(nominal, np.empty((knots.num_knots, nominal.shape[1])))
            gauss = rng.standard_normal((cfg.num_gaussian, *centre.shape))
            Z = np.clip(centre + cfg.gaussian_sigma * gauss, self.low, self.high)
            knots.expand(Z, self.low, self.high, out[end_perturbed:])
        # The perturbed rows copy chunks[r % num_imle]; one pass, the same arithmetic as
        # NumPy's (parent + sigma * noise, then the clip), no temporaries.
        perturb_and_clip(out, 1 + n_imle, chunks, noise, cfg.perturb_sigma, self.low, self.high)
        return out

    def _noise_buffer(self, rows: int, shape: tuple[int, ...]) -> FloatArray:
        """The perturbations' noise, Shape=(rows, H, nu), allocated once per batch shape."""
        if self._noise is None or self._noise.shape != (rows, *shape[1:]):
            self._noise = np.empty((rows, *shape[1:]))
        return self._noise

    def reference(self, nominal: FloatArray) -> PlanReference:
        """The warm start ``nominal`` Shape=(H, nu) as the step's consistency reference."""
        # The warm start is worth keeping close to only if it came from a real plan.
        overlap = self.config.horizon - self.config.shift
        return PlanReference(np.array(nominal, dtype=np.float64), overlap, self._warm)

    def update(self, U: FloatArray, costs: FloatArray) -> None:
        self._warm = True
        # Age of the plan carried as the warm start: it grows while row 0 wins.
        self._age = self._age + 1 if int(argmin_finite(costs)) == 0 else 1

    def drop_consistency_once(self) -> None:
        """The next step's proposals are not charged for leaving the warm start."""
        self._warm = False

    def reset(self) -> None:
        self.history.clear()
        self._warm = False
        self._age = 0


class IMLEMPC(SamplingPlanner):
    """Sampling MPC whose proposals come from a trained IMLE chunk generator.

    Args:
        dynamics: the planner's model.
        cost: the task cost; a ``consistency`` term is added to it.
        generator: trained generator; its horizon and action size must match.
        observation_fn: state -> generator observation (the one used for training).
        config: ``IMLEMPCConfig``.
        constraints: hard constraints (violating samples are rejected).
    """

    def __init__(
        self,
        dynamics: Dynamics,
        cost: CostSum | Callable[[FloatArray, FloatArray], FloatArray],
        generator: ChunkGenerator,
        observation_fn: ObservationFn,
        config: IMLEMPCConfig = IMLEMPCConfig(),
        constraints: Sequence[Constraint] = (),
    ) -> None:
        check_generator_matches(generator, dynamics, config)
        task_cost = as_cost_sum(cost)
        terms = list(task_cost.terms)
        weight = config.proposals.consistency_weight
        if weight > 0:
            terms.append(Term("consistency", ConsistencyCost(), weight))
        terms += cost_to_go_terms(
            generator, observation_fn, dynamics, task_cost, constraints, config.lookahead
        )
        knots = KnotSchedule.from_config(config.knots, config.horizon, config.interpolation)
        sampler = IMLESampler(
            generator, observation_fn, config, dynamics.action_low, dynamics.action_high, knots
        )
        selector = config.selector.build(dynamics.action_low, dynamics.action_high)
        super().__init__(dynamics, CostSum(*terms), sampler, selector, config, constraints)

    def allow_switch(self) -> None:
        """Drop the consistency cost for the next step, so the plan may change mode.

        Use it when the current mode has become wrong (an operator command, a
        new obstacle). The cost is also dropped by itself whenever there is no
        previous plan (the first step after ``reset``).
        """
        sampler: IMLESampler = self.sampler  # type: ignore[assignment]
        sampler.drop_consistency_once()


class LatentCEMSampler:
    """Cross-entropy (or MPPI) search over bounded generator latents.

    The latent mean carries over from one control step to the next: the same
    latent under a new observation decodes to the same mode, so the plan keeps
    its mode without a consistency cost. Row 0 is the warm start, as always.
    ``config.update`` adapts the mean (and std) between iterations: CEM's elite
    refit or MPPI's softmax average. A ``BoundedLatent`` generator (the flow) is
    searched inside its own box too, so every candidate decodes into the
    demonstrations' action range.
    """

    def __init__(
        self,
        generator: ChunkGenerator,
        observation_fn: ObservationFn,
        config: LatentPlanConfig,
        action_low: FloatArray,
        action_high: FloatArray,
    ) -> None:
        self.generator = generator
        self.config = config
        self.low = np.asarray(action_low, dtype=np.float64)
        self.high = np.asarray(action_high, dtype=np.float64)
        self.history = ObservationHistory(generator.obs_horizon, generator.obs_dim, observation_fn)
        bound = config.latent_bound
        if isinstance(generator, BoundedLatent):
            bound = min(bound, float(generator.latent_bound))
        self.bound = bound
        d = generator.latent_dim
        self.mean = np.zeros(d)
        self.sigma = np.full(d, config.init_sigma)
        self._z = np.zeros((config.num_samples, d))

    def start_step(self, state: FloatArray) -> None:
        self.history.observe(state)
        self.sigma[:] = self.config.init_sigma

    def propose(
        self, state: FloatArray, nominal: FloatArray, rng: np.random.Generator, out: FloatArray
    ) -> FloatArray:
        b = self.bound
        z = self._z
        z[:] = self.mean + self.sigma * rng.standard_normal(z.shape)
        np.clip(z, -b, b, out=z)
        out[0] = nominal
        out[1:] = self.generator.decode(self.history.array, z[1:])
        np.clip(out, self.low, self.high, out=out)
        return out

    def update(self, U: FloatArray, costs: FloatArray) -> None:
        # latents live in rows 1: (row 0 is the warm start)
        refit = self.config.update.refit(self._z[1:], costs[1:], self.config)
        if refit is not None:
            self.mean, self.sigma = refit

    def reset(self) -> None:
        self.history.clear()
        self.mean[:] = 0.0
        self.sigma[:] = self.config.init_sigma


class LatentIMLEMPC(SamplingPlanner):
    """MPC that searches the generator's bounded latent space instead of raw actions."""

    def __init__(
        self,
        dynamics: Dynamics,
        cost: CostSum | Callable[[FloatArray, FloatArray], FloatArray],
        generator: ChunkGenerator,
        observation_fn: ObservationFn,
        config: LatentPlanConfig = LatentPlanConfig(),
        constraints: Sequence[Constraint] = (),
    ) -> None:
        check_generator_matches(generator, dynamics, config)
        sampler = LatentCEMSampler(
            generator, observation_fn, config, dynamics.action_low, dynamics.action_high
        )
        task_cost = as_cost_sum(cost)
        to_go = cost_to_go_terms(
            generator, observation_fn, dynamics, task_cost, constraints, config.lookahead
        )
        full_cost = CostSum(*task_cost.terms, *to_go) if to_go else task_cost
        super().__init__(dynamics, full_cost, sampler, ArgminSelector(), config, constraints)


def cost_to_go_terms(
    generator: ChunkGenerator,
    observation_fn: ObservationFn,
    dynamics: Dynamics,
    task_cost: CostSum,
    constraints: Sequence[Constraint],
    lookahead: Lookahead,
) -> list[Term]:
    """The ``cost_to_go`` term of a generator-driven planner, or nothing when it is off."""
    if not lookahead.active:
        return []
    to_go = PolicyCostToGo(
        generator, observation_fn, dynamics, task_cost, lookahead.steps, constraints
    )
    return [Term("cost_to_go", to_go, lookahead.weight)]


def check_generator_matches(
    generator: ChunkGenerator, dynamics: Dynamics, config: SamplingConfig
) -> None:
    """Raise a clear error when generator, dynamics and planner disagree on shapes."""
    if generator.nu != dynamics.nu:
        raise ValueError(
            f"the generator proposes actions of size {generator.nu} but the dynamics takes "
            f"nu={dynamics.nu}; train the generator on this robot's actions."
        )
    if generator.horizon != config.horizon:
        raise ValueError(
            f"the generator's chunks are {generator.horizon} steps long but the planner's "
            f"horizon is {config.horizon}; set horizon={generator.horizon} in the config."
        )


class IMLEPolicy:
    """The generator alone, no model and no MPC: IMLE Policy as a controller (a baseline).

    Every ``action_horizon`` steps it draws ``num_samples`` chunks and keeps the
    one closest to the still-unexecuted rest of the previous chunk (the paper's
    consistency trick, aligned correctly: after ``k`` executed steps the new
    chunk's steps ``0..H-k-1`` are compared with the old chunk's ``k..H-1``);
    in between it plays the chunk open loop.

    Args:
        generator: trained ``ChunkGenerator``.
        observation_fn: state -> observation (as in training).
        num_samples: chunks drawn per decision.
        action_horizon: steps executed from each chunk before re-sampling.
        seed: seed of the latent draws.

    ``thread_policy`` (default one Numba and one torch thread per step) is the
    threads a step may use (``imle_mpc.core.threads``).
    """

    thread_policy: ThreadPolicy = PLANNING_THREADS

    def __init__(
        self,
        generator: ChunkGenerator,
        observation_fn: ObservationFn,
        num_samples: int = 16,
        action_horizon: int = 8,
        seed: int = 0,
    ) -> None:
        require_int_at_least("IMLEPolicy", "num_samples", num_samples, 1)
        self.player = ChunkPlayer("IMLEPolicy", action_horizon, generator.horizon)
        self.generator = generator
        self.num_samples = num_samples
        self.seed = seed
        self.history = ObservationHistory(generator.obs_horizon, generator.obs_dim, observation_fn)
        self.reset(seed)

    @property
    def horizon(self) -> int:
        """H, the generator's chunk length."""
        return self.generator.horizon

    @property
    def action_horizon(self) -> int:
        """Steps executed from each chunk before re-sampling."""
        return self.player.action_horizon

    def reset(self, seed: int | None = None) -> None:
        """Re-seed the latent draws (``None``: the configured seed), forget history and chunk."""
        self._rng = np.random.default_rng(self.seed if seed is None else seed)
        self.history.clear()
        self.player.reset()

    @under_thread_policy
    def plan(self, state: FloatArray) -> PlanResult:
        """Observe ``state``; re-sample when the chunk is played out; the chunk's rest."""
        t0 = time.perf_counter()
        self.history.observe(state)
        if self.player.due:
            chunks = self.generator.sample(self.history.array, self.num_samples, self._rng)
            self.player.load(chunks[self._closest_to_previous(chunks)].copy())
        actions = self.player.next_plan()
        elapsed = time.perf_counter() - t0
        return PlanResult(
            actions=actions, cost=float("nan"), term_costs={}, num_feasible=self.num_samples,
            best_index=0, predicted_states=np.empty((0, 0)), timings={"total": elapsed},
        )  # fmt: skip

    def _closest_to_previous(self, chunks: FloatArray) -> int:
        previous = self.player.chunk
        if previous is None:
            return 0
        k = self.player.executed
        overlap = chunks.shape[1] - k
        diff = chunks[:, :overlap] - previous[None, k:]
        return int(np.argmin(np.einsum("khj,khj->k", diff, diff)))


__all__ = [
    "IMLEMPC",
    "ArgminSelection",
    "ConsistencyCost",
    "EliteRefit",
    "IMLEMPCConfig",
    "IMLEPolicy",
    "IMLEProposals",
    "IMLESampler",
    "LatentCEMSampler",
    "LatentIMLEMPC",
    "LatentPlanConfig",
    "Lookahead",
    "ModeAwareSelector",
    "ModeSoftmaxSelection",
    "ObservationFn",
    "ObservationHistory",
    "PlanReference",
    "SoftmaxRefit",
    "check_generator_matches",
    "cost_to_go_terms",
]
