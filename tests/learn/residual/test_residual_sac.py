"""SAC for the residual: it starts near zero, stores what was executed, learns, and its
checkpoints resume a killed run where it stopped; the actor's file round-trips and refuses
broken ones."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from stable_baselines3.common.vec_env import DummyVecEnv

from imle_mpc.eval.factory import make_planner
from imle_mpc.eval.residual_env import ExplorationSchedule, ResidualEnv
from imle_mpc.learn.config import ResidualSACConfig
from imle_mpc.learn.model_file import CheckpointError
from imle_mpc.learn.residual import ResidualActor, ResidualNetwork, load_residual, save_residual
from imle_mpc.learn.residual.sac import (
    CHECKPOINT_FILE,
    RefineHistory,
    actor_of,
    build_sac,
    train_residual,
)
from imle_mpc.tasks import load_task
from planners.residual import residual_scale

SMALL = ResidualSACConfig(
    total_steps=320, num_envs=2, batch_size=32, learning_starts=64, train_every=32,
    checkpoint_every=96, hidden=(32, 32), learning_rate=1e-3,
)  # fmt: skip
META = {"task": "push_block", "setting": "heavy", "note": "test"}


@pytest.fixture(scope="module")
def push():  # type: ignore[no-untyped-def]
    return load_task("push_block")


def _factory(push, schedule: ExplorationSchedule = ExplorationSchedule(0), steps: int = 16):  # type: ignore[no-untyped-def]
    faults = push.refinement("heavy").faults
    scale = residual_scale(push.dynamics, 0.2)

    def make_env(index: int) -> ResidualEnv:
        base = make_planner("imle_policy", push, seed=index)
        return ResidualEnv(push, base, scale, faults, schedule, steps=steps)

    return make_env


def _vec(push, schedule: ExplorationSchedule, n: int = 2) -> DummyVecEnv:  # type: ignore[no-untyped-def]
    env = DummyVecEnv([partial(_factory(push, schedule), i) for i in range(n)])
    env.seed(0)
    return env


def _observations(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    obs = np.zeros((n, 11), dtype=np.float32)
    obs[:, :4] = rng.uniform(-0.2, 0.6, size=(n, 4))
    obs[:, 8:] = rng.uniform(-1, 1, size=(n, 3))
    return obs


def test_the_residual_starts_near_zero_where_sb3s_init_does_not(push) -> None:  # type: ignore[no-untyped-def]
    env = _vec(push, ExplorationSchedule(0), n=1)
    obs = torch.from_numpy(_observations(256))
    ours = actor_of(build_sac(env, SMALL), {}).network(obs)
    assert float(ours.abs().max()) < 0.05
    # stable-baselines3's own initialisation: a residual of order 0.1-1 from the first step.
    config = ResidualSACConfig(**{**SMALL.to_dict(), "actor_init_std": 1.0})
    theirs = actor_of(build_sac(env, config), {}).network(obs)
    assert float(theirs.abs().mean()) > 5 * float(ours.abs().mean())


@pytest.mark.parametrize("sde", [True, False])
def test_the_exported_actor_is_sb3s_deterministic_policy(push, sde: bool) -> None:  # type: ignore[no-untyped-def]
    config = ResidualSACConfig(**{**SMALL.to_dict(), "sde": sde, "actor_init_std": 30.0})
    model = build_sac(_vec(push, ExplorationSchedule(0), n=1), config)
    obs = _observations(64)
    theirs, _ = model.predict(obs, deterministic=True)
    ours = np.array([actor_of(model, {}).act(o) for o in obs])
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert np.abs(ours).max() > 0.9  # far from 0: with gSDE, SB3's clip of the mean matters
    if sde:
        assert np.abs(ours).max() <= np.tanh(2.0) + 1e-6


def test_the_buffer_stores_the_executed_residual(push) -> None:  # type: ignore[no-untyped-def]
    # The schedule at step 0 switches the residual off: SAC samples random residuals (its
    # warm-up), the env executes 0, and 0 is what the critic must learn from.
    env = _vec(push, ExplorationSchedule(10**9))
    model = build_sac(env, SMALL)
    model.learn(40)
    stored = model.replay_buffer.actions[: model.replay_buffer.pos]
    assert stored.size and not np.any(stored)
    on = _vec(push, ExplorationSchedule(0))
    model = build_sac(on, SMALL)
    model.learn(40)
    assert np.any(model.replay_buffer.actions[: model.replay_buffer.pos])


def test_sac_updates_lower_the_critic_loss(push) -> None:  # type: ignore[no-untyped-def]
    env = _vec(push, ExplorationSchedule(0))
    model = build_sac(env, SMALL)
    model.learn(SMALL.learning_starts)  # fill the buffer, no update yet
    losses = []
    for _ in range(150):
        model.train(gradient_steps=1, batch_size=SMALL.batch_size)
        losses.append(model.logger.name_to_value["train/critic_loss"])
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:5]), losses


class KilledError(Exception):
    pass


def test_a_resumed_run_continues_where_the_killed_one_stopped(push, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    make_env = _factory(push)

    def kill_after_first_checkpoint(step: int, history: RefineHistory) -> None:
        if (tmp_path / CHECKPOINT_FILE).exists():
            raise KilledError(step)

    with pytest.raises(KilledError):
        train_residual(make_env, SMALL, tmp_path, META, progress=False,
                       callback=kill_after_first_checkpoint)  # fmt: skip
    committed = json.loads((tmp_path / CHECKPOINT_FILE).read_text())
    stopped = committed["step"]
    assert SMALL.checkpoint_every <= stopped < SMALL.total_steps
    assert load_residual(tmp_path).meta["steps"] == stopped
    # Starting again without --resume would overwrite the run: refused.
    with pytest.raises(CheckpointError, match="holds a refinement run already"):
        train_residual(make_env, SMALL, tmp_path, META, progress=False)
    seen = []
    actor, history = train_residual(
        make_env, SMALL, tmp_path, META, resume=True, progress=False,
        callback=lambda step, h: seen.append(step),
    )  # fmt: skip
    assert seen[0] == stopped  # it starts from the checkpoint's step, not from 0
    final = json.loads((tmp_path / CHECKPOINT_FILE).read_text())
    assert final["step"] >= SMALL.total_steps and actor.meta["steps"] == final["step"]
    # The killed run's episodes up to the checkpoint are kept, then the run goes on.
    kept = committed["history"]["episodes"]
    assert history.episodes[: len(kept)] == kept and len(history.episodes) > len(kept)
    assert all(e["step"] > stopped for e in history.episodes[len(kept) :])
    # Only the last checkpoint's model and buffer stay on disk.
    assert len(list(tmp_path.glob("sac_*.zip"))) == len(list(tmp_path.glob("replay_*.pkl"))) == 1


def test_resume_refuses_another_run(push, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CheckpointError, match="no committed checkpoint"):
        train_residual(_factory(push), SMALL, tmp_path, META, resume=True, progress=False)
    config = ResidualSACConfig(**{**SMALL.to_dict(), "total_steps": 96})
    train_residual(_factory(push), config, tmp_path, META, progress=False)
    other = ResidualSACConfig(**{**SMALL.to_dict(), "gamma": 0.9})
    with pytest.raises(CheckpointError, match=r"fields \['gamma'\] differ"):
        train_residual(_factory(push), other, tmp_path, META, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="it refines"):
        train_residual(_factory(push), SMALL, tmp_path, {**META, "setting": "precise"},
                       resume=True, progress=False)  # fmt: skip


def test_the_actor_file_round_trips_and_refuses_broken_ones(tmp_path: Path) -> None:
    net = ResidualNetwork(11, 2, (16, 16))
    actor = ResidualActor(net, {"refinement": {"task": "push_block"}, "steps": 7})
    path = save_residual(actor, tmp_path / "residual.safetensors")
    loaded = load_residual(tmp_path)
    obs = _observations(1)[0]
    np.testing.assert_array_equal(loaded.act(obs), actor.act(obs))
    assert loaded.meta == actor.meta and np.all(np.abs(loaded.act(obs)) < 1.0)
    with pytest.raises(ValueError, match=r"Shape=\(11,\)"):
        loaded.act(np.zeros(10))
    raw = path.read_bytes()
    tensors, header_meta = st_load(raw), _header_meta(raw)
    tensors["mu.bias"][0] = float("nan")
    path.write_bytes(st_save(tensors, metadata=header_meta))
    with pytest.raises(CheckpointError, match=r"\['mu.bias'\] contain NaN/inf"):
        load_residual(path)
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_residual(path)
    with pytest.raises(CheckpointError, match="no residual checkpoint at"):
        load_residual(tmp_path / "elsewhere")
    generator = load_task("push_block").generator_path
    with pytest.raises(CheckpointError, match="holds a 'imle_generator', not a 'imle_residual'"):
        load_residual(generator)


def _header_meta(raw: bytes) -> dict[str, str]:
    size = int.from_bytes(raw[:8], "little")
    return dict(json.loads(raw[8 : 8 + size])["__metadata__"])
