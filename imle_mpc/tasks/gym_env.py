"""Any Gymnasium MuJoCo environment as a task: ``gym_task("InvertedDoublePendulum-v5")``.

``gym_task(env_or_id)`` reads everything from the environment itself:

* the planner's model: ``MujocoDynamics`` on a copy of the environment's compiled
  ``MjModel`` with the environment's ``frame_skip`` (the XML's own ``frame_skip``,
  where it has one, can differ: InvertedDoublePendulum's says 2, Gymnasium uses 5),
  so one model step is one ``env.step`` and the two agree to the last bit;
* the state: ``(qpos, qvel, act)`` read from the environment's ``MjData``
  (``imle_mpc.loop.plant.mujoco_state``), not its observation;
* the plant: the environment itself (``Task.plant``: ``run_episode`` steps it,
  resets it with the episode's seed, so its own start noise applies, and its
  ``terminated`` fails the episode);
* a cost to start from: the environment's reward terms that are functions of the
  state, negated, for the environments in ``GYM_TASKS``; for any other, the action
  effort only, with a warning to bring your own (``cost=``);
* a success test per environment (``GYM_TASKS``; otherwise: not terminated);
* a terminal value where the environment has an operating point to hold (the
  balancing ones): the LQR cost-to-go of the model linearised there, with the
  quadratic model of the task's cost (``planners.terminal_value``). Where the goal
  is drawn per episode (Reacher's target), ``with_episode_goal_value(task, seed)``
  linearises at that episode's goal.

A non-MuJoCo environment (CartPole-v1, a classic-control one) is refused: there is
no MuJoCo model to plan with.

This module imports ``mujoco``; ``imle_mpc.tasks`` does not import it
(``load_task("gym:ENV_ID")`` does, when asked).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import gymnasium
import mujoco
import numpy as np
from gymnasium.envs.mujoco import MujocoEnv

from cost import ControlEffort, CostSum, QuadraticTerminalValue, StateTracking, Term
from dynamics.linearize import equilibrium
from dynamics.mujoco_model import MujocoDynamics
from imle_mpc.core.errors import InputError
from imle_mpc.core.validation import FloatArray
from imle_mpc.loop.plant import MujocoEnvPlant, Plant
from imle_mpc.tasks.base import PlannerHints, Task
from planners.terminal_value import lqr_terminal_value, with_terminal_value

Env = gymnasium.Env[Any, Any]
OperatingPoint = tuple[FloatArray, FloatArray]
"""``(state Shape=(nx,), action Shape=(nu,))``: an equilibrium to linearise at."""


# --- the cost terms the shipped environments' rewards are made of ---------------------------


def _body_offset(model: mujoco.MjModel, body: str) -> FloatArray:
    """A body's position in its parent's frame, Shape=(3,)."""
    return np.asarray(model.body(body).pos, dtype=np.float64)


@dataclass(frozen=True)
class PoleTipDistance:
    """InvertedDoublePendulum's ``distance_penalty``: ``0.01 x_tip^2 + (z_tip - 2)^2`` per step.

    The tip of the two poles in the plane of the cart,
    ``x_tip = cart + l1 sin(a1) + l2 sin(a1 + a2)``, ``z_tip = l1 cos(a1) + l2 cos(a1 + a2)``,
    with the pole lengths read from the model; charged on the running states X[:, 1:].
    """

    upper: float
    lower: float

    @classmethod
    def of(cls, model: mujoco.MjModel) -> PoleTipDistance:
        return cls(float(_body_offset(model, "pole2")[2]), float(model.site("tip").pos[2]))

    def tip(self, X: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(x_tip, z_tip)`` of states X Shape=(..., nx)."""
        a1, a12 = X[..., 1], X[..., 1] + X[..., 2]
        x = X[..., 0] + self.upper * np.sin(a1) + self.lower * np.sin(a12)
        return x, self.upper * np.cos(a1) + self.lower * np.cos(a12)

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        x, z = self.tip(X[:, 1:])
        return np.asarray((0.01 * x * x + (z - 2.0) ** 2).sum(axis=1))


@dataclass(frozen=True)
class PoleTipFallen:
    """InvertedDoublePendulum's survival bonus as a cost: 1 per running state whose tip
    is at or below ``height`` (the environment ends the episode there)."""

    tip: PoleTipDistance
    height: float = 1.0

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        return np.asarray((self.tip.tip(X[:, 1:])[1] <= self.height).sum(axis=1), dtype=float)


@dataclass(frozen=True)
class AngleOutside:
    """1 per running state whose entry ``index`` is outside ``[-limit, limit]`` (InvertedPendulum's
    survival bonus as a cost: the environment ends the episode there)."""

    index: int
    limit: float

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        return np.asarray((np.abs(X[:, 1:, self.index]) > self.limit).sum(axis=1), dtype=float)


@dataclass(frozen=True)
class FingertipDistance:
    """Reacher's ``reward_dist`` as a cost: the fingertip's distance to the target per step.

    The fingertip by the arm's planar forward kinematics,
    ``base + l0 (cos q0, sin q0) + l1 (cos(q0 + q1), sin(q0 + q1))``; the target at
    ``target_origin + qpos[2:4]`` (its two slide joints). Lengths and offsets from the
    model; charged on the running states X[:, 1:]. ``smoothing`` > 0 charges
    ``sqrt(d^2 + s^2) - s`` instead of ``d`` (within ``s`` of it everywhere; smooth at
    the target, so the cost has a quadratic model there for an LQR value).
    """

    base: tuple[float, float]
    upper: float
    lower: float
    target_origin: tuple[float, float]
    smoothing: float = 0.0

    @classmethod
    def of(cls, model: mujoco.MjModel, smoothing: float = 0.0) -> FingertipDistance:
        base = _body_offset(model, "body0")
        origin = _body_offset(model, "target")[:2] - np.asarray(model.qpos0[2:4])
        return cls(
            (float(base[0]), float(base[1])),
            float(_body_offset(model, "body1")[0]),
            float(_body_offset(model, "fingertip")[0]),
            (float(origin[0]), float(origin[1])),
            smoothing,
        )

    def distance(self, X: FloatArray) -> FloatArray:
        """Fingertip-target distance of states X Shape=(..., nx) -> Shape=(...)."""
        q0, q01 = X[..., 0], X[..., 0] + X[..., 1]
        fx = self.base[0] + self.upper * np.cos(q0) + self.lower * np.cos(q01)
        fy = self.base[1] + self.upper * np.sin(q0) + self.lower * np.sin(q01)
        dx = fx - self.target_origin[0] - X[..., 2]
        dy = fy - self.target_origin[1] - X[..., 3]
        return np.asarray(np.hypot(dx, dy))

    def __call__(self, X: FloatArray, U: FloatArray) -> FloatArray:
        d = self.distance(X[:, 1:])
        if self.smoothing > 0:
            s = self.smoothing
            d = np.sqrt(d * d + s * s) - s
        return np.asarray(d.sum(axis=1))

    def pose_at_target(self, x: FloatArray) -> FloatArray:
        """The state with the fingertip on the target of ``x`` Shape=(nx,), at rest.

        Planar two-link inverse kinematics, the elbow bent the way it is in ``x`` and
        the shoulder angle the nearest to ``x``'s (the shoulder turns without limit);
        the target entries as in ``x``. The arm has no gravity in its plane, so this is
        an equilibrium (the operating point of an LQR value for this episode's goal).
        """
        tx = self.target_origin[0] + x[2] - self.base[0]
        ty = self.target_origin[1] + x[3] - self.base[1]
        l0, l1 = self.upper, self.lower
        c = np.clip((tx * tx + ty * ty - l0 * l0 - l1 * l1) / (2.0 * l0 * l1), -1.0, 1.0)
        elbow = np.arccos(c) * (1.0 if x[1] >= 0 else -1.0)
        shoulder = np.arctan2(ty, tx) - np.arctan2(l1 * np.sin(elbow), l0 + l1 * np.cos(elbow))
        shoulder += 2.0 * np.pi * np.round((x[0] - shoulder) / (2.0 * np.pi))
        pose = np.zeros_like(np.asarray(x, dtype=np.float64))
        pose[:4] = (shoulder, elbow, x[2], x[3])
        return pose


REACHER_ARM = (0, 1, 4, 5)
"""Reacher's arm in the state (its joint angles and speeds); the rest is the target."""


# --- what is known about each environment ---------------------------------------------------


@dataclass(frozen=True)
class GymTaskSpec:
    """What ``gym_task`` knows about one Gymnasium MuJoCo environment.

    Attributes:
        cost: ``fn(model) -> CostSum``, the starting cost (the reward's state terms).
        success: ``fn(model) -> fn(states Shape=(T+1, nx)) -> bool``.
        hints: planner settings whose plan fits the control period.
        operating_point: ``fn(model) -> (x, u)``, the equilibrium the terminal value
            is linearised at; None: no fixed one (the goal moves per episode).
        episode_goal: ``fn(model) -> fn(x0) -> x_goal``, for a goal drawn per episode:
            the equilibrium at the goal of the episode that starts at ``x0``
            (``with_episode_goal_value``); None: the goal is fixed or unknown.
        value_dims: the state entries a terminal value is over (None: all).
        about: one line on the cost, for ``Task`` users and the README.
    """

    cost: Callable[[MujocoDynamics], CostSum]
    success: Callable[[MujocoDynamics], Callable[[FloatArray], bool]]
    hints: PlannerHints
    operating_point: Callable[[MujocoDynamics], OperatingPoint] | None = None
    episode_goal: Callable[[MujocoDynamics], Callable[[FloatArray], FloatArray]] | None = None
    value_dims: tuple[int, ...] | None = None
    about: str = ""


POLE_LIMIT = 0.2
"""InvertedPendulum ends the episode when the pole is more than this (rad) from upright."""
REACH_TOLERANCE = 0.01
"""Reacher succeeds when the fingertip ends within this distance (m) of the target."""


def _upright(model: MujocoDynamics) -> OperatingPoint:
    """The poles at rest above their hinges, the cart at 0, and the force that holds them.

    Not ``qpos = 0`` with no force exactly: Gymnasium's inverted pendulum pole is drawn
    1 mm off vertical (it rests 1.7 mrad off), and the double pendulum's gravity has a
    1e-5 m/s^2 sideways part.
    """
    hinges = list(range(1, model.model.nq))
    return equilibrium(model, np.zeros(model.nx), np.zeros(model.nu), hinges, free_action=True)


def _inverted_pendulum_cost(model: MujocoDynamics) -> CostSum:
    return CostSum(
        Term("fallen", AngleOutside(1, POLE_LIMIT), 10.0),
        Term("upright", StateTracking(np.zeros(model.nx), [5.0, 20.0, 0.5, 0.5])),
        Term("effort", ControlEffort(), 0.01),
    )


def _inverted_pendulum_success(model: MujocoDynamics) -> Callable[[FloatArray], bool]:
    def success(states: FloatArray) -> bool:
        return bool(np.all(np.isfinite(states)) and np.all(np.abs(states[:, 1]) <= POLE_LIMIT))

    return success


def _double_pendulum_cost(model: MujocoDynamics) -> CostSum:
    tip = PoleTipDistance.of(model.model)
    velocity = np.zeros(model.nx)
    velocity[4:6] = (1e-3, 5e-3)
    return CostSum(
        Term("fallen", PoleTipFallen(tip), 10.0),
        Term("distance", tip),
        Term("velocity", StateTracking(np.zeros(model.nx), velocity)),
        Term("effort", ControlEffort(), 0.01),
    )


def _double_pendulum_success(model: MujocoDynamics) -> Callable[[FloatArray], bool]:
    tip = PoleTipDistance.of(model.model)

    def success(states: FloatArray) -> bool:
        return bool(np.all(np.isfinite(states)) and np.all(tip.tip(states)[1] > 1.0))

    return success


def _reacher_cost(model: MujocoDynamics) -> CostSum:
    return CostSum(
        Term("distance", FingertipDistance.of(model.model, smoothing=REACH_TOLERANCE)),
        Term("effort", ControlEffort(), 0.1),
    )


def _reacher_success(model: MujocoDynamics) -> Callable[[FloatArray], bool]:
    reach = FingertipDistance.of(model.model)

    def success(states: FloatArray) -> bool:
        return bool(np.isfinite(states[-1]).all() and reach.distance(states[-1]) < REACH_TOLERANCE)

    return success


GYM_TASKS: dict[str, GymTaskSpec] = {
    "InvertedPendulum": GymTaskSpec(
        cost=_inverted_pendulum_cost,
        success=_inverted_pendulum_success,
        hints=PlannerHints(num_samples=64, horizon=5, noise_sigma=0.5, temperature=0.1),
        operating_point=_upright,
        about="10 per step with the pole past 0.2 rad (the survival reward; the env ends "
        "there), a quadratic pull to upright at rest (not in the reward: it shapes the "
        "flat survival term), 0.01 |u|^2",
    ),
    "InvertedDoublePendulum": GymTaskSpec(
        cost=_double_pendulum_cost,
        success=_double_pendulum_success,
        hints=PlannerHints(num_samples=64, horizon=5, noise_sigma=0.2, temperature=0.1),
        operating_point=_upright,
        about="the reward's distance_penalty (0.01 x_tip^2 + (z_tip - 2)^2), "
        "velocity_penalty (1e-3 w1^2 + 5e-3 w2^2) and survival (10 per step with the tip "
        "at or below 1 m), and 0.01 |u|^2 (not in the reward)",
    ),
    "Reacher": GymTaskSpec(
        cost=_reacher_cost,
        success=_reacher_success,
        hints=PlannerHints(num_samples=64, horizon=10, noise_sigma=0.5, temperature=0.1),
        episode_goal=lambda model: FingertipDistance.of(model.model).pose_at_target,
        value_dims=REACHER_ARM,
        about="the reward's reward_dist (the fingertip-target distance, smoothed within 1 cm "
        "of the target so that it has a quadratic model there) and reward_ctrl (0.1 |u|^2)",
    ),
}
"""Environments with a starting cost, a success test and planner hints, by Gymnasium name
(``env.spec.name``: the id without its version; measured on the ``-v5`` versions)."""


# --- the task ---------------------------------------------------------------------------------


def _mujoco_env(env_or_id: Env | str, make_kwargs: dict[str, Any]) -> tuple[Env, Callable[[], Env]]:
    """The environment, and how to get one per episode (a fresh one for an id)."""
    if isinstance(env_or_id, str):
        env_id = env_or_id

        def fresh() -> Env:
            return gymnasium.make(env_id, **make_kwargs)

        try:
            env = fresh()
        except gymnasium.error.Error as err:
            raise InputError(
                f"gymnasium cannot make {env_id!r}: {err} Name a registered environment id "
                "(gymnasium.pprint_registry() lists them), e.g. InvertedPendulum-v5."
            ) from None
    else:
        if make_kwargs:
            raise InputError(
                "gym_task got an environment instance and make keywords "
                f"{sorted(make_kwargs)}; pass the keywords to gymnasium.make yourself."
            )
        env = env_or_id

        def fresh() -> Env:
            return env

    if not isinstance(env.unwrapped, MujocoEnv):
        name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        raise InputError(
            f"{name} is not a Gymnasium MuJoCo environment (its unwrapped env is "
            f"{type(env.unwrapped).__name__}, not a gymnasium.envs.mujoco.MujocoEnv), so it has "
            "no MuJoCo model to plan with. Use a MuJoCo one (InvertedPendulum-v5, Reacher-v5, "
            "...), or wrap your own model: imle_mpc.Task with any Dynamics (the cart-pole is "
            "make_task('cartpole'))."
        )
    return env, fresh


def _spec_of(env: Env) -> GymTaskSpec | None:
    return GYM_TASKS.get(env.spec.name) if env.spec is not None else None


def gym_task(
    env_or_id: Env | str,
    *,
    cost: CostSum | Callable[[FloatArray, FloatArray], FloatArray] | None = None,
    steps: int | None = None,
    terminal_value: bool | str | QuadraticTerminalValue = "auto",
    terminal_weight: float = 1.0,
    success: Callable[[FloatArray], bool] | None = None,
    hints: PlannerHints | None = None,
    num_threads: int | None = None,
    **make_kwargs: Any,
) -> Task:
    """A ``Task`` from a Gymnasium MuJoCo environment (see the module docstring).

    Args:
        env_or_id: an environment id (``"InvertedPendulum-v5"``; each episode gets a
            fresh ``gymnasium.make(id, **make_kwargs)``) or an instance (every episode
            runs on it, reset with the episode's seed).
        cost: the planner's cost (default: the environment's, ``GYM_TASKS``; for an
            environment not there, the action effort only, with a warning).
        steps: episode length (default: the environment's ``max_episode_steps``).
        terminal_value: ``"auto"`` adds the LQR terminal value where the environment
            has an operating point (``GymTaskSpec.operating_point``: the balancing ones);
            True requires it (refused where there is none); False leaves it out; a
            ``QuadraticTerminalValue`` of yours is added as it is.
        terminal_weight: the weight of the terminal value term (1: the cost-to-go).
        success: ``fn(states Shape=(T+1, nx)) -> bool`` (default: the environment's,
            ``GYM_TASKS``; otherwise every state finite). An episode the environment
            terminated fails whatever this says.
        hints: planner settings (default: the environment's, else ``PlannerHints()``).
        num_threads: the model's rollout threads (``MujocoDynamics``).
        **make_kwargs: passed to ``gymnasium.make`` with an id (e.g. ``reset_noise_scale``).

    Returns:
        The task; ``task.plant()`` is the environment as a ``Plant``,
        ``task.dynamics.dt == env.unwrapped.dt``.

    Raises:
        InputError: not a MuJoCo environment (the message names the fix); a terminal
            value asked where the environment has no operating point; or an LQR that
            cannot be built from the cost (``planners.terminal_value`` says why).
    """
    env, fresh = _mujoco_env(env_or_id, make_kwargs)
    inner = env.unwrapped
    assert isinstance(inner, MujocoEnv)  # _mujoco_env refused anything else
    env_id = env.spec.id if env.spec is not None else type(inner).__name__
    # A copy of the compiled model: whatever the environment changed after loading its XML
    # is in it, and the planner's rollouts never touch the environment's own.
    model = MujocoDynamics(
        copy.deepcopy(inner.model), frame_skip=int(inner.frame_skip), num_threads=num_threads
    )
    spec = _spec_of(env)
    task_cost: Any = cost
    if task_cost is None:
        if spec is None:
            warnings.warn(
                f"gym_task has no starting cost for {env_id}: it plans on the action effort "
                "only, which does nothing useful. Bring the task's cost: gym_task(..., cost=...) "
                "with fn(X Shape=(K, H+1, nx), U Shape=(K, H, nu)) -> (K,) over the state "
                "(qpos, qvel, act).",
                stacklevel=2,
            )
            task_cost = CostSum(Term("effort", ControlEffort(), 1e-3))
        else:
            task_cost = spec.cost(model)
    value = _terminal_value(terminal_value, spec, model, task_cost, env_id)
    if value is not None:
        task_cost = with_terminal_value(task_cost, value, terminal_weight)
    if success is None:
        success = spec.success(model) if spec is not None else _all_finite
    horizon = steps if steps is not None else (env.spec.max_episode_steps if env.spec else None)
    if horizon is None:
        raise InputError(f"{env_id} has no max_episode_steps; pass steps=... to gym_task.")
    nq, nv = inner.model.nq, inner.model.nv

    def plant() -> Plant:
        return MujocoEnvPlant(fresh(), model)

    # The nominal start, without the environment's reset noise (the plant's reset adds it).
    initial = np.concatenate([inner.init_qpos, inner.init_qvel, np.zeros(inner.model.na)])
    return Task(
        name=f"gym:{env_id}",
        dynamics=model,
        cost=task_cost,
        constraints=(),
        initial_state=np.asarray(initial, dtype=np.float64),
        steps=int(horizon),
        success=success,
        hints=hints or (spec.hints if spec is not None else PlannerHints()),
        velocity_dims=tuple(range(nq, nq + nv)),
        plant=plant,
    )


def with_episode_goal_value(task: Task, seed: int, weight: float = 1.0) -> Task:
    """``task`` with an LQR terminal value at the goal of the episode seeded ``seed``.

    For an environment whose goal is drawn per episode (Reacher: the target), so that no
    one operating point serves every episode: the start the plant gives for ``seed`` (a
    reset of ``task.plant()``, the same draw ``run_episode`` makes), the equilibrium at
    its goal (``GymTaskSpec.episode_goal``: the fingertip on the target, at rest), and
    the value over ``GymTaskSpec.value_dims`` (the arm; the target is no action's to
    move). Build that episode's planner from the returned task.

    Raises:
        InputError: the task is not a ``gym_task`` of an environment with a per-episode
            goal in ``GYM_TASKS``.
    """
    if task.plant is None:
        raise InputError(
            f"task {task.name!r} has no plant; with_episode_goal_value is for gym_task."
        )
    plant = task.plant()
    env = plant.env if isinstance(plant, MujocoEnvPlant) else None
    spec = _spec_of(env) if env is not None else None
    if spec is None or spec.episode_goal is None or not isinstance(task.dynamics, MujocoDynamics):
        raise InputError(
            f"task {task.name!r} has no per-episode goal known to gym_task (GymTaskSpec."
            "episode_goal); build a terminal value with planners.terminal_value."
            "lqr_terminal_value at your episode's operating point."
        )
    x0, _ = plant.reset(seed=seed)
    goal = spec.episode_goal(task.dynamics)(x0)
    value = lqr_terminal_value(task.dynamics, goal, cost=task.cost, dims=spec.value_dims)
    return replace(task, cost=with_terminal_value(task.cost, value, weight))


def _all_finite(states: FloatArray) -> bool:
    return bool(np.all(np.isfinite(states)))


def _terminal_value(
    choice: bool | str | QuadraticTerminalValue,
    spec: GymTaskSpec | None,
    model: MujocoDynamics,
    cost: Any,
    env_id: str,
) -> QuadraticTerminalValue | None:
    """The terminal value term ``gym_task`` adds (None: none)."""
    if isinstance(choice, QuadraticTerminalValue):
        return choice
    if choice not in (True, False, "auto"):
        raise InputError(
            "terminal_value must be 'auto', True, False or a QuadraticTerminalValue, got "
            f"{choice!r}."
        )
    point = spec.operating_point if spec is not None else None
    if choice is False or (choice == "auto" and point is None):
        return None
    if point is None:
        raise InputError(
            f"{env_id} has no fixed operating point for an LQR terminal value (its goal is "
            "drawn per episode, or gym_task does not know the environment). Build one for "
            "your operating point with planners.terminal_value.lqr_terminal_value(task.dynamics, "
            "x_op, u_op, cost=task.cost) and pass it as terminal_value=..., or leave it out."
        )
    x_op, u_op = point(model)
    return lqr_terminal_value(model, x_op, u_op, cost=cost)


__all__ = [
    "GYM_TASKS",
    "REACHER_ARM",
    "AngleOutside",
    "FingertipDistance",
    "GymTaskSpec",
    "PoleTipDistance",
    "PoleTipFallen",
    "gym_task",
    "with_episode_goal_value",
]
