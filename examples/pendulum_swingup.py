"""Swing a torque-limited pendulum up with MPPI and balance it.

python examples/pendulum_swingup.py --steps 200 --seed 0
"""

from __future__ import annotations

import argparse

import numpy as np

from cost import ControlEffort, CostSum, StateTracking, Term
from dynamics import Pendulum
from imle_mpc.loop.plant import DynamicsEnv, EnvRobot
from imle_mpc.loop.runner import LoopConfig, run_closed_loop
from planners import MPPI, MPPIConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=256)
    args = parser.parse_args(argv)

    model = Pendulum(mass=1.0, length=1.0, max_torque=2.0, dt=0.05)
    cost = CostSum(
        Term("upright", StateTracking([0.0, 0.0], [1.0, 0.1], angle_dims=[0])),
        Term("effort", ControlEffort(), 0.001),
    )
    planner = MPPI(
        model,
        cost,
        MPPIConfig(
            num_samples=args.samples, horizon=40, temperature=0.1, noise_sigma=1.0, seed=args.seed
        ),
    )
    robot = EnvRobot(DynamicsEnv(model, np.array([np.pi, 0.0])), seed=args.seed)

    def report(step: int, x: np.ndarray) -> None:
        if step % 20 == 0:
            angle = (x[0] + np.pi) % (2 * np.pi) - np.pi
            print(f"t={step * model.dt:4.1f}s  angle from upright {angle:+.2f} rad")

    record = run_closed_loop(robot, planner, LoopConfig(steps=args.steps), progress=report)
    final = abs((record.states[-1, 0] + np.pi) % (2 * np.pi) - np.pi)
    print(
        f"final angle from upright: {final:.3f} rad; mean plan time "
        f"{1e3 * record.plan_times.mean():.2f} ms"
    )
    print("upright" if final < 0.3 else "not upright")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
