"""Residual refinement (Policy Decorator) of the frozen IMLE policy on ``push_block``.

The IMLE policy alone (16 chunks a decision, the shipped generator) is short where
the plant is not the demonstrations': ``push_block``'s refinement settings
(``Task.refinements``), ``heavy`` (the block twice as heavy, 5x the table friction)
and ``precise`` (a 2 cm tolerance instead of 5 cm). Per setting this runs, all
guarded (the safety guard and the offset estimate, as ``imle-mpc eval``):

* ``base``: the frozen IMLE policy alone;
* ``refined``: base + a residual learned online with SAC (``imle_mpc.eval.refine``:
  ``alpha`` = ``--scale`` of the half range, sparse reward, 8 environments, the
  residual switched on per episode with probability ``min(step / H, 1)``, H =
  ``--explore-steps``), ``--steps`` environment steps;
* ``refined_no_schedule`` (``heavy`` only): the same with the schedule off (H = 0:
  the untrained residual acts from the first step), to show what it buys.

Each is evaluated over ``--episodes`` seeded episodes (seeds 0..N-1; training
episodes draw their own seeds, the learning curve uses 20 seeds from 1000):
success with a 95 % Wilson interval, violation steps (executed transitions that
break a safety constraint, on the swept path), guard interventions (steps the
guard executed a fallback), and the training's wall time with the cores other
processes used meanwhile. The learning curves (success of the curve's episodes vs
environment steps) go to ``bench/results/residual_refinement.png``, the figures
to ``bench/results/residual_refinement.json``.

Training runs live in ``bench/results/residual_refinement/<setting>_<run>/`` and
are resumed from their last checkpoint when the script is run again (a finished
run is only evaluated). The last stdout line is ``refined_minus_base_success: X``
(``heavy``; target >= 0.20 with 0 violations within 200k steps; the default run is
100k steps, the library's defaults: ``alpha`` 0.3 of the range, H = 25k, gSDE, 8-step
returns).

    .venv/bin/python bench/residual_refinement.py                  # the full run
    .venv/bin/python bench/residual_refinement.py --quick          # a smoke run, minutes
    .venv/bin/python bench/residual_refinement.py --settings heavy --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from _machine import cpu_name, cpu_seconds, other_cpu_load

from imle_mpc import __version__
from imle_mpc.core.io import write_atomic, write_json_atomic
from imle_mpc.eval.evaluation import EvalConfig, evaluate
from imle_mpc.eval.factory import make_planner
from imle_mpc.eval.refine import RefineConfig, evaluate_refined, load_refined, refine, setting_of
from imle_mpc.eval.report import wilson
from imle_mpc.learn.config import ResidualSACConfig

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "bench" / "results"
TASK, BASE = "push_block", "imle_policy"


@dataclass(frozen=True)
class Paths:
    """Where a run's figures, plot and training directories go."""

    results: Path = RESULTS_DIR / "residual_refinement.json"
    plot: Path = RESULTS_DIR / "residual_refinement.png"
    runs: Path = RESULTS_DIR / "residual_refinement"


QUICK = Paths(
    Path("out") / "residual_refinement_quick" / "results.json",
    Path("out") / "residual_refinement_quick" / "curve.png",
    Path("out") / "residual_refinement_quick",
)
"""A smoke run's (``--quick``): all of it stays out of bench/results."""


def base_row(setting: str, episodes: int) -> dict[str, Any]:
    """The frozen base alone in ``setting``."""
    task, chosen = setting_of(TASK, setting)
    config = EvalConfig(task=TASK, planner=BASE, episodes=episodes, faults=chosen.faults)
    summary, _ = evaluate(config, planner=make_planner(BASE, task), task=task)
    return {"setting": setting, "run": "base", **_figures(summary)}


def refined_row(
    setting: str, run: str, schedule: bool, args: argparse.Namespace, paths: Paths
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train (or resume, or reuse) a residual in ``setting``; evaluate base + residual."""
    out = paths.runs / f"{setting}_{run}"
    sac = ResidualSACConfig(total_steps=args.steps, learning_starts=args.learning_starts)
    config = RefineConfig(
        task=TASK, setting=setting, base=BASE, fraction=args.scale,
        explore_steps=args.explore_steps if schedule else 0, eval_every=args.eval_every,
        eval_episodes=args.curve_episodes, sac=sac,
    )  # fmt: skip
    committed = out / "checkpoint.json"
    before = json.loads(committed.read_text())["step"] if committed.exists() else None
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    _, history = refine(config, out, resume=before is not None, progress=True)
    wall = time.perf_counter() - t0
    # The machine's load while this script trained the run, kept beside it (a run
    # trained before, or elsewhere, has none).
    load_file = out / "bench_load.json"
    if json.loads(committed.read_text())["step"] != before:
        write_json_atomic(load_file, {"other_cpu_cores": other_cpu_load(cpu0, wall)})
    load = json.loads(load_file.read_text()) if load_file.exists() else {}
    summary = evaluate_refined(load_refined(out), args.episodes)
    row = {
        "setting": setting, "run": run, "explore_steps": config.explore_steps,
        "steps": history.evaluations[-1]["step"] if history.evaluations else args.steps,
        "train_s": round(history.seconds, 1), "other_cpu_cores": load.get("other_cpu_cores"),
        **_figures(summary),
    }  # fmt: skip
    return row, {"label": f"{setting}: {run}", "points": history.evaluations}


def _figures(summary: dict[str, Any]) -> dict[str, Any]:
    n, rate = summary["episodes"], summary["success_rate"]
    low, high = wilson(round(rate * n), n)
    return {
        "episodes": n, "success_rate": rate, "success_ci95": [round(low, 3), round(high, 3)],
        "violation_steps": summary["violation_steps"],
        "guard_interventions": summary["fallback_steps"],
    }  # fmt: skip


def _shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it."""
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def save_plot(path: Path, curves: list[dict[str, Any]], bases: dict[str, float]) -> Path | None:
    """Success of the curve's episodes vs environment steps, the frozen bases as lines."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for curve in curves:
        steps = [p["step"] for p in curve["points"]]
        ax.plot(steps, [p["success_rate"] for p in curve["points"]], marker="o", ms=3,
                label=curve["label"])  # fmt: skip
    for setting, rate in bases.items():
        ax.axhline(rate, ls="--", lw=1, color="grey")
        ax.text(0, rate + 0.01, f"{setting}: frozen base", fontsize=8, color="grey")
    ax.set(xlabel="environment steps", ylabel="success", ylim=(-0.02, 1.02),
           title="push_block: the IMLE policy + a residual learned online (guarded)")  # fmt: skip
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=120))
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=["heavy", "precise"])
    refine_defaults, sac_defaults = RefineConfig(), ResidualSACConfig()
    parser.add_argument(
        "--steps", type=int, default=sac_defaults.total_steps, help="environment steps a run"
    )
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes a row")
    parser.add_argument(
        "--scale", type=float, default=refine_defaults.fraction, help="alpha: of the half range"
    )
    parser.add_argument("--explore-steps", type=int, default=refine_defaults.explore_steps)
    parser.add_argument("--learning-starts", type=int, default=sac_defaults.learning_starts)
    parser.add_argument("--eval-every", type=int, default=refine_defaults.eval_every)
    parser.add_argument("--curve-episodes", type=int, default=refine_defaults.eval_episodes)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    args = parser.parse_args(argv)
    paths = QUICK if args.quick else Paths()
    if args.quick:
        args.steps, args.episodes, args.explore_steps = 2_048, 4, 1_024
        args.learning_starts, args.eval_every, args.curve_episodes = 512, 1_024, 2
    torch.set_num_threads(1)
    rows, curves, bases = [], [], {}
    for setting in args.settings:
        base = base_row(setting, args.episodes)
        bases[setting] = base["success_rate"]
        rows.append(base)
        runs = [("refined", True)] + (
            [("refined_no_schedule", False)] if setting == "heavy" else []
        )
        for run, schedule in runs:
            row, curve = refined_row(setting, run, schedule, args, paths)
            rows.append(row)
            curves.append(curve)
            print(json.dumps(row), file=sys.stderr)
    plot = save_plot(paths.plot, curves, bases)
    by = {(r["setting"], r["run"]): r for r in rows}
    headline = None
    if ("heavy", "refined") in by:
        headline = by["heavy", "refined"]["success_rate"] - by["heavy", "base"]["success_rate"]
    result = {
        "bench": "residual_refinement", "version": __version__, "cpu": cpu_name(),
        "task": TASK, "base": BASE, "scale": args.scale, "steps": args.steps,
        "explore_steps": args.explore_steps, "episodes": args.episodes, "rows": rows,
        "curves": curves, "plot": None if plot is None else _shown(plot),
        "refined_minus_base_success": headline,
    }  # fmt: skip
    write_json_atomic(paths.results, result)
    print(f"{'setting':8} {'run':20} {'success':>8} {'95 % CI':>13} {'viol':>5} {'guard':>6} "
          f"{'train s':>8}")  # fmt: skip
    for r in rows:
        ci = f"[{r['success_ci95'][0]:.2f}, {r['success_ci95'][1]:.2f}]"
        print(f"{r['setting']:8} {r['run']:20} {r['success_rate']:8.2f} {ci:>13} "
              f"{r['violation_steps']:5d} {r['guard_interventions']:6d} "
              f"{r.get('train_s', '-'):>8}")  # fmt: skip
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "curves"}))
    if headline is not None:
        print(f"refined_minus_base_success: {headline:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
