"""What the swept obstacle checks cost: point vs swept constraint evaluation, side by side.

Two constraints, each evaluated with ``swept=False`` (the states alone) and
``swept=True`` (also the segment between consecutive states, the default), in
one process, calls alternating (and which goes first), median of the repeats:

* navigation: ``cost.ObstacleConstraint.violation`` on K = 1000 trajectories
  of H = 30 steps (random walks through a scene of two discs, one box and the
  three capsules of ``nav_trap``'s cup, so every obstacle kind is measured);
* the arm: ``panda_reach_around``'s ball constraint (``FusedSphereConstraint``,
  FK and distances in one Numba pass; the point form calls
  ``ChainKinematics.clearance``, the swept one ``path_clearance``) on its
  planner's batch, K = 256, H = 16, random configurations. A fresh batch per
  repeat, so the constraint's one-batch cache never answers.

The overhead is ``swept / point`` of the medians. Threads: Numba's default
(``NUMBA_NUM_THREADS`` to change it); the JSON records it and the load.

Usage:
    .venv/bin/python bench/swept_checks.py [--repeats N] [--out PATH] [--json]

Writes ``bench/results/swept_checks.json``; prints the arm's ratio
(``arm_swept_check_overhead``) and, last, ``swept_check_overhead: X`` (the
navigation ratio at K = 1000, H = 30).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np

from cost import ObstacleConstraint, Scene
from imle_mpc import __version__
from imle_mpc.core.io import write_json_atomic
from imle_mpc.tasks.navigation import TRAP_WALLS
from imle_mpc.tasks.panda.robot import PANDA_HORIZON, PANDA_START_Q, panda_collision_constraint

RESULTS = Path(__file__).resolve().parent / "results" / "swept_checks.json"
NAV_K, NAV_H = 1000, 30
ARM_K = 256


def _nav_batch(rng: np.random.Generator) -> np.ndarray:
    """Random walks from the start at ~1.2 m/s (0.12 m a step), Shape=(K, H+1, 4)."""
    X = np.zeros((NAV_K, NAV_H + 1, 4))
    X[:, 1:, :2] = np.cumsum(rng.normal(0.08, 0.08, size=(NAV_K, NAV_H, 2)), axis=1)
    X[:, :, 1] -= 1.0
    return X


def _arm_batches(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` batches of joint-space random walks from the Panda's start, Shape=(K, H+1, 14)."""
    out = []
    for _ in range(n):
        X = np.zeros((ARM_K, PANDA_HORIZON + 1, 14))
        steps = rng.normal(-0.02, 0.03, size=(ARM_K, PANDA_HORIZON, 7))
        X[:, 0, :7] = PANDA_START_Q
        X[:, 1:, :7] = np.asarray(PANDA_START_Q) + np.cumsum(steps, axis=1)
        out.append(X)
    return out


def _median_pair(
    point: Callable[[int], Any], swept: Callable[[int], Any], repeats: int
) -> dict[str, float]:
    """Median seconds of each, calls alternating and swapping which goes first."""
    point(0), swept(0)  # compile, warm caches
    times: dict[str, list[float]] = {"point": [], "swept": []}
    for r in range(repeats):
        order = [("point", point), ("swept", swept)]
        if r % 2:
            order.reverse()
        for name, fn in order:
            t0 = time.perf_counter()
            fn(r + 1)
            times[name].append(time.perf_counter() - t0)
    p, s = statistics.median(times["point"]), statistics.median(times["swept"])
    return {"point_ms": round(p * 1e3, 4), "swept_ms": round(s * 1e3, 4), "ratio": round(s / p, 3)}


def bench_nav(repeats: int) -> dict[str, Any]:
    scene = Scene(
        circles=[[2.0, 0.0, 0.5], [4.5, 0.0, 0.5]],
        boxes=[[1.0, -1.5, 0.3, 0.2]],
        capsules=[list(w) for w in TRAP_WALLS],
    )
    X = _nav_batch(np.random.default_rng(0))
    U = np.zeros((NAV_K, NAV_H, 2))
    point = ObstacleConstraint(scene, margin=0.1, swept=False)
    swept = ObstacleConstraint(scene, margin=0.1)
    row = _median_pair(lambda _: point.violation(X, U), lambda _: swept.violation(X, U), repeats)
    return {"K": NAV_K, "H": NAV_H, "obstacles": "2 circles, 1 box, 3 capsules", **row}


def bench_arm(repeats: int) -> dict[str, Any]:
    batches = _arm_batches(np.random.default_rng(1), repeats + 1)
    U = np.zeros((ARM_K, PANDA_HORIZON, 7))
    point = panda_collision_constraint(swept=False)
    swept = panda_collision_constraint()
    row = _median_pair(
        lambda r: point.violation(batches[r], U), lambda r: swept.violation(batches[r], U), repeats
    )
    return {"K": ARM_K, "H": PANDA_HORIZON, "robot_spheres": 11, **row}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=51, help="timed repeats (medians)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    cli_args = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(cli_args)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    nav = bench_nav(args.repeats)
    arm = bench_arm(args.repeats)
    result = {
        "bench": "swept_checks",
        "command": " ".join(["python bench/swept_checks.py", *cli_args]),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "library_version": __version__,
        "machine": platform.processor() or platform.machine(),
        "numba_threads": numba.get_num_threads(),
        "repeats": args.repeats,
        "navigation": nav,
        "arm": arm,
        "arm_swept_check_overhead": arm["ratio"],
        "swept_check_overhead": nav["ratio"],
    }
    write_json_atomic(args.out, result)
    if args.json:
        print(json.dumps(result, separators=(",", ":")))
    else:
        for name, row in (("navigation", nav), ("arm", arm)):
            print(
                f"{name:>10}: K={row['K']} H={row['H']}  point {row['point_ms']:.3f} ms  "
                f"swept {row['swept_ms']:.3f} ms  ratio {row['ratio']:.2f}"
            )
        print(f"results: {args.out}")
    print(f"arm_swept_check_overhead: {arm['ratio']}")
    print(f"swept_check_overhead: {nav['ratio']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
