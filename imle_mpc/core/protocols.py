"""The contracts between the parts of a planner. Shapes are the contract.

K is the number of samples, H the horizon, nx/nu the state/action sizes.
All arrays are float64. Anything with the right methods and shapes plugs in:
a user's class, a Numba model, a MuJoCo or Pinocchio backend.

Optional capabilities are small ``@runtime_checkable`` protocols of their own
(``UncheckedRollout``, ``MultiStartRollout``, ``StepModel``, ``ScalableParameters``,
``MemberModels``, ``MemberRollout``, ``ParameterRows``, ``Linearizable``,
``ReferenceSampler``, ``ReferenceCost``, ``ReturnsSample``,
``ChunkDecoder``, ``ChunkSchedule``, ``BoundedLatent``, ``ChunkDensity``,
``NominalSettable``, ``BatchObservation``): a caller asks
``isinstance(x, Capability)`` and takes the plain path otherwise. A class may
also name them as bases to declare them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from imle_mpc.core.plan_reference import PlanReference
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


@runtime_checkable
class UncheckedRollout(Protocol):
    """A model with a ``rollout`` that skips validation (for callers that validated once).

    Planners and the guard check shapes once up front and then call this in the
    hot loop; a model without it is called through ``Dynamics.rollout``.
    """

    def rollout_unchecked(self, x0: Array, U: Array, out: Array) -> Array:
        """``Dynamics.rollout`` without shape or dtype checks.

        Args:
            x0: initial state, Shape=(nx,), float64, C-contiguous.
            U: action sequences, Shape=(K, H, nu), float64, C-contiguous.
            out: the result buffer, Shape=(K, H+1, nx).

        Returns:
            ``out``, with ``out[:, 0] == x0``.
        """
        ...


@runtime_checkable
class MultiStartRollout(Protocol):
    """A model that rolls many action sequences out, each from its own start state."""

    def rollout_from_states(self, X0: Array, U: Array, out: Array | None = None) -> Array:
        """Simulate action sequence ``k`` from ``X0[k]`` in one batched call.

        Args:
            X0: initial states, Shape=(K, nx). A NaN row gives a NaN rollout.
            U: action sequences, Shape=(K, H, nu).
            out: optional preallocated result, Shape=(K, H+1, nx).

        Returns:
            States, Shape=(K, H+1, nx), with ``X[:, 0] == X0``.
        """
        ...


@runtime_checkable
class StepModel(Protocol):
    """A model whose rollout is a Numba single-step function iterated (the fused fast path).

    ``step_function`` is an ``@njit`` ``step(x Shape=(nx,), u Shape=(nu,),
    params Shape=(P,), out Shape=(nx,)) -> None``; ``params_vector()`` gives the
    parameters it is called with. A sampling planner fuses the step into one
    kernel with the proposals and the cost terms (``imle_mpc.core.kernels.fused``).
    """

    @property
    def step_function(self) -> Any:
        """The ``@njit`` step ``(x, u, params, out) -> None``; None: no fast path."""
        ...

    def params_vector(self) -> Array:
        """The step function's parameters, Shape=(P,), float64."""
        ...


@runtime_checkable
class LaneStepModel(Protocol):
    """A ``StepModel`` whose step also comes for a block of samples, lane last (packed code).

    ``lane_step_function`` is an ``@njit`` ``lane_step(X Shape=(nx, L), U Shape=(nu, L),
    params Shape=(P,), out Shape=(nx, L)) -> None`` doing ``step_function`` for every
    lane, each lane's arithmetic in the step's order (so results agree to the bit), in
    loops over the lanes with no branch or call where it can (those LLVM packs). With it
    the fused kernel runs lane-major blocks (``imle_mpc.core.kernels.lanes``).
    """

    @property
    def lane_step_function(self) -> Any:
        """The ``@njit`` lane step ``(X, U, params, out) -> None``; None: per sample."""
        ...


@runtime_checkable
class ScalableParameters(Protocol):
    """A model that copies itself with named physical parameters scaled (a mismatched plant).

    ``imle_mpc.loop.faults.mismatched_model`` uses it for the fault ``model_mismatch``
    (dataclass models need none: their fields are scaled). ``MujocoDynamics``
    names MuJoCo's model arrays, e.g. ``body_mass:block``.
    """

    def with_scaled_parameters(self, scales: Mapping[str, float]) -> Dynamics:
        """A new model with each named parameter times its factor; ``self`` unchanged.

        Raises:
            InputError: a name the model does not have (the message lists what it has).
        """
        ...


@runtime_checkable
class MemberRollout(Protocol):
    """M copies of a model with different parameters, rolling the same K sequences out on each.

    Made by ``dynamics.ensemble.ModelEnsemble.build``; member 0 is the nominal model.
    """

    @property
    def members(self) -> int:
        """M, the number of models (member 0 the nominal)."""
        ...

    @property
    def scales(self) -> tuple[Mapping[str, float], ...]:
        """Each member's parameter factors against the nominal (member 0: all 1)."""
        ...

    def rollout_members(self, x0: Array, U: Array, out: Array) -> Array:
        """Roll every sequence out on every member, in one batch.

        Args:
            x0: initial state, Shape=(nx,), float64, C-contiguous (not checked).
            U: action sequences, Shape=(K, H, nu), float64, C-contiguous (not checked).
            out: the result, Shape=(M, K, H+1, nx), C-contiguous: ``out[m]`` is member m's.

        Returns:
            ``out``.
        """
        ...


@runtime_checkable
class ParameterRows(Protocol):
    """A ``MemberRollout`` of an analytic model: one step function, a row of parameters each.

    The sampling planner's fused kernel steps member ``m`` with ``parameter_rows[m]``.
    """

    @property
    def parameter_rows(self) -> Array:
        """The members' ``params_vector`` rows, Shape=(M, P), float64."""
        ...


@runtime_checkable
class MemberModels(Protocol):
    """A model that builds its own ensemble members (``MujocoDynamics``: copied ``MjModel`` s
    in its rollout pool); dataclass models need none (their fields are scaled)."""

    def member_rollout(self, scales: Sequence[Mapping[str, float]]) -> MemberRollout:
        """Members with each named parameter times its factor, one member per mapping.

        Raises:
            InputError: a name the model does not have (the message lists what it has).
        """
        ...


@runtime_checkable
class Linearizable(Protocol):
    """A model that gives the Jacobians of one of its steps itself (better than differencing
    its rollout: ``MujocoDynamics`` uses MuJoCo's own ``mjd_transitionFD``).

    ``dynamics.linearize.linearize`` uses it and differences ``rollout`` otherwise.
    """

    def linearize(self, x: Array, u: Array, eps: float = 1e-6) -> tuple[Array, Array]:
        """``(A, B)`` of ``x_next = f(x, u)`` at ``(x, u)``: A Shape=(nx, nx), B Shape=(nx, nu).

        Args:
            x: state, Shape=(nx,).
            u: action, Shape=(nu,), held for the whole step.
            eps: finite-difference step (where the model differences numerically).

        Raises:
            InputError: the model's state is not a vector space the Jacobians can act on
                (the message says why and what to do).
        """
        ...


RolloutFn = Callable[[Array, Array, Array], Array]
"""``rollout(x0 Shape=(nx,), U Shape=(K, H, nu), out Shape=(K, H+1, nx)) -> out``."""


def fast_rollout(dynamics: Dynamics) -> RolloutFn:
    """The model's ``rollout_unchecked`` if it has one (``UncheckedRollout``), else ``rollout``."""
    if isinstance(dynamics, UncheckedRollout):
        return dynamics.rollout_unchecked
    return dynamics.rollout


class CostTerm(Protocol):
    """One cost over a batch of trajectories: ``term(X, U) -> (K,)``.

    X Shape=(K, H+1, nx), U Shape=(K, H, nu). A plain function with that
    signature is a CostTerm; so is an ``@njit`` function.
    """

    def __call__(self, X: Array, U: Array) -> Array: ...


@runtime_checkable
class ReferenceCost(Protocol):
    """A cost term that also reads the step's ``PlanReference`` (the consistency term)."""

    def with_reference(self, X: Array, U: Array, reference: PlanReference | None) -> Array:
        """Cost Shape=(K,) of X Shape=(K, H+1, nx), U Shape=(K, H, nu) against ``reference``.

        ``reference`` is None where no sampler made one (then the term is 0).
        """
        ...


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

        A planner that searches spline knots (``planners.knots``) passes knots
        instead: ``nominal`` Shape=(M, nu), ``out`` Shape=(K, M, nu); it expands them.

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


@runtime_checkable
class ReferenceSampler(Protocol):
    """A sampler that says what the step's proposals are to be compared with."""

    def reference(self, nominal: Array) -> PlanReference:
        """The step's reference, made right after ``propose`` with the same ``nominal``.

        Args:
            nominal: the warm start ``propose`` was given, Shape=(H, nu) (copied).
        """
        ...


class Selector(Protocol):
    """Turns scored samples into a plan."""

    def select(self, U: Array, costs: Array, out: Array) -> int:
        """Write the plan Shape=(H, nu) into ``out``; return the best sample's index.

        Returns -1 (and leaves ``out`` alone) when no sample is feasible.
        """
        ...


@runtime_checkable
class ReturnsSample(Protocol):
    """A selector that declares whether the plan it writes is the best sample itself.

    With ``returns_sample`` True (argmin) the planner reuses that sample's
    rollout Shape=(H+1, nx) and costs; otherwise (an average of samples, or a
    selector that does not declare it) the plan Shape=(H, nu) is rolled out
    and scored once more on its own.
    """

    returns_sample: bool
    """True when ``select`` writes ``U[best]`` into ``out``."""


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


@runtime_checkable
class BoundedLatent(Protocol):
    """A generator whose latent prior is uniform on a box that decodes into the data's support.

    Every latent in ``[-latent_bound, latent_bound]^latent_dim`` decodes to a chunk
    inside the demonstrations' action range (a normalizing flow over a bounded
    base, ``imle_mpc.learn.flow.ChunkFlow``), so a planner searching that box
    needs no hand-tuned clipping: every candidate is in support by construction.
    """

    @property
    def latent_bound(self) -> float:
        """Half-width of the latent box."""
        ...


@runtime_checkable
class ChunkDensity(Protocol):
    """How likely action chunks are under the demonstrations, given an observation history.

    ``log_prob`` is an exact log-density (a normalizing flow's change of variables):
    higher is more typical of the demonstrations. ``cost.density`` turns it into a
    cost term and a constraint; those live below the learning code and see only this.
    """

    @property
    def obs_horizon(self) -> int:
        """How many past observations the density is conditioned on."""
        ...

    @property
    def obs_dim(self) -> int: ...

    def log_prob(self, obs_history: Array, U: Array) -> Array:
        """Log-density Shape=(K,) of each chunk (raw action units; -inf outside the support).

        Args:
            obs_history: Shape=(obs_horizon, obs_dim), oldest first, shared by all chunks;
                or Shape=(K, obs_horizon, obs_dim), one history per chunk.
            U: chunks, Shape=(K, H, nu).
        """
        ...


@runtime_checkable
class BatchObservation(Protocol):
    """An observation function that also maps many states in one call.

    An observation function is called per state, ``obs(x Shape=(nx,)) ->
    Shape=(obs_dim,)``; one that declares this capability is handed a whole
    batch where there is one (the lookahead's continuations).
    """

    def __call__(self, state: Array) -> Array:
        """The observation of one state, Shape=(nx,) -> Shape=(obs_dim,)."""
        ...

    def observe_batch(self, states: Array) -> Array:
        """The observations of states Shape=(N, nx) -> Shape=(N, obs_dim)."""
        ...


@runtime_checkable
class ChunkDecoder(Protocol):
    """A generator that decodes latents under many observation histories in one pass."""

    def decode_batch(self, obs_histories: Array, z: Array) -> Array:
        """Chunks for latents ``z`` under ``B`` histories.

        Args:
            obs_histories: Shape=(B, obs_horizon, obs_dim), oldest first.
            z: latents, Shape=(B, n, latent_dim): group ``b`` is decoded under history ``b``.

        Returns:
            Chunks Shape=(B, n, H, nu), float64.
        """
        ...


@runtime_checkable
class ChunkSchedule(Protocol):
    """A generator that says how much of each chunk is meant to be executed."""

    @property
    def action_horizon(self) -> int:
        """Steps of a chunk (Shape=(H, nu)) executed before re-planning, 1 <= it <= H."""
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


@runtime_checkable
class NominalSettable(Protocol):
    """A planner whose warm start can be replaced from outside (a guard, a refiner)."""

    def set_nominal(self, plan: Array) -> None:
        """Make ``plan`` Shape=(H, nu) the warm start of the next ``plan`` call.

        Raises:
            ValueError: ``plan`` does not have the planner's Shape=(H, nu).
        """
        ...


CostBreakdown = Mapping[str, Array]
