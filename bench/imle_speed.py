"""IMLE-MPC plan time with the 32-step lookahead: the generator's NumPy path vs torch vs MPPI.

The learned planner solves ``nav_trap`` (MPPI drives into the cup at every K) but
follows the generator 32 steps past the horizon for every candidate: five
generator passes a plan (16 chunks, then 4 x 33 continuations). This bench runs,
alternating in one process on the same states, each under the library's thread
policy (one Numba and one torch thread a step; the NumPy path's BLAS on the
calling thread):

* IMLE-MPC, N=16 (33 candidates), lookahead 32, the generator on its NumPy path
  (``IMLEGenerator.inference = "numpy"``, what ``"auto"`` picks here);
* the same planner with the generator on torch (``inference = "torch"``);
* MPPI with K=1024 on the same task (its hints: H=16).

The states are those of one closed-loop IMLE-MPC episode from the task's start
(the route around the cup); each round replans all of them in order from a reset,
so warm starts evolve as in an episode. Medians over every plan of every round
(the first round is a warm-up and not counted). Results go to
``bench/results/imle_speed.json`` (atomically); the last line is
``imle_lookahead_over_mppi_1024_time: X`` (NumPy-path IMLE-MPC median / MPPI median;
the target is <= 1).

    python bench/imle_speed.py            # ~30 s idle
    python bench/imle_speed.py --json     # a one-line JSON summary before the headline
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import cpu_name, cpu_seconds, other_cpu_load

from imle_mpc.core.io import write_json_atomic
from imle_mpc.eval.factory import make_planner
from imle_mpc.tasks import make_task

RESULTS = Path(__file__).resolve().parent / "results" / "imle_speed.json"
HEADLINE = "imle_lookahead_over_mppi_1024_time"


def planners(task: Any, chunks: int, mppi_samples: int) -> dict[str, Any]:
    """The three planners, by label (fresh generators, so the two paths share nothing)."""
    out: dict[str, Any] = {}
    for label, path in (("imle_numpy", "numpy"), ("imle_torch", "torch")):
        gen = task.load_generator()
        gen.set_inference(path)
        out[label] = make_planner("imle_mpc", task, seed=0, num_samples=chunks, generator=gen)
    out["mppi"] = make_planner("mppi", task, seed=0, num_samples=mppi_samples)
    return out


def episode_states(task: Any, planner: Any, steps: int) -> np.ndarray:
    """States Shape=(steps, nx) of a closed loop of ``planner`` on the task's model."""
    planner.reset()
    x = np.array(task.initial_state, dtype=np.float64)
    states = []
    for _ in range(steps):
        states.append(x.copy())
        plan = planner.plan(x).actions
        x = task.dynamics.rollout(x, plan[None, :1])[0, 1]
    return np.array(states)


def plan_times(planner: Any, states: np.ndarray) -> list[float]:
    """Seconds of each ``plan`` over ``states``, in order, from a reset."""
    planner.reset()
    times = []
    for x in states:
        t0 = time.perf_counter()
        planner.plan(x)
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (+1 warm-up)")
    parser.add_argument("--states", type=int, default=80, help="states of the episode")
    parser.add_argument("--chunks", type=int, default=16, help="IMLE-MPC's N")
    parser.add_argument("--mppi-samples", type=int, default=1024, help="MPPI's K")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    args = parser.parse_args(argv)
    load_average = os.getloadavg()
    task = make_task("nav_trap")
    by_label = planners(task, args.chunks, args.mppi_samples)
    states = episode_states(task, by_label["imle_numpy"], args.states)
    times: dict[str, list[float]] = {label: [] for label in by_label}
    mark, wall0 = cpu_seconds(), time.perf_counter()
    for r in range(args.rounds + 1):
        order = list(by_label) if r % 2 == 0 else list(by_label)[::-1]
        for label in order:
            run = plan_times(by_label[label], states)
            if r:  # round 0 warms up (compilation, buffers)
                times[label] += run
            print(f"round {r} {label:<11} median {np.median(run) * 1e3:7.3f} ms", flush=True)
    load = other_cpu_load(mark, time.perf_counter() - wall0)
    rows = {
        label: {
            "median_ms": round(float(np.median(t)) * 1e3, 4),
            "p90_ms": round(float(np.percentile(t, 90)) * 1e3, 4),
            "plans": len(t),
        }
        for label, t in times.items()
    }
    mppi = rows["mppi"]["median_ms"]
    headline = round(rows["imle_numpy"]["median_ms"] / mppi, 4)
    result = {
        "task": "nav_trap",
        "rows": rows,
        HEADLINE: headline,
        "imle_torch_over_mppi_1024_time": round(rows["imle_torch"]["median_ms"] / mppi, 4),
        "numpy_path_speedup": round(
            rows["imle_torch"]["median_ms"] / rows["imle_numpy"]["median_ms"], 4
        ),
        "config": {
            "chunks": args.chunks,
            "candidates": 2 * args.chunks + 1,
            "lookahead_steps": task.hints.policy_lookahead,
            "mppi_samples": args.mppi_samples,
            "horizon": task.hints.horizon,
            "rounds": args.rounds,
            "states": args.states,
        },
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "load_average_at_start": [round(v, 2) for v in load_average],
            "other_cpu_load": load,
            # forces NumPy's OpenBLAS kernels (the generator's matrix products) when set
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        },
    }
    write_json_atomic(args.out, result)
    print(f"\n{'planner':<11} {'median ms':>10} {'p90 ms':>8}")
    for label, row in rows.items():
        print(f"{label:<11} {row['median_ms']:>10.3f} {row['p90_ms']:>8.3f}")
    print(f"other processes used {load} cores while it ran (load average {load_average[0]:.2f})")
    print(f"results: {args.out}")
    if args.json:
        print(json.dumps(result, separators=(",", ":")))
    print(f"{HEADLINE}: {headline}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
