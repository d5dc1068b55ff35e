"""N copies of a ``Dynamics`` model as one Gymnasium vector environment.

``BatchedDynamicsEnv`` is ``DynamicsEnv`` for N environments at once: the N states are
one array and a step is ONE call for all of them, a parallel Numba kernel over the N
environments for a ``StepModel`` (the analytic models), or the model's
``rollout_from_states`` for one step of N start states otherwise (``MujocoDynamics``'s
rollout pool). It follows Gymnasium's ``VectorEnv`` API, with these choices:

* Autoreset: ``AutoresetMode.SAME_STEP`` (``metadata["autoreset_mode"]``). An environment
  whose episode ends is reset within the same ``step``: the returned observation is its
  new start, ``info["final_obs"]`` Shape=(N, nx) holds every environment's state after
  the step (before any reset; the row of an environment that goes on equals its
  observation) and ``info["_final_obs"]`` Shape=(N,) says which ended. The reward,
  ``terminated`` and ``truncated`` are those of the finished step, so an on-policy
  learner bootstraps truncated episodes from ``final_obs`` without an extra step.
* Seeding as ``SyncVectorEnv``: ``reset(seed=s)`` seeds environment ``i`` with ``s + i``
  (a list gives one seed each; None draws fresh entropy on the first reset and keeps the
  streams after); each environment has its own ``np.random.Generator`` (Gymnasium's
  ``seeding.np_random``, as ``Env.reset`` makes it), which draws its starts, autoresets
  included, so environment ``i`` replays exactly ``DynamicsEnv`` seeded with ``s + i``.
* Actions Shape=(N, nu) are clipped to the actuator box (a motor saturates); an action
  that is not finite is refused (``ValueError`` naming the environments), as by
  ``DynamicsEnv``. A state that stops being finite terminates its environment.
* ``info["constraint_violation"]`` Shape=(N, C): each constraint's
  ``violation(X Shape=(N, 2, nx), U Shape=(N, 1, nu))`` on the step's transition
  ``(x_t, x_t+1)``, ``info["unsafe"]`` Shape=(N,) whether any is positive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numba as nb
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.typing import ArrayLike

from imle_mpc.core.kernels.rollout import inline_copy
from imle_mpc.core.protocols import Dynamics, MultiStartRollout, StepModel
from imle_mpc.core.validation import FloatArray, check_state, require_int_at_least

InitialState = ArrayLike | Callable[[np.random.Generator], ArrayLike]
"""A start state Shape=(nx,), or ``fn(rng) -> state`` drawn from each environment's RNG."""

BatchReward = Callable[[FloatArray, FloatArray, FloatArray], ArrayLike]
"""``reward(X Shape=(N, nx), U Shape=(N, nu), X_next Shape=(N, nx)) -> Shape=(N,)``."""

BatchTerminate = Callable[[FloatArray], ArrayLike]
"""``terminate(X_next Shape=(N, nx)) -> Shape=(N,)`` booleans (e.g. a crash)."""

_KERNELS: dict[Any, Any] = {}


def batched_step_kernel(step: Any) -> Any:
    """``kernel(X, U, low, high, params, U_clipped, X_next, finite)`` for a step function.

    For every environment ``i`` in parallel: ``U_clipped[i] = clip(U[i], low, high)``,
    ``X_next[i] = step(X[i], U_clipped[i])`` and ``finite[i]`` whether ``X_next[i]`` is
    finite. One kernel per step function (cached), so every instance of a model class
    shares one compilation.
    """
    if step not in _KERNELS:
        step_fn = inline_copy(step)

        # error_model="numpy": a division by zero gives inf/NaN (the env then terminates).
        @nb.njit(parallel=True, error_model="numpy")
        def kernel(X, U, low, high, params, U_clipped, X_next, finite):  # pragma: no cover
            for i in nb.prange(X.shape[0]):
                for j in range(U.shape[1]):
                    # min(max(.)) is np.clip's order, so the plant sees the same action.
                    U_clipped[i, j] = min(max(U[i, j], low[j]), high[j])
                step_fn(X[i], U_clipped[i], params, X_next[i])
                ok = True
                for j in range(X_next.shape[1]):
                    if not np.isfinite(X_next[i, j]):
                        ok = False
                finite[i] = ok

        _KERNELS[step] = kernel
    return _KERNELS[step]


class BatchedDynamicsEnv(VectorEnv[FloatArray, FloatArray, FloatArray]):
    """``num_envs`` copies of a ``Dynamics`` model, stepped in one call (see the module).

    Args:
        dynamics: a ``StepModel`` (one parallel Numba kernel a step) or a
            ``MultiStartRollout`` model (one ``rollout_from_states`` call a step).
        num_envs: N, the number of environments.
        initial_state: a start Shape=(nx,), or ``fn(rng) -> state`` called with each
            environment's own generator at each of its resets.
        max_episode_steps: episodes are truncated after this many steps (as
            ``gymnasium.wrappers.TimeLimit``); None: never.
        reward: vectorised ``reward(X, U, X_next) -> (N,)`` (``BatchReward``; U clipped);
            None: 0.
        terminate: vectorised ``terminate(X_next) -> (N,)`` bools; None: only a state that
            is not finite terminates.
        constraints: objects with ``violation(X Shape=(N, 2, nx), U Shape=(N, 1, nu)) ->
            (N,)`` (``cost.constraints``, a task's ``safety``), reported in ``info``.
    """

    metadata: dict[str, Any] = {  # noqa: RUF012 (Gymnasium API)
        "autoreset_mode": AutoresetMode.SAME_STEP,
        "render_modes": [],
    }

    def __init__(
        self,
        dynamics: Dynamics,
        num_envs: int,
        initial_state: InitialState,
        *,
        max_episode_steps: int | None = None,
        reward: BatchReward | None = None,
        terminate: BatchTerminate | None = None,
        constraints: Sequence[Any] = (),
    ) -> None:
        require_int_at_least("BatchedDynamicsEnv", "num_envs", num_envs, 1)
        if max_episode_steps is not None:
            require_int_at_least("BatchedDynamicsEnv", "max_episode_steps", max_episode_steps, 1)
        step = getattr(dynamics, "step_function", None) if isinstance(dynamics, StepModel) else None
        if step is None and not isinstance(dynamics, MultiStartRollout):
            raise TypeError(
                f"BatchedDynamicsEnv needs a StepModel (a Numba step function) or a "
                f"MultiStartRollout model (rollout_from_states); {type(dynamics).__name__} "
                "is neither. Use gymnasium.vector.SyncVectorEnv over DynamicsEnv instead."
            )
        self.dynamics = dynamics
        self.num_envs = num_envs
        self.autoreset_mode = AutoresetMode.SAME_STEP
        self._kernel = batched_step_kernel(step) if step is not None else None
        self._initial_state = initial_state
        self._max_steps = max_episode_steps
        self._reward = reward
        self._terminate = terminate
        self.constraints = tuple(constraints)
        nx, nu = dynamics.nx, dynamics.nu
        self._low = np.ascontiguousarray(dynamics.action_low, dtype=np.float64)
        self._high = np.ascontiguousarray(dynamics.action_high, dtype=np.float64)
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (nx,), np.float64)
        self.single_action_space = gym.spaces.Box(self._low, self._high, dtype=np.float64)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rngs: list[np.random.Generator | None] = [None] * num_envs
        self._x = np.zeros((num_envs, nx))
        self._x_next = np.zeros((num_envs, nx))
        self._u = np.zeros((num_envs, nu))
        self._finite = np.ones(num_envs, dtype=np.bool_)
        self._t = np.zeros(num_envs, dtype=np.int64)
        self._transition = np.zeros((num_envs, 2, nx))

    @property
    def states(self) -> FloatArray:
        """A copy of the N true states, Shape=(N, nx)."""
        return self._x.copy()

    @property
    def episode_steps(self) -> np.ndarray:
        """Steps taken in each environment's current episode, Shape=(N,)."""
        return self._t.copy()

    def _start(self, i: int) -> FloatArray:
        rng = self._rngs[i]
        if rng is None:  # first reset without a seed: fresh entropy, as Env.np_random does
            rng, _ = seeding.np_random()
            self._rngs[i] = rng
        start = self._initial_state
        value = start(rng) if callable(start) else start
        return check_state(value, self.dynamics.nx, "initial_state")

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[FloatArray, dict[str, Any]]:
        """Reset every environment, or those in ``options["reset_mask"]`` Shape=(N,) bool.

        ``seed``: an int seeds environment ``i`` with ``seed + i``; a list, one each (None
        keeps that environment's stream); None keeps the streams (fresh on first use).
        Returns the observations Shape=(N, nx) and an empty info.
        """
        n = self.num_envs
        seeds = (
            [None] * n
            if seed is None
            else [seed + i for i in range(n)]
            if isinstance(seed, int)
            else list(seed)
        )
        if len(seeds) != n:
            raise ValueError(f"reset got {len(seeds)} seeds for num_envs={n}; pass one each.")
        mask = np.ones(n, dtype=np.bool_)
        if options is not None and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (n,) or mask.dtype != np.bool_:
                raise ValueError(
                    f"options['reset_mask'] must be a bool array Shape=({n},), got "
                    f"{mask.dtype} {mask.shape}."
                )
        for i in np.flatnonzero(mask):
            if seeds[i] is not None:
                self._rngs[i], _ = seeding.np_random(seeds[i])
            self._x[i] = self._start(int(i))
            self._t[i] = 0
        return self._x.copy(), {}

    def step(
        self, actions: ArrayLike
    ) -> tuple[FloatArray, FloatArray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every environment once with ``actions`` Shape=(N, nu).

        Returns ``(obs (N, nx), reward (N,), terminated (N,), truncated (N,), info)``;
        finished environments are already reset (SAME_STEP, see the module).
        """
        n, nu = self.num_envs, self.dynamics.nu
        A = np.ascontiguousarray(actions, dtype=np.float64)
        if A.shape != (n, nu):
            raise ValueError(f"actions must have Shape=(num_envs, nu)=({n}, {nu}), got {A.shape}.")
        bad = ~np.isfinite(A).all(axis=1)
        if bad.any():
            raise ValueError(
                f"actions of environments {np.flatnonzero(bad)[:10].tolist()} contain NaN/inf; "
                "the plant refuses them."
            )
        self._advance(A)
        x, u, x_next = self._x, self._u, self._x_next
        # Copies: a reward or test may return a view of x_next, whose rows a reset rewrites.
        reward = (
            np.array(self._reward(x, u, x_next), dtype=np.float64).reshape(n)
            if self._reward is not None
            else np.zeros(n)
        )
        terminated = ~self._finite
        if self._terminate is not None:
            terminated = terminated | np.array(self._terminate(x_next), np.bool_).reshape(n)
        self._t += 1
        truncated = (
            self._t >= self._max_steps if self._max_steps is not None else np.zeros(n, np.bool_)
        )
        info = self._violations(x, u, x_next)
        done = terminated | truncated
        # x_t+1 becomes the state; the finished environments start again (SAME_STEP).
        self._x, self._x_next = x_next, x
        if done.any():
            info["final_obs"] = self._x.copy()
            info["_final_obs"] = done
            for i in np.flatnonzero(done):
                self._x[i] = self._start(int(i))
                self._t[i] = 0
        return self._x.copy(), reward, terminated, truncated, info

    def _advance(self, A: FloatArray) -> None:
        """``self._u`` = clipped ``A``, ``self._x_next`` = one step, ``self._finite``."""
        if self._kernel is not None:
            self._kernel(
                self._x,
                A,
                self._low,
                self._high,
                self.dynamics.params_vector(),  # type: ignore[attr-defined]
                self._u,
                self._x_next,
                self._finite,
            )
            return
        np.clip(A, self._low, self._high, out=self._u)
        X = self.dynamics.rollout_from_states(self._x, self._u[:, None, :])  # type: ignore[attr-defined]
        self._x_next[:] = X[:, 1]
        self._finite[:] = np.isfinite(self._x_next).all(axis=1)

    def _violations(self, x: FloatArray, u: FloatArray, x_next: FloatArray) -> dict[str, Any]:
        """Each constraint on the transitions (x_t, x_t+1): ``constraint_violation``, ``unsafe``."""
        if not self.constraints:
            return {}
        self._transition[:, 0] = x
        self._transition[:, 1] = x_next
        U1 = u[:, None, :]
        v = np.stack(
            [np.asarray(c.violation(self._transition, U1), np.float64) for c in self.constraints],
            axis=1,
        )
        return {"constraint_violation": v, "unsafe": (v > 0).any(axis=1)}
