"""A Pinocchio rigid-body model (URDF) as a batched ``Dynamics``: fixed-base arms.

``PinocchioDynamics`` computes the forward dynamics with Pinocchio's
articulated-body algorithm (ABA) for all K samples at once per time step,
through ``pinocchio.abaInParallel`` on a ``pinocchio.ModelPool`` (Pinocchio's
own OpenMP batch API; one ``Data`` per thread, kept between calls), and
integrates with semi-implicit (symplectic) Euler in NumPy over the batch (in
acceleration mode a Numba loop, ``_integrate_accelerations``)::

    a       = ABA(q_t, v_t, tau_t)        # "torque" mode; a = u_t in "acceleration" mode
    v_{t+1} = v_t + h a
    q_{t+1} = q_t + h v_{t+1}             # h = dt / substeps, u held for the substeps

which is MuJoCo's ``Euler`` integrator for joints without damping. Only
fixed-base robots whose configuration is a vector (``nq == nv``: revolute and
prismatic joints, no free-flyer, spherical or continuous joint) are supported,
so ``q + h v`` is Pinocchio's ``integrate``.

Batching, measured on the 7-DoF Panda, K = 256, H = 16, 2-core machine, pin
4.1 (``bench/rollout_throughput.py`` re-measures it and records the figures):
a Python loop over ``pin.aba`` per sample and step 0.13 M steps/s; the same
loop with the samples stepped together 0.22 M; a 2-thread pool over
``pin.aba`` 0.14 M (the bindings hold the GIL); ``pin.abaInParallel`` with 1
thread 0.33 M and with 2 threads 0.63 M steps/s (used here). The pip wheel
has no ``pinocchio.casadi`` module, so a CasADi function of the dynamics is
not available without a source build.

On a machine shared with other busy processes, OpenMP's spin-waiting makes
the threaded call much slower (same problem, load average 2.5 on 2 cores:
72 ms per rollout with 2 threads against 11 ms with 1). Start Python with
``OMP_WAIT_POLICY=PASSIVE`` in the environment (7 ms under the same load; it
must be set before the first OpenMP library loads, torch included), or pass
``num_threads=1``.

What ABA leaves out: joint damping and friction in the URDF (``model.damping``,
``model.friction``) are not applied, and joint limits are not enforced (they
are exposed as properties, for costs and constraints). Rotor inertia
(``model.armature``) is included.

Only this module (and users who import it) loads ``pinocchio``; ``import
dynamics`` does not.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numba as nb
import numpy as np
import pinocchio as pin
from numpy.typing import ArrayLike

from imle_mpc.core.errors import InputError
from imle_mpc.core.validation import (
    FloatArray,
    as_float_vector,
    check_actions,
    check_state,
    require_int_at_least,
    require_positive,
    states_buffer,
)

CONTROL_MODES = ("torque", "acceleration")

# Joints ``from_example_robot`` locks so that the robot is the bare arm.
EXAMPLE_ROBOT_LOCKED_JOINTS = {"panda": ("panda_finger_joint1", "panda_finger_joint2")}


def _limit_or_inf(values: FloatArray) -> FloatArray:
    """URDFs write 0 (or nothing, read as a huge number) for 'no limit': make those inf."""
    return np.where(np.isfinite(values) & (values > 0) & (values < 1e10), values, np.inf)


class PinocchioDynamics:
    """Forward dynamics of a fixed-base robot from a URDF or a ``pinocchio.Model``.

    State ``x = (q, v)`` Shape=(2 nv,), joint positions and velocities in model
    order. Action Shape=(nv,): joint torques/forces (``control="torque"``) or
    joint accelerations (``control="acceleration"``, the arm then is a chain
    of double integrators whose bounds must come from ``action_limit``).
    See the module docstring for the integrator and what was measured.

    Args:
        model: path of a ``.urdf`` file or a ``pinocchio.Model``.
        dt: seconds per step.
        control: ``"torque"`` or ``"acceleration"``.
        substeps: Euler sub-steps per ``dt``, the action held (>= 1).
        locked_joints: joint names to lock at 0 (e.g. gripper fingers).
        action_limit: symmetric action bound Shape=(nv,) or scalar; default the
            model's effort limits in torque mode, unbounded in acceleration mode.
        num_threads: threads of ``abaInParallel``; default ``os.cpu_count()``.

    Raises:
        InputError: missing or invalid URDF, unknown joint names, a floating
            base or a joint whose configuration is not a vector (``nq != nv``).

    Example:
        >>> arm = PinocchioDynamics.from_example_robot("panda", dt=0.01)  # doctest: +SKIP
        >>> X = arm.rollout(arm.neutral_state(), np.zeros((64, 20, 7)))  # doctest: +SKIP
        >>> ee = arm.frame_positions(X, ["panda_hand_tcp"])  # (64, 21, 1, 3)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | pin.Model,
        dt: float,
        control: str = "torque",
        substeps: int = 1,
        locked_joints: Sequence[str] = (),
        action_limit: ArrayLike | None = None,
        num_threads: int | None = None,
    ) -> None:
        require_positive("PinocchioDynamics", "dt", dt)
        require_int_at_least("PinocchioDynamics", "substeps", substeps, 1)
        if control not in CONTROL_MODES:
            raise ValueError(f"control must be one of {CONTROL_MODES}, got {control!r}.")
        threads = (os.cpu_count() or 1) if num_threads is None else num_threads
        require_int_at_least("PinocchioDynamics", "num_threads", threads, 1)
        full = model if isinstance(model, pin.Model) else _load_urdf(model)
        self.model = _lock_joints(full, locked_joints)
        m = self.model
        if m.nq != m.nv:
            raise InputError(
                f"PinocchioDynamics supports fixed-base robots whose joints are revolute or "
                f"prismatic (nq == nv); this model has nq={m.nq}, nv={m.nv} (a free-flyer, "
                "spherical, planar or continuous joint). Build it with a fixed base and "
                "bounded revolute joints."
            )
        if m.nv < 1:
            raise InputError("the model has no joints to actuate; lock fewer joints.")
        self._dt = float(dt)
        self.control = control
        self.substeps = int(substeps)
        self.num_threads = int(threads)
        nv = m.nv
        if action_limit is None:
            default = np.asarray(m.effortLimit, dtype=np.float64)
            limit = _limit_or_inf(default) if control == "torque" else np.full(nv, np.inf)
        else:
            limit = as_float_vector("action_limit", action_limit, nv)
            if not np.all(limit > 0):  # also refuses NaN, which every comparison fails
                raise ValueError(f"action_limit must be > 0 (or inf), got {limit}.")
        self._limit = limit
        self._pool = pin.ModelPool(m, self.num_threads)
        self._data = m.createData()
        self._K = -1
        self._work = np.empty((0, 0))
        # The work buffers and the pool's datas are shared by every call: a planner on
        # a worker thread (a guard deadline) and a plant on the same instance take turns.
        self._lock = threading.Lock()

    @classmethod
    def from_example_robot(
        cls,
        name: str,
        dt: float,
        control: str = "torque",
        substeps: int = 1,
        num_threads: int | None = None,
    ) -> PinocchioDynamics:
        """A robot of ``example_robot_data`` (e.g. ``"panda"``: the 7-DoF arm, fingers locked).

        Raises:
            InputError: example_robot_data is not installed or has no such robot.
        """
        try:
            import example_robot_data
        except ImportError:  # pragma: no cover - the pinocchio extra installs it
            raise InputError(
                "example_robot_data is not installed: pip install example-robot-data-loaders "
                "(or the imle-mpc[pinocchio] extra)."
            ) from None
        try:
            robot = example_robot_data.load(name)
        except ValueError as err:
            raise InputError(f"example_robot_data has no robot {name!r}: {err}") from None
        return cls(
            robot.model,
            dt,
            control=control,
            substeps=substeps,
            locked_joints=EXAMPLE_ROBOT_LOCKED_JOINTS.get(name, ()),
            num_threads=num_threads,
        )

    # --- Dynamics protocol ------------------------------------------------------------

    @property
    def nx(self) -> int:
        """State size ``2 nv``."""
        return 2 * int(self.model.nv)

    @property
    def nu(self) -> int:
        """Action size ``nv``."""
        return int(self.model.nv)

    @property
    def dt(self) -> float:
        """Seconds per step."""
        return self._dt

    @property
    def action_low(self) -> FloatArray:
        """``-action_limit``, Shape=(nv,)."""
        return -self._limit

    @property
    def action_high(self) -> FloatArray:
        """``action_limit`` (torque mode: the model's effort limits), Shape=(nv,)."""
        return self._limit.copy()

    def rollout(self, x0: ArrayLike, U: ArrayLike, out: FloatArray | None = None) -> FloatArray:
        """Simulate every action sequence from ``x0``: one ``abaInParallel`` per sub-step.

        Args:
            x0: initial state ``(q, v)``, Shape=(2 nv,).
            U: torques or accelerations, Shape=(K, H, nv). Not clipped here.
            out: optional preallocated result, Shape=(K, H+1, 2 nv).

        Returns:
            States, Shape=(K, H+1, 2 nv). A non-finite action makes its sample NaN
            from that step on and leaves the other samples alone.
        """
        x0 = check_state(x0, self.nx, "x0")
        U = check_actions(U, self.nu)
        out = states_buffer(out, (U.shape[0], U.shape[1] + 1, self.nx))
        with self._lock:
            return self._rollout(x0, U, out)

    def _rollout(self, x0: FloatArray, U: FloatArray, out: FloatArray) -> FloatArray:
        K, H, nv = U.shape
        if self.control != "torque":
            _integrate_accelerations(x0, U, self._dt / self.substeps, self.substeps, out)
            return out
        if self._K != K:
            # Rows: q, v, a for every sample, each (K, nv) C-order, so its transpose is the
            # column-major (nv, K) matrix abaInParallel reads and writes without a copy.
            self._work = np.empty((3, K, nv))
            self._K = K
        q, v, a = self._work
        q[:] = x0[:nv]
        v[:] = x0[nv:]
        out[:, 0] = x0
        h = self._dt / self.substeps
        for t in range(H):
            u = U[:, t]
            for _ in range(self.substeps):
                pin.abaInParallel(self.num_threads, self._pool, q.T, v.T, u.T, a.T)
                v += h * a
                q += h * v
            out[:, t + 1, :nv] = q
            out[:, t + 1, nv:] = v
        return out

    # --- extras -----------------------------------------------------------------------

    def step(self, x: ArrayLike, u: ArrayLike) -> FloatArray:
        """One step from a single state: Shape=(nx,), (nu,) -> (nx,)."""
        u_arr = np.asarray(u, dtype=np.float64).reshape(1, 1, self.nu)
        return self.rollout(x, u_arr)[0, 1].copy()

    def neutral_state(self) -> FloatArray:
        """The neutral configuration at rest (``pin.neutral``, zero velocity), Shape=(2 nv,)."""
        return np.concatenate([pin.neutral(self.model), np.zeros(self.model.nv)])

    @property
    def position_limits(self) -> tuple[FloatArray, FloatArray]:
        """Joint position limits ``(lower, upper)`` from the model, each Shape=(nq,)."""
        return (
            np.array(self.model.lowerPositionLimit, dtype=np.float64),
            np.array(self.model.upperPositionLimit, dtype=np.float64),
        )

    @property
    def velocity_limit(self) -> FloatArray:
        """Joint speed limits ``|v| <= limit`` from the model, Shape=(nv,)."""
        return np.array(self.model.velocityLimit, dtype=np.float64)

    @property
    def effort_limit(self) -> FloatArray:
        """Joint torque/force limits ``|tau| <= limit`` from the model, Shape=(nv,)."""
        return np.array(self.model.effortLimit, dtype=np.float64)

    @property
    def joint_names(self) -> list[str]:
        """Names of the actuated joints, in state order."""
        return [str(name) for name in list(self.model.names)[1:]]

    def frame_positions(self, X: ArrayLike, frame_names: Sequence[str]) -> FloatArray:
        """World positions of frames (e.g. the end effector) along trajectories.

        One ``pin.framesForwardKinematics`` per state (a Python loop: a few
        microseconds each), for costs on the end-effector pose.

        Args:
            X: states, Shape=(..., 2 nv) (e.g. a rollout, Shape=(K, H+1, 2 nv)).
            frame_names: names of Pinocchio frames (links, joints, URDF frames).

        Returns:
            Positions, Shape=(..., F, 3) with F = len(frame_names).

        Raises:
            KeyError: an unknown frame name (the message lists some that exist).
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 0 or X.shape[-1] != self.nx:
            raise ValueError(f"X must have Shape=(..., {self.nx}), got {X.shape}.")
        ids = [self._frame_id(name) for name in frame_names]
        lead = X.shape[:-1]
        Q = X.reshape(-1, self.nx)[:, : self.model.nq]
        P = np.empty((Q.shape[0], len(ids), 3))
        m, d = self.model, self._data
        with self._lock:
            for i, q in enumerate(Q):
                pin.framesForwardKinematics(m, d, q)
                for j, frame in enumerate(ids):
                    P[i, j] = d.oMf[frame].translation
        return P.reshape(*lead, len(ids), 3)

    def _frame_id(self, name: str) -> int:
        if not self.model.existFrame(name):
            names = [f.name for f in self.model.frames]
            raise KeyError(f"no frame named {name!r}; frames include {names[-8:]}.")
        return int(self.model.getFrameId(name))


def _load_urdf(path: str | os.PathLike[str]) -> pin.Model:
    """``pin.buildModelFromUrdf`` with errors that say what to fix."""
    file = Path(path)
    if not file.is_file():
        raise InputError(
            f"URDF file not found: {file}. Pass the path of an existing .urdf file or a "
            "pinocchio.Model."
        )
    try:
        return pin.buildModelFromUrdf(str(file))
    except ValueError as err:
        raise InputError(f"Pinocchio could not read {file}: {err}") from None


def _lock_joints(model: pin.Model, names: Sequence[str]) -> pin.Model:
    """``pin.buildReducedModel`` with the named joints locked at 0."""
    if not names:
        return model
    unknown = [n for n in names if not model.existJointName(n)]
    if unknown:
        joints = list(model.names)[1:]
        raise InputError(f"locked_joints {unknown} are not joints of the model; it has {joints}.")
    ids = [model.getJointId(n) for n in names]
    return pin.buildReducedModel(model, ids, pin.neutral(model))


@nb.njit(cache=True, error_model="numpy")
def _integrate_accelerations(x0, U, h, substeps, out):  # pragma: no cover - compiled
    """Acceleration mode's semi-implicit Euler, ``v += h u; q += h v``, per sample, in Numba.

    The NumPy loop over the batch's (K, nv) rows does the same operations in the same
    order (so the states are the same to the bit) but costs about 0.15 ms a Panda step at
    K = 256, H = 16, in temporaries and per-step calls; this is a few microseconds.
    x0 Shape=(2 nv,), U Shape=(K, H, nv), out Shape=(K, H+1, 2 nv), written.
    """
    K, H, nv = U.shape
    for k in range(K):
        for i in range(2 * nv):
            out[k, 0, i] = x0[i]
        for t in range(H):
            for i in range(nv):
                q = out[k, t, i]
                v = out[k, t, nv + i]
                u = U[k, t, i]
                for _ in range(substeps):
                    v += h * u
                    q += h * v
                out[k, t + 1, i] = q
                out[k, t + 1, nv + i] = v
