"""Spline knots vs one action per step: smoothness, success and plan time at equal K.

MPPI on three shipped tasks, each at its own hints (K, H, noise, temperature):
``pendulum`` (swing-up, H = 40), ``cartpole`` (swing-up, H = 30) and
``panda_reach_around`` (the 7-DoF Panda around a ball, H = 16, Pinocchio model: the
generic path). Per task five rows: per-step noise (today's planner, the baseline) and
``KNOTS[task]`` knots per action (a knot per 4 steps; the Panda's 3 cm arrival needs
one per 2: at 4 knots it missed on 2 of 2 seeds while tuning) with zero-order hold,
linear and natural cubic interpolation (``SamplingConfig.knots`` / ``interpolation``)
at the hints' noise, and cubic at half of it (``cubic_half_noise``: a knot's noise
moves the whole segment it shapes, so the same std explores farther than per-step
noise). The rows alternate within each seed (all five, then the next seed), in one
process.

Per row over seeds 0..N-1: successes; the jerk proxy, the mean over an episode's
steps of the squared change of the command ``||u[t+1] - u[t]||^2`` (summed over the
actions), median over the seeds; the median ``plan()`` time over all steps of all
episodes; the cores other processes used meanwhile (``other_cpu_cores``) and the
1-minute load average at the start and the end. Success and smoothness do not
depend on the timing (the episodes are simulated, not run in real time).

Results go to ``bench/results/knots.json`` (atomically). The last stdout line is
``knots_jerk_ratio: X``: the cubic rows' jerk proxy over the per-step rows' (the same
noise), the median over the three tasks (below 1: smoother).

    .venv/bin/python bench/knots.py                 # 5 seeds, ~2 min idle on 2 cores
    .venv/bin/python bench/knots.py --episodes 2 --tasks pendulum --json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from _machine import cpu_name, cpu_seconds, other_cpu_load
from tqdm.auto import tqdm

from imle_mpc import __version__
from imle_mpc.core.io import write_json_atomic
from imle_mpc.eval.episodes import run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.tasks import Task, make_task
from planners.knots import Interpolation

RESULTS = Path(__file__).resolve().parent / "results" / "knots.json"
HEADLINE = "knots_jerk_ratio"
KNOTS = {"pendulum": 10, "cartpole": 7, "panda_reach_around": 8}
"""Knots per action (H = 40, 30, 16)."""
TASKS = tuple(KNOTS)
ROWS: tuple[tuple[str, Interpolation | None, float], ...] = (
    ("per_step", None, 1.0),
    ("zero", "zero", 1.0),
    ("linear", "linear", 1.0),
    ("cubic", "cubic", 1.0),
    ("cubic_half_noise", "cubic", 0.5),
)
"""(key, interpolation, noise scale) of each row; interpolation None: one action per step."""
DEFAULT_EPISODES = 5
WARMUP_SEED = 2**31 - 1
CONTENDED_CORES = 0.25


def jerk_proxy(actions: np.ndarray) -> float:
    """Mean over steps of ``||u[t+1] - u[t]||^2``, actions Shape=(T, nu)."""
    change = np.diff(np.asarray(actions, dtype=np.float64), axis=0)
    return float(np.mean(np.sum(change * change, axis=1)))


def run_task(name: str, seeds: list[int], bar: Any) -> dict[str, Any]:
    """Every row of one task, alternating within each seed."""
    base_task = make_task(name)
    knots = KNOTS[name]

    def build(interp: Interpolation | None, scale: float, seed: int) -> tuple[Any, Task]:
        """The row's planner, and the task with the row's noise in its hints."""
        sigma = tuple(float(v) for v in np.atleast_1d(base_task.hints.noise_sigma) * scale)
        task = replace(base_task, hints=replace(base_task.hints, noise_sigma=sigma))
        planner = make_planner(
            "mppi",
            task,
            seed,
            knots=None if interp is None else knots,
            interpolation=interp or "cubic",
        )
        return planner, task

    for _, interp, scale in ROWS:  # compile every kernel before anything is timed
        warm, task = build(interp, scale, WARMUP_SEED)
        for _ in range(3):
            warm.plan(task.initial_state.copy())
    per_row: dict[str, dict[str, Any]] = {
        key: {"success": [], "jerk": [], "times": [], "wall": 0.0, "other": []}
        for key, _, _ in ROWS
    }
    for seed in seeds:
        for key, interp, scale in ROWS:
            acc = per_row[key]
            bar.set_postfix_str(f"{name} {key} seed {seed}")
            planner, task = build(interp, scale, seed)
            t0, cpu0 = time.perf_counter(), cpu_seconds()
            record = run_episode(task, planner, seed=seed)
            wall = time.perf_counter() - t0
            acc["success"].append(bool(record.success))
            acc["jerk"].append(jerk_proxy(record.actions))
            acc["times"].append(np.asarray(record.plan_times, dtype=np.float64))
            acc["wall"] += wall
            acc["other"].append(other_cpu_load(cpu0, wall))
            bar.update(1)
    rows = []
    for key, interp, scale in ROWS:
        acc = per_row[key]
        ms = np.concatenate(acc["times"]) * 1e3
        other = [o for o in acc["other"] if o is not None]
        rows.append(
            {
                "key": key,
                "interpolation": interp,
                "knots": None if interp is None else knots,
                "noise_sigma": [
                    float(v) for v in np.atleast_1d(base_task.hints.noise_sigma) * scale
                ],
                "num_samples": base_task.hints.num_samples,
                "horizon": base_task.hints.horizon,
                "episodes": len(seeds),
                "successes": int(sum(acc["success"])),
                "success_rate": float(np.mean(acc["success"])),
                "success_per_seed": acc["success"],
                "jerk_median": round(float(np.median(acc["jerk"])), 6),
                "jerk_per_seed": [round(j, 6) for j in acc["jerk"]],
                "plan_ms_median": round(float(np.median(ms)), 4),
                "plan_ms_p95": round(float(np.percentile(ms, 95)), 4),
                "plan_calls": int(ms.size),
                "wall_s": round(acc["wall"], 2),
                "other_cpu_cores": round(float(np.mean(other)), 3) if other else None,
            }
        )
    base = rows[0]
    for row in rows[1:]:
        row["jerk_ratio"] = round(row["jerk_median"] / base["jerk_median"], 4)
        row["plan_time_ratio"] = round(row["plan_ms_median"] / base["plan_ms_median"], 4)
    return {"task": name, "knots": knots, "rows": rows}


def print_table(res: dict[str, Any]) -> None:
    print(f"{res['task']} (K = {res['rows'][0]['num_samples']}, H = {res['rows'][0]['horizon']}, "
          f"{res['knots']} knots)")  # fmt: skip
    header = f"{'row':<16} {'success':>8} {'jerk med':>10} {'ratio':>6} {'plan ms':>8} {'p95':>7}"
    print(header)
    print("-" * len(header))
    for r in res["rows"]:
        ratio = r.get("jerk_ratio")
        print(
            f"{r['key']:<16} {r['successes']:>3}/{r['episodes']:<4} {r['jerk_median']:>10.4g} "
            f"{'-' if ratio is None else f'{ratio:.3f}':>6} {r['plan_ms_median']:>8.3f} "
            f"{r['plan_ms_p95']:>7.3f}"
        )
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--episodes", type=int, default=DEFAULT_EPISODES,
        help=f"seeded episodes per row (seeds 0..N-1; default {DEFAULT_EPISODES})",
    )  # fmt: skip
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    cli_args = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(cli_args)
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    names = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        parser.error(f"unknown tasks {unknown}; choose from {list(TASKS)}")

    load_start = round(os.getloadavg()[0], 2)
    t_start = time.perf_counter()
    seeds = list(range(args.episodes))
    total = len(names) * len(ROWS) * len(seeds)
    with tqdm(total=total, desc="knots", unit="ep", file=sys.stderr) as bar:
        tasks = {name: run_task(name, seeds, bar) for name in names}
    keys = [key for key, _, _ in ROWS]
    cubic = {name: res["rows"][keys.index("cubic")]["jerk_ratio"] for name, res in tasks.items()}
    half = {
        name: res["rows"][keys.index("cubic_half_noise")]["jerk_ratio"]
        for name, res in tasks.items()
    }
    headline = float(np.median(list(cubic.values()))) if cubic else math.nan
    runtime = time.perf_counter() - t_start
    busy = [
        f"{name}/{r['key']} ({r['other_cpu_cores']:.2f} cores)"
        for name, res in tasks.items()
        for r in res["rows"]
        if (r["other_cpu_cores"] or 0.0) > CONTENDED_CORES
    ]
    if busy:
        print(
            f"warning: other processes used more than {CONTENDED_CORES} cores during {busy}; "
            "those plan times are inflated (success and smoothness are not).",
            file=sys.stderr,
        )
    result = {
        "bench": "knots",
        "command": " ".join(["python bench/knots.py", *cli_args]),
        "library_version": __version__,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min_start": load_start,
        "load_avg_1min_end": round(os.getloadavg()[0], 2),
        "timing_contended": busy,
        "planner": "mppi",
        "episodes": args.episodes,
        "seeds": seeds,
        "tasks": tasks,
        HEADLINE: None if math.isnan(headline) else round(headline, 4),
        f"{HEADLINE}_per_task": cubic,
        "knots_half_noise_jerk_ratio_per_task": half,
        "runtime_s": round(runtime, 1),
    }
    write_json_atomic(args.out, result)
    if args.json:
        summary = {
            "bench": "knots",
            "episodes": args.episodes,
            HEADLINE: result[HEADLINE],
            f"{HEADLINE}_per_task": cubic,
            "success": {
                name: {r["key"]: r["success_rate"] for r in res["rows"]}
                for name, res in tasks.items()
            },
            "runtime_s": result["runtime_s"],
        }
        print(json.dumps(summary, separators=(",", ":"), sort_keys=True))
    else:
        print(
            f"MPPI, per-step noise vs spline knots at equal K: {args.episodes} seeded episodes a "
            f"row, {result['cpu']} ({os.cpu_count()} cores), 1-min load {load_start} -> "
            f"{result['load_avg_1min_end']}\njerk med: median over seeds of the mean squared "
            "command change per step; ratio: over the per-step row\n"
        )
        for res in tasks.values():
            print_table(res)
        print(f"results: {args.out}\nruntime: {runtime:.0f} s")
    value = "nan" if math.isnan(headline) else f"{headline:.4f}"
    print(f"{HEADLINE}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
