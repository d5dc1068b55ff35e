"""Guarded IMLE-MPC on a 7-DoF Panda: sweep the hand past a ball, over it or around it.

python examples/panda_reach_around.py --episodes 2 --samples 256

The shipped generator proposes 16-step joint-acceleration chunks learned from
40 optimised demonstrations (both routes); IMLE-MPC rolls them out on the
Pinocchio model, rejects plans that break a joint or speed limit or come within
3 cm of the ball, and the safety guard checks every executed plan. Prints, per
episode: success, route, smallest clearance to the ball, peak torque as a share
of the URDF limits (inverse dynamics), and the control rate (median plan time).
"""

from __future__ import annotations

import argparse

import numpy as np

from imle_mpc.core.threads import PLANNING_THREADS, ThreadPolicy
from imle_mpc.eval.episodes import run_episode
from imle_mpc.tasks import Task
from imle_mpc.tasks.experts import observation
from imle_mpc.tasks.panda import panda_reach_around
from imle_mpc.tasks.panda.robot import (
    classify_panda_route,
    joint_torques,
    panda_clearance,
    panda_model,
    panda_target,
    panda_tcp,
)
from imle_mpc.tasks.shipped import load_task_generator
from planners.imle import IMLEMPC, IMLEMPCConfig
from planners.safety.guard import GuardConfig, SafetyGuard


def build_planner(
    task: Task, samples: int, seed: int, threads: ThreadPolicy = PLANNING_THREADS
) -> SafetyGuard:
    """IMLE-MPC with ``samples`` rows (half of them generator chunks) inside the safety guard.

    ``threads``: what the step (plan and check) may use; the library's default is one
    Numba and one torch thread (``imle_mpc.core.threads``).
    """
    generator = load_task_generator(task.name)
    config = IMLEMPCConfig(
        horizon=generator.horizon, num_samples=samples, num_imle=max(1, (samples - 1) // 2),
        seed=seed, threads=threads,
    )  # fmt: skip
    planner = IMLEMPC(task.dynamics, task.cost, generator, observation, config, task.constraints)
    return SafetyGuard(
        planner, task.dynamics, task.constraints, GuardConfig(threads=threads),
        velocity_dims=task.velocity_dims,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--samples", type=int, default=256, help="K, rows per control step")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    task = panda_reach_around()
    planner = build_planner(task, args.samples, args.seed)
    target = panda_target()
    effort = panda_model().effort_limit
    successes = 0
    for seed in range(args.seed, args.seed + args.episodes):
        planner.reset(seed)
        record = run_episode(task, planner, seed=seed)
        states = record.states
        error = float(np.linalg.norm(panda_tcp(states[-1]) - target))
        torque = float((np.abs(joint_torques(states, record.actions)) / effort).max())
        hz = 1.0 / float(np.median(record.plan_times))
        successes += bool(record.success)
        print(
            f"episode {seed}: {'success' if record.success else 'FAILED'}, route "
            f"{classify_panda_route(states)}, clearance {panda_clearance(states).min():.3f} m, "
            f"final error {100 * error:.1f} cm, peak torque {100 * torque:.0f} % of limit, "
            f"fallbacks {record.fallback_steps}, control rate {hz:.0f} Hz (median)"
        )
    print(f"success {successes}/{args.episodes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
