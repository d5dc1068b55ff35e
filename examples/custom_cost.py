"""Swap in your own cost: a plain NumPy function and an @njit function, side by side.

The point mass must reach (4, 0) around a disc; we add a made-up preference
for staying below the x axis (a NumPy function) and a speed limit penalty
(an @njit function). Both are ``fn(X, U) -> Shape=(K,)`` over the whole batch.

    python examples/custom_cost.py
"""

from __future__ import annotations

import argparse

import numba
import numpy as np

from cost import ControlEffort, CostSum, ObstacleConstraint, Scene, StateTracking, Term
from dynamics import PointMass2D
from imle_mpc.loop.plant import DynamicsEnv, EnvRobot
from imle_mpc.loop.runner import LoopConfig, run_closed_loop
from planners import MPPI, MPPIConfig


def prefer_below_axis(X: np.ndarray, U: np.ndarray) -> np.ndarray:
    """Plain NumPy: penalise y > 0 along the predicted path."""
    return np.maximum(X[:, 1:, 1], 0.0).sum(axis=1)


@numba.njit
def speed_over_limit(X, U):
    """@njit: penalise speed above 1.5 m/s."""
    out = np.zeros(X.shape[0])
    for k in range(X.shape[0]):
        for t in range(1, X.shape[1]):
            speed = np.sqrt(X[k, t, 2] ** 2 + X[k, t, 3] ** 2)
            out[k] += max(speed - 1.5, 0.0) ** 2
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=120)
    args = parser.parse_args(argv)

    model = PointMass2D()
    scene = Scene(circles=[[2.0, 0.0, 0.6]])
    goal = np.array([4.0, 0.0, 0.0, 0.0])
    cost = CostSum(
        Term("goal", StateTracking(goal, [1.0, 1.0, 0.05, 0.05])),
        Term("below_axis", prefer_below_axis, 5.0),
        Term("speed", speed_over_limit, 10.0),
        Term("effort", ControlEffort(), 0.01),
    )
    planner = MPPI(
        model,
        cost,
        MPPIConfig(num_samples=256, horizon=30, temperature=0.5),
        constraints=[ObstacleConstraint(scene, margin=0.05)],
    )
    robot = EnvRobot(DynamicsEnv(model, np.zeros(4)), seed=0)
    record = run_closed_loop(robot, planner, LoopConfig(steps=args.steps))

    print("mean cost per term over the episode:")
    for name, values in record.term_costs.items():
        print(f"  {name:>10}: {values.mean():8.3f}")
    clearance = scene.distances(record.states[None]).min()
    print(
        f"final position {record.states[-1, :2].round(2)}, min clearance {clearance:.2f} m, "
        f"max y {record.states[:, 1].max():.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
