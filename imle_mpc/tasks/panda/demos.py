"""Demonstrations of ``panda_reach_around`` from a CasADi trajectory optimiser (IPOPT).

One NLP, built once and re-solved per demonstration (``PandaTrajectoryOptimizer``):

* multiple shooting over ``PANDA_DEMO_MOVE_STEPS`` steps of the planner's own
  model, the joint-acceleration double integrator with semi-implicit Euler
  (``v+ = v + dt u``, ``q+ = q + dt v+``, exactly ``PinocchioDynamics``'
  acceleration mode), from a given start to the goal at rest;
* forward kinematics of the collision spheres and of the tool centre point
  in CasADi, built from the same joint placements as the Numba kernel
  (``dynamics.kinematics.ChainKinematics.symbolic``);
* constraints: every robot sphere ``PANDA_DEMO_CLEARANCE`` (5 cm) clear of
  the ball at every step, joint positions 0.1 rad inside the URDF limits,
  speeds within 80 % of them, accelerations in ``PANDA_ACCEL_LIMIT``;
* a via point: the tool centre point within 1 cm of a point above the ball
  (``over``) or between the ball and the base (``around``) at the middle
  step. This is what puts a demonstration in its route; the initial guess
  is the straight joint-space line (it goes through the ball);
* cost: the sum of squared accelerations (smooth, unhurried motions).

Each demonstration is the optimised move followed by ``PANDA_STEPS -
PANDA_DEMO_MOVE_STEPS`` steps at rest on the goal, so it spans the task's
whole episode. Per demonstration, one ``np.random.Generator`` seeded once
draws a start jittered by up to 0.05 rad per joint and a via point jittered by
up to 3 cm per axis; routes are balanced and shuffled.

Recoveries (DART-style). Each demonstration also gets one recovery branch: at
step 20, 40 or 60 (in turn) its state is pushed (a joint-velocity impulse of
0.05-0.2 rad/s, the kind of fault the task states) and the optimiser finds the
way back to the goal, warm-started on the rest of the demonstration so it
keeps the route (``recovery_demonstration``). Without them the generator only
knows the unperturbed motions: near the goal it proposes "stay at rest", so a
push of 0.1 rad/s made the arm drift 25 cm away in closed loop (measured);
small Gaussian perturbations of 112-dimensional chunks almost never contain the
correction.

Every episode is checked (route, clearance, limits, task success, torques
within the URDF effort limits by inverse dynamics) before it is kept; a
failed solve is a ``RuntimeError`` naming the demonstration.

``python -m imle_mpc.tasks.panda.task`` rewrites the shipped dataset
(``imle_mpc/tasks/data/panda_reach_around_demos.npz``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from imle_mpc.core.validation import FloatArray
from imle_mpc.learn.demos import DemoDataset, Episode
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.experts import OBSERVATION_DOC, observation
from imle_mpc.tasks.panda.robot import (
    PANDA_ACCEL_LIMIT,
    PANDA_DT,
    PANDA_GOAL_Q,
    PANDA_HORIZON,
    PANDA_OBSTACLE,
    PANDA_ROUTES,
    PANDA_START_Q,
    PANDA_STEPS,
    PANDA_TASK,
    classify_panda_route,
    joint_torques,
    panda_clearance,
    panda_collision_kinematics,
    panda_model,
    panda_sphere_radii,
    panda_tcp_kinematics,
)

PANDA_DEMO_MOVE_STEPS = 60
"""Optimised steps (3 s) from the start to the goal at rest."""
PANDA_DEMO_CLEARANCE = 0.05
"""Every robot sphere stays this far (m) from the ball in every demonstration."""
PANDA_DEMO_POSITION_MARGIN = 0.1
PANDA_DEMO_VELOCITY_FRACTION = 0.8
PANDA_DEMO_COUNT = 40
"""Optimised demonstrations in the shipped dataset (20 per route), each with one recovery."""
PANDA_DEMO_SEED = 0
PANDA_VIA_POINTS: dict[str, tuple[float, float, float]] = {
    "over": (PANDA_OBSTACLE[0], PANDA_OBSTACLE[1], PANDA_OBSTACLE[2] + 0.2),
    "around": (PANDA_OBSTACLE[0] - 0.24, PANDA_OBSTACLE[1], PANDA_OBSTACLE[2] + 0.02),
}
"""Nominal tool-centre-point via point of each route at the middle step (m)."""
VIA_TOLERANCE = 0.01
START_JITTER = 0.05
VIA_JITTER = 0.03


@dataclass(frozen=True)
class TrajectorySolution:
    """One solved move: ``states`` Shape=(N+1, 14), ``actions`` Shape=(N, 7)."""

    states: FloatArray
    actions: FloatArray
    success: bool
    status: str
    iterations: int
    seconds: float


class PandaTrajectoryOptimizer:
    """Multiple-shooting trajectory optimisation of the Panda past the ball (IPOPT).

    Built once (the NLP and its derivatives), solved many times with new
    start, via point and initial guess (CasADi ``Opti`` parameters).

    Args:
        steps: shooting intervals N.
        via_step: the step whose tool centre point must meet the via point
            (default ``steps // 2``; 0: no via point).
        clearance: robot-sphere clearance to the ball (m).
        max_iter: IPOPT iteration limit.
    """

    def __init__(
        self,
        steps: int = PANDA_DEMO_MOVE_STEPS,
        via_step: int | None = None,
        clearance: float = PANDA_DEMO_CLEARANCE,
        max_iter: int = 1000,
    ) -> None:
        import casadi as ca

        self.steps = int(steps)
        self.via_step = self.steps // 2 if via_step is None else int(via_step)
        if not 0 <= self.via_step < self.steps:
            raise ValueError(f"via_step must lie in [0, {self.steps}), got {self.via_step}.")
        model = panda_model()
        nv, dt = 7, PANDA_DT
        q_sym = ca.SX.sym("q", nv)
        spheres = ca.Function(
            "spheres", [q_sym], [ca.horzcat(*panda_collision_kinematics().symbolic(q_sym))]
        )
        tcp = ca.Function("tcp", [q_sym], [panda_tcp_kinematics().symbolic(q_sym)[0]])
        low, high = model.position_limits
        vmax = PANDA_DEMO_VELOCITY_FRACTION * model.velocity_limit
        amax = np.asarray(PANDA_ACCEL_LIMIT)
        centre = ca.DM(PANDA_OBSTACLE[:3])
        min_dist_sq = ca.DM((PANDA_OBSTACLE[3] + panda_sphere_radii() + clearance) ** 2)

        opti = ca.Opti()
        Q = opti.variable(nv, self.steps + 1)
        V = opti.variable(nv, self.steps + 1)
        U = opti.variable(nv, self.steps)
        x0 = opti.parameter(2 * nv)
        via = opti.parameter(3)
        goal = np.asarray(PANDA_GOAL_Q)
        opti.subject_to(Q[:, 0] == x0[:nv])
        opti.subject_to(V[:, 0] == x0[nv:])
        for k in range(self.steps):
            opti.subject_to(V[:, k + 1] == V[:, k] + dt * U[:, k])
            opti.subject_to(Q[:, k + 1] == Q[:, k] + dt * V[:, k + 1])
        opti.subject_to(Q[:, -1] == goal)
        opti.subject_to(V[:, -1] == 0)
        margin = PANDA_DEMO_POSITION_MARGIN
        for k in range(1, self.steps + 1):
            opti.subject_to(opti.bounded(low + margin, Q[:, k], high - margin))
            opti.subject_to(opti.bounded(-vmax, V[:, k], vmax))
            diff = spheres(Q[:, k]) - ca.repmat(centre, 1, min_dist_sq.numel())
            dist_sq = ca.sum1(diff * diff).T
            opti.subject_to(dist_sq >= min_dist_sq)
        for k in range(self.steps):
            opti.subject_to(opti.bounded(-amax, U[:, k], amax))
        if self.via_step > 0:
            gap = tcp(Q[:, self.via_step]) - via
            opti.subject_to(ca.sumsqr(gap) <= VIA_TOLERANCE**2)
        opti.minimize(dt * ca.sumsqr(U))
        opti.solver(
            "ipopt",
            {"print_time": False},
            {"print_level": 0, "max_iter": max_iter, "tol": 1e-8, "sb": "yes"},
        )
        self._ca = ca
        self._opti = opti
        self._vars = (Q, V, U)
        self._params = (x0, via)

    def solve(
        self, x0: ArrayLike, via: ArrayLike, guess: ArrayLike | None = None
    ) -> TrajectorySolution:
        """Optimise a move from ``x0`` (Shape=(14,)) through ``via`` (Shape=(3,)) to the goal.

        ``guess``: initial joint positions, Shape=(N+1, 7); default the straight
        joint-space line from ``x0`` to the goal.
        """
        opti = self._opti
        Q, V, U = self._vars
        x0 = np.asarray(x0, dtype=np.float64)
        opti.set_value(self._params[0], x0)
        opti.set_value(self._params[1], np.asarray(via, dtype=np.float64))
        s = np.linspace(0.0, 1.0, self.steps + 1)
        if guess is None:
            line = x0[:7, None] + (np.asarray(PANDA_GOAL_Q) - x0[:7])[:, None] * s[None]
        else:
            line = np.asarray(guess, dtype=np.float64)[:, :7].T
        opti.set_initial(Q, line)
        opti.set_initial(V, np.zeros((7, self.steps + 1)))
        opti.set_initial(U, np.zeros((7, self.steps)))
        t0 = time.perf_counter()
        try:
            sol = opti.solve()
            values, ok = sol.value, True
        except RuntimeError:  # not converged: read the last iterate to report it
            values, ok = opti.debug.value, False
        stats = opti.stats()
        q, v = np.asarray(values(Q)), np.asarray(values(V))
        u = np.asarray(values(U)).reshape(7, self.steps)
        return TrajectorySolution(
            states=np.concatenate([q, v]).T.copy(),
            actions=u.T.copy(),
            success=ok and bool(stats.get("success", False)),
            status=str(stats.get("return_status", "")),
            iterations=int(stats.get("iter_count", -1)),
            seconds=time.perf_counter() - t0,
        )


def demonstration(
    optimizer: PandaTrajectoryOptimizer,
    route: str,
    rng: np.random.Generator | None,
    via: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """One demonstration along ``route``: (states Shape=(T+1, 14), actions Shape=(T, 7)).

    The optimised move, then rest on the goal up to ``PANDA_STEPS`` steps.
    ``rng`` draws the jitter of the start (None: the nominal one); ``via``
    defaults to the route's nominal via point, jittered by ``rng`` too.

    Raises:
        RuntimeError: IPOPT did not converge.
    """
    if route not in PANDA_ROUTES:
        raise ValueError(f"route {route!r} is not one of {PANDA_ROUTES}.")
    x0 = np.array([*PANDA_START_Q, *np.zeros(7)])
    if via is None:
        via = np.asarray(PANDA_VIA_POINTS[route], dtype=np.float64)
        if rng is not None:
            via = via + rng.uniform(-VIA_JITTER, VIA_JITTER, size=3)
    if rng is not None:
        x0[:7] += rng.uniform(-START_JITTER, START_JITTER, size=7)
    sol = optimizer.solve(x0, via)
    return _at_rest_after(sol, f"the {route!r} move", PANDA_STEPS - optimizer.steps)


def _at_rest_after(sol: TrajectorySolution, what: str, rest: int) -> tuple[FloatArray, FloatArray]:
    """The solved move then ``rest`` steps at rest on the goal; a failed solve raises."""
    if not sol.success:
        raise RuntimeError(
            f"IPOPT did not converge on {what} from {np.round(sol.states[0], 3).tolist()}: "
            f"{sol.status} after {sol.iterations} iterations."
        )
    states = np.concatenate([sol.states, np.repeat(sol.states[-1:], rest, axis=0)])
    states[-rest - 1 :, 7:] = 0.0  # exactly at rest (IPOPT meets v = 0 to its tolerance)
    actions = np.concatenate([sol.actions, np.zeros((rest, 7))])
    return states, actions


RECOVERY_STEPS = (20, 40, 60)
"""Steps of a demonstration at which its recovery demonstration branches off, in turn:
before the via point, after it, and at rest on the goal."""
RECOVERY_PUSH = (0.05, 0.2)
"""Norm range (rad/s) of the joint-velocity push that starts a recovery demonstration."""
RECOVERY_MIN_STEPS = 20
"""Shortest recovery move (1 s)."""
RECOVERY_REST = 20


def recovery_optimizer(step: int) -> PandaTrajectoryOptimizer:
    """The optimiser of a recovery that branches off at ``step`` of a demonstration.

    The move lasts the rest of the demonstration's move (at least
    ``RECOVERY_MIN_STEPS``); it keeps the via point if that is still ahead.
    """
    steps = max(PANDA_DEMO_MOVE_STEPS - step, RECOVERY_MIN_STEPS)
    via_step = max(PANDA_DEMO_MOVE_STEPS // 2 - step, 0)
    return PandaTrajectoryOptimizer(steps=steps, via_step=via_step)


def recovery_demonstration(
    optimizer: PandaTrajectoryOptimizer,
    states: FloatArray,
    step: int,
    via: ArrayLike,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray]:
    """A push at ``step`` of a demonstration (``states``), then the optimal way back to the goal.

    The demonstrations alone never show a correction: after a push (a fault
    the task states) a generator trained on them proposes the unperturbed
    motion and the arm drifts. These branches are DART's remedy (Laskey et
    al. 2017: demonstrations from perturbed states): the state at ``step``
    gets a joint-velocity push of random direction and a norm drawn from
    ``RECOVERY_PUSH``, and the optimiser (``recovery_optimizer(step)``) finds
    the way back, warm-started on the rest of the demonstration so it stays
    on its route. Followed by ``RECOVERY_REST`` steps at rest.
    """
    x0 = np.array(states[step], dtype=np.float64)
    direction = rng.normal(size=7)
    x0[7:] += rng.uniform(*RECOVERY_PUSH) * direction / np.linalg.norm(direction)
    guess = states[step : step + optimizer.steps + 1, :7]
    if guess.shape[0] < optimizer.steps + 1:
        pad = np.repeat(guess[-1:], optimizer.steps + 1 - guess.shape[0], axis=0)
        guess = np.concatenate([guess, pad])
    sol = optimizer.solve(x0, via, guess)
    return _at_rest_after(sol, f"the recovery from step {step}", RECOVERY_REST)


def check_demonstration(
    task: Any, route: str | None, states: FloatArray, actions: FloatArray
) -> None:
    """Raise ``RuntimeError`` unless a demonstration is safe, on its route and within limits.

    ``route=None`` (a recovery that starts past the ball) skips the route check.
    """
    model = panda_model()
    taken = classify_panda_route(states) if route is not None else None
    clearance = float(panda_clearance(states).min())
    torques = np.abs(joint_torques(states, actions)).max(axis=0)
    over_torque = bool(np.any(torques > model.effort_limit))
    over_accel = bool(np.any(np.abs(actions) > np.asarray(PANDA_ACCEL_LIMIT) + 1e-6))
    ok = task.success(states) and taken == route and not over_torque and not over_accel
    if not ok or clearance < PANDA_DEMO_CLEARANCE - 1e-3:
        raise RuntimeError(
            f"panda demonstration on route {route!r} failed its checks: success="
            f"{task.success(states)}, route taken {taken!r}, clearance {clearance:.3f} m (need "
            f">= {PANDA_DEMO_CLEARANCE}), peak torques {np.round(torques, 1).tolist()} vs "
            f"{model.effort_limit.tolist()}, accelerations in the box: {not over_accel}."
        )


def generate_panda_demonstrations(
    task: Task,
    num_demos: int = PANDA_DEMO_COUNT,
    seed: int = PANDA_DEMO_SEED,
    with_recoveries: bool = True,
) -> DemoDataset:
    """Optimised demonstrations of ``panda_reach_around``, both routes in balanced numbers.

    ``num_demos`` optimised moves; with ``with_recoveries`` each is followed by
    one recovery demonstration branching off it (``recovery_demonstration``,
    at steps 20, 40, 60 in turn), so the dataset holds ``2 * num_demos``
    episodes; ``meta["kinds"]`` tells them apart (``optimised``,
    ``recovery@STEP``) and ``meta["modes"]`` gives each its route.

    Deterministic for a given ``(num_demos, seed)`` on one machine (IPOPT's
    arithmetic may differ in the last bits elsewhere). About 1 s per
    demonstration.

    Returns:
        A ``DemoDataset`` whose ``meta`` has the same keys as
        ``imle_mpc.tasks.experts.ScriptedDemos``' (``modes`` in order).
    """
    if isinstance(num_demos, bool) or not isinstance(num_demos, int | np.integer) or num_demos < 1:
        raise ValueError(f"num_demos must be an integer >= 1, got {num_demos!r}.")
    rng = np.random.default_rng(seed)
    routes = [PANDA_ROUTES[i % len(PANDA_ROUTES)] for i in range(num_demos)]
    routes = [routes[i] for i in rng.permutation(num_demos)]
    optimizer = PandaTrajectoryOptimizer()
    recovery = {step: recovery_optimizer(step) for step in RECOVERY_STEPS}
    episodes, labels, kinds = [], [], []

    def keep(states: FloatArray, actions: FloatArray, route: str, kind: str) -> None:
        episodes.append(Episode(observation(states[:-1]), states[:-1].copy(), actions.copy()))
        labels.append(route)
        kinds.append(kind)

    for i, route in enumerate(routes):
        via = np.asarray(PANDA_VIA_POINTS[route]) + rng.uniform(-VIA_JITTER, VIA_JITTER, 3)
        states, actions = demonstration(optimizer, route, rng, via)
        check_demonstration(task, route, states, actions)
        keep(states, actions, route, "optimised")
        if with_recoveries:
            step = RECOVERY_STEPS[i % len(RECOVERY_STEPS)]
            back = recovery_demonstration(recovery[step], states, step, via, rng)
            ahead = step < PANDA_DEMO_MOVE_STEPS // 2
            check_demonstration(task, route if ahead else None, *back)
            keep(*back, route, f"recovery@{step}")
    model = panda_model()
    meta: dict[str, Any] = {
        "task": PANDA_TASK,
        "dt": PANDA_DT,
        "seed": int(seed),
        "num_demos": int(num_demos),
        "modes": labels,
        "kinds": kinds,
        "mode_names": list(PANDA_ROUTES),
        "observation": "state",
        "observation_doc": OBSERVATION_DOC,
        "state_names": [f"q{i}" for i in range(1, 8)] + [f"dq{i}" for i in range(1, 8)],
        "action_names": [f"ddq{i}" for i in range(1, 8)],
        "action_low": model.action_low.tolist(),
        "action_high": model.action_high.tolist(),
        "expert": "CasADi/IPOPT multiple-shooting trajectory optimisation through a via point",
        "generator": "imle_mpc.tasks.panda.demos.generate_panda_demonstrations",
    }
    return DemoDataset(tuple(episodes), meta)


PANDA_TRAIN_EPOCHS = 200
"""Epochs of the shipped generator (20 optimiser steps each on the 5080 pairs; 4000 in all,
9 min on the shared 2-core machine with 2 torch threads)."""


def train_panda_generator(
    dataset: DemoDataset, epochs: int = PANDA_TRAIN_EPOCHS, seed: int = 0, threads: int = 2
) -> tuple[Any, Any]:
    """Train the shipped generator: the default small MLP, lr 1e-3, 100 warm-up steps.

    Returns:
        ``(IMLEGenerator, TrainHistory)`` from ``imle_mpc.learn.imle.train_generator``.
    """
    import torch

    from imle_mpc.learn.imle import GeneratorConfig, TrainConfig, train_generator

    torch.set_num_threads(threads)
    gen_config = GeneratorConfig(horizon=PANDA_HORIZON)
    train_config = TrainConfig(epochs=epochs, lr=1e-3, warmup_steps=100, seed=seed)
    return train_generator(dataset, gen_config, train_config, progress=False)
