"""Risk-aware IMLE-MPC over a model ensemble vs the nominal model, under model mismatch.

Two tasks with a stated model-mismatch fault: ``arm_reach_around`` (the analytic
two-link arm, its forearm 10 % heavier than modelled: the parameter-row path) and
``push_block`` (MuJoCo: the block 50 % heavier, 30 % more table friction, 20 % less
pusher grip: model copies in the rollout pool). The Panda (``panda_reach_around``)
states no mismatch (joint-acceleration control; ``PANDA_FAULTS``), so the arm here is
the two-link one.

Per task, the same seeded episodes (``run_episode``, the plant mismatched by the
task's fault only: ``task.faults.only("mismatch")``, at the stated magnitude and
twice it, ``--scales``) run for

* the planner: IMLE-MPC on the nominal model (the baseline) and IMLE-MPC scoring each
  sample by CVaR_alpha over an ensemble of M models (``ModelEnsemble.covering``: each
  factor of the mismatch at that scale and its inverse, the size of the uncertainty
  known, its direction not; member 0 the nominal), the constraints required on every member;
* the loop: guarded with the offset estimate (the default), guarded without it,
  unguarded.

Episodes alternate between the two planners seed by seed in the same process.
Figures: success, episodes with a violation, violation steps, median plan time.
Then plan time vs M (1, 2, 4, 8) on the first states of a nominal episode, the
members alternating, medians.

Results: ``bench/results/risk_ensemble.json`` (atomically), with the machine record
(load average, other processes' CPU). The last stdout line is
``cvar_minus_nominal_success: X`` (guarded with the offset estimate, both tasks'
episodes at every scale pooled).

    .venv/bin/python bench/risk_ensemble.py                 # ~10 min on 2 shared cores
    .venv/bin/python bench/risk_ensemble.py --arm-seeds 2 --push-seeds 1 --scales 2 --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import cpu_name, cpu_seconds, other_cpu_load
from tqdm.auto import tqdm

from dynamics.ensemble import ModelEnsemble
from imle_mpc.core.io import write_json_atomic
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.tasks import make_task
from planners.risk import RiskMeasure, RiskScoring

RESULTS = Path(__file__).resolve().parent / "results"
LOOPS = (  # (label, guard, offset estimate)
    ("guard + offset", True, True),
    ("guard", True, False),
    ("no guard", False, False),
)
MEMBERS_SWEEP = (1, 2, 4, 8)


def risk_for(
    task: Any, members: int, alpha: float, scale: float = 1.0, seed: int = 0
) -> RiskScoring:
    """CVaR_alpha over ``members`` models spanning the task's mismatch times ``scale``."""
    mismatch = task.faults.only("mismatch").scaled(scale).model_mismatch
    spec = ModelEnsemble.covering(mismatch, members=members, seed=seed)
    return RiskScoring(spec, RiskMeasure.cvar(alpha))


def episodes(
    task_name: str, seeds: int, members: int, alpha: float, scale: float, bar: tqdm
) -> list[dict[str, Any]]:
    """Every (planner, loop) configuration on ``seeds`` seeded episodes, alternating."""
    task = make_task(task_name)
    if task.faults is None or not task.faults.model_mismatch:
        raise SystemExit(f"task {task_name!r} states no model mismatch")
    faults = task.faults.only("mismatch").scaled(scale)
    planners = {
        "nominal": make_planner("imle_mpc", task, seed=0),
        f"cvar{alpha:g} M={members}": make_planner(
            "imle_mpc", task, seed=0, risk=risk_for(task, members, alpha, scale)
        ),
    }
    outcomes: dict[tuple[str, str], list[EpisodeOutcome]] = {
        (p, loop): [] for p in planners for loop, _, _ in LOOPS
    }
    for seed in range(seeds):
        for loop, guard, offset in LOOPS:
            for name, planner in planners.items():  # the baseline beside, alternating
                record = run_episode(
                    task, planner, seed, faults=faults, guard=guard, offset_free=offset
                )
                outcomes[name, loop].append(EpisodeOutcome.of(task, record))
                bar.update(1)
    rows = []
    for (name, loop), outs in outcomes.items():
        rows.append({
            "task": task_name, "scale": scale, "planner": name, "loop": loop,
            "episodes": len(outs),
            "success_rate": float(np.mean([o.success for o in outs])),
            "violation_episodes": int(sum(o.violation_steps > 0 for o in outs)),
            "violation_steps": int(sum(o.violation_steps for o in outs)),
            "fallback_steps": int(sum(o.fallback_steps for o in outs)),
            "plan_ms_median": float(np.median([o.plan_ms_mean for o in outs])),
            "min_clearance": float(min(o.min_clearance for o in outs)),
        })  # fmt: skip
    return rows


def plan_time_vs_members(task_name: str, alpha: float, states: int, rounds: int) -> list[dict]:
    """Median IMLE-MPC plan time vs M on the states of one nominal episode, alternating."""
    task = make_task(task_name)
    record = run_episode(task, make_planner("imle_mpc", task, seed=0), 0, steps=states)
    xs = np.asarray(record.states)[:states]
    planners = {
        m: make_planner("imle_mpc", task, seed=0, risk=None if m == 1 else risk_for(task, m, alpha))
        for m in MEMBERS_SWEEP
    }
    times: dict[int, list[float]] = {m: [] for m in MEMBERS_SWEEP}
    for _ in range(rounds):
        for m, planner in planners.items():
            planner.reset(0)
            for x in xs:
                t0 = time.perf_counter()
                planner.plan(x)
                times[m].append(time.perf_counter() - t0)
    base = float(np.median(times[1]))
    return [
        {
            "task": task_name,
            "members": m,
            "plan_ms_median": 1e3 * float(np.median(t)),
            "over_nominal": float(np.median(t)) / base,
        }
        for m, t in times.items()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm-seeds", type=int, default=10, help="arm_reach_around episodes")
    parser.add_argument("--push-seeds", type=int, default=4, help="push_block episodes")
    parser.add_argument("--members", type=int, default=4, help="M of the CVaR planner")
    parser.add_argument("--alpha", type=float, default=0.25, help="CVaR's tail fraction")
    parser.add_argument(
        "--scales", type=float, nargs="+", default=[1.0, 2.0], help="x the stated mismatch"
    )
    parser.add_argument("--timing-states", type=int, default=30, help="states per timing round")
    parser.add_argument("--timing-rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary last")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    mark = cpu_seconds()
    runs = (("arm_reach_around", args.arm_seeds), ("push_block", args.push_seeds))
    total = sum(2 * len(LOOPS) * n for _, n in runs) * len(args.scales)
    rows: list[dict[str, Any]] = []
    with tqdm(total=total, disable=args.json, desc="risk ensemble", unit="ep") as bar:
        for scale in args.scales:
            for name, n in runs:
                rows += episodes(name, n, args.members, args.alpha, scale, bar)
    timing: list[dict[str, Any]] = []
    for name, _ in runs:
        timing += plan_time_vs_members(name, args.alpha, args.timing_states, args.timing_rounds)
    wall = time.perf_counter() - t0

    print(f"{'task':<18} {'x':>3} {'planner':<14} {'loop':<15} {'success':>8} {'viol. ep':>8} "
          f"{'viol. steps':>11} {'plan ms':>8}")  # fmt: skip
    for r in rows:
        print(
            f"{r['task']:<18} {r['scale']:>3g} {r['planner']:<14} {r['loop']:<15} "
            f"{r['success_rate']:>8.0%} "
            f"{r['violation_episodes']:>4}/{r['episodes']:<3} {r['violation_steps']:>11} "
            f"{r['plan_ms_median']:>8.2f}"
        )
    print(f"\n{'task':<18} {'M':>3} {'plan ms':>8} {'x nominal':>9}")
    for t in timing:
        print(f"{t['task']:<18} {t['members']:>3} {t['plan_ms_median']:>8.2f} "
              f"{t['over_nominal']:>9.2f}")  # fmt: skip

    def pooled(planner_prefix: str, loop: str = LOOPS[0][0]) -> float:
        mine = [r for r in rows if r["loop"] == loop
                and r["planner"].startswith(planner_prefix)]  # fmt: skip
        # every scale and both tasks, each episode counted once
        n = sum(r["episodes"] for r in mine)
        return sum(r["success_rate"] * r["episodes"] for r in mine) / max(n, 1)

    headline = pooled("cvar") - pooled("nominal")
    by_loop = {loop: pooled("cvar", loop) - pooled("nominal", loop) for loop, _, _ in LOOPS}
    result = {
        "arm_seeds": args.arm_seeds, "push_seeds": args.push_seeds, "members": args.members,
        "alpha": args.alpha, "mismatch_scales": args.scales, "rows": rows,
        "plan_time_vs_members": timing, "seconds": wall,
        "cvar_minus_nominal_success_by_loop": by_loop,
        "machine": {
            "cpu": cpu_name(), "cpus": os.cpu_count(), "load_average_before": load_before,
            "load_average_after": os.getloadavg(), "other_cpu_load": other_cpu_load(mark, wall),
        },
        "cvar_minus_nominal_success": headline,
    }  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json_atomic(RESULTS / "risk_ensemble.json", result)
    print("cvar minus nominal success by loop (pooled): "
          + ", ".join(f"{k} {v:+.3f}" for k, v in by_loop.items()))  # fmt: skip
    print(f"results written to {RESULTS / 'risk_ensemble.json'} ({wall:.0f} s, load average "
          f"{load_before[0]:.1f} -> {os.getloadavg()[0]:.1f})")  # fmt: skip
    if args.json:
        print(json.dumps({"cvar_minus_nominal_success": headline, "seconds": wall}))
    print(f"cvar_minus_nominal_success: {headline:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
