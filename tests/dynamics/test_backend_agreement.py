"""The backends agree with each other and with the simulator they stand in for.

* The Panda in Pinocchio (``PinocchioDynamics``, URDF of example_robot_data) and in
  MuJoCo (the same URDF through MuJoCo's importer, ``model_from_urdf``) follow the
  same trajectory within 1e-8 (rad, rad/s) over 1 s (100 steps of 10 ms) falling
  freely under gravity, and over 0.5 s under random torques within the limits (a
  chaotic motion: round-off differences grow exponentially after that). Settings
  made comparable: fingers welded in both, MuJoCo's Euler integrator at 1 ms with
  ``frame_skip=10`` against Pinocchio's semi-implicit Euler with 10 sub-steps, joint
  damping zeroed (ABA ignores it) and constraints (joint limits) off (Pinocchio does
  not enforce them).
  Measured: 1e-11 after 1 s of a fall that reaches 78 rad/s.
* One step of a Gymnasium MuJoCo env equals one step of ``MujocoDynamics`` on the
  env's own XML with the env's ``frame_skip``, from the same state and control.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

mujoco = pytest.importorskip("mujoco", reason="the MuJoCo backend needs `pip install mujoco`")

from dynamics.mujoco_model import MujocoDynamics, model_from_urdf  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FINGERS = ("panda_finger_joint1", "panda_finger_joint2")
Q_HOME = np.array([0.0, -0.3, 0.0, -2.0, 0.0, 1.8, 0.7])
TOLERANCE = 1e-8  # rad and rad/s, over HORIZON steps of DT
DT, FRAME_SKIP, HORIZON = 0.01, 10, 100


def test_import_dynamics_loads_neither_backend() -> None:
    code = "import sys, dynamics; print(sorted({'pinocchio', 'mujoco'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- Pinocchio and MuJoCo on the Panda ------------------------------------------------------


@pytest.fixture(scope="module")
def panda_pair() -> tuple[Any, MujocoDynamics]:
    pytest.importorskip("pinocchio", reason="needs `pip install pin`")
    erd = pytest.importorskip("example_robot_data", reason="needs example-robot-data-loaders")
    from dynamics.pinocchio_model import PinocchioDynamics

    urdf = Path(erd.getModelPath("panda_description/urdf/panda.urdf")) / (
        "panda_description/urdf/panda.urdf"
    )
    mj = model_from_urdf(urdf, fixed_joints=FINGERS)
    mj.opt.timestep = DT / FRAME_SKIP
    mj.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
    mj.opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_CONSTRAINT)
    mj.dof_damping[:] = 0.0
    arm_mj = MujocoDynamics(mj, frame_skip=FRAME_SKIP)
    arm_pin = PinocchioDynamics(urdf, dt=DT, substeps=FRAME_SKIP, locked_joints=FINGERS)
    return arm_pin, arm_mj


def test_same_sizes_bounds_and_step(panda_pair: tuple[Any, MujocoDynamics]) -> None:
    arm_pin, arm_mj = panda_pair
    assert (arm_pin.nx, arm_pin.nu) == (arm_mj.nx, arm_mj.nu) == (14, 7)
    assert arm_pin.dt == pytest.approx(arm_mj.dt)
    np.testing.assert_array_equal(arm_pin.action_high, arm_mj.action_high)
    np.testing.assert_array_equal(arm_pin.action_low, arm_mj.action_low)
    names = [arm_mj.model.joint(i).name for i in range(arm_mj.model.njnt)]
    assert names == arm_pin.joint_names


def test_free_fall_under_gravity_agrees(panda_pair: tuple[Any, MujocoDynamics]) -> None:
    arm_pin, arm_mj = panda_pair
    x0 = np.concatenate([Q_HOME, np.zeros(7)])
    U = np.zeros((1, HORIZON, 7))
    X_pin, X_mj = arm_pin.rollout(x0, U), arm_mj.rollout(x0, U)
    assert np.abs(X_pin[0, -1, 7:]).max() > 10.0  # a real fall, not a resting arm
    np.testing.assert_allclose(X_mj, X_pin, rtol=0, atol=TOLERANCE)


def test_random_torques_agree(panda_pair: tuple[Any, MujocoDynamics]) -> None:
    """Half the horizon: random full torques spin the arm up to 280 rad/s within 1 s, a
    chaotic motion in which round-off differences grow exponentially (3e-10 after 0.5 s,
    4e-6 after 1 s)."""
    arm_pin, arm_mj = panda_pair
    rng = np.random.default_rng(0)
    x0 = np.concatenate([Q_HOME, rng.uniform(-0.5, 0.5, 7)])
    U = rng.uniform(arm_pin.action_low, arm_pin.action_high, (8, HORIZON // 2, 7))
    np.testing.assert_allclose(arm_mj.rollout(x0, U), arm_pin.rollout(x0, U), atol=TOLERANCE)


# --- a Gymnasium env and the model of its XML ------------------------------------------------


@pytest.mark.parametrize("env_id", ["InvertedPendulum-v5", "Reacher-v5"])
def test_one_env_step_equals_one_model_step(env_id: str) -> None:
    gym = pytest.importorskip("gymnasium")
    env = gym.make(env_id)
    inner = env.unwrapped
    env.reset(seed=0)
    model = MujocoDynamics(inner.fullpath, frame_skip=inner.frame_skip)
    single = MujocoDynamics(inner.fullpath, frame_skip=1)
    assert inner.frame_skip > 1 and model.dt == pytest.approx(inner.dt)
    rng = np.random.default_rng(1)
    nq = inner.model.nq
    for _ in range(5):
        x = np.concatenate([inner.init_qpos, inner.init_qvel])
        x += rng.uniform(-0.1, 0.1, x.shape)
        u = rng.uniform(model.action_low, model.action_high)
        inner.set_state(x[:nq], x[nq:])
        env.step(u)
        x_env = np.concatenate([inner.data.qpos, inner.data.qvel])
        np.testing.assert_allclose(model.step(x, u), x_env, rtol=0, atol=1e-12)
        assert np.abs(single.step(x, u) - x_env).max() > 1e-6  # frame_skip matters
