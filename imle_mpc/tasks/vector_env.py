"""A shipped task as a batched Gymnasium vector environment (``BatchedDynamicsEnv``).

``vector_env("pendulum", 1024)`` gives 1024 copies of the task's model, stepped in one
call (one parallel Numba kernel for an analytic model; for a MuJoCo task, ``push_block``,
one threaded ``rollout_from_states(X, U[:, None, :])`` call of the model's rollout pool:
the N states, one step each), truncated at the task's episode length, with the task's
safety constraints reported per environment in ``info`` and, by default, the reward

    r_t = -cost(X = [x_t, x_t+1] Shape=(N, 2, nx), U = [u_t] Shape=(N, 1, nu)),

minus the task's own planning cost of the one-step transition (its running terms on
``x_t+1`` and ``u_t`` and its terminal terms on ``x_t+1``): a dense reward whose return
is what the task's planners minimise, up to the terminal terms being charged every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from imle_mpc.core.validation import FloatArray
from imle_mpc.loop.vector_env import (
    BatchedDynamicsEnv,
    BatchReward,
    BatchTerminate,
    InitialState,
)
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.registry import make_task


def cost_reward(cost: Callable[[FloatArray, FloatArray], Any]) -> BatchReward:
    """``reward(X, U, X_next) = -cost([X, X_next], [U])``, a cost ``fn(X, U) -> (K,)`` as a
    ``BatchReward`` (the default of ``vector_env``; see the module)."""

    def reward(X: FloatArray, U: FloatArray, X_next: FloatArray) -> FloatArray:
        transition = np.stack([X, X_next], axis=1)
        return -np.asarray(cost(transition, U[:, None, :]), dtype=np.float64)

    return reward


def vector_env(
    task: str | Task,
    num_envs: int,
    *,
    reward: Literal["cost"] | BatchReward | None = "cost",
    initial_state: InitialState | None = None,
    max_episode_steps: int | None = None,
    terminate: BatchTerminate | None = None,
) -> BatchedDynamicsEnv:
    """A task (or its registered name) as ``num_envs`` batched environments.

    Args:
        task: a ``Task`` or a registered name (``pendulum``, ``cartpole``, ``point_mass``,
            the ``nav_*`` tasks, ``arm_reach_around``, the MuJoCo ``push_block``, ...).
        num_envs: N.
        reward: ``"cost"`` (default): minus the task's cost of each transition (module
            docstring); a ``BatchReward`` of your own; None: 0.
        initial_state: None: the task's start; else a state or ``fn(rng) -> state``
            (each environment's own seeded generator), e.g. random starts for training.
        max_episode_steps: None: the task's ``steps``.
        terminate: a vectorised termination test (``BatchTerminate``); None: only a
            state that is not finite ends an episode early.

    Returns:
        A ``BatchedDynamicsEnv`` with the task's ``safety`` constraints in its ``info``.
    """
    t = make_task(task) if isinstance(task, str) else task
    if t.plant is not None:
        raise ValueError(
            f"task {t.name!r} runs on its own plant (Task.plant), which BatchedDynamicsEnv "
            "does not simulate; use gymnasium.vector.SyncVectorEnv over that plant, or "
            "BatchedDynamicsEnv(task.dynamics, ...) to train on the task's model."
        )
    return BatchedDynamicsEnv(
        t.dynamics,
        num_envs,
        t.initial_state if initial_state is None else initial_state,
        max_episode_steps=t.steps if max_episode_steps is None else max_episode_steps,
        reward=cost_reward(t.cost) if reward == "cost" else reward,
        terminate=terminate,
        constraints=t.safety,
    )
