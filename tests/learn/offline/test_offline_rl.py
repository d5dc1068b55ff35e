"""Offline TD3+BC in the raw box and in a flow's latent box: direction, support, the planner."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from imle_mpc.eval.episodes import EpisodeOutcome, run_episode
from imle_mpc.eval.offline import AgentPlanner, episode_return, task_transitions
from imle_mpc.learn.config import FlowConfig, OfflineRLConfig, TrainConfig
from imle_mpc.learn.demos import DemoDataset, Episode
from imle_mpc.learn.flow import ChunkFlow, train_flow
from imle_mpc.learn.offline import TD3BC, FlowLatent, RawBox, Transitions
from imle_mpc.tasks import make_task

SMALL = OfflineRLConfig(steps=300, batch_size=128, hidden=(32, 32), learning_rate=1e-3)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def bandit(n: int = 512, seed: int = 0) -> Transitions:
    """One-step episodes: reward u_0 - u_1, actions uniform in the box."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 3))
    u = rng.uniform(-1, 1, (n, 2))
    reward = u[:, 0] - u[:, 1]
    return Transitions(obs, u, reward, obs.copy(), np.ones(n))


def test_a_few_updates_lower_the_critic_loss_and_move_the_actor_up_the_q() -> None:
    data = bandit()
    agent = TD3BC(data, OfflineRLConfig(**{**SMALL.to_dict(), "bc_weight": 0.0}))
    batch = agent._tensors(data)
    with torch.no_grad():
        before = float(agent.critic_loss(batch))
    agent.fit(progress=False, log_every=100)
    with torch.no_grad():
        after = float(agent.critic_loss(batch))
    assert after < 0.3 * before
    # the reward grows toward (+1, -1): the actor (TD3, no cloning) heads there
    mean = agent.act(data.obs[:64]).mean(axis=0)
    assert mean[0] > 0.5 and mean[1] < -0.5


def test_behaviour_cloning_regresses_the_dataset_actions() -> None:
    rng = np.random.default_rng(1)
    obs = rng.normal(size=(512, 3))
    u = np.tanh(obs[:, :2])  # a function of the observation
    data = Transitions(obs, u, np.zeros(512), obs, np.zeros(512))
    agent = TD3BC(data, OfflineRLConfig(**{**SMALL.to_dict(), "alpha": 0.0}))
    history = agent.fit(progress=False, log_every=100)
    assert history.bc_loss[-1] < 0.2 * history.bc_loss[0]
    assert all(np.isnan(history.critic_loss))  # BC trains no critic


def one_action_flow(seed: int = 0) -> tuple[ChunkFlow, DemoDataset]:
    """A small flow over single 2-D actions given a 2-D observation (two modes in ay)."""
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(12):
        T = 20
        obs = np.stack([np.arange(T) / T, np.zeros(T)], axis=1)
        ay = (1 if i % 2 else -1) * 0.8 + 0.1 * rng.normal(size=T)
        actions = np.stack([0.5 + 0.1 * rng.normal(size=T), ay], axis=1)
        episodes.append(Episode(obs, np.hstack([obs, obs]), actions))
    data = DemoDataset(tuple(episodes), {"dt": 0.1, "modes": ["a", "b"] * 6})
    config = FlowConfig(horizon=1, action_horizon=1, transforms=2, bins=6, hidden=(32, 32))
    train = TrainConfig(epochs=20, batch_size=64, lr=3e-3, warmup_steps=5)
    flow, _ = train_flow(data, config, train, progress=False)
    return flow, data


def test_every_latent_in_the_box_decodes_in_support_and_dataset_actions_round_trip() -> None:
    flow, data = one_action_flow()
    space = FlowLatent(flow)
    rng = np.random.default_rng(2)
    obs = np.stack([rng.uniform(0, 1, 500), np.zeros(500)], axis=1)
    z = rng.uniform(-1, 1, (500, 2))
    z[:8] = np.sign(rng.normal(size=(8, 2)))  # the box's corners too
    a = space.from_box(obs, z)
    low, high = flow.action_normalizer.low, flow.action_normalizer.high
    assert np.all((a >= low - 1e-9) & (a <= high + 1e-9))
    assert np.all(np.isfinite(flow.log_prob(obs[:, None, :], a[:, None, :])))
    # a raw box lets the same agent emit what no demonstration did
    raw = RawBox([-2, -2], [2, 2]).from_box(obs, z)
    assert np.any((raw < low) | (raw > high))
    # dataset actions: encoded through the exact inverse and decoded back
    ep = data.episodes[0]
    back = space.from_box(ep.observations, space.to_box(ep.observations, ep.actions))
    np.testing.assert_allclose(back, ep.actions, atol=1e-4)


def test_a_flow_over_chunks_is_refused_as_a_latent_action_space() -> None:
    _, data = one_action_flow()
    chunky, _ = train_flow(
        data, FlowConfig(horizon=2, action_horizon=1, transforms=1, bins=4, hidden=(8,)),
        TrainConfig(epochs=1, warmup_steps=1), progress=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match="horizon=1"):
        FlowLatent(chunky)


def test_the_agent_as_a_planner_runs_a_guarded_episode() -> None:
    task = make_task("nav_one_obstacle")
    demos = task.load_demonstrations()
    space = RawBox(task.dynamics.action_low, task.dynamics.action_high)
    data = task_transitions(task, demos, space, reward_scale=0.1)
    assert len(data) == demos.num_steps
    # a step's reward is minus the task's cost of the transition: the expert's return
    # over its own states is what episode_return says of them
    agent = TD3BC(data, OfflineRLConfig(**{**SMALL.to_dict(), "steps": 50}))
    agent.fit(progress=False, log_every=50)
    planner = AgentPlanner(task, agent, space)
    record = run_episode(task, planner, seed=0, guard=True)
    outcome = EpisodeOutcome.of(task, record)
    assert record.steps == task.steps
    assert outcome.violation_steps == 0  # an untrained agent, but the guard checks its plans
    assert planner.plan(task.initial_state).actions.shape == (task.hints.horizon, 2)
    assert np.isfinite(episode_return(task, record, 0.1))
