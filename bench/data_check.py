"""Demonstration quality: does ``imle-mpc data check`` find bad demonstrations mixed in?

``--task nav_one_obstacle`` (the default): the 20 shipped expert demonstrations plus 3
bad ones of each of three kinds of ``imle_mpc.tasks.bad_demos`` (noisy: N(0, 0.8 N) on
every action; hesitant: 8 steps of driving, 6 of braking to a standstill, over and over;
through the obstacle: the expert on the straight line; seed 1). ``--task push_block``:
the 20 shipped expert pushes plus 2 of each of its four kinds (noisy: N(0, 0.03 m/s) on
every action; through the post: the block pushed straight into it; stop short: the push
ends halfway; lose contact: the pusher slips off the block after 30 steps; seed 1).
Three checks, the rule ``QualityRule()`` (an
episode's score is the 5 % quantile of its chunks' log-densities; flagged 3 robust
standard deviations below the median episode):

1. cross-fitted (the command's default, ``imle-mpc data check DATA``): 4 folds, a flow
   of 40 epochs trained on the other three scores each;
2. a trusted flow (``imle-mpc data check DATA --flow DIR``): trained on 20 fresh expert
   demonstrations (seed 1000; push: 1001) and scoring all 29 (push: 28);
3. the rule's false alarms on clean data: the 20 shipped demonstrations alone,
   cross-fitted.

Recall per kind and overall, and the false-alarm rate (flagged experts / experts).
Then what cleaning buys: RS-IMLE generators (``GEN_EPOCHS`` epochs, seed 0) trained on
the raw mixed set, on the cross-fitted check's cleaned set and on the 20 experts alone,
each run as guarded IMLE-MPC (N = 16) and as the guarded IMLE policy over seeds
0..``--episodes``-1: success, collisions (violation steps), fallbacks (``--checks-only``
skips this part).

Results: ``bench/results/data_check.json`` (``data_check_push.json`` for pushing;
atomically). Last line: ``bad_demos_found_fraction: X`` (``push_bad_demos_found_fraction``;
the cross-fitted check's recall over all bad ones).

    .venv/bin/python bench/data_check.py               # ~10 min on 2 shared cores
    .venv/bin/python bench/data_check.py --task push_block --checks-only
    .venv/bin/python bench/data_check.py --quick       # smoke run, a minute or two
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from _machine import cpu_name, cpu_seconds, other_cpu_load, torch_threads
from tqdm.auto import tqdm

from imle_mpc import __version__
from imle_mpc.core.io import write_json_atomic
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.learn.config import TrainConfig
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.flow import train_flow
from imle_mpc.learn.flow.quality import (
    CROSS_FIT_TRAIN,
    QualityReport,
    QualityRule,
    cross_fit,
    score_dataset,
)
from imle_mpc.learn.imle import train_generator
from imle_mpc.tasks import Task, make_task
from imle_mpc.tasks.bad_demos import mixed_dataset

BAD = {
    "nav_one_obstacle": {"noisy": 3, "hesitant": 3, "through_obstacle": 3},
    "push_block": {"noisy": 2, "through_post": 2, "stop_short": 2, "lose_contact": 2},
}
"""Per task: the bad episodes mixed in (seed 1)."""
FOLDS = 4
GEN_EPOCHS = 60
EPISODES = 20
HEADLINES = {
    "nav_one_obstacle": "bad_demos_found_fraction",
    "push_block": "push_bad_demos_found_fraction",
}
RESULTS = {"nav_one_obstacle": "data_check.json", "push_block": "data_check_push.json"}
RESULTS_DIR = Path(__file__).parent / "results"
TRUSTED_SEED = {"nav_one_obstacle": 1000, "push_block": 1001}
"""The seed of the trusted flow's 20 fresh expert demonstrations (push: 1000 makes an
expert run that fails its own checks, so the recipe refuses it)."""


def found(report: QualityReport, quality: list[str]) -> dict[str, Any]:
    """Recall per kind and overall, and the false-alarm rate, against the true kinds."""
    flagged = set(report.flagged)
    kinds = sorted(set(quality) - {"expert"})
    per_kind = {
        k: sum(1 for i, q in enumerate(quality) if q == k and i in flagged)
        / max(1, quality.count(k))
        for k in kinds
    }
    bad = [i for i, q in enumerate(quality) if q != "expert"]
    experts = [i for i, q in enumerate(quality) if q == "expert"]
    return {
        "recall": {k: round(v, 4) for k, v in per_kind.items()},
        "found_fraction": round(sum(i in flagged for i in bad) / len(bad), 4) if bad else None,
        "false_alarm_rate": round(sum(i in flagged for i in experts) / len(experts), 4),
        "flagged": sorted(flagged),
        "cutoff": round(report.cutoff, 3),
        "scores": {
            q: [round(e.score, 1) for e in report.episodes if quality[e.index] == q]
            for q in sorted(set(quality))
        },
        "train_seconds": round(report.train_seconds, 1),
    }


def evaluate(task: Task, generator: Any, episodes: int, bar: tqdm) -> dict[str, Any]:
    """Guarded IMLE-MPC and the guarded IMLE policy on ``generator``, seeds 0..episodes-1."""
    rows = {}
    for kind in ("imle_mpc", "imle_policy"):
        outcomes, t0, mark = [], time.perf_counter(), cpu_seconds()
        for seed in range(episodes):
            planner = make_planner(kind, task, seed=seed, generator=generator)
            outcomes.append(EpisodeOutcome.of(task, run_episode(task, planner, seed, guard=True)))
            bar.update()
        wall = time.perf_counter() - t0
        rows[kind] = {
            "episodes": episodes,
            "success": sum(o.success for o in outcomes),
            "success_rate": round(sum(o.success for o in outcomes) / episodes, 4),
            "violation_steps": sum(o.violation_steps for o in outcomes),
            "fallback_steps": sum(o.fallback_steps for o in outcomes),
            "wall_s": round(wall, 1),
            "other_cpu_load": other_cpu_load(mark, wall),
        }
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="nav_one_obstacle", choices=sorted(BAD))
    parser.add_argument(
        "--checks-only", action="store_true", help="skip the generators trained on each set"
    )
    parser.add_argument("--episodes", type=int, default=EPISODES, help="seeds per controller")
    parser.add_argument("--gen-epochs", type=int, default=GEN_EPOCHS, help="RS-IMLE epochs")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny budgets")
    parser.add_argument("--out", type=Path, help="JSON results file (the task's default)")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    cli_args = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(cli_args)
    flow_train = replace(CROSS_FIT_TRAIN, epochs=5) if args.quick else CROSS_FIT_TRAIN
    gen_epochs, episodes = (3, 2) if args.quick else (args.gen_epochs, args.episodes)
    t_start, mark = time.perf_counter(), cpu_seconds()
    task = make_task(args.task)
    bad, headline_name = BAD[args.task], HEADLINES[args.task]
    out = RESULTS_DIR / RESULTS[args.task] if args.out is None else args.out
    clean = task.load_demonstrations()
    mixed = mixed_dataset(task, clean, bad, seed=1)
    quality: list[str] = list(mixed.meta["quality"])
    rule = QualityRule()
    with torch_threads(1):
        crossed = cross_fit(mixed, FOLDS, train_config=flow_train, rule=rule, progress=False)
        trusted_demos = task.generate_demonstrations(20, seed=TRUSTED_SEED[args.task])
        trusted_flow, _ = train_flow(trusted_demos, None, flow_train, progress=False)
        trusted = score_dataset(trusted_flow, mixed, rule)
        clean_only = cross_fit(clean, FOLDS, train_config=flow_train, rule=rule, progress=False)
        checks = {
            "cross_fit": found(crossed, quality),
            "trusted_flow": found(trusted, quality),
            "clean_only_cross_fit": found(clean_only, ["expert"] * len(clean.episodes)),
        }
        sets: dict[str, DemoDataset] = {
            "raw": mixed,
            "cleaned": crossed.cleaned(mixed),
            "experts_only": clean,
        }
        training: dict[str, Any] = {}
        if args.checks_only:
            sets = {}
        with tqdm(total=2 * episodes * len(sets), unit="ep", file=sys.stderr) as bar:
            for name, data in sets.items():
                bar.set_postfix_str(f"training on {name}")
                t0 = time.perf_counter()
                config = TrainConfig(epochs=gen_epochs, warmup_steps=50, seed=0)
                generator, _ = train_generator(data, None, config, progress=False)
                training[name] = {
                    "episodes_trained_on": len(data.episodes),
                    "bad_kept": sum(q != "expert" for q in data.meta.get("quality", [])),
                    "train_s": round(time.perf_counter() - t0, 1),
                    **evaluate(task, generator, episodes, bar),
                }
    wall = time.perf_counter() - t_start
    headline = checks["cross_fit"]["found_fraction"]
    result = {
        "bench": "data_check",
        "command": " ".join(["python bench/data_check.py", *cli_args]),
        "library_version": __version__,
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "other_cpu_load": other_cpu_load(mark, wall),
        "task": args.task,
        "bad": bad,
        "folds": FOLDS,
        "flow_epochs": flow_train.epochs,
        "gen_epochs": gen_epochs,
        "rule": rule.__dict__,
        "checks": checks,
        "training": training,
        headline_name: headline,
        "runtime_s": round(wall, 1),
    }
    write_json_atomic(out, result)
    print_tables(result)
    if args.json:
        keys = ("bench", "task", headline_name)
        summary = {k: result[k] for k in keys}
        summary["false_alarm_rate"] = checks["cross_fit"]["false_alarm_rate"]
        print(json.dumps(summary, sort_keys=True))
    print(f"{headline_name}: {headline:.4f}")
    return 0


def print_tables(result: dict[str, Any]) -> None:
    print(f"\n{'check':<22} {'found':>6} {'false alarms':>13}  recall by kind")
    for name, c in result["checks"].items():
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in c["recall"].items())
        share = "-" if c["found_fraction"] is None else f"{c['found_fraction']:.2f}"
        print(f"{name:<22} {share:>6} {c['false_alarm_rate']:>13.2f}  {kinds}")
    print(f"\n{'trained on':<14} {'episodes':>8} {'bad':>4} {'controller':<12} {'success':>8} "
          f"{'violations':>10} {'fallbacks':>9}")  # fmt: skip
    for name, row in result["training"].items():
        for kind in ("imle_mpc", "imle_policy"):
            r = row[kind]
            print(
                f"{name:<14} {row['episodes_trained_on']:>8} {row['bad_kept']:>4} {kind:<12} "
                f"{r['success']:>4}/{r['episodes']:<3} {r['violation_steps']:>10} "
                f"{r['fallback_steps']:>9}"
            )


if __name__ == "__main__":
    raise SystemExit(main())
