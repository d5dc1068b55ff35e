"""A MuJoCo model as a batched ``Dynamics``, rolled out by ``mujoco.rollout`` (native, threaded).

``MujocoDynamics`` wraps an MJCF model (a file, an XML string or a compiled
``mujoco.MjModel``). One ``rollout`` call is one call of MuJoCo's C++ rollout on
a ``mujoco.rollout.Rollout`` thread pool made once in the constructor, with one
``MjData`` per thread kept alive between calls; the output buffers are reused
while K and H stay the same. The Python work per call is the shape checks and
copying the states out of MuJoCo's full-physics state vectors
(``bench/rollout_throughput.py`` measures the overhead against calling
``mujoco.rollout`` directly).

State ``x = (qpos, qvel, act)``, ``nx = nq + nv + na`` (``act`` only for models
with actuator activations, ``na > 0``: muscles, filters, integrators). The rest
of MuJoCo's physics state (time, history buffers, plugin state) starts from
the model's defaults in every rollout, the applied forces and mocap poses are
reset, and the constraint solver's warm start is zeroed, so a rollout depends
only on ``x0`` and ``U`` (what the ``Dynamics`` contract requires).

Action ``u = ctrl``, ``nu`` = number of actuators; the bounds are
``actuator_ctrlrange`` where ``ctrllimited`` (else +-inf). MuJoCo clamps
controls to that range itself.

One step of ``dt = model.opt.timestep * frame_skip`` holds the control for
``frame_skip`` physics steps (as Gymnasium's MuJoCo environments do).

Failures are marked, not hidden: MuJoCo would run a NaN control as zero, and
resets a diverging simulation; ``mujoco.rollout`` stops a sample at its first
warning (and MuJoCo appends the warning to ``MUJOCO_LOG.TXT`` in the working
directory). This wrapper sets a sample's states to NaN from its first
non-finite control (which it never passes to MuJoCo) or from the step that
raised a warning on, so a planner discards the sample instead of scoring a
state the system never reaches. A huge finite control (> 1e10) on the last
physics step slips through: MuJoCo zeroes it without stopping anything.

Only this module (and users who import it) loads ``mujoco``; ``import dynamics``
does not.
"""

from __future__ import annotations

import copy
import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import mujoco
import numpy as np
from mujoco import rollout as mj_rollout
from numpy.typing import ArrayLike

from dynamics.linearize import finite_difference_jacobians
from imle_mpc.core.errors import InputError
from imle_mpc.core.protocols import Linearizable, MemberModels, MemberRollout, MultiStartRollout
from imle_mpc.core.validation import (
    FloatArray,
    check_actions,
    check_state,
    require_int_at_least,
    require_positive,
    states_buffer,
)

ModelSource: TypeAlias = "str | os.PathLike[str] | mujoco.MjModel"

_FULL = int(mujoco.mjtState.mjSTATE_FULLPHYSICS)
_CTRL = int(mujoco.mjtState.mjSTATE_CTRL)


def load_mjmodel(source: ModelSource) -> mujoco.MjModel:
    """Compile an MJCF (or URDF) file or XML string; pass an ``MjModel`` through.

    A ``str`` whose first non-blank character is ``<`` is XML text; any other
    ``str`` or path-like is a file path.

    Raises:
        InputError: the file does not exist or MuJoCo cannot compile it.
    """
    if isinstance(source, mujoco.MjModel):
        return source
    if isinstance(source, str) and source.lstrip().startswith("<"):
        try:
            return mujoco.MjModel.from_xml_string(source)
        except ValueError as err:
            raise InputError(
                f"MuJoCo could not compile the XML string: {err}. Fix the MJCF; relative "
                "asset paths in a string resolve against the working directory, so load "
                "models with meshes from their file instead."
            ) from None
    path = Path(source)
    if not path.is_file():
        raise InputError(
            f"MJCF file not found: {path}. Pass the path of an existing .xml file, the XML "
            "text itself, or a mujoco.MjModel."
        )
    try:
        return mujoco.MjModel.from_xml_path(str(path))
    except ValueError as err:
        raise InputError(f"MuJoCo could not compile {path}: {err}. Fix the file.") from None


def model_from_urdf(
    urdf_path: str | os.PathLike[str],
    fixed_joints: Sequence[str] = (),
    torque_motors: bool = True,
) -> mujoco.MjModel:
    """Compile a URDF with MuJoCo's own URDF importer, without its geometry.

    Visual and collision elements are removed (their meshes are usually
    ``package://`` paths MuJoCo cannot resolve), so the model has no contacts;
    masses and inertias come from the ``<inertial>`` elements. Static bodies are
    kept (not fused), so link names survive as body names.

    Args:
        urdf_path: the ``.urdf`` file.
        fixed_joints: joints to weld (e.g. a gripper's fingers), as if locked at 0.
        torque_motors: add a motor (gear 1, ``ctrl`` = torque/force) on every
            remaining joint, its ``ctrlrange`` the URDF effort limit where one is given.

    Raises:
        InputError: the file is missing, is not URDF, or names unknown joints.
    """
    path = Path(urdf_path)
    if not path.is_file():
        raise InputError(f"URDF file not found: {path}. Pass the path of an existing .urdf file.")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise InputError(f"{path} is not valid XML: {err}.") from None
    if root.tag != "robot":
        raise InputError(f"{path} is not a URDF (its root element is <{root.tag}>, not <robot>).")
    joints = {j.get("name"): j for j in root.iter("joint")}
    unknown = sorted(set(fixed_joints) - set(joints))
    if unknown:
        raise InputError(f"fixed_joints {unknown} are not joints of {path}; it has {list(joints)}.")
    for link in root.iter("link"):
        for tag in ("visual", "collision"):
            for element in link.findall(tag):
                link.remove(element)
    for name in fixed_joints:
        joints[name].set("type", "fixed")
    for element in root.findall("mujoco"):
        root.remove(element)
    extension = ET.SubElement(root, "mujoco")
    ET.SubElement(extension, "compiler", fusestatic="false", discardvisual="true")
    try:
        spec = mujoco.MjSpec.from_string(ET.tostring(root, encoding="unicode"))
    except ValueError as err:
        raise InputError(f"MuJoCo could not read {path}: {err}.") from None
    if torque_motors:
        for joint in spec.joints:
            actuator = spec.add_actuator()
            actuator.name = joint.name
            actuator.target = joint.name
            actuator.trntype = mujoco.mjtTrn.mjTRN_JOINT
            limit = joints[joint.name].find("limit")
            effort = float(limit.get("effort", "0")) if limit is not None else 0.0
            if effort > 0:
                actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
                actuator.ctrlrange = [-effort, effort]
    return spec.compile()


class MujocoDynamics(MultiStartRollout, Linearizable, MemberModels):
    """A MuJoCo model rolled out in parallel by ``mujoco.rollout``.

    State ``x = (qpos, qvel, act)`` Shape=(nq+nv+na,); action ``u = ctrl``
    Shape=(nu,); ``dt = model.opt.timestep * frame_skip``. See the module
    docstring for what is reset per rollout and how failures are marked.

    Call ``close()`` (or use ``with``) to stop the thread pool early; it also
    stops when the object is garbage-collected. One rollout at a time per
    object (the buffers are shared): use one object per planning thread.

    Args:
        model: MJCF file path, MJCF XML text, or a compiled ``mujoco.MjModel``
            (used as is, not copied: later changes to its options, such as
            ``opt.timestep``, take effect; the action bounds are read once).
        frame_skip: physics steps per ``rollout`` step, the control held (>= 1).
        num_threads: rollout threads (0 runs on the calling thread); default
            ``os.cpu_count()``.

    Raises:
        InputError: missing file, bad XML, a timestep that is not > 0, or a model
            without actuators.

    Example:
        >>> model = MujocoDynamics("inverted_pendulum.xml", frame_skip=2)  # doctest: +SKIP
        >>> X = model.rollout(np.zeros(model.nx), np.zeros((64, 20, model.nu)))  # doctest: +SKIP
    """

    def __init__(
        self, model: ModelSource, frame_skip: int = 1, num_threads: int | None = None
    ) -> None:
        require_int_at_least("MujocoDynamics", "frame_skip", frame_skip, 1)
        threads = (os.cpu_count() or 1) if num_threads is None else num_threads
        require_int_at_least("MujocoDynamics", "num_threads", threads, 0)
        self.model = load_mjmodel(model)
        m = self.model
        timestep = float(m.opt.timestep)
        if not (np.isfinite(timestep) and timestep > 0):
            raise InputError(
                f"the MuJoCo model's timestep is {timestep!r}; it must be a finite number of "
                "seconds > 0 (a timestep of 0 never advances the simulation). Set "
                "<option timestep='0.002'/> (or model.opt.timestep) to a positive value."
            )
        if m.nu < 1:
            raise InputError(
                "the MuJoCo model has no actuators, so nothing can be controlled. Add an "
                "<actuator> section (e.g. <motor joint='...'/>)."
            )
        self.frame_skip = int(frame_skip)
        self.num_threads = int(threads)
        self._nx = m.nq + m.nv + m.na
        limited = m.actuator_ctrllimited.astype(bool)
        self._low = np.where(limited, m.actuator_ctrlrange[:, 0], -np.inf)
        self._high = np.where(limited, m.actuator_ctrlrange[:, 1], np.inf)
        # The full-physics state of a freshly reset MjData: x0 goes into slots 1 .. 1+nx
        # (after time), everything else keeps the model's defaults.
        if mujoco.mj_stateSize(m, int(mujoco.mjtState.mjSTATE_TIME)) != 1:  # pragma: no cover
            raise RuntimeError("unexpected MuJoCo state layout: time is not one number.")
        data = mujoco.MjData(m)
        self._state0 = np.empty((1, mujoco.mj_stateSize(m, _FULL)))
        mujoco.mj_getState(m, data, self._state0[0], _FULL)
        self._state0[0, 0] = 0.0
        self._pool = mj_rollout.Rollout(nthread=self.num_threads)
        self._lock = threading.Lock()
        self._datas = [mujoco.MjData(m) for _ in range(max(1, self.num_threads))]
        self._shape: tuple[int, int] = (-1, -1)
        self._models: list[mujoco.MjModel] = []
        self._state = np.empty((0, 0, 0))
        self._sensordata = np.empty((0, 0, 0))
        self._control = np.empty((0, 0, 0))
        self._initial = np.empty((0, 0))
        self._last_sensordata: FloatArray | None = None

    # --- Dynamics protocol ------------------------------------------------------------

    @property
    def nx(self) -> int:
        """State size ``nq + nv + na``."""
        return self._nx

    @property
    def nu(self) -> int:
        """Number of actuators."""
        return int(self.model.nu)

    @property
    def dt(self) -> float:
        """Seconds per step: ``model.opt.timestep * frame_skip``."""
        return float(self.model.opt.timestep) * self.frame_skip

    @property
    def action_low(self) -> FloatArray:
        """Lower ``ctrlrange`` of each actuator (-inf where not limited), Shape=(nu,)."""
        return self._low.copy()

    @property
    def action_high(self) -> FloatArray:
        """Upper ``ctrlrange`` of each actuator (+inf where not limited), Shape=(nu,)."""
        return self._high.copy()

    def rollout(self, x0: ArrayLike, U: ArrayLike, out: FloatArray | None = None) -> FloatArray:
        """Simulate every control sequence from ``x0`` in one threaded ``mujoco.rollout`` call.

        Args:
            x0: initial state ``(qpos, qvel, act)``, Shape=(nx,).
            U: controls, Shape=(K, H, nu); each held for ``frame_skip`` physics steps.
            out: optional preallocated result, Shape=(K, H+1, nx).

        Returns:
            States, Shape=(K, H+1, nx); a sample is NaN from a step whose control
            is not finite or where MuJoCo raised a warning (divergence) on. K = 0
            gives an empty result and H = 0 just ``x0``, as for the analytic models.
        """
        x0 = check_state(x0, self.nx, "x0")
        U = check_actions(U, self.nu)
        out = states_buffer(out, (U.shape[0], U.shape[1] + 1, self.nx))
        # The work buffers and the MjData are shared by every call: a planner on a
        # worker thread (a guard deadline) and a plant on the same instance take turns.
        with self._lock:
            return self._rollout(x0, U, out)

    def rollout_from_states(
        self, X0: ArrayLike, U: ArrayLike, out: FloatArray | None = None
    ) -> FloatArray:
        """Simulate control sequence ``k`` from its own start ``X0[k]``, in one threaded call.

        Args:
            X0: initial states, Shape=(K, nx). A row that is not finite gives a NaN
                rollout (it never reaches MuJoCo).
            U: controls, Shape=(K, H, nu).
            out: optional preallocated result, Shape=(K, H+1, nx).

        Returns:
            States, Shape=(K, H+1, nx), with ``X[:, 0] == X0``.
        """
        U = check_actions(U, self.nu)
        K, H, _ = U.shape
        starts = np.asarray(X0, dtype=np.float64)
        if starts.shape != (K, self.nx):
            raise ValueError(
                f"X0 must have Shape=(K, nx)=({K}, {self.nx}) (one start per control "
                f"sequence), got {starts.shape}."
            )
        out = states_buffer(out, (K, H + 1, self.nx))
        finite: np.ndarray = np.asarray(np.isfinite(starts).all(axis=1))
        with self._lock:
            self._rollout(
                np.where(finite[:, None], starts, self._state0[0, 1 : 1 + self.nx]), U, out
            )
        out[~finite] = np.nan
        out[~finite, 0] = starts[~finite]
        return out

    def linearize(
        self, x: ArrayLike, u: ArrayLike, eps: float = 1e-6
    ) -> tuple[FloatArray, FloatArray]:
        """Jacobians of one step at ``(x, u)``, by MuJoCo's ``mjd_transitionFD`` (``Linearizable``).

        ``mjd_transitionFD`` differences one physics step (centred, ``eps``) in MuJoCo's
        own state layout, ``(qpos tangent (nv), qvel, act)``; for a model whose
        positions are all hinges and slides (``nq == nv``) that is this model's
        ``x = (qpos, qvel, act)``. The ``frame_skip`` physics steps of one step, the
        control held, compose by the chain rule along the simulated path:
        ``A = A_fs ... A_1``, ``B = sum_i A_fs ... A_{i+1} B_i``, each physics step's
        Jacobians taken at the state it starts from (exact, not only at an equilibrium).
        ``mjd_transitionFD`` refuses the RK4 integrator (Gymnasium's classic control
        models use it); for those the whole step is differenced through one batched
        ``rollout_from_states`` call (``dynamics.linearize.finite_difference_jacobians``).

        Args:
            x: state ``(qpos, qvel, act)``, Shape=(nx,).
            u: control, Shape=(nu,).
            eps: the finite-difference step (> 0).

        Returns:
            ``(A Shape=(nx, nx), B Shape=(nx, nu))``.

        Raises:
            InputError: the model has ball or free joints (quaternions: ``nq != nv``),
                where a change of ``qpos`` is not a vector the Jacobians act on.
        """
        m = self.model
        if m.nq != m.nv:
            raise InputError(
                f"the MuJoCo model has nq={m.nq} position coordinates but nv={m.nv} degrees of "
                "freedom (a ball or free joint's quaternion), so the state (qpos, qvel, act) is "
                "not a vector space and its Jacobians are not defined in it. Linearise a model "
                "with hinge and slide joints only, or work in MuJoCo's tangent space with "
                "mujoco.mjd_transitionFD directly."
            )
        require_positive("MujocoDynamics.linearize", "eps", eps)
        if m.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4:
            return finite_difference_jacobians(self, x, u, eps)
        x = check_state(x, self.nx, "x")
        control = np.asarray(u, dtype=np.float64).reshape(-1)
        if control.shape != (self.nu,) or not np.all(np.isfinite(control)):
            raise ValueError(f"u must be finite with shape ({self.nu},), got {control}.")
        data = mujoco.MjData(m)
        state = self._state0[0].copy()
        state[1 : 1 + self.nx] = x  # the same start as a rollout: defaults, warm start zeroed
        mujoco.mj_setState(m, data, state, _FULL)
        data.ctrl[:] = control
        A, B = np.eye(self.nx), np.zeros((self.nx, self.nu))
        A_step, B_step = np.empty((self.nx, self.nx)), np.empty((self.nx, self.nu))
        for _ in range(self.frame_skip):
            mujoco.mjd_transitionFD(m, data, float(eps), True, A_step, B_step, None, None)
            A = A_step @ A
            B = A_step @ B + B_step
            mujoco.mj_step(m, data)
        return A, B

    def _rollout(
        self,
        x0: FloatArray,
        U: FloatArray,
        out: FloatArray,
        models: Sequence[mujoco.MjModel] | None = None,
    ) -> FloatArray:
        """Roll out from ``x0`` Shape=(nx,) (every sample) or Shape=(K, nx) (one per sample).

        ``models``: one ``MjModel`` per sample (copies of this one with other parameter
        values: an ensemble's members); None: this model for all.
        """
        K, H, _ = U.shape
        if K == 0 or H == 0:  # nothing to simulate (MuJoCo's rollout crashes on K = 0)
            out[:, 0] = x0
            self._last_sensordata = np.empty((K, H, self.model.nsensordata))
            return out
        self._ensure_buffers(K, H)
        finite = np.asarray(np.isfinite(U).all(axis=2))
        if not finite.all():  # MuJoCo would run a NaN control as 0 (and log a warning)
            U = np.where(np.isfinite(U), U, 0.0)
        fs = self.frame_skip
        if fs == 1:
            control = U
        else:
            control = self._control
            control.reshape(K, H, fs, self.nu)[:] = U[:, :, None, :]
        self._initial[:] = self._state0
        self._initial[:, 1 : 1 + self.nx] = x0
        self._pool.rollout(
            self._models if models is None else models,
            self._datas,
            self._initial,
            control,
            skip_checks=True,
            nstep=H * fs,
            control_spec=_CTRL,
            state=self._state,
            sensordata=self._sensordata,
        )
        out[:, 0] = x0
        out[:, 1:] = self._state[:, fs - 1 :: fs, 1 : 1 + self.nx]
        self._mark_failures(finite, out)
        self._last_sensordata = self._sensordata[:, ::fs]
        return out

    # --- extras -----------------------------------------------------------------------

    def step(self, x: ArrayLike, u: ArrayLike) -> FloatArray:
        """One step from a single state: Shape=(nx,), (nu,) -> (nx,)."""
        u_arr = np.asarray(u, dtype=np.float64).reshape(1, 1, self.nu)
        return self.rollout(x, u_arr)[0, 1].copy()

    @property
    def last_sensordata(self) -> FloatArray:
        """Sensor readings of the last ``rollout``, Shape=(K, H, nsensordata).

        ``last_sensordata[:, t]`` is what MuJoCo computed during the first physics
        step of step t: position and velocity sensors read the state ``X[:, t]``,
        acceleration and force sensors also the control ``U[:, t]``. A view into a
        buffer the next rollout overwrites: copy it to keep it.

        Raises:
            RuntimeError: no rollout has run yet.
        """
        if self._last_sensordata is None:
            raise RuntimeError("no sensor data yet: call rollout() first.")
        return self._last_sensordata

    def sensor_slice(self, name: str) -> slice:
        """Columns of ``last_sensordata`` that hold the sensor called ``name``.

        Raises:
            KeyError: no sensor of that name (the message lists the names).
        """
        sensor_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_SENSOR, name)
        if sensor_id < 0:
            names = [self.model.sensor(i).name for i in range(self.model.nsensor)]
            raise KeyError(f"no sensor named {name!r}; the model has {names}.")
        start = int(self.model.sensor_adr[sensor_id])
        return slice(start, start + int(self.model.sensor_dim[sensor_id]))

    def with_scaled_parameters(self, scales: Mapping[str, float]) -> MujocoDynamics:
        """A copy on a copied ``MjModel`` with named model arrays scaled (``ScalableParameters``).

        The plant of a model-mismatch fault (``FaultConfig.model_mismatch``). A name
        is an ``MjModel`` array, ``"dof_damping"`` (every entry), or the array and
        one element, ``"<array>:<name>"``:

        * ``body_*:<body>``, e.g. ``body_mass:block``; a body's mass scales its
          inertia with it (the same shape, denser);
        * ``geom_*:<geom>``, e.g. ``geom_friction:pusher`` (all three coefficients);
        * ``jnt_*:<joint>``, ``actuator_*:<actuator>``, ``site_*:<site>``,
          ``tendon_*:<tendon>``;
        * ``dof_*:<joint>`` or ``dof_*:<body>``: the joint's degrees of freedom, or
          those of every joint of the body (``dof_frictionloss:block``).

        Same ``frame_skip`` and thread count; ``self`` is left unchanged.

        Raises:
            InputError: an unknown array or element name, or a factor that is not a
                finite number > 0.
        """
        return MujocoDynamics(
            self.scaled_model(scales), frame_skip=self.frame_skip, num_threads=self.num_threads
        )

    def scaled_model(self, scales: Mapping[str, float]) -> mujoco.MjModel:
        """A copied ``MjModel`` with named arrays scaled, as ``with_scaled_parameters`` names them.

        Raises:
            InputError: an unknown array or element name, or a factor that is not a
                finite number > 0.
        """
        model = copy.deepcopy(self.model)
        for name, factor in scales.items():
            if not (isinstance(factor, int | float) and np.isfinite(factor) and factor > 0):
                raise InputError(
                    f"the factor for {name!r} must be a finite number > 0, got {factor!r}."
                )
            field, _, element = name.partition(":")
            array, rows = _parameter_rows(model, field, element)
            array[rows] *= factor
            if field == "body_mass":
                model.body_inertia[rows] *= factor
        mujoco.mj_setConst(model, mujoco.MjData(model))  # derived constants (subtree masses)
        return model

    def member_rollout(self, scales: Sequence[Mapping[str, float]]) -> MujocoMembers:
        """Ensemble members: one scaled ``MjModel`` copy per mapping (``MemberModels``).

        The names are those of ``with_scaled_parameters``; member ``m``'s rollouts run
        on its copy, all M x K of them in one call of a rollout pool.
        """
        return MujocoMembers(self, scales)

    def close(self) -> None:
        """Stop the rollout threads. The model cannot roll out afterwards."""
        pool = getattr(self, "_pool", None)
        if pool is not None and pool.rollout_ is not None:
            pool.close()

    def __enter__(self) -> MujocoDynamics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # --- internals --------------------------------------------------------------------

    def _ensure_buffers(self, K: int, H: int) -> None:
        """(Re)allocate the rollout buffers when K or H changed."""
        if self._shape == (K, H):
            return
        m, nstep = self.model, H * self.frame_skip
        self._models = [m] * K
        self._initial = np.empty((K, self._state0.shape[1]))
        self._state = np.empty((K, nstep, self._state0.shape[1]))
        self._sensordata = np.empty((K, nstep, m.nsensordata))
        self._control = np.empty((K, nstep, m.nu))
        self._shape = (K, H)

    def _mark_failures(self, finite: np.ndarray, out: FloatArray) -> None:
        """Set a sample's states to NaN from its first non-finite control or MuJoCo warning on.

        ``finite`` Shape=(K, H) says which steps had finite controls.
        """
        # MuJoCo's rollout stops a sample at a warning and repeats its last state (time
        # stalls), or the simulation was reset (time jumps back): time must always grow.
        time = self._state[:, :, 0]
        stalled = time[:, 1:] <= time[:, :-1]
        bad_physics = np.zeros(time.shape, dtype=bool)
        bad_physics[:, :-1] = stalled  # the step before the stall raised the warning
        bad_physics[:, 0] |= time[:, 0] <= 0.0
        if finite.all() and not bad_physics.any():
            return
        K, H = finite.shape
        bad = ~finite | bad_physics.reshape(K, H, self.frame_skip).any(axis=2)
        bad_from = np.logical_or.accumulate(bad, axis=1)
        out[:, 1:][bad_from] = np.nan


_ELEMENT_TYPES = {
    "body": mujoco.mjtObj.mjOBJ_BODY,
    "jnt": mujoco.mjtObj.mjOBJ_JOINT,
    "geom": mujoco.mjtObj.mjOBJ_GEOM,
    "site": mujoco.mjtObj.mjOBJ_SITE,
    "actuator": mujoco.mjtObj.mjOBJ_ACTUATOR,
    "tendon": mujoco.mjtObj.mjOBJ_TENDON,
}
_COUNTS = {"body": "nbody", "jnt": "njnt", "geom": "ngeom", "site": "nsite",
           "actuator": "nu", "tendon": "ntendon", "dof": "nv"}  # fmt: skip


def _parameter_rows(model: mujoco.MjModel, field: str, element: str) -> tuple[np.ndarray, Any]:
    """The array ``model.<field>`` and the rows of ``element`` in it (all rows if empty)."""
    kind = field.split("_", 1)[0]
    array = getattr(model, field, None) if kind in _COUNTS else None
    if not isinstance(array, np.ndarray) or array.shape[:1] != (getattr(model, _COUNTS[kind]),):
        per_element = sorted(f"{k}_*" for k in _COUNTS)
        raise InputError(
            f"{field!r} is not a per-element MjModel array; name one of the {per_element} "
            "arrays (e.g. body_mass, geom_friction, dof_damping), optionally with "
            "':<element name>'."
        )
    if not element:
        return array, slice(None)
    if kind == "dof":
        return array, _dof_rows(model, element)
    index = mujoco.mj_name2id(model, _ELEMENT_TYPES[kind], element)
    if index < 0:
        names = [mujoco.mj_id2name(model, _ELEMENT_TYPES[kind], i) for i in range(array.shape[0])]
        raise InputError(
            f"the model has no {kind} named {element!r}; it has {[n for n in names if n]}."
        )
    return array, index


def _dof_rows(model: mujoco.MjModel, element: str) -> list[int]:
    """The dofs of the joint ``element``, or of every joint of the body ``element``."""
    joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, element)
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, element)
    if joint >= 0:
        joints = [joint]
    elif body >= 0:
        joints = [j for j in range(model.njnt) if model.jnt_bodyid[j] == body]
    else:
        raise InputError(
            f"dof parameters name a joint or a body; the model has neither named {element!r}."
        )
    width = {int(mujoco.mjtJoint.mjJNT_FREE): 6, int(mujoco.mjtJoint.mjJNT_BALL): 3}
    return [
        int(model.jnt_dofadr[j]) + k
        for j in joints
        for k in range(width.get(int(model.jnt_type[j]), 1))
    ]


class MujocoMembers(MemberRollout):
    """A ``MujocoDynamics``'s ensemble members: scaled ``MjModel`` copies in one rollout pool.

    Member 0 is the nominal when its mapping is empty or all ones (its copy has the
    same values, so its rollouts equal the nominal's). The pool, its ``MjData`` and
    the work buffers are this object's own (a planner's and a guard's rollouts on the
    nominal do not reallocate them).

    Args:
        nominal: the model the members are copies of.
        scales: one ``name -> factor`` mapping per member (``with_scaled_parameters``'
            names, e.g. ``body_mass:block``).

    Raises:
        InputError: an unknown name or a bad factor.
    """

    def __init__(self, nominal: MujocoDynamics, scales: Sequence[Mapping[str, float]]) -> None:
        self._scales = tuple(dict(s) for s in scales)
        self._models = [nominal.scaled_model(s) for s in self._scales]
        self._engine = MujocoDynamics(
            nominal.model, frame_skip=nominal.frame_skip, num_threads=nominal.num_threads
        )
        self._batch: list[mujoco.MjModel] = []
        self._U = np.empty((0, 0, 0))

    @property
    def members(self) -> int:
        return len(self._models)

    @property
    def scales(self) -> tuple[Mapping[str, float], ...]:
        return self._scales

    def rollout_members(self, x0: FloatArray, U: FloatArray, out: FloatArray) -> FloatArray:
        """All members' rollouts of ``U`` Shape=(K, H, nu) into ``out`` Shape=(M, K, H+1, nx)."""
        M = len(self._models)
        K, H, nu = U.shape
        if self._U.shape != (M * K, H, nu):
            self._U = np.empty((M * K, H, nu))
            # Member-major: rows m*K .. m*K+K-1 run on member m's model copy.
            self._batch = [model for model in self._models for _ in range(K)]
        self._U.reshape(M, K, H, nu)[:] = U
        flat = out.reshape(M * K, H + 1, out.shape[-1])
        engine = self._engine
        with engine._lock:
            engine._rollout(x0, self._U, flat, self._batch)
        if not np.shares_memory(flat, out):  # pragma: no cover - out is C-contiguous
            out[:] = flat.reshape(out.shape)
        return out

    def close(self) -> None:
        """Stop the members' rollout threads."""
        self._engine.close()
