"""PPO fine-tuning through stable-baselines3: resumable, KL-adaptive."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from imle_mpc.eval.finetune import FinetuneConfig, finetune
from imle_mpc.learn.genpo import GenPOConfig, load_policy
from imle_mpc.learn.genpo.flow_policy import FlowPolicyConfig, load_flow_policy
from imle_mpc.learn.genpo.policy import LatentPolicy
from imle_mpc.learn.genpo.ppo import (
    CHECKPOINT_FILE,
    CRITIC_GROUP,
    AdaptivePPO,
    PPOConfig,
    build_ppo,
    genpo_action_map,
)
from imle_mpc.learn.genpo.vec_env import BatchedVecEnv
from imle_mpc.learn.model_file import CheckpointError
from imle_mpc.tasks.registry import make_task
from imle_mpc.tasks.vector_env import vector_env

TINY = PPOConfig(
    total_steps=4 * 16 * 8, n_steps=16, batch_size=64, n_epochs=2, checkpoint_every=128
)
SMALL_POLICY = GenPOConfig(steps=2, hidden=(16,))
SMALL_FLOW = FlowPolicyConfig(transforms=2, bins=4, hidden=(16,))
LOADERS: dict[str, Callable[[Path], LatentPolicy]] = {
    "genpo": load_policy,
    "flow": load_flow_policy,
}


def _config(policy: str = "genpo", ppo: PPOConfig = TINY) -> FinetuneConfig:
    return FinetuneConfig(
        task="nav_one_obstacle", policy=policy, num_envs=8, bc_epochs=2, eval_every=256,
        eval_episodes=4, ppo=ppo, genpo=SMALL_POLICY, flow=SMALL_FLOW,
    )  # fmt: skip


class KilledError(Exception):
    pass


@pytest.mark.parametrize("policy", ["genpo", "flow"])
def test_a_killed_run_resumes_from_its_checkpoint(policy: str, tmp_path: Path) -> None:
    def kill_after(step: int, _history: object) -> None:
        if step >= 384:
            raise KilledError

    torch.set_num_threads(1)
    with pytest.raises(KilledError):
        finetune(_config(policy), tmp_path, progress=False, callback=kill_after)
    committed = (tmp_path / CHECKPOINT_FILE).read_text()
    assert '"step": 256' in committed  # the last checkpoint before the kill
    with pytest.raises(CheckpointError, match="--resume"):
        finetune(_config(policy), tmp_path, progress=False)
    model, history = finetune(_config(policy), tmp_path, resume=True, progress=False)
    assert model.num_timesteps == TINY.total_steps
    steps = [u["step"] for u in history.updates]
    assert steps == sorted(steps) and steps[-1] == TINY.total_steps - 128  # continued from 256
    assert [e["step"] for e in history.evaluations] == [0, 256, 512]
    assert LOADERS[policy](tmp_path).trained_for["steps"] == TINY.total_steps
    # a longer run continues the finished one
    longer = replace(TINY, total_steps=TINY.total_steps + 128)
    model, _ = finetune(_config(policy, longer), tmp_path, resume=True, progress=False)
    assert model.num_timesteps == longer.total_steps
    with pytest.raises(CheckpointError, match="PPOConfig fields"):
        finetune(
            _config(policy, replace(longer, n_epochs=3)), tmp_path, resume=True, progress=False
        )


@pytest.mark.parametrize("policy", ["genpo", "gaussian"])
def test_the_kl_adaptive_rate_falls_when_the_steps_are_too_big(policy: str, tmp_path: Path) -> None:
    task = make_task("nav_one_obstacle")
    space, action_map = None, None
    if policy == "genpo":
        import gymnasium as gym

        space = gym.spaces.Box(-30.0, 30.0, (4,), np.float64)
        action_map = genpo_action_map(task.dynamics.action_low, task.dynamics.action_high)
    env = BatchedVecEnv(
        vector_env(task, 8), space, reward_scale=1e-3, seed=0, action_map=action_map
    )
    big = replace(TINY, total_steps=256, learning_rate=5e-2, desired_kl=1e-4, n_epochs=4)
    model = build_ppo(policy, env, big, np.zeros(4), np.ones(4), SMALL_POLICY)
    model.learn(256)
    assert model.last_kl > 2e-4
    assert model.adaptive_lr == pytest.approx(5e-2 / 1.5**2)  # two updates, each / 1.5
    actor_group, critic_group = model.policy.optimizer.param_groups
    assert actor_group["lr"] == pytest.approx(5e-2 / 1.5)
    # the critic keeps its own fixed rate, and its group survives a save and a load
    assert critic_group["lr"] == big.critic_learning_rate == 1e-3
    value_ids = {id(q) for q in model.policy.value_net.parameters()}
    assert value_ids <= {id(q) for q in critic_group["params"]}
    assert not value_ids & {id(q) for q in actor_group["params"]}
    model.save(tmp_path / "ppo.zip")
    loaded = AdaptivePPO.load(tmp_path / "ppo.zip", env=env)
    assert [g.get("name") for g in loaded.policy.optimizer.param_groups] == [None, CRITIC_GROUP]
    loaded.learn(128, reset_num_timesteps=False)
    assert loaded.policy.optimizer.param_groups[1]["lr"] == 1e-3


def test_the_finetune_command_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from imle_mpc.cli import main

    args = [
        "finetune", "--task", "nav_one_obstacle", "--num-envs", "8", "--bc-epochs", "2",
        "--eval-every", "0", "--genpo-mix", "1", "--genpo-min-log-scale", "-2.3",
        "--out", str(tmp_path), "--json",
    ]  # fmt: skip
    assert main([*args, "--steps", "720"]) == 0
    config = load_policy(tmp_path).config  # the GenPO flags reached the policy
    assert (config.mix, config.min_log_scale) == (1.0, -2.3)
    assert main([*args, "--steps", "1440"]) == 2  # the run is there: --resume or another --out
    assert main([*args, "--steps", "1440", "--resume"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 1440 and summary["policy"] == "genpo"
    assert load_policy(tmp_path).trained_for["steps"] == 1440


def test_the_finetune_command_takes_the_flow_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from imle_mpc.cli import main

    args = [
        "finetune", "--task", "nav_one_obstacle", "--policy", "flow", "--num-envs", "8",
        "--bc-epochs", "2", "--eval-every", "360", "--eval-episodes", "4", "--steps", "720",
        "--out", str(tmp_path), "--json",
    ]  # fmt: skip
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["policy"] == "flow" and summary["steps"] == 720
    assert summary["end"]["step"] == 720 and summary["end"]["episodes"] == 4
    policy = load_flow_policy(tmp_path)
    assert policy.trained_for["steps"] == 720 and policy.trained_for["policy"] == "flow"


@pytest.mark.parametrize("policy", ["genpo", "gaussian", "flow"])
def test_an_update_raises_the_likelihood_of_the_better_actions(policy: str) -> None:
    """PPO's direction: after one update, log pi rose where the advantage was positive."""
    from stable_baselines3.common.callbacks import CallbackList
    from stable_baselines3.common.utils import configure_logger

    from imle_mpc.eval.finetune import make_vec_env

    torch.manual_seed(0)
    task = make_task("nav_one_obstacle")
    env = make_vec_env(task, 8, policy, 1e-3, 0, 1.0, 10.0)
    config = replace(TINY, n_steps=32, batch_size=64, n_epochs=3, desired_kl=None)
    model = build_ppo(policy, env, config, np.zeros(4), np.ones(4), SMALL_POLICY, SMALL_FLOW)
    model._setup_learn(256, None)
    model.set_logger(configure_logger(0, None, "", False))
    callback = CallbackList([])
    callback.init_callback(model)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=32)  # type: ignore[arg-type]
    buffer = model.rollout_buffer
    obs = torch.as_tensor(buffer.observations.reshape(-1, 4))
    actions = torch.as_tensor(buffer.actions.reshape(256, -1))
    advantages = buffer.advantages.reshape(-1)
    old = buffer.log_probs.reshape(-1)
    model.train()
    with torch.no_grad():
        new = model.policy.evaluate_actions(obs, actions)[1].numpy().reshape(-1)
    advantages = (advantages - advantages.mean()) / advantages.std()
    assert float(np.mean(advantages * (new - old))) > 1e-4  # not float32 rounding (~1e-8)


@pytest.mark.parametrize("policy", ["genpo", "gaussian"])
def test_the_finetune_command_runs_on_the_mujoco_push_task(
    policy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``imle-mpc finetune --task push_block``: cloned on the shipped pushes, PPO over the
    rollout pool's batched envs, judged by the task's success test and route classifier."""
    pytest.importorskip("mujoco")
    from imle_mpc.cli import main

    args = [
        "finetune", "--task", "push_block", "--policy", policy, "--num-envs", "8",
        "--bc-epochs", "2", "--steps", "720", "--eval-every", "720", "--eval-episodes", "4",
        "--gaussian-log-std", "-2.4", "--out", str(tmp_path), "--json",
    ]  # fmt: skip
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 720 and summary["task"] == "push_block"
    for point in (summary["start"], summary["end"]):
        assert point["episodes"] >= 4
        assert set(point["routes"]) <= {"left", "right", "through", "none"}
    if policy == "genpo":
        assert load_policy(tmp_path).trained_for["task"] == "push_block"
    else:
        model = AdaptivePPO.load(next(tmp_path.glob("*.zip")))
        assert float(model.policy.log_std.detach().mean()) == pytest.approx(-2.4, abs=0.05)


def test_the_finetune_command_names_the_mixing_weights_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from imle_mpc.cli import main

    assert main(["finetune", "--genpo-mix", "1.5", "--out", str(tmp_path)]) == 2
    assert "GenPOConfig.mix must be in (0, 1]" in capsys.readouterr().err
