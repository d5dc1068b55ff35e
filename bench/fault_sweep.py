"""Violation rate vs fault magnitude, guard on and off: where safety ends, shown as a curve.

Every fault of the task (noise, delay, model mismatch, pushes, dropped plans)
is switched on at its stated magnitude (``Task.faults``, e.g.
``imle_mpc.tasks.navigation.NAV_FAULTS``) times a scale factor. For each scale and
each configuration (IMLE-MPC and the IMLE policy alone, each with the safety
guard and without it) the same seeded episodes run through
``imle_mpc.eval.episodes.run_episode``: the unguarded loop is the
baseline, side by side in the same process.

Per point: the fraction of episodes with any violation of the safety
constraints (the executed TRUE trajectory inside an obstacle), with a 95 %
Wilson interval, the violation steps, the success rate and the guard's
fallback steps. Scale 1 is where the guard is meant to keep the robot safe;
the curve shows how fast it degrades beyond.

Results: ``bench/results/fault_sweep.json`` and ``bench/results/fault_sweep.png``
(written atomically). The last stdout line is
``guarded_violation_rate_at_stated: X`` (IMLE-MPC with the guard, scale 1).

    .venv/bin/python bench/fault_sweep.py                       # ~3 min on 2 cores
    .venv/bin/python bench/fault_sweep.py --episodes 50 --task nav_two_obstacles --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from imle_mpc.core.io import write_json_atomic
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.eval.report import wilson
from imle_mpc.tasks import make_task

RESULTS = Path(__file__).resolve().parent / "results"
SCALES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
CONFIGS = (
    ("IMLE-MPC + guard", "imle_mpc", True),
    ("IMLE-MPC, no guard", "imle_mpc", False),
    ("IMLE policy + guard", "imle_policy", True),
    ("IMLE policy, no guard", "imle_policy", False),
)


def sweep(task_name: str, episodes: int, scales: tuple[float, ...], quiet: bool) -> list[dict]:
    task = make_task(task_name)
    if task.faults is None:
        raise SystemExit(f"task {task_name!r} states no fault magnitudes")
    planners = {kind: make_planner(kind, task, seed=0) for _, kind, _ in CONFIGS}
    rows = []
    total = len(scales) * len(CONFIGS) * episodes
    with tqdm(total=total, disable=quiet, desc=f"fault sweep {task_name}", unit="ep") as bar:
        for scale in scales:
            faults = task.faults.scaled(scale)
            for label, kind, guard in CONFIGS:
                outcomes = []
                for seed in range(episodes):
                    outcomes.append(
                        EpisodeOutcome.of(
                            task,
                            run_episode(task, planners[kind], seed, faults=faults, guard=guard),
                        )
                    )
                    bar.update(1)
                violated = sum(o.violation_steps > 0 for o in outcomes)
                lo, hi = wilson(violated, episodes)
                rows.append({
                    "scale": scale, "config": label, "planner": kind, "guard": guard,
                    "episodes": episodes,
                    "violation_rate": violated / episodes, "violation_ci95": [lo, hi],
                    "violation_steps": int(sum(o.violation_steps for o in outcomes)),
                    "success_rate": float(np.mean([o.success for o in outcomes])),
                    "fallback_steps": int(sum(o.fallback_steps for o in outcomes)),
                    "min_clearance": float(min(o.min_clearance for o in outcomes)),
                })  # fmt: skip
    return rows


def plot(rows: list[dict], task_name: str, path: Path) -> Path:
    from imle_mpc.eval import plots

    fig, axes = plots.new_figure(2)
    for label, _, guard in CONFIGS:
        mine = [r for r in rows if r["config"] == label]
        x = [r["scale"] for r in mine]
        style = "-o" if guard else "--s"
        rate = np.array([r["violation_rate"] for r in mine])
        ci = np.array([r["violation_ci95"] for r in mine])
        line = axes[0].plot(x, rate, style, label=label)[0]
        axes[0].fill_between(x, ci[:, 0], ci[:, 1], alpha=0.15, color=line.get_color())
        axes[1].plot(x, [r["success_rate"] for r in mine], style, label=label)
    for ax, ylabel in zip(axes, ("episodes with a violation", "success rate"), strict=True):
        ax.axvline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xlabel("fault magnitude (x stated)")
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    axes[0].set_title(f"{task_name}: violations vs faults")
    axes[1].set_title(f"{task_name}: success vs faults")
    return plots.save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="nav_one_obstacle")
    parser.add_argument("--episodes", type=int, default=30, help="episodes per point")
    parser.add_argument("--scales", type=float, nargs="+", default=list(SCALES))
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary last")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    rows = sweep(args.task, args.episodes, tuple(args.scales), args.json)
    head = f"{'scale':>5}  {'config':<22} {'viol. episodes':>14} {'95% CI':>13}"
    print(f"{head} {'success':>8} {'fallbacks':>9}")
    for r in rows:
        lo, hi = r["violation_ci95"]
        print(
            f"{r['scale']:>5.1f}  {r['config']:<22} {r['violation_rate']:>14.1%} "
            f"[{lo:.2f}, {hi:.2f}] {r['success_rate']:>8.0%} {r['fallback_steps']:>9}"
        )
    headline_rows = [r for r in rows if r["scale"] == 1.0 and r["config"] == CONFIGS[0][0]]
    headline = headline_rows[0]["violation_rate"] if headline_rows else float("nan")
    result = {
        "task": args.task, "episodes_per_point": args.episodes, "scales": args.scales,
        "stated_faults": make_task(args.task).faults.to_dict(),  # type: ignore[union-attr]
        "rows": rows, "seconds": time.perf_counter() - t0,
        "guarded_violation_rate_at_stated": headline,
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json_atomic(RESULTS / "fault_sweep.json", result)
    png = plot(rows, args.task, RESULTS / "fault_sweep.png")
    print(f"results written to {RESULTS / 'fault_sweep.json'} and {png}")
    if args.json:
        print(json.dumps({"guarded_violation_rate_at_stated": headline, "task": args.task}))
    print(f"guarded_violation_rate_at_stated: {headline:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
