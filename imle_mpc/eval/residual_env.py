"""The residual's training environment: one guarded episode, one control step per ``step(r)``.

Online refinement (Policy Decorator) learns ``r`` for ``a = a_base + alpha * r``
on the plant of a ``Refinement`` setting. ``ResidualEnv`` is a Gymnasium env
around the same episode ``run_episode`` runs (``start_episode``: the faulty plant,
``OffsetFree`` and the safety guard around the planner), with the planner a
``ResidualPlanner`` whose residual is the learner's action of the step. So
training and evaluation share one data path: the guard checks every executed
action in both, and its interventions are counted.

* Observation: ``residual_observation(state, a_base, time_left)``, the measured state,
  the base's action for it scaled to [-1, 1] by the actuator box, and the share of
  the episode still to go (1 at the first step, 1/T at the last), float32,
  Shape=(nx+nu+1,). The base plans before the learner acts (``PlannedAhead``), once
  per step.
* Action: ``r`` in [-1, 1]^nu.
* Reward: sparse, the task's own: 1 at the episode's last step if the true
  trajectory meets the setting's success test (for ``push_block``: the block ends
  within the tolerance of the goal), else 0. The episode ends (terminated: nothing
  comes after it) after ``task.steps`` steps; the horizon is finite, so the time left
  is part of the state. Two 40k-step runs with a reward on every step spent within
  the tolerance (the first also without the time, the end a truncation that SAC
  bootstrapped past) learnt to push the heavy block harder and through the goal
  region: passing through it earns about as many rewarded steps as stopping short
  inside it, and the evaluation's success went 0.55 -> 0.9 at 15-25k steps, then
  to 0-25 % at 30-40k.
* Controlled exploration: at each reset the residual is switched on for the
  episode with probability ``ExplorationSchedule.probability(step)`` =
  ``min(step / horizon, 1)``, ``step`` the environment steps of the whole run so far
  (``set_global_step``, told by the trainer); switched off, the base acts alone and
  the executed residual (``info["executed_residual"]``, what the learner must store)
  is 0. The reference implementation draws the switch per step; the issue asks for
  it per episode, so an episode is either the base's or the decorated controller's.
* ``info``: each step the command sent (``action``), the executed residual, whether
  the guard intervened; the last step of an episode an ``episode_summary`` (success,
  guard interventions, the steps on which no candidate passed the guard's check and
  it sent the least violating one, violation steps on the true swept path, in all and
  by constraint, the residual switch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from imle_mpc.core.protocols import Planner
from imle_mpc.core.validation import FloatArray, require_int_at_least
from imle_mpc.eval.episodes import Episode, start_episode, violation_per_step
from imle_mpc.loop.faults import FaultConfig
from imle_mpc.tasks.base import Task
from planners.residual import PlannedAhead, ResidualPlanner, SetResidual

DEFAULT_EXPLORE_STEPS = 25_000
"""The default exploration horizon: the residual acts in no episode at the start and in
every one after 25k environment steps, a quarter of a default run (100k steps)."""


@dataclass(frozen=True)
class ExplorationSchedule:
    """The residual acts in an episode with probability ``min(step / horizon, 1)``.

    Attributes:
        horizon: environment steps until the residual acts in every episode; 0
            switches the schedule off (the residual acts from the first step).
    """

    horizon: int = DEFAULT_EXPLORE_STEPS

    def __post_init__(self) -> None:
        require_int_at_least("ExplorationSchedule", "horizon", self.horizon, 0)

    def probability(self, step: int) -> float:
        """The chance that an episode starting after ``step`` environment steps is decorated."""
        if self.horizon == 0:
            return 1.0
        return min(max(step, 0) / self.horizon, 1.0)

    def draw(self, step: int, rng: np.random.Generator) -> bool:
        """Whether this episode uses the residual (exactly never at 0, always at 1)."""
        p = self.probability(step)
        return p >= 1.0 or (p > 0.0 and bool(rng.random() < p))


def action_box(task: Task) -> tuple[FloatArray, FloatArray]:
    """The actuator box's centre and half range, each Shape=(nu,)."""
    low = np.asarray(task.dynamics.action_low, dtype=np.float64)
    high = np.asarray(task.dynamics.action_high, dtype=np.float64)
    if not np.all(np.isfinite(high - low)):
        raise ValueError(
            f"task {task.name!r} has an unbounded actuator box: the residual's observation "
            "scales the base's action by it."
        )
    return (high + low) / 2.0, (high - low) / 2.0


def residual_observation(
    state: FloatArray,
    base_action: FloatArray,
    time_left: float,
    centre: FloatArray,
    half_range: FloatArray,
) -> np.ndarray:
    """What the residual sees: the state, the base's action scaled to the box, the time left.

    Args:
        state: the measured state, Shape=(nx,).
        base_action: the base's action, Shape=(nu,).
        time_left: the share of the episode still to go, in (0, 1].
        centre: the actuator box's centre (``action_box``), Shape=(nu,).
        half_range: the actuator box's half range (``action_box``), Shape=(nu,).

    Returns:
        Shape=(nx + nu + 1,), float32.
    """
    scaled = (np.asarray(base_action) - centre) / half_range
    return np.concatenate([np.asarray(state), scaled, [time_left]]).astype(np.float32)


class PolicyResidual:
    """A trained residual as ``planners.residual.Residual``: ``act(observation) -> r``.

    It counts its calls since ``reset`` (``ResidualPlanner.reset`` calls it) for the
    observation's time left: one call per planned step.

    Args:
        policy: anything with ``act(observation Shape=(nx+nu+1,)) -> r Shape=(nu,)``
            (``imle_mpc.learn.residual.ResidualActor``).
        task: the task the residual was trained on (its actuator box).
        steps: the episode length it was trained for (default ``task.steps``).
    """

    def __init__(self, policy: Any, task: Task, steps: int | None = None) -> None:
        self.policy = policy
        self.steps = task.steps if steps is None else int(steps)
        self._centre, self._half = action_box(task)
        self._step = 0

    def reset(self) -> None:
        """A new episode: the time left is 1 again."""
        self._step = 0

    def __call__(self, state: FloatArray, base_action: FloatArray) -> FloatArray:
        time_left = max(1.0 - self._step / self.steps, 1.0 / self.steps)
        self._step += 1
        obs = residual_observation(state, base_action, time_left, self._centre, self._half)
        return np.asarray(self.policy.act(obs), dtype=np.float64)


UNSUPPORTED_FAULTS = ("delay", "drop", "dropout")
"""Faults the training env refuses: with them the guard plans from another state than
the measured one, or not at all, so the base's peeked plan would not be the one used."""


class ResidualEnv(gym.Env[np.ndarray, np.ndarray]):
    """Guarded episodes of ``task`` with ``base + scale * r``, ``r`` the action of each step.

    See the module docstring for the observation, reward and exploration.

    Args:
        task: the task, judged by the setting's success test (``Refinement.apply``).
        base: a fresh base planner for this env (it is reset every episode).
        scale: alpha Shape=(nu,) in action units (``planners.residual.residual_scale``).
        faults: the plant's faults (the setting's); ``UNSUPPORTED_FAULTS`` are refused.
        schedule: the controlled exploration.
        guard: put the decorated planner behind the safety guard (True) or the
            unguarded pass-through (False), as ``run_episode``.
        offset_free: with the guard, the offset estimate too (as ``run_episode``).
        steps: episode length (default ``task.steps``).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (Gymnasium API)

    def __init__(
        self,
        task: Task,
        base: Planner,
        scale: FloatArray,
        faults: FaultConfig | None = None,
        schedule: ExplorationSchedule = ExplorationSchedule(),
        guard: bool = True,
        offset_free: bool = True,
        steps: int | None = None,
    ) -> None:
        self.faults = FaultConfig() if faults is None else faults
        refused = [k for k in self.faults.active if k in UNSUPPORTED_FAULTS]
        if refused:
            raise ValueError(
                f"ResidualEnv: faults {refused} are not supported in training (the guard then "
                "plans from a predicted state or not at all); train on the setting's plant "
                "(mismatch, noise, pushes) and evaluate the other faults with imle-mpc eval."
            )
        self.task = task
        self.schedule = schedule
        self.guard = guard
        self.offset_free = offset_free
        self.steps = task.steps if steps is None else steps
        require_int_at_least("ResidualEnv", "steps", self.steps, 1)
        nx, nu = task.dynamics.nx, task.dynamics.nu
        self._centre, self._half = action_box(task)
        self._ahead = PlannedAhead(base)
        self._residual = SetResidual(nu)
        self.planner = ResidualPlanner(self._ahead, self._residual, task.dynamics, scale)
        self.observation_space = gym.spaces.Box(
            -np.inf, np.inf, shape=(nx + nu + 1,), dtype=np.float32
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(nu,), dtype=np.float32)
        self.global_step = 0
        self.residual_on = False
        self._episode: Episode | None = None
        self._state = np.zeros(nx)
        self._actions: list[FloatArray] = []
        self._interventions = 0
        self._unchecked = 0

    def set_global_step(self, step: int) -> None:
        """Tell the env the environment steps of the whole run so far (the schedule's clock)."""
        self.global_step = int(step)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(2**31 - 1))
        self.residual_on = self.schedule.draw(self.global_step, self.np_random)
        self._episode = start_episode(
            self.task, self.planner, episode_seed, faults=self.faults, guard=self.guard,
            offset_free=self.offset_free, steps=self.steps,
        )  # fmt: skip
        self._actions = []
        self._interventions = 0
        self._unchecked = 0
        return self._observe(), {"residual_on": self.residual_on, "seed": episode_seed}

    def _observe(self) -> np.ndarray:
        """Read the state, let the base plan for it, and show both."""
        assert self._episode is not None
        self._state = np.asarray(self._episode.robot.read_state(), dtype=np.float64)
        base = self._ahead.peek(self._state)
        time_left = max(1.0 - len(self._actions) / self.steps, 1.0 / self.steps)
        return residual_observation(self._state, base.action, time_left, self._centre, self._half)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        episode = self._episode
        if episode is None:
            raise RuntimeError("ResidualEnv.step before reset: call reset() first.")
        r = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        executed = r if self.residual_on else np.zeros_like(r)
        self._residual.set(executed)
        result = episode.planner.plan(self._state)
        if self._ahead.pending:
            raise RuntimeError(
                "ResidualEnv: the guard did not ask the decorated planner for this step's plan, "
                "so the base's action in the observation was not the one used."
            )
        episode.robot.send_action(result.action)
        self._actions.append(np.asarray(result.action, dtype=np.float64).copy())
        intervened = result.fallback is not None
        self._interventions += int(intervened)
        # Nothing the guard could send passed its check: it sent the least violating.
        self._unchecked += int(intervened and "-> least_violation:" in str(result.fallback))
        true_states = np.asarray(episode.log.true_states)
        ended = len(self._actions) >= self.steps
        success = ended and bool(self.task.success(true_states))
        info: dict[str, Any] = {
            "action": self._actions[-1].copy(),
            "executed_residual": executed.astype(np.float32),
            "intervention": intervened,
            "residual_on": self.residual_on,
        }
        if ended:
            actions = np.array(self._actions)
            by_constraint = {
                getattr(c, "name", type(c).__name__): int(
                    np.count_nonzero(violation_per_step([c], true_states, actions) > 0)
                )
                for c in self.task.safety
            }
            violations = violation_per_step(self.task.safety, true_states, actions)
            info["episode_summary"] = {
                "success": success,
                "interventions": self._interventions,
                "least_violation_steps": self._unchecked,
                "violation_steps": int(np.count_nonzero(violations > 0)),
                "violations_by_constraint": {k: v for k, v in by_constraint.items() if v},
                "residual_on": self.residual_on,
                "seed": episode.seed,
            }
        return self._observe(), float(success), ended, False, info


EnvFactory = Callable[[int], ResidualEnv]
"""``make_env(index) -> ResidualEnv``: one env of a vectorised training run."""
