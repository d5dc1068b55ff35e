"""Sample efficiency on the multi-modal navigation tasks: success vs proposals per step.

For each navigation task with a shipped IMLE generator, every configuration
runs the same seeded closed-loop episodes (``imle_mpc.eval.episodes.run_episode``):

* ``IMLE-MPC``, N in {8, 16, 32, 64}: ``make_planner("imle_mpc", task, seed,
  num_samples=N)``. N is the number of generator chunks per step; the batch
  that is rolled out is K = 2N + 1 (N chunks, N perturbations of them, the
  warm start), each extended by the generator's 32-step continuation
  (``PolicyCostToGo``, the task's ``policy_lookahead``) for its cost.
* ``MPPI``, N in {64, 256, 1024, 4096}: ``make_planner("mppi", ...,
  num_samples=N)``, the task's hints otherwise (K = N).
* ``IMLE policy``: the generator alone, N = 16 chunks per decision, 8 steps
  open loop, no model (``make_planner("imle_policy", ...)``).
* ``BC (MSE)``: ``planners.bc.MSEPolicy``, trained here on the task's shipped
  demonstrations with plain MSE (the IMLE generator's network with the latent
  pinned to 0, same pairs and normalisers, one torch thread, a few seconds);
  one deterministic prediction per decision, 8 steps open loop.

Per configuration: success rate (the task's own test: never inside an
obstacle and within 0.25 m of the goal at the end) with a 95 % Wilson
interval, collision rate (any executed state inside an obstacle), the routes
taken (``Task.route_of``), and the mean and p95 wall time
of one ``plan()`` call over all steps of all episodes (one warm-up planner per
configuration keeps first-call overheads out). The cores that other processes
used meanwhile are stored with each configuration (``other_cpu_cores``, from
``/proc/stat``), and a warning names those whose timings they inflated. The
plant and the start are deterministic: the seeds vary only the planners'
random draws, so BC, which draws nothing, repeats one episode.

The tasks: ``nav_one_obstacle`` and ``nav_two_obstacles`` (a disc or two on
the straight line) and ``nav_trap`` (a cup that opens toward the robot, the
goal behind its back wall: greedy sampling MPC drives in at any N).

Results go to ``bench/results/sample_efficiency.json`` and the plot (success
vs N, log-x, and time per plan) to ``bench/results/sample_efficiency.png``,
both written atomically. The last stdout line is
``imle_n16_minus_mppi_n1024_success: X``, the success rate of IMLE-MPC with
N = 16 minus MPPI's with N = 1024, averaged over the tasks that ran (target
>= 0); the JSON also has it per task.

    .venv/bin/python bench/sample_efficiency.py                  # 50 seeds, ~5 min on 2 cores
    .venv/bin/python bench/sample_efficiency.py --episodes 100 --json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
import torch
from _machine import cpu_name, cpu_seconds, other_cpu_load, torch_threads
from tqdm.auto import tqdm

from imle_mpc import __version__
from imle_mpc.core.io import write_atomic, write_json_atomic
from imle_mpc.eval.episodes import run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.eval.report import wilson
from imle_mpc.learn.bc import train_mse_regressor
from imle_mpc.learn.imle import TrainConfig
from imle_mpc.tasks import Task, make_task
from imle_mpc.tasks.experts import observation
from imle_mpc.tasks.navigation import NAV_LAYOUTS
from imle_mpc.tasks.shipped import load_task_generator
from planners.bc import MSEPolicy

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESULTS = RESULTS_DIR / "sample_efficiency.json"
PLOT = RESULTS_DIR / "sample_efficiency.png"
TASKS = ("nav_one_obstacle", "nav_two_obstacles", "nav_trap")
IMLE_NS = (8, 16, 32, 64)
MPPI_NS = (64, 256, 1024, 4096)
POLICY_N = 16
ACTION_HORIZON = 8
DEFAULT_EPISODES = 50
BC_STEPS = 1000
HEADLINE = "imle_n16_minus_mppi_n1024_success"
WARMUP_SEED = 2**31 - 1
CONTENDED_CORES = 0.25
"""Other processes using more than this many cores during a configuration: timing warning."""


@dataclass(frozen=True)
class Config:
    """One planner configuration: ``kind`` is a ``make_planner`` kind or ``"bc_mse"``."""

    method: str
    kind: str
    n: int

    @property
    def key(self) -> str:
        return f"{self.kind}_n{self.n}"

    def rollouts(self) -> int:
        """Trajectories rolled out through the model per plan (0: no model)."""
        if self.kind == "imle_mpc":
            return 2 * self.n + 1
        if self.kind == "mppi":
            return self.n
        return 0


CONFIGS: tuple[Config, ...] = (
    *(Config("IMLE-MPC", "imle_mpc", n) for n in IMLE_NS),
    *(Config("MPPI", "mppi", n) for n in MPPI_NS),
    Config("IMLE policy", "imle_policy", POLICY_N),
    Config("BC (MSE)", "bc_mse", 1),
)


def train_bc(task_name: str, gen_config: Any, steps: int) -> tuple[Any, dict[str, Any]]:
    """Train the MSE policy of ``task_name`` on its shipped demos (one torch thread)."""
    dataset = make_task(task_name).load_demonstrations()
    pairs = dataset.num_steps
    batch = 256
    epochs = max(1, math.ceil(steps / math.ceil(pairs / batch)))
    config = TrainConfig(epochs=epochs, batch_size=batch, lr=1e-3, warmup_steps=50, seed=0)
    t0 = time.perf_counter()
    with torch_threads(1):
        model, losses = train_mse_regressor(dataset, gen_config, config)
    policy = MSEPolicy(model, observation, ACTION_HORIZON)
    info = {
        "pairs": pairs,
        "epochs": epochs,
        "optimizer_steps": epochs * math.ceil(pairs / batch),
        "final_loss": round(losses[-1], 6),
        "train_s": round(time.perf_counter() - t0, 2),
        "torch_threads": 1,
    }
    return policy, info


def planner_factory(
    config: Config, task: Task, generator: Any, bc_policy: Any
) -> Callable[[int], Any]:
    """``seed -> planner``, a fresh planner (or the reset BC policy) per episode."""
    if config.kind == "bc_mse":

        def bc(seed: int) -> Any:
            bc_policy.reset(seed)
            return bc_policy

        return bc
    gen = generator if config.kind != "mppi" else None
    return lambda seed: make_planner(config.kind, task, seed, num_samples=config.n, generator=gen)


def run_config(
    config: Config, task: Task, make: Callable[[int], Any], seeds: list[int], bar: Any
) -> dict[str, Any]:
    """All episodes of one configuration on one task: the table row."""
    warm = make(WARMUP_SEED)  # first-call overheads (JIT, allocations) out of the timings
    for _ in range(3):
        warm.plan(task.initial_state.copy())
    layout = NAV_LAYOUTS[task.name]
    successes, collisions = 0, 0
    routes: Counter[str] = Counter()
    times: list[np.ndarray] = []
    clearances, final_dists = [], []
    goal = np.asarray(layout.goal)
    t0 = time.perf_counter()
    cpu0 = cpu_seconds()
    bar.set_postfix_str(f"{config.method} N={config.n}")
    for seed in seeds:
        record = run_episode(task, make(seed), seed=seed)
        clearance = float(layout.clearance(record.states[:, :2]).min())
        successes += bool(record.success)
        collisions += clearance < 0.0
        routes[task.route_of(record.states)] += 1
        times.append(record.plan_times)
        clearances.append(clearance)
        final_dists.append(float(np.linalg.norm(record.states[-1, :2] - goal)))
        bar.update(1)
    wall = time.perf_counter() - t0
    ms = np.concatenate(times) * 1e3
    n = len(seeds)
    lo, hi = wilson(successes, n)
    known = task.route_names
    return {
        "key": config.key,
        "method": config.method,
        "kind": config.kind,
        "num_samples": config.n,
        "rollouts_per_plan": config.rollouts(),
        "episodes": n,
        "successes": successes,
        "success_rate": successes / n,
        "success_ci95": [round(lo, 4), round(hi, 4)],
        "collisions": collisions,
        "collision_rate": collisions / n,
        "routes": {r: routes.get(r, 0) for r in known}
        | {r: c for r, c in sorted(routes.items()) if r not in known},
        "min_clearance_mean": round(float(np.mean(clearances)), 4),
        "final_goal_dist_mean": round(float(np.mean(final_dists)), 4),
        "plan_ms_mean": round(float(ms.mean()), 4),
        "plan_ms_p95": round(float(np.percentile(ms, 95)), 4),
        "plan_calls": int(ms.size),
        "wall_s": round(wall, 2),
        "other_cpu_cores": other_cpu_load(cpu0, wall),
    }


def run_task(task_name: str, seeds: list[int], bc_steps: int) -> dict[str, Any]:
    """All configurations on one task (or a skip note when its generator is missing)."""
    if not make_task(task_name).generator_path.is_file():
        return {"skipped": f"no shipped generator at {make_task(task_name).generator_path}"}
    task = make_task(task_name)
    generator = load_task_generator(task_name)
    bc_policy, bc_info = train_bc(task_name, generator.config, bc_steps)
    rows = []
    total = len(CONFIGS) * len(seeds)
    with tqdm(total=total, desc=task_name, unit="ep", file=sys.stderr) as bar:
        for config in CONFIGS:
            make = planner_factory(config, task, generator, bc_policy)
            rows.append(run_config(config, task, make, seeds, bar))
    return {
        "steps": task.steps,
        "routes": list(make_task(task_name).route_names),
        "bc_training": bc_info,
        "rows": rows,
    }


def headline_per_task(tasks: dict[str, Any]) -> dict[str, float]:
    """IMLE-MPC N=16 success minus MPPI N=1024 success, for each task that ran."""
    out = {}
    for name, result in tasks.items():
        if "rows" in result:
            by_key = {r["key"]: r for r in result["rows"]}
            diff = by_key["imle_mpc_n16"]["success_rate"] - by_key["mppi_n1024"]["success_rate"]
            out[name] = round(float(diff), 4)
    return out


def headline_value(tasks: dict[str, Any]) -> float:
    """The mean of ``headline_per_task`` (NaN when no task ran)."""
    per_task = headline_per_task(tasks)
    return float(np.mean(list(per_task.values()))) if per_task else math.nan


# --- output -------------------------------------------------------------------------------


def print_table(task_name: str, result: dict[str, Any]) -> None:
    if "rows" not in result:
        print(f"{task_name}: skipped ({result['skipped']})")
        return
    routes = result["routes"]
    episodes = result["rows"][0]["episodes"]
    print(f"{task_name}: {episodes} episodes per config, {result['steps']} steps each")
    route_head = " ".join(f"{r:>11}" for r in routes)
    header = (
        f"{'method':<12} {'N':>5} {'K':>5} {'success':>8} {'95% CI':>13} {'collide':>8} "
        f"{route_head} {'other':>6} {'clear m':>8} {'goal m':>7} {'ms mean':>8} {'ms p95':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in result["rows"]:
        other = sum(c for k, c in r["routes"].items() if k not in routes)
        lo, hi = r["success_ci95"]
        counts = " ".join(f"{r['routes'][k]:>11}" for k in routes)
        k = str(r["rollouts_per_plan"]) if r["rollouts_per_plan"] else "-"
        print(
            f"{r['method']:<12} {r['num_samples']:>5} {k:>5} {r['success_rate']:>8.2f} "
            f"{f'[{lo:.2f},{hi:.2f}]':>13} {r['collision_rate']:>8.2f} {counts} {other:>6} "
            f"{r['min_clearance_mean']:>8.3f} {r['final_goal_dist_mean']:>7.3f} "
            f"{r['plan_ms_mean']:>8.2f} {r['plan_ms_p95']:>8.2f}"
        )
    bc = result["bc_training"]
    print(
        f"BC (MSE) trained {bc['optimizer_steps']} steps ({bc['epochs']} epochs) in "
        f"{bc['train_s']:.1f} s, final loss {bc['final_loss']:.4g}"
    )
    print()


STYLE = {
    "IMLE-MPC": ("tab:blue", "o", "-"),
    "MPPI": ("tab:orange", "s", "-"),
    "IMLE policy": ("tab:green", "^", "none"),
    "BC (MSE)": ("tab:red", "X", "none"),
}


def save_plot(path: Path, tasks: dict[str, Any], episodes: int) -> Path | None:
    """Success vs N (log-x) and time per plan, one row per task that ran."""
    done = [(name, res) for name, res in tasks.items() if "rows" in res]
    if not done:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(done), 2, figsize=(11.5, 4.2 * len(done)), squeeze=False)
    for (name, res), (ax_s, ax_t) in zip(done, axes, strict=True):
        methods: dict[str, list[dict[str, Any]]] = {}
        for r in res["rows"]:
            methods.setdefault(r["method"], []).append(r)
        for method, rows in methods.items():
            color, marker, line = STYLE[method]
            n = np.array([r["num_samples"] for r in rows])
            rate = np.array([r["success_rate"] for r in rows])
            ci = np.array([r["success_ci95"] for r in rows]).T
            label = method + (" (K = 2N+1 rollouts)" if method == "IMLE-MPC" else "")
            if method == "BC (MSE)":
                label += ", 1 pass"
            ax_s.errorbar(
                n, rate, yerr=[rate - ci[0], ci[1] - rate], color=color, marker=marker,
                linestyle=line, capsize=3, label=label, markersize=7,
            )  # fmt: skip
            mean = np.array([r["plan_ms_mean"] for r in rows])
            p95 = np.array([r["plan_ms_p95"] for r in rows])
            ax_t.plot(n, mean, color=color, marker=marker, linestyle=line, label=f"{method} mean")
            ax_t.plot(n, p95, color=color, marker=marker, linestyle=":" if line != "none" else line,
                      markerfacecolor="none", label=f"{method} p95")  # fmt: skip
        for ax in (ax_s, ax_t):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("samples per plan N (generator chunks or Gaussian samples)")
            ax.grid(True, which="both", alpha=0.3)
        ax_s.set_ylim(-0.05, 1.05)
        ax_s.set_ylabel(f"success rate ({episodes} seeds, 95% Wilson CI)")
        ax_s.set_title(f"{name}: success vs samples")
        ax_s.legend(fontsize=8, loc="center right")
        ax_t.set_yscale("log")
        ax_t.set_ylabel("wall time per plan() [ms]")
        ax_t.set_title(f"{name}: time per plan (filled: mean, open: p95)")
        ax_t.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=110))
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--episodes", type=int, default=DEFAULT_EPISODES,
        help=f"seeded episodes per config and task (seeds 0..N-1; default {DEFAULT_EPISODES})",
    )  # fmt: skip
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated task names")
    parser.add_argument(
        "--bc-steps", type=int, default=BC_STEPS, help="optimiser steps of the MSE policy"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--plot", type=Path, default=PLOT, help="PNG plot file")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    cli_args = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(cli_args)
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    task_names = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in task_names if t not in TASKS]
    if unknown:
        parser.error(f"unknown tasks {unknown}; choose from {list(TASKS)}")

    t_start = time.perf_counter()
    seeds = list(range(args.episodes))
    tasks: dict[str, Any] = {}
    for name in task_names:
        tasks[name] = run_task(name, seeds, args.bc_steps)
    headline = headline_value(tasks)
    runtime = time.perf_counter() - t_start
    busy = [
        f"{name}/{r['key']} ({r['other_cpu_cores']:.2f} cores)"
        for name, res in tasks.items()
        for r in res.get("rows", ())
        if (r["other_cpu_cores"] or 0.0) > CONTENDED_CORES
    ]
    if busy:
        print(
            f"warning: other processes used more than {CONTENDED_CORES} cores during {busy}; "
            "those plan times are inflated (success rates are not: the episodes are "
            "simulated, not run in real time).",
            file=sys.stderr,
        )
    result = {
        "bench": "sample_efficiency",
        "command": " ".join(["python bench/sample_efficiency.py", *cli_args]),
        "library_version": __version__,
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "numba_threads": numba.get_num_threads(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "timing_contended": busy,
        "episodes": args.episodes,
        "seeds": seeds,
        "tasks": tasks,
        HEADLINE: None if math.isnan(headline) else round(headline, 4),
        f"{HEADLINE}_per_task": headline_per_task(tasks),
        "runtime_s": round(runtime, 1),
    }
    plot = save_plot(args.plot, tasks, args.episodes)
    result["plot"] = None if plot is None else str(plot)
    write_json_atomic(args.out, result)

    if args.json:
        summary = {
            "bench": "sample_efficiency",
            "episodes": args.episodes,
            HEADLINE: result[HEADLINE],
            f"{HEADLINE}_per_task": result[f"{HEADLINE}_per_task"],
            "runtime_s": result["runtime_s"],
            "success": {
                name: {r["key"]: r["success_rate"] for r in res["rows"]}
                for name, res in tasks.items()
                if "rows" in res
            },
            "skipped": {name: res["skipped"] for name, res in tasks.items() if "skipped" in res},
        }
        print(json.dumps(summary, separators=(",", ":"), sort_keys=True))
    else:
        print(
            f"sample efficiency: {args.episodes} seeded episodes per config, "
            f"{result['cpu']} ({os.cpu_count()} cores), torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), numba {numba.get_num_threads()} threads\n"
            "N: generator chunks (IMLE) or Gaussian samples (MPPI) per plan; "
            "K: trajectories rolled out per plan; clear m: mean over episodes of the smallest "
            "obstacle clearance; goal m: mean final distance to the goal\n"
        )
        for name, res in tasks.items():
            print_table(name, res)
        per_task = ", ".join(f"{k} {v:+.2f}" for k, v in result[f"{HEADLINE}_per_task"].items())
        print(f"IMLE-MPC N=16 minus MPPI N=1024 success: {per_task}")
        print(f"results: {args.out}\nplot: {plot}\nruntime: {runtime:.0f} s")
    value = "nan" if math.isnan(headline) else f"{headline:.4g}"
    print(f"{HEADLINE}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
