"""The robot side of the loop: a real driver or a simulated plant.

The closed-loop runner talks only to ``Robot`` (read the state, send an
action). ``EnvRobot`` adapts any Gymnasium ``Env`` to it, and ``DynamicsEnv``
turns a ``Dynamics`` model into a Gymnasium ``Env``, so the same analytic
model can be both the plant and (a possibly mismatched copy) the planner's model.

A ``Plant`` is what the evaluation's simulated robot (``imle_mpc.loop.faults.FaultyRobot``)
drives: a ``DynamicsEnv``, or ``MujocoEnvPlant``, a Gymnasium MuJoCo environment
itself, its state ``mujoco_state(env)`` = ``(qpos, qvel, act)`` read from its
``MjData`` (the layout of ``dynamics.mujoco_model.MujocoDynamics``). ``mujoco_state``
is also the ``state_fn`` for ``EnvRobot`` on such an environment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.protocols import Dynamics
from imle_mpc.core.validation import FloatArray, check_state

InitialState = ArrayLike | Callable[[np.random.Generator], ArrayLike]


@runtime_checkable
class Robot(Protocol):
    """What the control loop needs from a robot. A real driver implements these two."""

    def read_state(self) -> FloatArray:
        """The latest measured state, Shape=(nx,)."""
        ...

    def send_action(self, action: FloatArray) -> None:
        """Command an action, Shape=(nu,). Must not block longer than the control period."""
        ...


@runtime_checkable
class EpisodicRobot(Robot, Protocol):
    """A robot (or simulated plant) that can say its episode is over (Gymnasium's
    terminated/truncated); the loop then stops early if ``LoopConfig.stop_when_done``."""

    @property
    def done(self) -> bool:
        """Whether the episode is over."""
        ...


@runtime_checkable
class Plant(Protocol):
    """A simulated plant the evaluation drives (``FaultyRobot``): ``DynamicsEnv``,
    ``MujocoEnvPlant`` or your own.

    ``step`` returns Gymnasium's ``(observation, reward, terminated, truncated, info)``;
    ``terminated`` ends the episode as a failure (the system left where it may be),
    ``truncated`` ends it on time.
    """

    @property
    def dynamics(self) -> Dynamics:
        """A model of the plant: its ``nx``, ``nu`` and actuator box."""
        ...

    @property
    def state(self) -> FloatArray:
        """A copy of the true state, Shape=(nx,)."""
        ...

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode (seeded)."""
        ...

    def step(self, action: ArrayLike) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` Shape=(nu,) for one control step."""
        ...

    def apply_impulse(self, delta: ArrayLike) -> None:
        """Add ``delta`` Shape=(nx,) to the true state (a push)."""
        ...


class DynamicsEnv(gym.Env[np.ndarray, np.ndarray]):
    """A Gymnasium environment simulating a ``Dynamics`` model.

    The observation is the full state. Actions are clipped to the model's
    actuator box, as a real motor saturates.

    Args:
        dynamics: the plant's model (may differ from the planner's).
        initial_state: a state Shape=(nx,), or ``fn(rng) -> state`` for random starts.
        reward: optional ``fn(x, u, x_next) -> float``; 0 if not given.
        terminate: optional ``fn(x) -> bool`` ending the episode (e.g. a crash).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (Gymnasium API)

    def __init__(
        self,
        dynamics: Dynamics,
        initial_state: InitialState,
        reward: Callable[[FloatArray, FloatArray, FloatArray], float] | None = None,
        terminate: Callable[[FloatArray], bool] | None = None,
    ) -> None:
        self.dynamics = dynamics
        self._initial_state = initial_state
        self._reward = reward
        self._terminate = terminate
        nx = dynamics.nx
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(nx,), dtype=np.float64)
        self._low = np.asarray(dynamics.action_low, dtype=np.float64)
        self._high = np.asarray(dynamics.action_high, dtype=np.float64)
        self.action_space = gym.spaces.Box(self._low, self._high, dtype=np.float64)
        self._state = np.zeros(nx)
        self._U1 = np.zeros((1, 1, dynamics.nu))

    @property
    def state(self) -> FloatArray:
        """A copy of the true simulator state."""
        return self._state.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[FloatArray, dict[str, Any]]:
        super().reset(seed=seed)
        start = self._initial_state
        value = start(self.np_random) if callable(start) else start
        self._state = check_state(value, self.dynamics.nx, "initial_state").copy()
        return self._state.copy(), {}

    def apply_impulse(self, delta: ArrayLike) -> None:
        """Add ``delta`` Shape=(nx,) to the true state: an external push (fault injection)."""
        d = np.asarray(delta, dtype=np.float64).reshape(self.dynamics.nx)
        if not np.all(np.isfinite(d)):
            raise ValueError(f"impulse contains NaN/inf: {d}.")
        self._state = self._state + d

    def step(self, action: ArrayLike) -> tuple[FloatArray, float, bool, bool, dict[str, Any]]:
        u = np.asarray(action, dtype=np.float64).reshape(self.dynamics.nu)
        if not np.all(np.isfinite(u)):
            raise ValueError(f"action contains NaN/inf: {u}. The plant refuses it.")
        u = np.clip(u, self._low, self._high)
        self._U1[0, 0] = u
        x_next = self.dynamics.rollout(self._state, self._U1)[0, 1].copy()
        reward = float(self._reward(self._state, u, x_next)) if self._reward else 0.0
        self._state = x_next
        terminated = bool(self._terminate(x_next)) if self._terminate else False
        return x_next.copy(), reward, terminated, False, {}


class EnvRobot:
    """Use a Gymnasium ``Env`` as the robot.

    Args:
        env: any Gymnasium environment.
        seed: seed for ``env.reset``.
        state_fn: reads the planner's state from the env (default: the last
            observation). For a Gymnasium MuJoCo env, whose observation is not the
            full state, pass ``mujoco_state`` (``(qpos, qvel, act)``, the layout of
            ``MujocoDynamics``).
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        seed: int | None = None,
        state_fn: Callable[[gym.Env[Any, Any]], ArrayLike] | None = None,
    ) -> None:
        self.env = env
        self.state_fn = state_fn
        obs, _ = env.reset(seed=seed)
        self._obs = np.asarray(obs, dtype=np.float64)
        self.terminated = False
        self.truncated = False
        self.total_reward = 0.0

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated

    def read_state(self) -> FloatArray:
        if self.state_fn is not None:
            return np.asarray(self.state_fn(self.env), dtype=np.float64)
        return self._obs.copy()

    def send_action(self, action: FloatArray) -> None:
        obs, reward, terminated, truncated, _ = self.env.step(action)
        self._obs = np.asarray(obs, dtype=np.float64)
        self.total_reward += float(reward)
        self.terminated = bool(terminated)
        self.truncated = bool(truncated)


def mujoco_state(env: gym.Env[Any, Any]) -> FloatArray:
    """The state ``(qpos, qvel, act)`` of a Gymnasium MuJoCo environment, Shape=(nq+nv+na,).

    Read from ``env.unwrapped.data``, in the layout of ``MujocoDynamics``; pass it as
    ``EnvRobot(env, state_fn=mujoco_state)`` so the planner gets the state rather
    than the observation (which may drop entries or take sines and cosines).
    """
    data = env.unwrapped.data  # type: ignore[attr-defined]
    return np.concatenate([data.qpos, data.qvel, data.act]).astype(np.float64)


class MujocoEnvPlant:
    """A Gymnasium MuJoCo environment as the evaluation's plant (``Plant``).

    Every step is the environment's own ``step`` (its physics, its frame skip, its
    reward and its termination); the state is ``mujoco_state(env)``. Actions that are
    not finite are refused, as by ``DynamicsEnv``; MuJoCo clamps the rest to the
    actuator box itself.

    Args:
        env: the environment (``env.unwrapped`` a ``gymnasium.envs.mujoco.MujocoEnv``).
        dynamics: the planner's model of it, ``MujocoDynamics`` on the same model and
            frame skip (``imle_mpc.tasks.gym_env.gym_task`` builds both).

    Attributes:
        total_reward: the environment's return so far this episode.
    """

    def __init__(self, env: gym.Env[Any, Any], dynamics: Dynamics) -> None:
        data = getattr(env.unwrapped, "data", None)
        if data is None or not hasattr(data, "qpos"):
            raise TypeError(
                f"MujocoEnvPlant needs a Gymnasium MuJoCo environment (one with MjData at "
                f"env.unwrapped.data); {type(env.unwrapped).__name__} is not one."
            )
        size = data.qpos.size + data.qvel.size + data.act.size
        if size != dynamics.nx:
            raise ValueError(
                f"the environment's state (qpos, qvel, act) has {size} entries but the model "
                f"has nx={dynamics.nx}; build the model from the environment's own MjModel."
            )
        self.env = env
        self._dynamics = dynamics
        self.total_reward = 0.0

    @property
    def dynamics(self) -> Dynamics:
        return self._dynamics

    @property
    def state(self) -> FloatArray:
        return mujoco_state(self.env)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[FloatArray, dict[str, Any]]:
        _, info = self.env.reset(seed=seed, options=options)
        self.total_reward = 0.0
        return self.state, info

    def step(self, action: ArrayLike) -> tuple[FloatArray, float, bool, bool, dict[str, Any]]:
        u = np.asarray(action, dtype=np.float64).reshape(self._dynamics.nu)
        if not np.all(np.isfinite(u)):
            raise ValueError(f"action contains NaN/inf: {u}. The plant refuses it.")
        _, reward, terminated, truncated, info = self.env.step(u)
        self.total_reward += float(reward)
        return self.state, float(reward), bool(terminated), bool(truncated), info

    def apply_impulse(self, delta: ArrayLike) -> None:
        """Add ``delta`` Shape=(nx,) to ``(qpos, qvel, act)`` (the next step starts there)."""
        d = np.asarray(delta, dtype=np.float64).reshape(self._dynamics.nx)
        if not np.all(np.isfinite(d)):
            raise ValueError(f"impulse contains NaN/inf: {d}.")
        data = self.env.unwrapped.data  # type: ignore[attr-defined]
        nq, nv = data.qpos.size, data.qvel.size
        data.qpos[:] += d[:nq]
        data.qvel[:] += d[nq : nq + nv]
        data.act[:] += d[nq + nv :]
