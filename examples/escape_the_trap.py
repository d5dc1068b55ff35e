"""Why learned proposals: a dead end that every greedy sampling planner drives into.

python examples/escape_the_trap.py --episodes 3 --out out/

``nav_trap``: a point mass must reach a goal behind a cup whose open side faces
it. The goal cost says "straight ahead", and within any horizon a sampling MPC
can afford straight ahead looks like progress, so MPPI drives into the cup and
stays there however many samples it draws. IMLE-MPC proposes chunks of the
demonstrated ways around (above or below), and its lookahead charges each
candidate for where following the generator would take it next; without the
lookahead, the same planner is greedy too. Every planner runs behind the safety
guard, so the greedy ones end in the cup, not in its walls. Prints the success
rate of each and saves a plot of the paths (``trap.png`` in ``--out``).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from imle_mpc.eval.episodes import run_episode
from imle_mpc.eval.factory import build_guarded, make_planner
from imle_mpc.loop.runner import EpisodeRecord
from imle_mpc.tasks import Task, make_task

PLANNERS = (
    ("MPPI, 1024 samples", "mppi", 1024, True),
    ("IMLE-MPC, 16 chunks, no lookahead", "imle_mpc", 16, False),
    ("IMLE-MPC, 16 chunks + lookahead", "imle_mpc", 16, True),
)


def run(task: Task, kind: str, samples: int, lookahead: bool, seeds: range) -> list[EpisodeRecord]:
    """Guarded episodes of one planner (as ``imle-mpc run`` runs them).

    ``lookahead=False`` switches the task's policy lookahead off.
    """
    if not lookahead:
        task = replace(task, hints=replace(task.hints, policy_lookahead=0))
    records = []
    for seed in seeds:
        planner = build_guarded(task, make_planner(kind, task, seed, samples), guard=True)
        records.append(run_episode(task, planner, seed))
    return records


def save_plot(task: Task, results: dict[str, list[EpisodeRecord]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imle_mpc.core.io import write_atomic
    from imle_mpc.eval.plots import plot_paths

    fig, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 4.0), squeeze=False)
    for ax, (label, records) in zip(axes[0], results.items(), strict=True):
        goal = None if task.goal is None else np.asarray(task.goal)
        plot_paths(ax, records, scene=task.scene, goal=goal)
        wins = sum(bool(r.success) for r in records)
        ax.set_title(f"{label}: {wins}/{len(records)}", fontsize=10)
    fig.tight_layout()
    write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=110))
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args(argv)

    task = make_task("nav_trap")
    seeds = range(args.episodes)
    results = {}
    for label, kind, samples, lookahead in PLANNERS:
        results[label] = run(task, kind, samples, lookahead, seeds)
        wins = sum(bool(r.success) for r in results[label])
        print(f"{label}: success {wins}/{args.episodes}")
    print(f"plot written to {save_plot(task, results, args.out / 'trap.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
