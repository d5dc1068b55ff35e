"""A Gymnasium MuJoCo environment as the evaluation's plant (``MujocoEnvPlant``, ``Task.plant``):
its state is (qpos, qvel), its steps are the model's to the last bit, its termination fails
the episode, and the faults that need a simulated model are refused."""

from __future__ import annotations

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
pytest.importorskip("mujoco", reason="Gymnasium's MuJoCo environments need `pip install mujoco`")

from cost import ControlEffort, CostSum, Term  # noqa: E402
from dynamics.mujoco_model import MujocoDynamics  # noqa: E402
from imle_mpc.core.errors import InputError  # noqa: E402
from imle_mpc.eval.episodes import run_episode  # noqa: E402
from imle_mpc.loop.faults import FaultConfig  # noqa: E402
from imle_mpc.loop.plant import MujocoEnvPlant, mujoco_state  # noqa: E402
from imle_mpc.tasks.base import Task  # noqa: E402
from imle_mpc.tasks.experts import ControllerPlanner  # noqa: E402


def _plant() -> tuple[MujocoEnvPlant, MujocoDynamics]:
    env = gym.make("InvertedPendulum-v5")
    inner = env.unwrapped
    model = MujocoDynamics(inner.fullpath, frame_skip=inner.frame_skip, num_threads=0)
    return MujocoEnvPlant(env, model), model


def test_the_plant_is_the_env_and_the_model_steps_it_exactly() -> None:
    plant, model = _plant()
    state, _ = plant.reset(seed=4)
    data = plant.env.unwrapped.data  # type: ignore[attr-defined]
    np.testing.assert_array_equal(state, np.concatenate([data.qpos, data.qvel]))
    np.testing.assert_array_equal(mujoco_state(plant.env), state)
    U = np.random.default_rng(0).uniform(-0.3, 0.3, (1, 12, 1))  # the pole stays up
    predicted = model.rollout(state, U)[0]
    for t in range(12):
        state, _, terminated, _, _ = plant.step(U[0, t])
        np.testing.assert_array_equal(state, predicted[t + 1])
    assert not terminated and plant.total_reward == 12.0  # the env's reward: 1 a healthy step
    plant.apply_impulse([0.0, 0.05, 0.1, 0.0])
    np.testing.assert_array_equal(plant.state, predicted[-1] + [0.0, 0.05, 0.1, 0.0])


def _task(plant_factory, success=lambda s: True) -> Task:
    model = plant_factory()[1]
    return Task(
        name="gym_plant_test",
        dynamics=model,
        cost=CostSum(Term("effort", ControlEffort())),
        constraints=(),
        initial_state=np.zeros(model.nx),
        steps=200,
        success=success,
        plant=lambda: plant_factory()[0],
    )


def test_an_episode_runs_on_the_env_and_its_termination_fails_it() -> None:
    """Zero force: the pole falls and the env terminates the episode; it fails even though
    the task's own test (always True here) would pass it. Held upright by a PD law, it passes."""
    task = _task(_plant)
    idle = ControllerPlanner(task.dynamics, lambda seed: lambda x, t: np.zeros(1))
    record = run_episode(task, idle, seed=1)
    assert record.info["terminated"] and not record.success and record.steps < 200
    assert record.true_states is not None and task.plant is not None
    assert np.abs(record.true_states[-1, 1]) > 0.2  # the env's own limit
    start = task.plant().reset(seed=1)[0]
    np.testing.assert_array_equal(record.true_states[0], start)  # the env's seeded start

    def balance(seed: int | None):
        return lambda x, t: np.array([2.0 * x[1] + 0.5 * x[3] + 0.1 * x[0] + 0.2 * x[2]])

    held = run_episode(task, ControllerPlanner(task.dynamics, balance), seed=1)
    assert not held.info["terminated"] and held.success and held.steps == 200


def test_model_mismatch_on_a_plant_that_simulates_itself_is_refused() -> None:
    task = _task(_plant)
    idle = ControllerPlanner(task.dynamics, lambda seed: lambda x, t: np.zeros(1))
    faults = FaultConfig(model_mismatch={"body_mass:pole": 1.2})
    with pytest.raises(InputError, match="runs on its own plant"):
        run_episode(task, idle, seed=0, faults=faults)


def test_a_plant_refuses_an_env_without_mujoco_data() -> None:
    _, model = _plant()
    with pytest.raises(TypeError, match="needs a Gymnasium MuJoCo environment"):
        MujocoEnvPlant(gym.make("CartPole-v1"), model)
