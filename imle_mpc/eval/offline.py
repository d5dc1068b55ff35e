"""Offline RL on a task's demonstrations: the dataset as transitions, the agent as a planner.

``task_transitions`` turns a ``DemoDataset`` of a task into the agent's ``Transitions``:
the reward of a step is minus the task's own cost of its transition
(``tasks.vector_env.cost_reward``, the batched env's default reward), times
``reward_scale``; the state after an episode's last action (not stored in a dataset)
is the task model's step from its last state; the end of an episode is a time limit,
not a terminal (``done = 0``: the value is bootstrapped, as for the env's truncation).
``AgentPlanner`` runs a trained agent as a ``Planner`` (its rollout on the model, through
its action space), so it goes through ``run_episode``, the guard and the figures like any
planner; ``episode_return`` is an episode's return under the same reward.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.validation import FloatArray, require_int_at_least
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.offline import TD3BC, ActionSpace, Transitions
from imle_mpc.loop.runner import EpisodeRecord
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.experts import observation
from imle_mpc.tasks.vector_env import cost_reward


def _last_next_states(task: Task, dataset: DemoDataset) -> FloatArray:
    """The model's step from each episode's last state with its last action, Shape=(E, nx)."""
    model: Any = task.dynamics
    out = np.empty((len(dataset.episodes), model.nx))
    for e, ep in enumerate(dataset.episodes):
        out[e] = model.rollout(ep.states[-1], ep.actions[-1][None, None, :])[0, 1]
    return out


def task_transitions(
    task: Task, dataset: DemoDataset, space: ActionSpace, reward_scale: float = 1.0
) -> Transitions:
    """The dataset's steps as transitions, actions mapped into ``space``'s box (module docstring).

    Args:
        task: the task the demonstrations are of (its model, cost and observation).
        dataset: its demonstrations (any quality).
        space: the agent's action space (``RawBox``, ``FlowLatent``).
        reward_scale: rewards are ``-cost * reward_scale``.
    """
    last = _last_next_states(task, dataset)
    states = np.concatenate([ep.states for ep in dataset.episodes])
    actions = np.concatenate([ep.actions for ep in dataset.episodes])
    nexts = np.concatenate(
        [np.vstack([ep.states[1:], last[e][None]]) for e, ep in enumerate(dataset.episodes)]
    )
    rewards = np.asarray(cost_reward(task.cost)(states, actions, nexts)) * reward_scale
    obs, next_obs = observation(states), observation(nexts)
    return Transitions(
        obs=obs,
        actions=space.to_box(obs, actions),
        rewards=np.asarray(rewards, dtype=np.float64),
        next_obs=next_obs,
        dones=np.zeros(len(states)),
    )


class AgentPlanner:
    """A trained offline agent as a ``Planner``: its closed-loop rollout on the model.

    Each ``plan(state)`` runs the agent ``horizon`` steps on the task's model from
    ``state`` (observation, ``agent.act``, ``space.from_box``, one model step) and
    returns those actions with the predicted states. The robot executes the first;
    the plan's tail is what the guard checks (a stopping distance's worth of the
    agent's own intentions, not one step) and what its ``PreviousPlan`` fallback
    plays. The agent is deterministic, so a plan is its policy, not a search.

    Args:
        task: the task (its model and observation).
        agent: the trained agent.
        space: the action space it acts in.
        horizon: steps a plan looks ahead (the task's planning horizon by default).
    """

    def __init__(
        self, task: Task, agent: TD3BC, space: ActionSpace, horizon: int | None = None
    ) -> None:
        self.dynamics: Any = task.dynamics
        self.agent, self.space = agent, space
        self.horizon = int(task.hints.horizon if horizon is None else horizon)
        require_int_at_least("AgentPlanner", "horizon", self.horizon, 1)
        self._U1 = np.zeros((1, 1, self.dynamics.nu))

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset: the agent is a deterministic function of the state."""

    def plan(self, state: ArrayLike) -> PlanResult:
        """The agent's rollout from ``state`` Shape=(nx,): actions Shape=(horizon, nu)."""
        t0 = time.perf_counter()
        X = np.empty((self.horizon + 1, self.dynamics.nx))
        U = np.empty((self.horizon, self.dynamics.nu))
        X[0] = np.asarray(state, dtype=np.float64)
        for t in range(self.horizon):
            obs = observation(X[t])[None, :]
            U[t] = np.clip(
                self.space.from_box(obs, self.agent.act(obs))[0],
                self.dynamics.action_low,
                self.dynamics.action_high,
            )
            self._U1[0, 0] = U[t]
            X[t + 1] = self.dynamics.rollout(X[t], self._U1)[0, 1]
        return PlanResult(
            actions=U,
            cost=0.0,
            term_costs={},
            num_feasible=1,
            best_index=0,
            predicted_states=X,
            timings={"total": time.perf_counter() - t0},
        )


def episode_return(task: Task, record: EpisodeRecord, reward_scale: float = 1.0) -> float:
    """The return of an episode under ``task_transitions``' reward (true states, executed
    actions)."""
    states = record.states if record.true_states is None else record.true_states
    rewards = cost_reward(task.cost)(states[:-1], record.actions, states[1:])
    return float(np.sum(rewards) * reward_scale)
