"""The SB3 adapter steps the batched env exactly, and translates SAME_STEP autoresets."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from imle_mpc.learn.genpo.vec_env import BatchedVecEnv
from imle_mpc.tasks.registry import make_task
from imle_mpc.tasks.vector_env import vector_env


def test_adapter_equals_the_batched_env_step_by_step() -> None:
    task = make_task("nav_one_obstacle")
    n, nu = 6, task.dynamics.nu
    reference = vector_env(task, n, max_episode_steps=7)
    pair = gym.spaces.Box(-2.0, 2.0, (2 * nu,), np.float32)
    seen: list[np.ndarray] = []

    def judge(states: np.ndarray) -> dict[str, object]:
        seen.append(states)
        return {"success": False, "route": task.route_of(states)}

    adapter = BatchedVecEnv(
        vector_env(task, n, max_episode_steps=7), pair, reward_scale=0.5, judge=judge, seed=3
    )
    obs_ref, _ = reference.reset(seed=3)
    np.testing.assert_array_equal(adapter.reset(), obs_ref)
    rng = np.random.default_rng(0)
    obs_step: object
    ref_states = [obs_ref.copy()]
    for t in range(16):
        actions = rng.uniform(-3, 3, (n, 2 * nu))  # the dummy half must not reach the plant
        obs_ref, r_ref, term, trunc, info = reference.step(actions[:, :nu])
        obs_step, r, done, infos = adapter.step(actions)
        np.testing.assert_array_equal(obs_step, obs_ref)
        np.testing.assert_allclose(r, 0.5 * r_ref)
        np.testing.assert_array_equal(done, term | trunc)
        ref_states.append(info.get("final_obs", obs_ref).copy())
        for i in range(n):
            if done[i]:
                np.testing.assert_array_equal(
                    infos[i]["terminal_observation"], info["final_obs"][i]
                )
                assert infos[i]["TimeLimit.truncated"] == bool(trunc[i] and not term[i])
                assert infos[i]["episode"]["l"] == 7
            else:
                assert "terminal_observation" not in infos[i]
        if (t + 1) % 7 == 0:
            assert all(done) and all(info["TimeLimit.truncated"] for info in infos)
            # the judged states are the episode's: its start and its 7 steps
            episode = np.stack(ref_states[-8:], axis=1)
            for i in range(n):
                np.testing.assert_array_equal(seen[-n + i], episode[i])
            ref_states = [obs_ref.copy()]
    assert len(seen) == 2 * n


def test_penalty_and_bonus() -> None:
    task = make_task("nav_one_obstacle")
    env = vector_env(task, 2, max_episode_steps=3, reward=None)
    adapter = BatchedVecEnv(
        env, None, judge=lambda s: {"success": True}, seed=0, unsafe_penalty=2.0,
        success_bonus=5.0,
    )  # fmt: skip
    adapter.reset()
    rewards = [adapter.step(np.zeros((2, 2)))[1] for _ in range(3)]
    np.testing.assert_array_equal(rewards[0], [0.0, 0.0])  # safe, not finished
    np.testing.assert_array_equal(rewards[2], [5.0, 5.0])  # the judged success, last step
