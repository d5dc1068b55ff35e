"""``dynamics.pinocchio_model.PinocchioDynamics`` on the Panda arm of example_robot_data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pin = pytest.importorskip("pinocchio", reason="the Pinocchio backend needs `pip install pin`")
erd = pytest.importorskip(
    "example_robot_data", reason="the Panda comes from `pip install example-robot-data-loaders`"
)

from dynamics.pinocchio_model import PinocchioDynamics  # noqa: E402
from imle_mpc.core.checks import check_dynamics  # noqa: E402
from imle_mpc.core.errors import InputError  # noqa: E402

FINGERS = ("panda_finger_joint1", "panda_finger_joint2")
# A bent arm well inside the joint limits.
Q_HOME = np.array([0.0, -0.3, 0.0, -2.0, 0.0, 1.8, 0.7])


def _panda_urdf() -> Path:
    return Path(erd.getModelPath("panda_description/urdf/panda.urdf")) / (
        "panda_description/urdf/panda.urdf"
    )


@pytest.fixture(scope="module")
def arm() -> PinocchioDynamics:
    return PinocchioDynamics.from_example_robot("panda", dt=0.01)


def _home() -> np.ndarray:
    return np.concatenate([Q_HOME, np.zeros(7)])


def _torques(arm: PinocchioDynamics, K: int, H: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(arm.action_low, arm.action_high, (K, H, arm.nu))


# --- the contract -------------------------------------------------------------------------


def test_panda_is_the_seven_dof_arm(arm: PinocchioDynamics) -> None:
    assert (arm.nx, arm.nu, arm.dt) == (14, 7, 0.01)
    assert arm.joint_names == [f"panda_joint{i}" for i in range(1, 8)]


@pytest.mark.parametrize("control", ["torque", "acceleration"])
def test_passes_the_conformance_check(control: str) -> None:
    model = PinocchioDynamics.from_example_robot("panda", dt=0.01, control=control)
    if control == "acceleration":  # unbounded by default: check with a finite box
        model = PinocchioDynamics(model.model, dt=0.01, control=control, action_limit=5.0)
    assert check_dynamics(model, state=_home(), num_samples=6, horizon=5)["ok"]


def test_out_is_filled_and_checked(arm: PinocchioDynamics) -> None:
    U = _torques(arm, 4, 3)
    out = np.empty((4, 4, 14))
    assert arm.rollout(_home(), U, out) is out
    np.testing.assert_array_equal(out, arm.rollout(_home(), U))
    with pytest.raises(ValueError, match="out must be"):
        arm.rollout(_home(), U, np.empty((4, 3, 14)))
    with pytest.raises(ValueError, match="x0 must have shape"):
        arm.rollout(np.zeros(7), U)


# --- the physics ------------------------------------------------------------------------


def test_matches_a_loop_over_pin_aba_with_semi_implicit_euler(arm: PinocchioDynamics) -> None:
    U = _torques(arm, 5, 8, seed=1)
    X = arm.rollout(_home(), U)
    m = arm.model
    data = m.createData()
    for k in range(5):
        q, v = Q_HOME.copy(), np.zeros(7)
        for t in range(8):
            v = v + arm.dt * pin.aba(m, data, q, v, U[k, t])
            q = q + arm.dt * v
            np.testing.assert_allclose(X[k, t + 1], np.concatenate([q, v]), rtol=0, atol=1e-10)


def test_substeps_equal_shorter_steps_with_the_action_held(arm: PinocchioDynamics) -> None:
    fine = PinocchioDynamics(arm.model, dt=0.0025)
    coarse = PinocchioDynamics(arm.model, dt=0.01, substeps=4)
    U = _torques(arm, 3, 5, seed=2)
    X_coarse = coarse.rollout(_home(), U)
    X_fine = fine.rollout(_home(), np.repeat(U, 4, axis=1))
    np.testing.assert_allclose(X_coarse, X_fine[:, ::4], rtol=0, atol=1e-12)


def test_acceleration_mode_is_a_double_integrator(arm: PinocchioDynamics) -> None:
    model = PinocchioDynamics(arm.model, dt=0.1, control="acceleration")
    assert np.all(np.isinf(model.action_high))
    accel = np.linspace(-1.0, 1.0, 7)
    X = model.rollout(_home(), np.broadcast_to(accel, (1, 10, 7)))
    n = np.arange(11)[:, None]
    # Semi-implicit Euler: v_n = n h a, q_n = q_0 + h^2 a n (n + 1) / 2.
    np.testing.assert_allclose(X[0, :, 7:], n * 0.1 * accel, atol=1e-12)
    np.testing.assert_allclose(X[0, :, :7], Q_HOME + 0.01 * accel * n * (n + 1) / 2, atol=1e-12)


def test_gravity_torque_holds_the_arm_still(arm: PinocchioDynamics) -> None:
    tau_g = pin.computeGeneralizedGravity(arm.model, arm.model.createData(), Q_HOME)
    X = arm.rollout(_home(), np.broadcast_to(tau_g, (1, 20, 7)))
    np.testing.assert_allclose(X[0], np.broadcast_to(_home(), (21, 14)), atol=1e-9)
    free = arm.rollout(_home(), np.zeros((1, 20, 7)))
    assert np.abs(free[0, -1, :7] - Q_HOME).max() > 0.05  # without it the arm falls


def test_nan_action_poisons_only_its_sample_from_that_step(arm: PinocchioDynamics) -> None:
    U = _torques(arm, 3, 4)
    U[1, 2, 3] = np.nan
    X = arm.rollout(_home(), U)
    assert np.all(np.isfinite(X[1, :3])) and np.all(np.isnan(X[1, 3:]))
    assert np.all(np.isfinite(X[[0, 2]]))


# --- limits and kinematics ----------------------------------------------------------------


def test_limits_come_from_the_model(arm: PinocchioDynamics) -> None:
    low, high = arm.position_limits
    np.testing.assert_allclose(low[:3], [-2.8973, -1.7628, -2.8973])
    np.testing.assert_allclose(high[3], -0.0698)
    np.testing.assert_allclose(arm.velocity_limit, [2.175] * 4 + [2.61] * 3)
    np.testing.assert_allclose(arm.effort_limit, [87.0] * 4 + [12.0] * 3)
    np.testing.assert_array_equal(arm.action_high, arm.effort_limit)
    np.testing.assert_array_equal(arm.action_low, -arm.effort_limit)


def test_frame_positions_match_pinocchio_forward_kinematics(arm: PinocchioDynamics) -> None:
    X = arm.rollout(_home(), _torques(arm, 3, 4))
    P = arm.frame_positions(X, ["panda_hand_tcp", "panda_link0"])
    assert P.shape == (3, 5, 2, 3)
    data = arm.model.createData()
    tcp = arm.model.getFrameId("panda_hand_tcp")
    for k, t in [(0, 0), (2, 4)]:
        pin.framesForwardKinematics(arm.model, data, X[k, t, :7])
        np.testing.assert_allclose(P[k, t, 0], data.oMf[tcp].translation, atol=1e-12)
    np.testing.assert_allclose(P[..., 1, :], 0.0, atol=1e-12)  # the base does not move
    assert arm.frame_positions(_home(), ["panda_hand_tcp"]).shape == (1, 3)
    with pytest.raises(KeyError, match="no frame named 'gripper'"):
        arm.frame_positions(X, ["gripper"])


# --- construction and errors --------------------------------------------------------------


def test_from_urdf_path_equals_from_example_robot(arm: PinocchioDynamics) -> None:
    from_file = PinocchioDynamics(_panda_urdf(), dt=0.01, locked_joints=FINGERS)
    U = _torques(arm, 2, 3)
    np.testing.assert_allclose(from_file.rollout(_home(), U), arm.rollout(_home(), U), atol=1e-12)


def test_clear_errors(tmp_path: Path, arm: PinocchioDynamics) -> None:
    with pytest.raises(InputError, match="URDF file not found"):
        PinocchioDynamics(tmp_path / "missing.urdf", dt=0.01)
    broken = tmp_path / "broken.urdf"
    broken.write_text("<robot name='x'><link name=")
    with pytest.raises(InputError, match="could not read"):
        PinocchioDynamics(broken, dt=0.01)
    with pytest.raises(InputError, match="not joints of the model"):
        PinocchioDynamics(arm.model, dt=0.01, locked_joints=["elbow"])
    floating = pin.buildModelFromUrdf(str(_panda_urdf()), pin.JointModelFreeFlyer())
    with pytest.raises(InputError, match="nq=16, nv=15"):
        PinocchioDynamics(floating, dt=0.01)
    with pytest.raises(ValueError, match="control must be one of"):
        PinocchioDynamics(arm.model, dt=0.01, control="velocity")
    with pytest.raises(ValueError, match="dt must be"):
        PinocchioDynamics(arm.model, dt=0.0)
    with pytest.raises(InputError, match="no robot 'no_such_robot'"):
        PinocchioDynamics.from_example_robot("no_such_robot", dt=0.01)


def test_a_nan_action_limit_is_refused(arm: PinocchioDynamics) -> None:
    limit = np.full(7, 5.0)
    limit[2] = np.nan  # every comparison with NaN is false: "<= 0" let it through
    with pytest.raises(ValueError, match="action_limit must be > 0"):
        PinocchioDynamics(arm.model, dt=0.01, action_limit=limit)
