"""The offline agent's model file (save -> load -> same actions) and TD3+BC on push_block."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from imle_mpc.eval.episodes import EpisodeOutcome, run_episode
from imle_mpc.eval.offline import AgentPlanner, task_transitions
from imle_mpc.learn.config import FlowConfig, OfflineRLConfig, TrainConfig
from imle_mpc.learn.demos import DemoDataset, Episode
from imle_mpc.learn.flow import ChunkFlow, save_flow, train_flow
from imle_mpc.learn.model_file import CheckpointError
from imle_mpc.learn.offline import (
    TD3BC,
    ActionSpace,
    FlowLatent,
    RawBox,
    Transitions,
    load_agent,
    save_agent,
)
from imle_mpc.tasks import make_task
from imle_mpc.tasks.bad_demos import mixed_dataset

SMALL = OfflineRLConfig(steps=60, batch_size=64, hidden=(16, 16), learning_rate=1e-3)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_data(seed: int = 0) -> DemoDataset:
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(6):
        obs = rng.normal(size=(15, 3))
        actions = np.tanh(obs[:, :2]) * 0.5 + 0.05 * rng.normal(size=(15, 2))
        episodes.append(Episode(obs, obs.copy(), actions))
    return DemoDataset(tuple(episodes), {"dt": 0.1})


def tiny_flow(seed: int = 0) -> ChunkFlow:
    config = FlowConfig(horizon=1, action_horizon=1, transforms=1, bins=4, hidden=(8,))
    flow, _ = train_flow(tiny_data(), config, TrainConfig(epochs=2, warmup_steps=1, seed=seed),
                         progress=False)  # fmt: skip
    return flow


def transitions(space: ActionSpace, data: DemoDataset) -> Transitions:
    obs = np.concatenate([e.observations for e in data.episodes])
    actions = np.concatenate([e.actions for e in data.episodes])
    rewards = -np.sum(actions**2, axis=1)
    return Transitions(obs, space.to_box(obs, actions), rewards, obs, np.zeros(len(obs)))


def test_a_raw_agent_saved_and_loaded_acts_and_values_the_same(tmp_path: Path) -> None:
    space = RawBox([-1.0, -2.0], [1.0, 2.0])
    agent = TD3BC(transitions(space, tiny_data()), SMALL)
    agent.fit(progress=False, log_every=30)
    path = save_agent(agent, space, tmp_path, task="toy")
    loaded, loaded_space = load_agent(path)
    obs = np.random.default_rng(1).normal(size=(20, 3))
    np.testing.assert_array_equal(loaded.act(obs), agent.act(obs))
    u = agent.act(obs)
    np.testing.assert_array_equal(loaded.q_values(obs, u), agent.q_values(obs, u))
    assert isinstance(loaded_space, RawBox) and loaded.steps == agent.steps == 60
    np.testing.assert_array_equal(loaded_space.high, space.high)
    np.testing.assert_array_equal(loaded_space.from_box(obs, u), space.from_box(obs, u))
    with pytest.raises(RuntimeError, match="no dataset"):
        loaded.fit(steps=1, progress=False)


def test_a_latent_agent_keeps_its_flow_and_refuses_another(tmp_path: Path) -> None:
    flow = tiny_flow()
    space = FlowLatent(flow)
    agent = TD3BC(transitions(space, tiny_data()), SMALL)
    agent.fit(progress=False, log_every=30)
    path = save_agent(agent, space, tmp_path / "agent.safetensors")
    flow_file = tmp_path / "agent.flow.safetensors"
    assert flow_file.is_file()  # written beside it, referenced relatively
    loaded, loaded_space = load_agent(path)
    assert isinstance(loaded_space, FlowLatent)
    obs = np.random.default_rng(2).normal(size=(10, 3))
    actions = space.from_box(obs, agent.act(obs))
    np.testing.assert_allclose(loaded_space.from_box(obs, loaded.act(obs)), actions, atol=1e-6)
    # a flow saved elsewhere is referenced there; a retrained one there is refused
    other = save_flow(flow, tmp_path / "flows" / "f.safetensors")
    path2 = save_agent(agent, space, tmp_path / "agent2.safetensors", flow_file=other)
    load_agent(path2)
    save_flow(tiny_flow(seed=5), other)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_agent(path2)
    flow_file.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_agent(path)
    with pytest.raises(CheckpointError, match="offline_agent"):
        load_agent(other)  # a flow file is not an agent


def test_td3bc_on_push_transitions_lowers_the_critic_loss_and_plans_on_mujoco() -> None:
    task = make_task("push_block")
    data = mixed_dataset(task, task.load_demonstrations(), {"noisy": 1, "lose_contact": 1})
    space = RawBox(task.dynamics.action_low, task.dynamics.action_high)
    moves = task_transitions(task, data, space, reward_scale=0.1)
    assert len(moves) == data.num_steps and np.all(moves.rewards <= 0.0)
    agent = TD3BC(moves, OfflineRLConfig(**{**SMALL.to_dict(), "steps": 300, "hidden": (32, 32)}))
    batch = agent._tensors(moves)
    with torch.no_grad():
        before = float(agent.critic_loss(batch))
    agent.fit(progress=False, log_every=100)
    with torch.no_grad():
        after = float(agent.critic_loss(batch))
    assert after < 0.5 * before
    # the agent as a planner on the MuJoCo model, guarded
    planner = AgentPlanner(task, agent, space, horizon=5)
    assert planner.plan(task.initial_state).predicted_states.shape == (6, 8)
    record = run_episode(task, planner, seed=0, guard=True, faults=task.faults)
    assert record.steps == task.steps
    assert EpisodeOutcome.of(task, record).violation_steps == 0
