"""Scripted experts and the demonstration datasets of the multi-modal tasks.

The experts are feedback controllers that follow one chosen route (mode) of a
task from ``imle_mpc.navigation`` and never touch an obstacle:

* navigation: pure pursuit of a smooth detour path. The path is the straight
  line from start to goal plus one Gaussian bump per obstacle, up for
  ``above`` and down for ``below``; the controller steers the velocity towards
  a carrot 0.5 m ahead on the path at a cruise speed (~1.2 m/s), slows down
  on the last 1.5 m and ends with a P-controller on the goal. Force =
  ``mass * 3/s * (v_desired - v) + drag * v``, clipped to the actuator box.
* arm: computed-torque tracking (the arm model's own inverse dynamics, PD gains
  150/s^2 and 25/s) of a joint-space reference: fold the forearm by ~110 deg,
  sweep the shoulder, unfold. ``fold_ccw`` folds before the sweep (q2 > 0, the
  tip leads); ``fold_cw`` is its mirror image in time (q2 < 0, the tip trails).

Each demonstration draws (from one ``np.random.Generator`` seeded once) a start
jittered by up to 5 cm / 0.03 rad and a slightly different path (bump heights
+-10 %, cruise speed, or fold angle and sweep time), so demonstrations of one
route are similar but not identical. Routes are balanced: for N demonstrations
and M routes each route appears N // M or N // M + 1 times, in shuffled order.
Every demonstration is checked (task success, minimum clearance, the intended
route) before it is kept.

Observation
-----------
``observation(state)`` is the observation used in the datasets AND at control
time: the full state vector as float64 (navigation ``(px, py, vx, vy)`` in the
world frame, arm ``(q1, q2, dq1, dq2)``). The goal and the obstacles of a task
are fixed, so the state determines the situation. The generator conditions on
the last two observations; at the first step of an episode, repeat the first.

Default datasets ship in ``imle_mpc/data/<task>_demos.npz``; rebuild them with
``python -m imle_mpc.experts`` (``write_default_datasets``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.demos import DemoDataset, Episode
from imle_mpc.navigation import (
    ARM_GOAL_Q,
    ARM_START_Q,
    NAV_LAYOUTS,
    TASK_BUILDERS,
    NavLayout,
    arm_clearance,
    classify_route,
    task_routes,
)
from imle_mpc.tasks import Task
from imle_mpc.validation import FloatArray

OBSERVATION_DOC = (
    "observation = the full state, float64 (navigation: px, py, vx, vy in the world frame; "
    "arm: q1, q2, dq1, dq2); condition on the last 2 observations, the first one repeated at "
    "the start of an episode."
)

EXPERT_MIN_CLEARANCE = 0.15
"""Every kept demonstration stays at least this far (m) from every obstacle."""

DEFAULT_NUM_DEMOS: dict[str, int] = {
    "nav_one_obstacle": 20,
    "nav_two_obstacles": 40,
    "nav_trap": 30,
    "arm_reach_around": 30,
}
"""Demonstrations in the shipped dataset of each task."""
DEFAULT_SEED = 0
"""Seed of the shipped datasets."""
OPTIMISED_DATASETS = ("panda_reach_around",)
"""Tasks whose shipped dataset comes from a trajectory optimiser (``imle_mpc.panda_demos``,
IPOPT), not from a scripted expert: ``write_default_datasets`` leaves them alone
(rebuild with ``python -m imle_mpc.panda_demos``)."""

DATA_DIR = Path(__file__).resolve().parent / "data"

Controller = Callable[[FloatArray, int], FloatArray]
"""``controller(state Shape=(nx,), step) -> action Shape=(nu,)`` (clipped afterwards)."""


def observation(state: ArrayLike) -> FloatArray:
    """The policy's observation of a state: the state itself, as a float64 copy.

    Shared by the demonstrations and the controller at run time, so the two can
    never diverge. Works on one state Shape=(nx,) or a batch Shape=(..., nx).
    """
    return np.array(state, dtype=np.float64, copy=True)


# --- Navigation expert ----------------------------------------------------------------------

NAV_CRUISE_SPEED = 1.2
NAV_LOOKAHEAD = 0.5
NAV_VELOCITY_GAIN = 3.0
NAV_GOAL_GAIN = 1.5
NAV_SLOWDOWN = 1.5


def nav_reference_path(
    layout: NavLayout,
    route: str,
    start: ArrayLike | None = None,
    heights: ArrayLike | None = None,
    width: float | None = None,
    samples: int = 1500,
) -> FloatArray:
    """A smooth detour ``y(x)`` from ``start`` to the goal along ``route``.

    The straight line plus, per detour point of the layout
    (``layout.detour_points``), a Gaussian bump of ``heights[i]`` (default: the
    point's nominal height) and std ``width`` (default ``layout.detour_width``), up for ``above``
    and down for ``below``; the bumps' values at both ends are subtracted
    linearly so the path starts exactly at ``start`` and ends at the goal.

    Returns:
        Points along the path, Shape=(samples, 2).
    """
    sides = route.split("-")
    points = layout.detour_points
    if len(sides) != len(points) or not set(sides) <= {"above", "below"}:
        raise ValueError(f"route {route!r} is not one of {layout.routes} of {layout.name}.")
    p0 = np.asarray(layout.start if start is None else start, dtype=np.float64)
    p1 = np.asarray(layout.goal, dtype=np.float64)
    h = np.asarray(
        [d.height for d in points] if heights is None else heights,
        dtype=np.float64,
    )
    std = layout.detour_width if width is None else width
    x = np.linspace(p0[0], p1[0], samples)
    frac = (x - p0[0]) / (p1[0] - p0[0])

    def bumps(xs: FloatArray) -> FloatArray:
        total = np.zeros_like(xs)
        for detour, side, height in zip(points, sides, h, strict=True):
            sign = 1.0 if side == "above" else -1.0
            total += sign * height * np.exp(-0.5 * ((xs - detour.cx) / std) ** 2)
        return total

    ends = bumps(np.array([p0[0], p1[0]]))
    y = p0[1] + (p1[1] - p0[1]) * frac + bumps(x) - (ends[0] + (ends[1] - ends[0]) * frac)
    return np.stack([x, y], axis=1)


@dataclass
class NavigationExpert:
    """Pure pursuit of a path with a cruise speed, a slow-down and a final goal P-controller.

    Call ``reset()`` before a new episode (the progress along the path is state).
    """

    path: FloatArray
    goal: FloatArray
    mass: float
    drag: float
    speed: float = NAV_CRUISE_SPEED
    lookahead: float = NAV_LOOKAHEAD
    velocity_gain: float = NAV_VELOCITY_GAIN
    goal_gain: float = NAV_GOAL_GAIN
    slowdown: float = NAV_SLOWDOWN
    _arc: FloatArray = field(init=False, repr=False)
    _index: int = field(init=False, default=0, repr=False)

    def __post_init__(self) -> None:
        seg = np.linalg.norm(np.diff(self.path, axis=0), axis=1)
        self._arc = np.concatenate([[0.0], np.cumsum(seg)])

    def reset(self) -> None:
        self._index = 0

    def __call__(self, state: FloatArray, step: int = 0) -> FloatArray:
        p, v = state[:2], state[2:4]
        window = self.path[self._index : self._index + 100]
        self._index += int(np.argmin(np.linalg.norm(window - p, axis=1)))
        remaining = self._arc[-1] - self._arc[self._index]
        carrot = int(np.searchsorted(self._arc, self._arc[self._index] + self.lookahead))
        if remaining < self.lookahead or carrot >= len(self.path) - 1:
            v_des = self.goal_gain * (self.goal - p)
            norm = float(np.linalg.norm(v_des))
            if norm > self.speed:
                v_des *= self.speed / norm
        else:
            heading = self.path[carrot] - p
            v_des = self.speed * heading / max(float(np.linalg.norm(heading)), 1e-9)
            if remaining < self.slowdown:
                v_des *= min(1.0, np.sqrt(2.0 * remaining) / self.speed)
        return np.asarray(self.mass * self.velocity_gain * (v_des - v) + self.drag * v)


# --- Arm expert -----------------------------------------------------------------------------

ARM_FOLD_ANGLE = 1.9
"""Nominal fold of the forearm (rad, ~109 deg) while the arm passes the post."""
ARM_SWEEP_TIME = 2.9
"""Nominal duration (s) of the fold-sweep-unfold reference."""
ARM_KP = 150.0
ARM_KD = 25.0


def _min_jerk(s: float, a: float, b: float) -> FloatArray:
    """Min-jerk 0 -> 1 as ``s`` goes from ``a`` to ``b``: (value, d/ds, d2/ds2)."""
    d = b - a
    u = min(max((s - a) / d, 0.0), 1.0)
    return np.array(
        [
            10 * u**3 - 15 * u**4 + 6 * u**5,
            (30 * u**2 - 60 * u**3 + 30 * u**4) / d,
            (60 * u - 180 * u**2 + 120 * u**3) / d**2,
        ]
    )


def arm_reference(t: float, route: str, fold: float, duration: float) -> FloatArray:
    """Joint reference at time ``t`` (s): rows (q, dq, ddq), columns (q1, q2), Shape=(3, 2).

    ``fold_ccw``: fold q2 to ``+fold`` in s in [0, 0.35], sweep q1 in
    [0.2, 0.85], unfold in [0.6, 1] (s = t / duration). ``fold_cw`` is the same
    motion mirrored about the vertical and played backwards: q1 -> q1_start +
    q1_goal - q1(1 - s), q2 -> -q2(1 - s).
    """
    if route not in ("fold_ccw", "fold_cw"):
        raise ValueError(f"route {route!r} is not one of ('fold_ccw', 'fold_cw').")
    q1s, q1g = ARM_START_Q[0], ARM_GOAL_Q[0]
    s = t / duration
    u = s if route == "fold_ccw" else 1.0 - s
    q1 = (q1g - q1s) * _min_jerk(u, 0.2, 0.85)
    q2 = fold * (_min_jerk(u, 0.0, 0.35) - _min_jerk(u, 0.6, 1.0))
    if route == "fold_ccw":
        q1[0] += q1s
    else:  # mirror in time: d/ds flips sign twice for q1 (value reflected), once for q2
        q1 = np.array([q1s + q1g - (q1s + q1[0]), q1[1], -q1[2]])
        q2 = np.array([-q2[0], q2[1], -q2[2]])
    scale = np.array([1.0, 1.0 / duration, 1.0 / duration**2])
    return np.stack([q1 * scale, q2 * scale], axis=1)


@dataclass
class ArmExpert:
    """Computed-torque tracking of ``arm_reference`` with the model's own dynamics.

    The start offset from the nominal start decays along a min-jerk over the
    first 40 % of the motion, so a jittered start needs no jump.
    """

    model: Any
    route: str
    start: FloatArray
    fold: float = ARM_FOLD_ANGLE
    duration: float = ARM_SWEEP_TIME
    kp: float = ARM_KP
    kd: float = ARM_KD

    def reset(self) -> None:
        """Stateless: nothing to reset."""

    def __call__(self, state: FloatArray, step: int) -> FloatArray:
        t = step * self.model.dt
        ref = arm_reference(t, self.route, self.fold, self.duration)
        offset = self.start[:2] - np.asarray(ARM_START_Q)
        fade = _min_jerk(t, 0.0, 0.4 * self.duration)
        ref[0] += offset * (1.0 - fade[0])
        ref[1] -= offset * fade[1]
        ref[2] -= offset * fade[2]
        qdd = ref[2] + self.kp * (ref[0] - state[:2]) + self.kd * (ref[1] - state[2:4])
        return _arm_inverse_dynamics(self.model, state, qdd)


def _arm_inverse_dynamics(model: Any, state: FloatArray, qdd: FloatArray) -> FloatArray:
    """Torques that give joint accelerations ``qdd`` in ``state`` under the model.

    The forward dynamics are affine in the torques, ``qdd = a0 + M^-1 tau``:
    three calls of the model's own acceleration function give ``a0`` and
    ``M^-1``, so the expert cannot disagree with the model.
    """
    from dynamics.two_link_arm import _arm_accelerations

    p = model.params_vector()
    q1, q2, w1, w2 = (float(v) for v in state[:4])
    a0 = np.array(_arm_accelerations(q1, q2, w1, w2, 0.0, 0.0, p))
    m_inv = np.stack(
        [
            np.array(_arm_accelerations(q1, q2, w1, w2, 1.0, 0.0, p)) - a0,
            np.array(_arm_accelerations(q1, q2, w1, w2, 0.0, 1.0, p)) - a0,
        ],
        axis=1,
    )
    return np.asarray(np.linalg.solve(m_inv, qdd - a0))


@dataclass(frozen=True)
class DemoPushes:
    """Pushes that knock a demonstration off its reference, so the data shows recovery.

    A scripted expert tracks its reference so tightly that clean runs never
    leave it, and a generator trained on them has never seen a state off the
    nominal path: there it proposes nothing useful (the arm: the gravity torque
    of wherever it rests, so a small offset from the goal is never corrected;
    the trap: slow or off-route states at the cup's mouth, from which it drives
    in). With pushes, the recorded actions include the expert's recoveries
    (the idea of DART: perturb the states the expert is asked about).

    Attributes:
        probability: chance per step of a push (never in the last ``quiet_steps``).
        std: std of the Gaussian jump of each state entry, Shape=(nx,).
        quiet_steps: steps at the end of a demonstration that are never pushed.
        tries: a run that fails the expert checks is drawn again, this many times.
    """

    probability: float
    std: tuple[float, ...]
    quiet_steps: int = 10
    tries: int = 10


DEMO_PUSHES: dict[str, DemoPushes] = {
    "arm_reach_around": DemoPushes(0.05, (0.1, 0.1, 0.5, 0.5)),
    "nav_trap": DemoPushes(0.05, (0.1, 0.1, 0.3, 0.3)),
}
"""The tasks whose demonstrations are pushed (nav_one/nav_two ship clean ones)."""


def pushed_rollout(
    task: Task, route: str, rng: np.random.Generator, pushes: DemoPushes
) -> ExpertRollout:
    """An expert run whose state is pushed off the reference now and then (``DemoPushes``).

    A push that would put the state within ``EXPERT_MIN_CLEARANCE`` of an
    obstacle is not applied; a run that fails the expert checks is drawn again
    (deterministic for a given ``rng``).
    """
    x0, expert = make_expert(task, route, rng)
    model: Any = task.dynamics
    step_fn = type(model).step_function
    params = model.params_vector()
    low, high = model.action_low, model.action_high
    steps = task.steps
    std = np.asarray(pushes.std, dtype=np.float64)
    X = np.empty((steps + 1, model.nx))
    U = np.empty((steps, model.nu))
    reset = getattr(expert, "reset", None)  # the path follower keeps its progress
    for _ in range(pushes.tries):
        if reset is not None:
            reset()
        X[0] = x0
        for t in range(steps):
            U[t] = np.clip(expert(X[t], t), low, high)
            step_fn(X[t], U[t], params, X[t + 1])
            if t < steps - pushes.quiet_steps and rng.random() < pushes.probability:
                pushed = X[t + 1] + rng.normal(0.0, 1.0, model.nx) * std
                if min_clearance(task.name, pushed[None]) > EXPERT_MIN_CLEARANCE:
                    X[t + 1] = pushed
        run = ExpertRollout(route=route, states=X.copy(), actions=U.copy())
        clear = min_clearance(task.name, run.states) >= EXPERT_MIN_CLEARANCE
        if clear and task.success(run.states) and classify_route(task.name, X) == route:
            return run
    return run  # generate_demonstrations' checks name the failure


# --- Rollouts and datasets ------------------------------------------------------------------


@dataclass(frozen=True)
class ExpertRollout:
    """One expert run: ``actions[t]`` (clipped to the actuator box) applied in ``states[t]``.

    Attributes:
        route: the route the expert was told to follow.
        states: Shape=(T+1, nx).
        actions: Shape=(T, nu).
    """

    route: str
    states: FloatArray
    actions: FloatArray


def simulate(task: Task, x0: ArrayLike, controller: Controller, steps: int) -> ExpertRollout:
    """Run ``controller`` on the task's model for ``steps`` steps (the model's own step).

    The actions are clipped to the actuator box before they are applied and recorded.
    """
    model: Any = task.dynamics  # an AnalyticModel: its own @njit step function
    step_fn = type(model).step_function
    params = model.params_vector()
    low, high = model.action_low, model.action_high
    X = np.empty((steps + 1, model.nx))
    U = np.empty((steps, model.nu))
    X[0] = np.asarray(x0, dtype=np.float64)
    for t in range(steps):
        U[t] = np.clip(controller(X[t], t), low, high)
        step_fn(X[t], U[t], params, X[t + 1])
    return ExpertRollout(route="", states=X, actions=U)


def make_expert(
    task: Task, route: str, rng: np.random.Generator | None = None
) -> tuple[FloatArray, Controller]:
    """A start state and an expert for one route of ``task``.

    Args:
        task: one of the tasks of ``imle_mpc.navigation``.
        route: one of ``task_routes(task.name)``.
        rng: draws the jitter of the start and the path; None: the nominal ones.

    Returns:
        ``(x0 Shape=(nx,), controller)``.
    """
    if route not in task_routes(task.name):
        raise ValueError(f"route {route!r} is not one of {task_routes(task.name)} of {task.name}.")
    x0 = np.array(task.initial_state, dtype=np.float64)
    if task.name in NAV_LAYOUTS:
        layout = NAV_LAYOUTS[task.name]
        heights = np.array([d.height for d in layout.detour_points])
        speed = NAV_CRUISE_SPEED
        if rng is not None:
            x0[:2] += rng.uniform(-0.05, 0.05, size=2)
            heights *= rng.uniform(0.9, 1.1, size=heights.size)
            speed *= rng.uniform(0.9, 1.1)
        path = nav_reference_path(layout, route, start=x0[:2], heights=heights)
        model: Any = task.dynamics
        expert = NavigationExpert(
            path, np.asarray(layout.goal, dtype=np.float64), model.mass, model.drag, speed=speed
        )
        return x0, expert
    if task.name == "arm_reach_around":
        fold, duration = ARM_FOLD_ANGLE, ARM_SWEEP_TIME
        if rng is not None:
            x0[:2] += rng.uniform(-0.03, 0.03, size=2)
            fold *= rng.uniform(0.95, 1.05)
            duration *= rng.uniform(0.93, 1.07)
        return x0, ArmExpert(task.dynamics, route, x0.copy(), fold=fold, duration=duration)
    raise ValueError(f"no expert for task {task.name!r}; choose one of {sorted(TASK_BUILDERS)}.")


def expert_rollout(
    task_name: str,
    route: str,
    rng: np.random.Generator | None = None,
    task: Task | None = None,
) -> ExpertRollout:
    """Run the expert of ``task_name`` along ``route`` for the task's episode length."""
    task = task if task is not None else TASK_BUILDERS[task_name]()
    if task_name in DEMO_PUSHES and rng is not None:
        return pushed_rollout(task, route, rng, DEMO_PUSHES[task_name])
    x0, expert = make_expert(task, route, rng)
    run = simulate(task, x0, expert, task.steps)
    return ExpertRollout(route=route, states=run.states, actions=run.actions)


def min_clearance(task_name: str, states: ArrayLike) -> float:
    """Smallest signed distance of a trajectory to the task's obstacles."""
    if task_name in NAV_LAYOUTS:
        return float(NAV_LAYOUTS[task_name].clearance(np.asarray(states)[:, :2]).min())
    return float(arm_clearance(states).min())


def balanced_routes(task_name: str, num: int, rng: np.random.Generator) -> list[str]:
    """``num`` route labels, each route ``num // M`` or ``num // M + 1`` times, shuffled."""
    routes = task_routes(task_name)
    labels = [routes[i % len(routes)] for i in range(num)]
    return [labels[i] for i in rng.permutation(num)]


def generate_demonstrations(
    task_name: str, num_demos: int, seed: int = DEFAULT_SEED
) -> DemoDataset:
    """Expert demonstrations of a multi-modal task, all routes in balanced numbers.

    Deterministic: the same ``(task_name, num_demos, seed)`` gives the same arrays.

    Args:
        task_name: one of ``imle_mpc.navigation.TASK_BUILDERS``.
        num_demos: episodes (>= 1); each is the task's full episode length.
        seed: seeds the route order and the per-episode jitter.

    Returns:
        A ``DemoDataset``; ``meta`` holds ``task``, ``dt``, ``seed``, ``num_demos``,
        ``modes`` (the route label of each episode, in order), ``mode_names``,
        ``observation`` and the expert's description.

    Raises:
        RuntimeError: an expert run failed its checks (a bug, never expected).
    """
    if task_name in OPTIMISED_DATASETS:
        from imle_mpc.panda_demos import generate_panda_demonstrations

        return generate_panda_demonstrations(num_demos, seed)
    if task_name not in TASK_BUILDERS:
        raise ValueError(f"unknown task {task_name!r}; choose one of {sorted(TASK_BUILDERS)}.")
    if isinstance(num_demos, bool) or not isinstance(num_demos, int | np.integer) or num_demos < 1:
        raise ValueError(f"num_demos must be an integer >= 1, got {num_demos!r}.")
    task = TASK_BUILDERS[task_name]()
    rng = np.random.default_rng(seed)
    labels = balanced_routes(task_name, int(num_demos), rng)
    episodes = []
    for i, route in enumerate(labels):
        run = expert_rollout(task_name, route, rng, task=task)
        _check_rollout(task, run, i)
        obs = observation(run.states[:-1])
        episodes.append(Episode(obs, run.states[:-1].copy(), run.actions.copy()))
    model = task.dynamics
    pushed = task_name in DEMO_PUSHES
    meta: dict[str, Any] = {
        "task": task_name,
        "dt": float(model.dt),
        "seed": int(seed),
        "num_demos": int(num_demos),
        "modes": labels,
        "mode_names": list(task_routes(task_name)),
        "observation": "state",
        "observation_doc": OBSERVATION_DOC,
        "state_names": list(getattr(model, "state_names", ())),
        "action_names": list(getattr(model, "action_names", ())),
        "action_low": np.asarray(model.action_low).tolist(),
        "action_high": np.asarray(model.action_high).tolist(),
        "expert": (
            "pure pursuit of a detour path"
            if task_name in NAV_LAYOUTS
            else "computed-torque tracking of a fold-sweep-unfold reference"
        )
        + (", the state pushed off it now and then (pushed_rollout)" if pushed else ""),
        "generator": "imle_mpc.experts.generate_demonstrations",
    }
    return DemoDataset(tuple(episodes), meta)


def _check_rollout(task: Task, run: ExpertRollout, index: int) -> None:
    clearance = min_clearance(task.name, run.states)
    taken = classify_route(task.name, run.states)
    if not task.success(run.states) or clearance < EXPERT_MIN_CLEARANCE or taken != run.route:
        raise RuntimeError(
            f"{task.name} expert run {index} (route {run.route!r}) failed its checks: "
            f"success={task.success(run.states)}, clearance={clearance:.3f} "
            f"(need >= {EXPERT_MIN_CLEARANCE}), route taken {taken!r}."
        )


def default_dataset_path(task_name: str) -> Path:
    """Where the shipped demonstrations of ``task_name`` live (the file may be absent)."""
    if task_name not in DEFAULT_NUM_DEMOS and task_name not in OPTIMISED_DATASETS:
        known = sorted([*DEFAULT_NUM_DEMOS, *OPTIMISED_DATASETS])
        raise ValueError(f"no shipped dataset for {task_name!r}; choose one of {known}.")
    return DATA_DIR / f"{task_name}_demos.npz"


def load_default_dataset(task_name: str) -> DemoDataset:
    """Load the shipped demonstrations of ``task_name``."""
    return DemoDataset.load(default_dataset_path(task_name))


def write_default_datasets(out_dir: str | Path | None = None) -> dict[str, Path]:
    """Regenerate the shipped datasets (``DEFAULT_NUM_DEMOS``, ``DEFAULT_SEED``).

    Args:
        out_dir: target folder; default the package's ``data`` folder.

    Returns:
        Task name -> written file.
    """
    folder = Path(out_dir) if out_dir is not None else DATA_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, num in DEFAULT_NUM_DEMOS.items():
        dataset = generate_demonstrations(name, num, DEFAULT_SEED)
        written[name] = dataset.save(folder / default_dataset_path(name).name)
    return written


def main(argv: list[str] | None = None) -> None:
    """``python -m imle_mpc.experts [--out DIR]``: rewrite the shipped datasets."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", type=Path, default=None, help="folder (default: package data)")
    args = parser.parse_args(argv)
    for name, path in write_default_datasets(args.out).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
