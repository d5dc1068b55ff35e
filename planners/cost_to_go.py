"""A terminal cost that looks past the horizon by following the learned policy.

A sampling MPC with a short horizon and a goal cost is greedy: where the
straight way to the goal is a dead end (a cup that opens toward the robot),
every horizon the planner can afford sees the dead end as progress, and it
drives in. Demonstrations know better, and the generator learned from them is
a policy that knows the way around. ``PolicyCostToGo`` charges each candidate
what the task cost would be if, after the candidate's last step, the robot
followed the generator for ``steps`` more steps on the planner's model. A
candidate that leaves the demonstrated route ends where the generator has
never been (its continuation goes nowhere useful) and is charged for it; a
candidate that keeps to the route is charged what is left of the route.

This is the demonstrations used as a value function, in the one place where
the model alone cannot help: beyond the horizon. Inside the horizon the model,
the cost and the constraints still decide (precision and safety).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import numpy as np

from cost.composite import CostSum, Term
from cost.constraints import Penalty, constraint_name, split_constraints
from imle_mpc.core.kernels.compare import all_finite
from imle_mpc.core.protocols import (
    BatchObservation,
    ChunkDecoder,
    ChunkGenerator,
    ChunkSchedule,
    Constraint,
    Dynamics,
    MultiStartRollout,
)
from imle_mpc.core.validation import FloatArray, require_int_at_least, require_non_negative

ObservationFn = Callable[[FloatArray], FloatArray]


class PolicyCostToGo:
    """Task cost of following the generator for ``steps`` steps from each rollout's end.

    The continuation is closed-loop like ``IMLEPolicy``: from the last
    ``obs_horizon`` predicted states of every candidate, one batched forward
    pass gives a chunk per candidate; its first ``action_horizon`` actions
    (clipped to the actuator box) are rolled out on the model; repeat until
    ``steps`` steps are covered. All candidates share the zero latent (the
    mode of the latent prior): the continuation is deterministic, and the
    candidates differ only by where they end, not by the noise of their tail.

    Args:
        generator: the trained ``ChunkGenerator`` (its ``decode_batch`` is used).
        observation_fn: state -> observation, the one the generator was trained with:
            ``obs(x Shape=(nx,)) -> Shape=(obs_dim,)``, called once per state; one that
            declares ``BatchObservation`` gets all states of a step in one call.
        dynamics: the planner's model.
        cost: the task cost ``fn(X, U) -> (K,)`` applied to the continuation
            (without the planner's consistency term).
        steps: length of the continuation in control steps (>= 1).
        constraints: the planner's constraints. A continuation that breaks a
            hard one is charged ``violation_weight`` per unit of violation; a
            soft one adds its own penalty term. Without this the value is
            optimistic: the generator does not know about the obstacles, and a
            continuation that drives through a wall would look cheap.
        violation_weight: price of one unit of hard-constraint violation.

    Calling it with ``X`` Shape=(K, H+1, nx) and ``U`` returns Shape=(K,).
    Continuations that leave the model's valid region (NaN) cost +inf.
    """

    def __init__(
        self,
        generator: ChunkGenerator,
        observation_fn: ObservationFn,
        dynamics: Dynamics,
        cost: Callable[[FloatArray, FloatArray], FloatArray],
        steps: int,
        constraints: Sequence[Constraint] = (),
        violation_weight: float = 1e4,
    ) -> None:
        require_int_at_least("PolicyCostToGo", "steps", steps, 1)
        require_non_negative("PolicyCostToGo", "violation_weight", violation_weight)
        if not isinstance(generator, ChunkDecoder):
            raise TypeError(
                "PolicyCostToGo needs a generator with decode_batch(obs_histories, z) "
                "(imle_mpc.learn.imle.IMLEGenerator has it)."
            )
        self.generator = generator
        self._decoder: ChunkDecoder = generator
        self.observation_fn = observation_fn
        self.dynamics = dynamics
        hard, soft = split_constraints(constraints)
        penalties = [Term(f"hard:{constraint_name(c)}", Penalty(c), violation_weight) for c in hard]
        self.cost = CostSum(Term("task", cost), *penalties, *soft) if constraints else cost
        self.steps = int(steps)
        schedule = generator.action_horizon if isinstance(generator, ChunkSchedule) else None
        self._chunk_steps = int(generator.horizon if schedule is None else schedule)
        self._low = np.asarray(dynamics.action_low, dtype=np.float64)
        self._high = np.asarray(dynamics.action_high, dtype=np.float64)
        self._zero_latent = np.zeros((1, 1, generator.latent_dim))
        # A Protocol isinstance check costs tens of microseconds: once per object, not
        # 8 times a plan (the attributes are public, so the answer is kept per object).
        self._declares: dict[type, tuple[object, bool]] = {}

    def continuation(self, X: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The policy's continuation from each rollout's end: ``(states, actions)``.

        Args:
            X: predicted states, Shape=(K, T, nx) with T >= 1.

        Returns:
            States Shape=(K, steps+1, nx) (the first is ``X[:, -1]``) and actions
            Shape=(K, steps, nu).
        """
        K, nx = X.shape[0], X.shape[2]
        oh = self.generator.obs_horizon
        # path = the last obs_horizon - 1 predicted states, then the continuation; a
        # rollout shorter than that is padded by repeating its first state (as in training).
        lead = X[:, -oh:-1] if oh > 1 else X[:, :0]
        if lead.shape[1] < oh - 1:
            pad = np.repeat(X[:, :1], oh - 1 - lead.shape[1], axis=1)
            lead = np.concatenate([pad, lead], axis=1)
        path = np.empty((K, oh - 1 + self.steps + 1, nx))
        path[:, : oh - 1] = lead
        path[:, oh - 1] = X[:, -1]
        actions = np.empty((K, self.steps, self.dynamics.nu))
        z = np.broadcast_to(self._zero_latent, (K, 1, self._zero_latent.shape[-1]))
        done = 0
        while done < self.steps:
            n = min(self._chunk_steps, self.steps - done)
            history = self._observe(path[:, done : done + oh])
            # the per-row masks only when some row diverged (one compiled check otherwise)
            finite = None if all_finite(history) else np.all(np.isfinite(history), axis=(1, 2))
            if finite is not None:
                history = np.where(finite[:, None, None], history, 0.0)
            chunk = self._decoder.decode_batch(history, z)[:, 0, :n]
            np.clip(chunk, self._low, self._high, out=chunk)
            if finite is not None:
                chunk[~finite] = np.nan  # a diverged candidate's continuation stays diverged
            actions[:, done : done + n] = chunk
            now = oh - 1 + done
            path[:, now : now + n + 1] = self._rollout_from(path[:, now], chunk)
            done += n
        return np.ascontiguousarray(path[:, oh - 1 :]), actions

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        states, actions = self.continuation(np.asarray(X, dtype=np.float64))
        values = np.asarray(self.cost(states, actions), dtype=np.float64)
        return np.where(np.isfinite(values), values, np.inf)

    def _rollout_from(self, starts: FloatArray, chunk: FloatArray) -> FloatArray:
        """Roll chunk ``k`` out from ``starts[k]``: Shape=(K, n+1, nx); NaN rows stay NaN."""
        every = all_finite(starts) and all_finite(chunk)  # the per-row mask only if not
        ok = (
            np.ones(starts.shape[0], dtype=bool)
            if every
            else np.all(np.isfinite(starts), axis=1) & np.all(np.isfinite(chunk), axis=(1, 2))
        )
        dynamics = self.dynamics
        if self._declared(dynamics, MultiStartRollout):
            out = np.asarray(cast(MultiStartRollout, dynamics).rollout_from_states(starts, chunk))
        else:  # Dynamics.rollout fans out from ONE state: one call per candidate
            out = np.empty((chunk.shape[0], chunk.shape[1] + 1, starts.shape[1]))
            for k in np.flatnonzero(ok):
                out[k] = self.dynamics.rollout(starts[k], chunk[k : k + 1])[0]
        if not every:
            out[~ok] = np.nan
        return out

    def _declared(self, obj: object, protocol: type) -> bool:
        """``isinstance(obj, protocol)``, remembered until another object is asked about."""
        seen = self._declares.get(protocol)
        if seen is None or seen[0] is not obj:
            seen = (obj, isinstance(obj, protocol))
            self._declares[protocol] = seen
        return seen[1]

    def _observe(self, states: FloatArray) -> FloatArray:
        """Observations of states Shape=(K, T, nx) -> Shape=(K, T, obs_dim).

        One call per state, as documented for an observation function, unless it
        declares ``BatchObservation`` (then one call for all of them).
        """
        K, T, nx = states.shape
        flat = states.reshape(K * T, nx)
        fn = self.observation_fn
        if self._declared(fn, BatchObservation):
            obs = np.asarray(cast(BatchObservation, fn).observe_batch(flat), dtype=np.float64)
        else:
            obs = np.stack([np.asarray(fn(s), dtype=np.float64) for s in flat])
        if obs.ndim != 2 or obs.shape[0] != K * T:
            raise ValueError(
                f"the observation function gave Shape={obs.shape} for {K * T} states; it must "
                "give one observation vector per state (obs(x Shape=(nx,)) -> (obs_dim,))."
            )
        return obs.reshape(K, T, -1)
