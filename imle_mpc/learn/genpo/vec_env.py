"""A ``BatchedDynamicsEnv`` (a Gymnasium ``VectorEnv``) as stable-baselines3's ``VecEnv``.

SB3's on-policy algorithms step a ``VecEnv`` (its own protocol, not Gymnasium's vector
API): ``step`` returns ``(obs, rewards, dones, infos)`` with one info dict per
environment, an environment that is done is already reset, and its last observation is
in ``infos[i]["terminal_observation"]`` with ``infos[i]["TimeLimit.truncated"]`` when
its episode was cut by the time limit, so that PPO bootstraps it from the value of that
observation. ``BatchedDynamicsEnv`` autoresets in the same step (``SAME_STEP``) and
reports the last states in ``info["final_obs"]``: the translation is one to one.

Also here: the action SB3 samples may be another than the plant's (the generative
policy's pre-squash action and dummy): ``action_map`` gives the plant's action of it
(by default its first ``nu`` entries; the rest is dropped before stepping). Rewards
are multiplied by ``reward_scale`` (the task's cost is in the thousands per episode;
PPO's critic learns returns of order 1-100 better), a step that crosses a safety
constraint (``info["unsafe"]``) costs ``unsafe_penalty`` more, and an episode the judge
calls a success earns ``success_bonus`` on its last step (the point mass's model passes
through obstacles, and the task's cost alone pays less for the detour than the
collision costs it). Each finished episode reports ``infos[i]["episode"]`` (return and
length, as SB3's ``Monitor`` does) with whatever ``judge(states Shape=(T+1, nx))`` says
of its states (success, route).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvStepReturn

from imle_mpc.loop.vector_env import BatchedDynamicsEnv

Judge = Callable[[np.ndarray], dict[str, Any]]
"""``judge(states Shape=(T+1, nx)) -> figures`` of a finished episode (JSON-able)."""


class BatchedVecEnv(VecEnv):
    """``env`` stepped by stable-baselines3 (see the module docstring).

    Args:
        env: the batched environments (``vector_env(task, N)``).
        action_space: the action space SB3 samples in (None: the env's own box).
        action_map: ``fn(actions Shape=(N, A)) -> Shape=(N, nu)``, the plant's actions
            (None: the first ``nu`` entries).
        reward_scale: the rewards SB3 sees are ``reward_scale`` times the env's.
        judge: figures of each finished episode's states, added to its
            ``infos[i]["episode"]`` (None: return and length only).
        unsafe_penalty: subtracted (after scaling) from an unsafe step's reward.
        success_bonus: added to the last reward of an episode whose judge says
            ``"success": True``.
        seed: the first ``reset``'s seed (environment ``i`` gets ``seed + i``).
    """

    def __init__(
        self,
        env: BatchedDynamicsEnv,
        action_space: gym.spaces.Box | None = None,
        reward_scale: float = 1.0,
        judge: Judge | None = None,
        seed: int | None = None,
        unsafe_penalty: float = 0.0,
        success_bonus: float = 0.0,
        action_map: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        space = env.single_action_space if action_space is None else action_space
        assert space.shape is not None
        self.nu = env.dynamics.nu
        if space.shape[0] < self.nu:
            raise ValueError(
                f"the action space {space.shape} is narrower than the plant's nu={self.nu}."
            )
        super().__init__(env.num_envs, env.single_observation_space, space)
        self.env = env
        self.reward_scale = float(reward_scale)
        self.judge = judge
        self.action_map = action_map
        self.unsafe_penalty, self.success_bonus = float(unsafe_penalty), float(success_bonus)
        self._seed = seed
        self._actions: np.ndarray | None = None
        n, nx = env.num_envs, env.dynamics.nx
        steps = env._max_steps or 1000
        self._states = np.zeros((n, steps + 1, nx))
        self._returns = np.zeros(n)

    def reset(self) -> np.ndarray:
        """Reset every environment (seeded by ``seed`` on the first call); observations."""
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None  # later resets continue the environments' streams
        self._states[:, 0] = obs
        self._returns[:] = 0.0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        a = np.asarray(actions, dtype=np.float64)
        self._actions = a[:, : self.nu] if self.action_map is None else self.action_map(a)

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async first"
        t = self.env.episode_steps  # before the step: where its state goes
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        done = terminated | truncated
        final = info.get("final_obs", obs)
        rows = np.arange(self.num_envs)
        self._states[rows, np.minimum(t + 1, self._states.shape[1] - 1)] = final
        reward = reward * self.reward_scale
        unsafe = np.asarray(info.get("unsafe", np.zeros(self.num_envs, np.bool_)))
        reward -= self.unsafe_penalty * unsafe
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(done):
            figures = {} if self.judge is None else self.judge(self._states[i, : t[i] + 2].copy())
            if figures.get("success"):
                reward[i] += self.success_bonus
            # the return of the rewards SB3 sees (scaled, penalties and bonus included)
            ep = {"r": float(self._returns[i] + reward[i]), "l": int(t[i] + 1), **figures}
            infos[i] = {
                "terminal_observation": final[i].copy(),
                "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                "episode": ep,
            }
            self._returns[i] = -reward[i]  # the next line adds it back: 0 for the new episode
            self._states[i, 0] = obs[i]
        self._returns += reward
        for i in np.flatnonzero(unsafe):
            infos[i]["unsafe"] = True
        return obs, reward, done, infos

    def close(self) -> None:
        return None

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        # the batched env renders nothing; SB3 asks for render_mode when it starts
        value = None if attr_name == "render_mode" else getattr(self.env, attr_name)
        return [value] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any
    ) -> list[Any]:
        raise NotImplementedError(
            "BatchedVecEnv's environments are one batched env; call env.env's methods directly."
        )

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """The next ``reset`` seeds environment ``i`` with ``seed + i``."""
        self._seed = seed
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)
