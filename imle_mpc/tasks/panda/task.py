"""``panda_reach_around``, the task: the Panda model, cost, limits, routes and demonstrations."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cost import ControlEffort, CostSum, StateTracking, Term, TerminalState
from imle_mpc.core.validation import FloatArray
from imle_mpc.tasks.base import Demonstrations, PlannerHints, Routes, Task
from imle_mpc.tasks.panda.demos import (
    PANDA_DEMO_COUNT,
    PANDA_DEMO_SEED,
    PANDA_TRAIN_EPOCHS,
    generate_panda_demonstrations,
    train_panda_generator,
)
from imle_mpc.tasks.panda.robot import (
    PANDA_FAULTS,
    PANDA_GOAL_Q,
    PANDA_GOAL_TOLERANCE,
    PANDA_HORIZON,
    PANDA_ROUTES,
    PANDA_START_Q,
    PANDA_STEPS,
    PANDA_TASK,
    SphereProximity,
    classify_panda_route,
    panda_collision_constraint,
    panda_joint_limits,
    panda_model,
    panda_path_clearance,
    panda_target,
    panda_tcp,
)


def panda_reach_around() -> Task:
    """Panda sweeps its hand 100 deg around its base past a ball: over it or around it."""
    model = panda_model()
    goal = np.array([*PANDA_GOAL_Q, *np.zeros(7)])
    target = panda_target()
    ball = panda_collision_constraint()
    cost = CostSum(
        Term("goal", StateTracking(goal, [1.0] * 7 + [0.05] * 7), 1.0),
        Term("terminal", TerminalState(goal, [1.0] * 7 + [0.2] * 7), 10.0),
        Term("clearance", SphereProximity(ball, 0.1), 100.0),
        Term("effort", ControlEffort(), 1e-3),
    )
    safety = (panda_joint_limits(0.0, 1.0), panda_collision_constraint(0.0, "collision"))

    def success(states: FloatArray) -> bool:
        s = np.asarray(states)
        X = s[None]
        safe = all(float(c.violation(X, np.zeros((1, 0, 7)))[0]) == 0.0 for c in safety)
        clear = panda_path_clearance(s) > 0.0
        arrived = float(np.linalg.norm(panda_tcp(s[-1]) - target)) < PANDA_GOAL_TOLERANCE
        return bool(safe and clear and arrived)

    return Task(
        name=PANDA_TASK,
        dynamics=model,
        cost=cost,
        constraints=(panda_joint_limits(), ball),
        initial_state=np.array([*PANDA_START_Q, *np.zeros(7)]),
        steps=PANDA_STEPS,
        success=success,
        hints=PlannerHints(
            num_samples=256, horizon=PANDA_HORIZON, noise_sigma=2.0, temperature=0.5
        ),
        scene=None,  # 3-D: the ball is PANDA_OBSTACLE; see panda_clearance
        safety_constraints=safety,
        velocity_dims=tuple(range(7, 14)),
        faults=PANDA_FAULTS,
        routes=Routes(PANDA_ROUTES, classify_panda_route),
        clearance=panda_path_clearance,
        demos=Demonstrations(
            generate=generate_panda_demonstrations,
            num_demos=PANDA_DEMO_COUNT,
            seed=PANDA_DEMO_SEED,
            dataset_file="panda_reach_around_demos.npz",
            generator_file="panda_reach_around_generator.safetensors",
            rebuild="python -m imle_mpc.tasks.panda.task --train",
            quick=False,  # IPOPT: about a minute
        ),
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m imle_mpc.tasks.panda.task [--train]``: rewrite the shipped Panda dataset
    (and with ``--train`` the shipped generator trained on it)."""
    task = panda_reach_around()
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", type=Path, default=task.dataset_path)
    parser.add_argument("--num", type=int, default=PANDA_DEMO_COUNT)
    parser.add_argument("--seed", type=int, default=PANDA_DEMO_SEED)
    parser.add_argument("--train", action="store_true", help="also train and ship the generator")
    parser.add_argument("--generator-out", type=Path, default=task.generator_path)
    parser.add_argument("--epochs", type=int, default=PANDA_TRAIN_EPOCHS)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    dataset = generate_panda_demonstrations(task, args.num, args.seed)
    path = dataset.save(args.out, compress=True)
    print(f"{PANDA_TASK}: {len(dataset.episodes)} demonstrations -> {path} "
          f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    if args.train:
        from imle_mpc.learn.imle import save_generator  # torch: only with --train

        t0 = time.perf_counter()
        generator, history = train_panda_generator(dataset, args.epochs)
        out = save_generator(generator, args.generator_out)
        print(f"generator -> {out} ({time.perf_counter() - t0:.0f} s, final loss "
              f"{history.loss[-1]:.4f})")  # fmt: skip


if __name__ == "__main__":
    main()
