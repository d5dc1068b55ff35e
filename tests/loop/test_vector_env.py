"""BatchedDynamicsEnv: N batched environments equal N single DynamicsEnv step by step."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import TimeLimit

from dynamics import CartPole, Pendulum, PointMass2D, TwoLinkArm
from imle_mpc.core.protocols import Dynamics
from imle_mpc.loop.plant import DynamicsEnv
from imle_mpc.loop.vector_env import BatchedDynamicsEnv
from imle_mpc.tasks import make_task
from imle_mpc.tasks.vector_env import cost_reward, vector_env

N = 12
HORIZON = 7


def _reward(X: np.ndarray, U: np.ndarray, X_next: np.ndarray) -> np.ndarray:
    return -(X_next**2).sum(axis=1) - 0.1 * (U**2).sum(axis=1) + X[:, 0]


def _terminate(X_next: np.ndarray) -> np.ndarray:
    return np.abs(X_next[:, 0]) > 2.5  # fires now and then for the random starts below


def _random_start(model: Dynamics) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.uniform(-2.0, 2.0, size=model.nx)


def _sync(model: Dynamics, start: Any) -> SyncVectorEnv:
    """The reference: SyncVectorEnv over N single DynamicsEnv (same reward and termination)."""

    def make() -> gym.Env[Any, Any]:
        env = DynamicsEnv(
            model,
            start,
            reward=lambda x, u, xn: float(_reward(x[None], u[None], xn[None])[0]),
            terminate=lambda xn: bool(_terminate(xn[None])[0]),
        )
        return TimeLimit(env, max_episode_steps=HORIZON)

    return SyncVectorEnv([make] * N, autoreset_mode=AutoresetMode.SAME_STEP)


def _batched(model: Dynamics, start: Any, **kw: Any) -> BatchedDynamicsEnv:
    return BatchedDynamicsEnv(
        model,
        N,
        start,
        max_episode_steps=HORIZON,
        reward=_reward,
        terminate=_terminate,
        **kw,
    )


@pytest.mark.parametrize("model", [Pendulum(), CartPole(), PointMass2D(), TwoLinkArm()], ids=type)
def test_equals_sync_vector_env_over_single_envs_step_by_step(model: Dynamics) -> None:
    start = _random_start(model)
    batched, sync = _batched(model, start), _sync(model, start)
    obs_b, _ = batched.reset(seed=11)
    obs_s, _ = sync.reset(seed=11)
    np.testing.assert_array_equal(obs_b, obs_s)
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(40):
        # Actions beyond the box: the clipping must agree too.
        actions = 3.0 * rng.normal(size=(N, model.nu)) * np.asarray(model.action_high)
        ob, rb, teb, trb, ib = batched.step(actions)
        os_, rs, tes, trs, is_ = sync.step(actions)
        np.testing.assert_allclose(ob, os_, rtol=0, atol=1e-12)
        np.testing.assert_allclose(rb, rs, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(teb, tes)
        np.testing.assert_array_equal(trb, trs)
        done = teb | trb
        if done.any():
            finished += int(done.sum())
            np.testing.assert_array_equal(ib["_final_obs"], done)
            np.testing.assert_array_equal(is_["_final_obs"], done)
            for i in np.flatnonzero(done):
                np.testing.assert_allclose(ib["final_obs"][i], is_["final_obs"][i], atol=1e-12)
        else:
            assert "final_obs" not in ib
    assert finished > N  # the autoresets ran, by termination and by truncation
    assert batched.episode_steps.max() < HORIZON


def test_per_env_seeds_are_reproducible_and_independent() -> None:
    model = PointMass2D()
    start = _random_start(model)
    a, b = _batched(model, start), _batched(model, start)
    oa, _ = a.reset(seed=5)
    ob, _ = b.reset(seed=5)
    np.testing.assert_array_equal(oa, ob)
    assert len({tuple(row) for row in oa}) == N  # seed + i: a stream of its own each
    # Environment i is DynamicsEnv seeded with seed + i, its autoresets included.
    single = DynamicsEnv(model, start)
    np.testing.assert_array_equal(single.reset(seed=5 + 3)[0], oa[3])
    # A list gives one seed each; None keeps that environment's stream.
    oc, _ = a.reset(seed=[5 + i for i in range(N)])
    np.testing.assert_array_equal(oc, ob)
    od, _ = a.reset(seed=[None] * (N - 1) + [100])
    assert not np.array_equal(od[:-1], oc[:-1])  # the streams moved on
    np.testing.assert_array_equal(od[-1], DynamicsEnv(model, start).reset(seed=100)[0])
    with pytest.raises(ValueError, match="seeds for num_envs"):
        a.reset(seed=[1, 2])


def test_reset_mask_resets_only_those_envs() -> None:
    model = Pendulum()
    env = _batched(model, _random_start(model))
    env.reset(seed=0)
    env.step(np.zeros((N, 1)))
    before = env.states
    mask = np.zeros(N, dtype=np.bool_)
    mask[[1, 4]] = True
    obs, _ = env.reset(options={"reset_mask": mask})
    np.testing.assert_array_equal(obs[~mask], before[~mask])
    assert not np.array_equal(obs[mask], before[mask])
    np.testing.assert_array_equal(env.episode_steps, np.where(mask, 0, 1))


def test_violations_in_info_match_the_constraints_evaluated_directly() -> None:
    task = make_task("nav_one_obstacle")
    low = np.array([-0.5, -2.0, -1.0, -1.0])
    high = np.array([4.0, 2.0, 1.0, 1.0])
    env = vector_env(task, 256, initial_state=lambda rng: rng.uniform(low, high))
    x, _ = env.reset(seed=1)
    actions = np.random.default_rng(2).uniform(-1, 1, size=(256, task.dynamics.nu))
    _, _, _, _, info = env.step(actions)
    X = np.stack([x, env.states], axis=1)  # no episode ended: states are x_t+1
    U = np.clip(actions, task.dynamics.action_low, task.dynamics.action_high)[:, None, :]
    expected = np.stack([c.violation(X, U) for c in task.safety], axis=1)
    np.testing.assert_array_equal(info["constraint_violation"], expected)
    np.testing.assert_array_equal(info["unsafe"], (expected > 0).any(axis=1))
    assert 0 < info["unsafe"].sum() < 256  # some starts are inside the obstacle


def test_default_reward_is_minus_the_task_cost_of_the_transition() -> None:
    task = make_task("pendulum")
    env = vector_env(task, 4)
    x, _ = env.reset(seed=0)
    u = np.full((4, 1), 0.7)
    _, reward, _, truncated, _ = env.step(u)
    X = np.stack([x, env.states], axis=1)
    np.testing.assert_allclose(reward, -task.cost(X, u[:, None, :]), rtol=0, atol=1e-12)
    assert env._max_steps == task.steps and not truncated.any()
    with pytest.raises(ValueError, match="own plant"):
        vector_env(dataclasses.replace(task, plant=lambda: None), 2)  # type: ignore[arg-type,return-value]


def test_gymnasium_vector_api_spaces_shapes_and_dtypes() -> None:
    model = CartPole()
    env = _batched(model, np.zeros(model.nx))
    assert isinstance(env, gym.vector.VectorEnv)
    assert env.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert env.single_observation_space.shape == (model.nx,)
    assert env.observation_space.shape == (N, model.nx)
    assert env.action_space.shape == (N, model.nu)
    assert isinstance(env.single_action_space, gym.spaces.Box)
    np.testing.assert_array_equal(env.single_action_space.high, model.action_high)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float64 and obs in env.observation_space and info == {}
    obs, rew, term, trunc, info = env.step(env.action_space.sample())
    assert obs.shape == (N, model.nx) and obs in env.observation_space
    assert rew.shape == (N,) and rew.dtype == np.float64
    assert term.dtype == np.bool_ and trunc.dtype == np.bool_ and term.shape == (N,)
    obs[:] = 99.0  # a copy: the caller cannot write into the simulator
    assert not np.any(env.states == 99.0)


def test_refuses_bad_actions_and_terminates_a_diverged_state() -> None:
    model = Pendulum()
    env = BatchedDynamicsEnv(model, 3, np.zeros(2), max_episode_steps=50)
    env.reset(seed=0)
    bad = np.zeros((3, 1))
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"environments \[1\] contain NaN"):
        env.step(bad)
    with pytest.raises(ValueError, match="Shape=\\(num_envs, nu\\)"):
        env.step(np.zeros((2, 1)))
    env._x[2, 1] = np.inf  # a state that diverged
    obs, _, terminated, truncated, info = env.step(np.zeros((3, 1)))
    np.testing.assert_array_equal(terminated, [False, False, True])
    assert not np.isfinite(info["final_obs"][2]).all()
    np.testing.assert_array_equal(obs[2], np.zeros(2))  # reset to the start
    assert not truncated.any()


def test_a_model_without_a_step_model_is_refused_by_name() -> None:
    class Opaque:
        nx, nu = 1, 1
        action_low, action_high = np.array([-1.0]), np.array([1.0])

        def rollout(self, x0: Any, U: Any, out: Any = None) -> Any:
            raise NotImplementedError

    with pytest.raises(TypeError, match="SyncVectorEnv over DynamicsEnv"):
        BatchedDynamicsEnv(Opaque(), 2, np.zeros(1))  # type: ignore[arg-type]


def test_mujoco_model_steps_through_the_rollout_pool() -> None:
    pytest.importorskip("mujoco")
    task = make_task("push_block")
    model = task.dynamics
    n = 6

    def start(rng: np.random.Generator) -> np.ndarray:
        return task.initial_state + 0.01 * rng.normal(size=model.nx)

    batched = BatchedDynamicsEnv(model, n, start, max_episode_steps=4)
    singles = [TimeLimit(DynamicsEnv(model, start), max_episode_steps=4) for _ in range(n)]
    obs = batched.reset(seed=3)[0]
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(env.reset(seed=3 + i)[0], obs[i])
    rng = np.random.default_rng(0)
    for _ in range(6):
        actions = 2.0 * rng.normal(size=(n, model.nu))
        obs, _, _, truncated, _ = batched.step(actions)
        for i, env in enumerate(singles):
            o, _, _, tr, _ = env.step(actions[i])
            if tr:
                o, _ = env.reset()
            assert tr == truncated[i]
            np.testing.assert_allclose(obs[i], o, rtol=0, atol=1e-12)


def test_a_reward_that_is_a_view_of_the_next_state_survives_the_autoreset() -> None:
    model = PointMass2D()
    env = BatchedDynamicsEnv(
        model, 4, np.zeros(4), max_episode_steps=1, reward=lambda X, U, Xn: Xn[:, 0]
    )
    env.reset(seed=0)
    _, reward, _, truncated, info = env.step(np.ones((4, 2)))
    assert truncated.all() and np.all(info["final_obs"][:, 0] > 0)
    np.testing.assert_array_equal(reward, info["final_obs"][:, 0])


@pytest.mark.parametrize(
    "name",
    ["pendulum", "cartpole", "point_mass", "nav_one_obstacle", "nav_two_obstacles", "nav_trap",
     "arm_reach_around"],
)  # fmt: skip
def test_every_analytic_shipped_task_is_a_vector_env(name: str) -> None:
    task = make_task(name)
    env = vector_env(name, 8)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, np.tile(task.initial_state, (8, 1)))
    obs, reward, _, _, info = env.step(env.action_space.sample())
    assert obs.shape == (8, task.dynamics.nx) and np.isfinite(reward).all()
    assert info.get("constraint_violation", np.zeros((8, 0))).shape == (8, len(task.safety))


def test_the_mujoco_task_as_a_vector_env_equals_its_single_envs_to_the_time_limit() -> None:
    """push_block through ``vector_env``: the rollout pool's N steps (one call a step) equal
    N single MuJoCo envs, reward and safety info included, truncated at the task's length."""
    pytest.importorskip("mujoco")
    task = make_task("push_block")
    model, n = task.dynamics, 3
    batch_reward = cost_reward(task.cost)

    def start(rng: np.random.Generator) -> np.ndarray:
        x = np.array(task.initial_state, dtype=np.float64)
        x[0:4] += rng.uniform(-0.02, 0.02, size=4)
        x[1] += 0.39  # the pusher at the table's edge: the random walk leaves it now and then
        return x

    def reward(x: np.ndarray, u: np.ndarray, x_next: np.ndarray) -> float:
        return float(np.asarray(batch_reward(x[None], u[None], x_next[None]))[0])

    batched = vector_env(task, n, initial_state=start)
    assert batched._max_steps == task.steps
    singles = [TimeLimit(DynamicsEnv(model, start, reward=reward), task.steps) for _ in range(n)]
    obs = batched.reset(seed=5)[0]
    xs = [env.reset(seed=5 + i)[0] for i, env in enumerate(singles)]
    np.testing.assert_array_equal(np.stack(xs), obs)
    rng = np.random.default_rng(1)
    truncations, violated = 0, 0
    for _ in range(task.steps + 5):
        actions = rng.uniform(-0.45, 0.45, size=(n, model.nu))  # beyond the +-0.3 box
        obs, rew, term, trunc, info = batched.step(actions)
        assert not term.any()
        truncations += int(trunc.sum())
        violated += int(info["unsafe"].sum())
        for i, env in enumerate(singles):
            o, r, _, tr, _ = env.step(actions[i])
            u = np.clip(actions[i], model.action_low, model.action_high)
            X, U = np.stack([xs[i], o])[None], u[None, None]
            violation = [c.violation(X, U)[0] for c in task.safety]
            np.testing.assert_allclose(info["constraint_violation"][i], violation, atol=1e-12)
            assert tr == trunc[i] and r == pytest.approx(rew[i], abs=1e-9)
            if tr:
                np.testing.assert_allclose(info["final_obs"][i], o, atol=1e-12)
                o, _ = env.reset()
            np.testing.assert_allclose(obs[i], o, rtol=0, atol=1e-12)
            xs[i] = o
    assert truncations == n  # every env once, at step 120
    assert violated > 0  # the constraints' comparison above was not all zeros


def test_the_mujoco_vector_env_resets_one_env_without_touching_the_others() -> None:
    pytest.importorskip("mujoco")
    task = make_task("push_block")
    env = vector_env(task, 4, initial_state=lambda rng: task.initial_state + rng.uniform(
        -0.01, 0.01, size=task.dynamics.nx))  # fmt: skip
    env.reset(seed=0)
    for _ in range(3):
        obs, *_ = env.step(np.tile([0.3, 0.1], (4, 1)))
    mask = np.array([False, True, False, False])
    again, _ = env.reset(seed=[None, 11, None, None], options={"reset_mask": mask})
    np.testing.assert_array_equal(again[~mask], obs[~mask])
    np.testing.assert_array_equal(env.episode_steps, [3, 0, 3, 3])
    fresh = vector_env(task, 1, initial_state=env._initial_state).reset(seed=11)[0][0]
    np.testing.assert_array_equal(again[1], fresh)  # env 1 replays its own seed
    moved, *_ = env.step(np.tile([0.3, 0.1], (4, 1)))
    assert np.linalg.norm(moved[1, 0:2] - again[1, 0:2]) > 1e-3  # it steps from its new start
