"""NMPC refinement of IMLE-MPC plans: cost, constraint margin and solve time, side by side.

For each navigation task (``nav_one_obstacle``, ``nav_two_obstacles``) one
IMLE-MPC closed-loop episode is run (the shipped generator, seed 0, the task's
own model as the plant). At ``--states`` evenly spaced steps the state and the
planner's plan (its best proposal) are kept. Each kept plan is then

* scored as it is (unrefined): Numba rollout, task cost, smallest constraint
  margin (obstacle distance minus the constraint's margin; negative = violated);
* refined by ``planners.nmpc.NMPCRefiner`` (IPOPT, multiple shooting, the task
  cost and the obstacle constraints exactly, warm-started from the plan) and
  scored the same way, on the Numba rollout of the refined actions.

Both in the same process, one after the other for each state. Reported per
task and overall: median cost and margin of both, median and p90 solve time,
the fraction of converged solves, and the fraction a ``RefinedPlanner`` would
use (converged, feasible and not costlier).

Usage:
    .venv/bin/python bench/refinement.py [--states N] [--out PATH] [--json]

Writes ``bench/results/refinement.json`` and prints its headline last:
``refined_cost_ratio: X``, the median over all kept states of
refined cost / unrefined cost (below 1: refinement lowers the cost).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
import torch

from imle_mpc.core.io import write_json_atomic
from imle_mpc.eval.factory import make_planner
from imle_mpc.tasks import Task, make_task
from planners.nmpc import NMPCConfig, NMPCRefiner

THREADS = 2
TASKS = ("nav_one_obstacle", "nav_two_obstacles")
SEED = 0
RESULTS = Path(__file__).resolve().parent / "results" / "refinement.json"


def collect_states(task: Task, count: int, seed: int = SEED) -> list[dict[str, Any]]:
    """Run one IMLE-MPC episode; keep the state and the plan at ``count`` evenly spaced steps."""
    planner = make_planner("imle_mpc", task, seed=seed)
    planner.reset(seed)
    keep = set(np.linspace(0, task.steps - 1, count).round().astype(int).tolist())
    low, high = task.dynamics.action_low, task.dynamics.action_high
    x = np.asarray(task.initial_state, dtype=np.float64).copy()
    kept = []
    for step in range(task.steps):
        result = planner.plan(x)
        if step in keep:
            kept.append(
                {
                    "step": step,
                    "state": x.copy(),
                    "actions": result.actions.copy(),
                    "plan_ms": result.timings.get("total", float("nan")) * 1e3,
                }
            )
        x = task.dynamics.step(x, np.clip(result.action, low, high))  # type: ignore[attr-defined]
    return kept


def compare(refiner: NMPCRefiner, kept: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Unrefined vs refined score of every kept plan."""
    rows = []
    for item in kept:
        x, plan = item["state"], item["actions"]
        before = refiner.score(x, plan)
        after = refiner.refine(x, plan)
        used = after.converged and after.feasible and after.cost <= before.cost + 1e-9
        rows.append(
            {
                "step": item["step"],
                "plan_ms": item["plan_ms"],
                "unrefined": {
                    "cost": before.cost,
                    "min_margin": before.min_margin,
                    "feasible": before.feasible,
                },
                "refined": {
                    "cost": after.cost,
                    "min_margin": after.min_margin,
                    "feasible": after.feasible,
                    "converged": after.converged,
                    "status": after.status,
                    "solve_ms": after.solve_time * 1e3,
                },
                "cost_ratio": after.cost / before.cost if before.cost > 0 else float("nan"),
                "would_use": used,
            }
        )
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians and fractions over ``rows``."""

    def col(side: str, key: str) -> np.ndarray:
        return np.array([r[side][key] for r in rows], dtype=np.float64)

    solve_ms = col("refined", "solve_ms")
    return {
        "states": len(rows),
        "unrefined": {
            "median_cost": float(np.median(col("unrefined", "cost"))),
            "median_min_margin": float(np.median(col("unrefined", "min_margin"))),
            "feasible_fraction": float(np.mean(col("unrefined", "feasible"))),
            "median_plan_ms": float(np.median([r["plan_ms"] for r in rows])),
        },
        "refined": {
            "median_cost": float(np.median(col("refined", "cost"))),
            "median_min_margin": float(np.median(col("refined", "min_margin"))),
            "feasible_fraction": float(np.mean(col("refined", "feasible"))),
            "converged_fraction": float(np.mean(col("refined", "converged"))),
            "median_solve_ms": float(np.median(solve_ms)),
            "p90_solve_ms": float(np.percentile(solve_ms, 90)),
            "max_solve_ms": float(np.max(solve_ms)),
        },
        "median_cost_ratio": float(np.nanmedian([r["cost_ratio"] for r in rows])),
        "would_use_fraction": float(np.mean([r["would_use"] for r in rows])),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "casadi": version("casadi"),
    }


def _print_table(per_task: dict[str, dict[str, Any]], overall: dict[str, Any]) -> None:
    print("IMLE-MPC plan vs NMPC-refined plan (IPOPT), medians over states of one episode")
    head = (
        f"{'task':<18} | {'n':>3} | {'cost':>8} -> {'refined':<8} | {'margin':>7} -> "
        f"{'refined':<7} | {'solve ms':>8} | {'p90 ms':>7} | conv | used"
    )
    print(head)
    print("-" * len(head))
    for name, s in [*per_task.items(), ("all", overall)]:
        u, r = s["unrefined"], s["refined"]
        print(
            f"{name:<18} | {s['states']:>3} | {u['median_cost']:>8.2f} -> "
            f"{r['median_cost']:<8.2f} | {u['median_min_margin']:>7.3f} -> "
            f"{r['median_min_margin']:<7.3f} | {r['median_solve_ms']:>8.1f} | "
            f"{r['p90_solve_ms']:>7.1f} | {r['converged_fraction']:>4.2f} | "
            f"{s['would_use_fraction']:.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=20, help="kept states per task")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    args = parser.parse_args(argv)
    if args.states < 1:
        parser.error("--states must be >= 1")

    torch.set_num_threads(THREADS)
    numba.set_num_threads(THREADS)
    config = NMPCConfig()
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    per_task: dict[str, dict[str, Any]] = {}
    all_rows: list[dict[str, Any]] = []
    details: dict[str, list[dict[str, Any]]] = {}
    for name in TASKS:
        task = make_task(name)
        kept = collect_states(task, args.states)
        refiner = NMPCRefiner(
            task.dynamics, task.cost, task.constraints, kept[0]["actions"].shape[0], config
        )
        refiner.refine(kept[0]["state"], kept[0]["actions"])  # first solve pays for set-up
        rows = compare(refiner, kept)
        per_task[name] = summarise(rows)
        details[name] = rows
        all_rows.extend(rows)
    overall = summarise(all_rows)
    load_after = os.getloadavg()

    headline = overall["median_cost_ratio"]
    results = {
        "benchmark": "refinement",
        "command": "python bench/refinement.py " + " ".join(sys.argv[1:]),
        "setup": {
            "tasks": list(TASKS),
            "planner": "make_planner('imle_mpc', task, seed=0), shipped generator",
            "states_per_task": args.states,
            "refiner": {
                "max_iter": config.max_iter,
                "max_cpu_time_s": config.max_cpu_time,
                "tolerance": config.tolerance,
                "margin_backoff": config.margin_backoff,
            },
            "threads": {"torch": torch.get_num_threads(), "numba": numba.get_num_threads()},
            "scoring": "Numba rollout of each plan; task cost; min over t of d_t - margin",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "loadavg_1min_before_after": [load_before[0], load_after[0]],
        },
        "versions": _versions(),
        "per_task": per_task,
        "overall": overall,
        "states": details,
        "refined_cost_ratio": headline,
        "wall_s": time.perf_counter() - t_start,
    }
    out = write_json_atomic(args.out, results)

    _print_table(per_task, overall)
    busy = max(load_before[0], load_after[0])
    if busy > 0.5 * (os.cpu_count() or 1):
        print(
            f"\nnote: the machine was busy (1-min load average up to {busy:.1f} on "
            f"{os.cpu_count()} CPUs): solve times are noisy.",
        )
    print(f"\nresults written to {out} ({results['wall_s']:.0f} s)")
    if args.json:
        summary = {
            "benchmark": "refinement",
            "refined_cost_ratio": round(headline, 4),
            "median_solve_ms": round(overall["refined"]["median_solve_ms"], 2),
            "converged_fraction": overall["refined"]["converged_fraction"],
            "results": str(out),
        }
        print(json.dumps(summary, sort_keys=True))
    print(f"refined_cost_ratio: {headline:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
