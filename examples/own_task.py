"""Bring your own task: your robot, your expert, your demonstrations, your generator.

A point mass (your robot) crosses a wall with three gaps: above, through the
middle, or below. Three routes, each as good as the others. The task is one
function (``make_task``); its expert is a waypoint follower written here. Then,
from the command line, with nothing but this file:

    python examples/own_task.py demos --out out/own/demos.npz       # 30 demonstrations
    imle-mpc train --data out/own/demos.npz --out out/own/gen        # an RS-IMLE generator
    imle-mpc run examples/own_task.py:make_task --planner imle_mpc --generator out/own/gen
    imle-mpc eval --task examples/own_task.py:make_task --generator out/own/gen --episodes 20

``python examples/own_task.py all --out out/own --epochs 400`` runs the four steps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from cost import (
    ControlEffort,
    CostSum,
    ObstacleConstraint,
    ObstacleProximity,
    Scene,
    StateTracking,
    Term,
    TerminalState,
)
from dynamics import PointMass2D
from imle_mpc.tasks import Demonstrations, PlannerHints, Routes, Task
from imle_mpc.tasks.experts import ScriptedDemos

GOAL = np.array([5.0, 0.0])
WALL_X = 2.5
# Four pillars make a wall with three gaps, at y = 1.6, 0 and -1.6.
PILLARS = [[WALL_X, y, 0.45] for y in (2.6, 0.8, -0.8, -2.6)]
GAPS = {"above": 1.7, "middle": 0.0, "below": -1.7}


def classify(states: np.ndarray) -> str:
    """The gap a path went through: its height where it crosses the wall."""
    ahead = np.flatnonzero(states[:, 0] >= WALL_X)
    if ahead.size == 0:
        return "none"
    y = states[ahead[0], 1]
    return min(GAPS, key=lambda gap: abs(GAPS[gap] - y))


def waypoint_expert(task: Task, route: str, rng: np.random.Generator | None):  # type: ignore[no-untyped-def]
    """Your expert: drive at ~1 m/s to a point before the gap, through it, then to the goal."""
    x0 = np.array(task.initial_state, dtype=np.float64)
    y = GAPS[route] + (0.0 if rng is None else rng.uniform(-0.1, 0.1))
    speed = 1.0 if rng is None else rng.uniform(0.9, 1.1)
    if rng is not None:
        x0[:2] += rng.uniform(-0.05, 0.05, size=2)
    waypoints = [np.array([WALL_X - 0.9, y]), np.array([WALL_X + 0.9, y]), GOAL]
    model = task.dynamics

    def controller(state: np.ndarray, step: int) -> np.ndarray:
        p, v = state[:2], state[2:]
        while len(waypoints) > 1 and np.linalg.norm(waypoints[0] - p) < 0.3:
            waypoints.pop(0)
        to_go = waypoints[0] - p
        distance = float(np.linalg.norm(to_go))
        v_desired = to_go / max(distance, 1e-9) * min(speed, 1.5 * distance)
        return model.mass * 3.0 * (v_desired - v) + model.drag * v  # type: ignore[attr-defined]

    return x0, controller


def make_task() -> Task:
    """The task: model, cost, constraints, success, routes and the demonstration recipe."""
    model = PointMass2D(mass=1.0, drag=0.5, dt=0.1, max_force=2.0)
    scene = Scene(circles=PILLARS)
    goal = np.array([*GOAL, 0.0, 0.0])
    cost = CostSum(
        Term("goal", StateTracking(goal, [1.0, 1.0, 0.05, 0.05])),
        Term("terminal", TerminalState(goal, [1.0, 1.0, 0.5, 0.5]), 10.0),
        Term("clearance", ObstacleProximity(scene, margin=0.2), 100.0),
        Term("effort", ControlEffort(), 0.01),
    )

    def success(states: np.ndarray) -> bool:
        clear = scene.distances(states[None]).min() > 0.0
        return bool(clear and np.linalg.norm(states[-1, :2] - GOAL) < 0.25)

    return Task(
        name="three_gaps",
        dynamics=model,
        cost=cost,
        constraints=(ObstacleConstraint(scene, margin=0.05),),
        initial_state=np.zeros(4),
        steps=80,
        success=success,
        hints=PlannerHints(num_samples=256, horizon=16, noise_sigma=1.0, temperature=0.5),
        scene=scene,
        goal=(float(GOAL[0]), float(GOAL[1])),
        safety_constraints=(ObstacleConstraint(scene, margin=0.0, name="collision"),),
        velocity_dims=(2, 3),
        routes=Routes(tuple(GAPS), classify),
        demos=Demonstrations(
            generate=ScriptedDemos(waypoint_expert, "waypoint follower through one gap"),
            num_demos=30,
        ),
    )


def write_demonstrations(path: Path, num: int = 30, seed: int = 0) -> Path:
    """``num`` checked demonstrations, every route equally often, saved as a ``DemoDataset``."""
    return make_task().generate_demonstrations(num, seed).save(path)


def _cli(*args: str) -> dict:  # type: ignore[type-arg]
    """Run ``imle-mpc ARGS --json`` (as a user would) and return its JSON summary."""
    cmd = [sys.executable, "-m", "imle_mpc.cli", *args, "--json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> dict:  # type: ignore[type-arg]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=("demos", "all"))
    parser.add_argument("--out", type=Path, default=Path("out/own"))
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--episodes", type=int, default=5)
    args = parser.parse_args(argv)
    if args.step == "demos":
        path = write_demonstrations(args.out)
        print(f"demonstrations written to {path}")
        return {"demos": str(path)}
    demos = write_demonstrations(args.out / "demos.npz")
    task = f"{__file__}:make_task"
    gen = args.out / "gen"
    train = _cli("train", "--data", str(demos), "--out", str(gen), "--epochs", str(args.epochs))
    run = _cli("run", task, "--planner", "imle_mpc", "--generator", str(gen))
    ev = _cli("eval", "--task", task, "--generator", str(gen), "--episodes", str(args.episodes))
    summary = {"train": train, "run": run, "eval": ev}
    print(
        f"trained {train['epochs']} epochs (loss {train['final_loss']:.4f}); "
        f"run: success {run['success_rate']:.0%}, routes {run.get('routes')}; "
        f"eval over {ev['episodes']} episodes: success {ev['success_rate']:.0%}, "
        f"violation steps {ev['violation_steps']}, routes {ev.get('routes')}"
    )
    return summary


if __name__ == "__main__":
    main()
