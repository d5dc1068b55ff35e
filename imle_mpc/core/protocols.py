"""The contracts between the parts of a planner. Shapes are the contract.

K is the number of samples, H the horizon, nx/nu the state/action sizes.
All arrays are float64. Anything with the right methods and shapes plugs in:
a user's class, a Numba model, a MuJoCo or Pinocchio backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np

from imle_mpc.core.plan_result import PlanResult

Array = np.ndarray


@runtime_checkable
class Dynamics(Protocol):
    """A batched, deterministic model ``x_{t+1} = f(x_t, u_t)``."""

    @property
    def nx(self) -> int: ...

    @property
    def nu(self) -> int: ...

    @property
    def dt(self) -> float:
        """Seconds of simulated time per step."""
        ...

    @property
    def action_low(self) -> Array:
        """Lower actuator bound, Shape=(nu,) (may be -inf)."""
        ...

    @property
    def action_high(self) -> Array:
        """Upper actuator bound, Shape=(nu,) (may be +inf)."""
        ...

    def rollout(self, x0: Array, U: Array, out: Array | None = None) -> Array:
        """Simulate every action sequence from ``x0``.

        Args:
            x0: initial state, Shape=(nx,).
            U: action sequences, Shape=(K, H, nu).
            out: optional preallocated result, Shape=(K, H+1, nx).

        Returns:
            States, Shape=(K, H+1, nx), with ``X[:, 0] == x0``.
        """
        ...


class CostTerm(Protocol):
    """One cost over a batch of trajectories: ``term(X, U) -> (K,)``.

    X Shape=(K, H+1, nx), U Shape=(K, H, nu). A plain function with that
    signature is a CostTerm; so is an ``@njit`` function.
    """

    def __call__(self, X: Array, U: Array) -> Array: ...


class Constraint(Protocol):
    """A constraint over a batch: ``violation(X, U) -> (K,)``, 0 where satisfied, > 0 otherwise."""

    @property
    def name(self) -> str:
        """Shown in logs and fallback reports."""
        ...

    def violation(self, X: Array, U: Array) -> Array: ...


class ProposalSampler(Protocol):
    """Produces candidate action sequences around (or regardless of) a nominal plan."""

    def propose(
        self,
        state: Array,
        nominal: Array,
        rng: np.random.Generator,
        out: Array,
    ) -> Array:
        """Fill ``out`` Shape=(K, H, nu) with proposals and return it.

        Args:
            state: current state, Shape=(nx,).
            nominal: warm-start plan, Shape=(H, nu). Row 0 of ``out`` should be
                the nominal so the warm start is always re-scored.
            rng: the planner's generator; the only source of randomness.
            out: preallocated proposals buffer, Shape=(K, H, nu).
        """
        ...

    def update(self, U: Array, costs: Array) -> None:
        """Adapt the sampling distribution from scored samples (no-op if not adaptive)."""
        ...

    def start_step(self, state: Array) -> None:
        """Called once per control step, before the first ``propose``, with the measured state.

        Adaptive samplers restore their initial spread here; history-conditioned
        ones (IMLE) record the new observation.
        """
        ...

    def reset(self) -> None:
        """Forget everything of the episode (history, adapted state): a new episode starts."""
        ...


class Selector(Protocol):
    """Turns scored samples into a plan."""

    def select(self, U: Array, costs: Array, out: Array) -> int:
        """Write the plan Shape=(H, nu) into ``out``; return the best sample's index.

        Returns -1 (and leaves ``out`` alone) when no sample is feasible.
        """
        ...


@runtime_checkable
class ChunkGenerator(Protocol):
    """A trained generator of action chunks, conditioned on an observation history.

    ``sample`` draws latents from the caller's RNG and decodes ALL of them in
    one batched forward pass. ``decode`` maps given latents, so a planner can
    search the (bounded) latent space instead of raw actions.
    """

    @property
    def horizon(self) -> int:
        """H, steps per chunk."""
        ...

    @property
    def nu(self) -> int: ...

    @property
    def obs_horizon(self) -> int:
        """How many past observations the generator is conditioned on."""
        ...

    @property
    def obs_dim(self) -> int: ...

    @property
    def latent_dim(self) -> int: ...

    def sample(self, obs_history: Array, n: int, rng: np.random.Generator) -> Array:
        """Draw ``n`` chunks Shape=(n, H, nu) (float64, un-normalised actions).

        Args:
            obs_history: Shape=(obs_horizon, obs_dim), oldest first.
            n: number of chunks.
            rng: source of the latents.
        """
        ...

    def decode(self, obs_history: Array, z: Array) -> Array:
        """Chunks Shape=(n, H, nu) for latents ``z`` Shape=(n, latent_dim)."""
        ...


class Planner(Protocol):
    """Anything that maps a measured state to a plan."""

    @property
    def horizon(self) -> int: ...

    def plan(self, state: Array) -> PlanResult:
        """Plan from the measured state ``Shape=(nx,)``."""
        ...

    def reset(self, seed: int | None = None) -> None:
        """Drop the warm start and re-seed the planner's RNG."""
        ...


CostBreakdown = Mapping[str, Array]
