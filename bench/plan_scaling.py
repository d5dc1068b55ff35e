"""How plan time grows with the samples K and the horizon H, MPPI and IMLE-MPC.

On ``nav_trap`` (the task's model, cost and hard constraints, swept checks included),
each planner under the library's thread policy (one Numba, one torch thread a step):

* K sweep at H = 16: MPPI with K samples; IMLE-MPC with N = K / 2 generator chunks
  (K + 1 candidates: the chunks, as many perturbed copies and the warm start) and the
  task's 32-step lookahead, on the shipped generator (the NumPy path up to 256 rows,
  torch above: ``IMLEGenerator.inference = "auto"``).
* H sweep at K = 1024: the same, IMLE-MPC on an untrained generator of each horizon
  (plan time does not depend on the weights; the shipped one has H = 16).

Each point is the median of repeated plans from the task's start (at least
``--min-plans``, more until ``--seconds`` are spent); the two planners alternate
point by point. A log-log least-squares fit over the larger points (K >= 1024,
H >= 16, where fixed per-plan costs no longer dominate) gives the slope: 1 is
linear. Linear in K x H means both slopes near 1 (IMLE-MPC's lookahead adds a part
that grows with K but not with H, so its H slope is below 1). Writes
``bench/results/plan_scaling.json`` and ``bench/results/plan_scaling.png``; the last
line is ``mppi_k_slope: X``.

    python bench/plan_scaling.py             # ~1-2 min idle
    python bench/plan_scaling.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from _machine import cpu_name, cpu_seconds, other_cpu_load

from imle_mpc.core.io import write_atomic, write_json_atomic
from imle_mpc.eval.factory import make_planner
from imle_mpc.learn.imle import GeneratorConfig, IMLEGenerator
from imle_mpc.tasks import make_task
from imle_mpc.tasks.experts import observation
from planners.imle import IMLEMPC, IMLEMPCConfig, IMLEProposals, Lookahead

RESULTS = Path(__file__).resolve().parent / "results"
KS = (64, 256, 1024, 4096, 16384)
HS = (8, 16, 32, 64)
FIT_FROM_K = 1024
FIT_FROM_H = 16


def mppi(task: Any, k: int, h: int) -> Any:
    """MPPI with the task's hints at K samples and horizon H."""
    return make_planner("mppi", replace(task, hints=replace(task.hints, horizon=h)), num_samples=k)


def imle(task: Any, k: int, h: int) -> Any:
    """IMLE-MPC with K + 1 candidates (N = K / 2 chunks) at horizon H, the task's lookahead."""
    n = max(1, k // 2)
    gen = task.load_generator()
    if h != gen.horizon:
        shape = GeneratorConfig(horizon=h, action_horizon=min(gen.action_horizon, h))
        gen = IMLEGenerator.untrained(shape, gen.obs_dim, gen.nu)
    config = IMLEMPCConfig(
        horizon=h, num_samples=2 * n + 1, seed=0, proposals=IMLEProposals(num_imle=n),
        lookahead=Lookahead(task.hints.policy_lookahead),
    )  # fmt: skip
    return IMLEMPC(task.dynamics, task.cost, gen, observation, config, task.constraints)


def median_plan(planner: Any, x0: np.ndarray, min_plans: int, seconds: float) -> float:
    """Median seconds of ``plan(x0)`` after a reset and one untimed plan."""
    planner.reset()
    planner.plan(x0)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_plans or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        planner.plan(x0)
        times.append(time.perf_counter() - t0)
        if len(times) >= 200:
            break
    return float(np.median(times))


def slope(xs: list[int], ts: list[float], start: int) -> float:
    """Least-squares slope of log t against log x over the points x >= start."""
    pairs = [(x, t) for x, t in zip(xs, ts, strict=True) if x >= start]
    lx = np.log([p[0] for p in pairs])
    lt = np.log([p[1] for p in pairs])
    return float(np.polyfit(lx, lt, 1)[0])


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, sweep, label in (
        (axes[0], "k", "samples K (H = 16)"),
        (axes[1], "h", "horizon H (K = 1024)"),
    ):
        for name, style in (("mppi", "o-"), ("imle_mpc", "s-")):
            row = result[sweep][name]
            ax.loglog(
                row["x"], row["ms"], style, base=2,
                label=f"{name} (slope {row['slope']:.2f})",
            )  # fmt: skip
        ax.set_xlabel(label)
        ax.set_ylabel("median plan time (ms)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    load = result["machine"]["other_cpu_load"]
    fig.suptitle(f"nav_trap plan time, one thread (other processes: {load} cores)")
    fig.tight_layout()
    write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=110))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-plans", type=int, default=3, help="plans per point, at least")
    parser.add_argument("--seconds", type=float, default=0.5, help="time per point, at least")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    args = parser.parse_args(argv)
    load_average = os.getloadavg()
    task = make_task("nav_trap")
    x0 = np.array(task.initial_state, dtype=np.float64)
    sweeps = {"k": [(k, 16) for k in KS], "h": [(1024, h) for h in HS]}
    result: dict[str, Any] = {}
    mark, wall0 = cpu_seconds(), time.perf_counter()
    for sweep, points in sweeps.items():
        rows: dict[str, dict[str, Any]] = {
            "mppi": {"x": [], "ms": []},
            "imle_mpc": {"x": [], "ms": []},
        }
        for i, (k, h) in enumerate(points):
            order = (("mppi", mppi), ("imle_mpc", imle))
            for name, build in order if i % 2 == 0 else order[::-1]:
                t = median_plan(build(task, k, h), x0, args.min_plans, args.seconds)
                rows[name]["x"].append(k if sweep == "k" else h)
                rows[name]["ms"].append(round(t * 1e3, 4))
                print(f"{name:<9} K={k:<6} H={h:<3} median {t * 1e3:9.3f} ms", flush=True)
        start = FIT_FROM_K if sweep == "k" else FIT_FROM_H
        for row in rows.values():
            row["slope"] = round(slope(row["x"], row["ms"], start), 3)
            row["fit_from"] = start
        result[sweep] = rows
    load = other_cpu_load(mark, time.perf_counter() - wall0)
    result["machine"] = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_average_at_start": [round(v, 2) for v in load_average],
        "other_cpu_load": load,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "plan_scaling.json", result)
    plot(result, args.out / "plan_scaling.png")
    for sweep in ("k", "h"):
        for name, row in result[sweep].items():
            print(
                f"{name:<9} slope in {sweep.upper()} (from {row['fit_from']}): {row['slope']:.3f}"
            )
    print(f"other processes used {load} cores while it ran (load average {load_average[0]:.2f})")
    print(f"results: {args.out / 'plan_scaling.json'}, {args.out / 'plan_scaling.png'}")
    if args.json:
        print(json.dumps(result, separators=(",", ":")))
    print(f"mppi_k_slope: {result['k']['mppi']['slope']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
