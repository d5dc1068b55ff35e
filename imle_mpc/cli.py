"""The ``imle-mpc`` command line.

Subcommands:
    demo    closed-loop runs of the shipped tasks, a summary table and a plot
    run     one task with one planner over several seeds

Every subcommand takes ``--json`` and then prints a one-line JSON summary last.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imle_mpc.runner import EpisodeRecord

DEMO_TASKS = ("pendulum", "point_mass")


def _episodes(
    task_name: str, planner: str, seeds: Sequence[int], samples: int | None, quiet: bool
) -> tuple[list[EpisodeRecord], Any, Any]:
    """Run ``task_name`` for each seed; returns records, the task, and the last planner."""
    from tqdm import tqdm

    from imle_mpc.episodes import make_planner, run_episode
    from imle_mpc.tasks import make_task

    task = make_task(task_name)
    records = []
    planner_obj = None
    for seed in tqdm(seeds, desc=f"{task_name}/{planner}", disable=quiet, leave=False):
        planner_obj = make_planner(
            planner, task, seed=seed, num_samples=samples, record_samples=True
        )
        records.append(run_episode(task, planner_obj, seed=seed))
    return records, task, planner_obj


def _aggregate(task: str, planner: str, records: Sequence[EpisodeRecord]) -> dict[str, Any]:
    times = np.concatenate([r.plan_times for r in records]) * 1e3
    return {
        "task": task,
        "planner": planner,
        "episodes": len(records),
        "success_rate": float(np.mean([bool(r.success) for r in records])),
        "plan_ms_mean": float(times.mean()),
        "plan_ms_p95": float(np.percentile(times, 95)),
        "overruns": int(sum(r.overruns for r in records)),
    }


def _print_table(rows: Sequence[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="closed-loop results")
    for col in ("task", "planner", "episodes", "success", "plan ms (mean)", "plan ms (p95)"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["task"],
            r["planner"],
            str(r["episodes"]),
            f"{r['success_rate']:.0%}",
            f"{r['plan_ms_mean']:.2f}",
            f"{r['plan_ms_p95']:.2f}",
        )
    Console(stderr=False).print(table)


def _demo_plot(results: dict[str, tuple[list[EpisodeRecord], Any, Any]], path: Path) -> Path:
    from imle_mpc import plots
    from imle_mpc.tasks import POINT_MASS_GOAL

    fig, axes = plots._figure(len(results))
    for ax, (name, (records, task, planner)) in zip(axes, results.items(), strict=True):
        if task.scene is not None:
            proposals = None
            # Re-roll one planning step's proposals from the start, to show their spread.
            if planner is not None:
                planner.reset(0)
                res = planner.plan(task.initial_state)
                if res.samples is not None:
                    U = res.samples[0][:64]
                    proposals = task.dynamics.rollout(task.initial_state, U)
            plots.plot_paths(ax, records, task.scene, proposals, POINT_MASS_GOAL)
            ax.set_title(f"{name}: executed paths and first-step proposals")
        else:
            index = 1 if name == "cartpole" else 0
            plots.plot_angle(ax, records, index, task.dynamics.dt, f"{name} swing-up")
    return plots.save_figure(fig, path)


def cmd_demo(args: argparse.Namespace) -> dict[str, Any]:
    seeds = list(range(args.episodes))
    results = {}
    rows = []
    for name in args.tasks:
        results[name] = _episodes(name, args.planner, seeds, None, args.json)
        rows.append(_aggregate(name, args.planner, results[name][0]))
    _print_table(rows)
    plot = _demo_plot(results, Path(args.out) / "demo.png")
    print(f"plot written to {plot}")
    return {
        "command": "demo",
        "success_rate": float(np.mean([r["success_rate"] for r in rows])),
        "plot": str(plot),
        "results": rows,
    }


def cmd_run(args: argparse.Namespace) -> dict[str, Any]:
    seeds = list(range(args.seed, args.seed + args.episodes))
    records, _, _ = _episodes(args.task, args.planner, seeds, args.samples, args.json)
    row = _aggregate(args.task, args.planner, records)
    _print_table([row])
    if args.out:
        for rec in records:
            rec.save(Path(args.out) / f"{args.task}_{args.planner}_seed{rec.info['seed']}.npz")
    return {"command": "run", **row}


def build_parser() -> argparse.ArgumentParser:
    from imle_mpc.episodes import PLANNERS
    from imle_mpc.tasks import TASKS

    parser = argparse.ArgumentParser(
        prog="imle-mpc", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="closed-loop runs of the shipped tasks, table and plot")
    demo.add_argument("--tasks", nargs="+", default=list(DEMO_TASKS), choices=sorted(TASKS))
    demo.add_argument("--planner", default="mppi", choices=PLANNERS)
    demo.add_argument("--episodes", type=int, default=3, help="seeded episodes per task")
    demo.add_argument("--out", default="out", help="directory for the plot")
    demo.add_argument("--json", action="store_true", help="print a one-line JSON summary last")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="one task with one planner over several seeds")
    run.add_argument("task", choices=sorted(TASKS))
    run.add_argument("--planner", default="mppi", choices=PLANNERS)
    run.add_argument("--episodes", type=int, default=1)
    run.add_argument("--seed", type=int, default=0, help="first seed")
    run.add_argument("--samples", type=int, default=None, help="override the sample count K")
    run.add_argument("--out", default=None, help="directory for episode records (.npz)")
    run.add_argument("--json", action="store_true", help="print a one-line JSON summary last")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``imle-mpc`` console script."""
    args = build_parser().parse_args(argv)
    if getattr(args, "episodes", 1) < 1:
        print("error: --episodes must be >= 1", file=sys.stderr)
        return 2
    summary = args.func(args)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
