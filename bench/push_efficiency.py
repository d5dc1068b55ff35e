"""Pushing through contact: success vs samples per plan on ``push_block``, all guarded.

Every configuration runs the same seeded closed-loop episodes of ``push_block``
(MuJoCo as model and plant; ``imle_mpc.eval.episodes.run_episode`` with
``guard=True``: the safety guard and the offset estimate, as ``imle-mpc eval``
runs them):

* ``IMLE-MPC``, N in {8, 16, 32} generator chunks a plan: K = 2N + 1
  trajectories rolled out (N chunks, N perturbations, the warm start).
* ``MPPI``, ``CEM`` and ``predictive sampling``, K in {64, 256, 1024}
  trajectories rolled out a plan, the task's hints otherwise (horizon 25,
  noise 0.15). CEM spends its K over its 4 iterations (K/4 samples each), so
  that every method gets the same number of rollouts per plan.
* ``IMLE policy``: the generator alone, 16 chunks a decision, no model.
* ``expert``: the scripted expert that made the demonstrations
  (``tasks.push.PushExpert``, a closed-loop controller, run through the guard
  like the planners via ``tasks.experts.ControllerPlanner``); even seeds push
  left of the post, odd ones right, the path's detour jittered 10 %.

The plant and the start are deterministic: the seeds vary the planners' draws.
Per configuration: success (the block's centre ends within 5 cm of the goal)
with a 95 % Wilson interval, time to success (the first step the block is
within the tolerance, median over the successes, in seconds), the routes,
safety violations (executed transitions that break a safety constraint, on the
swept path: ``EpisodeOutcome``), guard fallbacks, and the mean and p95 wall
time of a ``plan()`` call, with the cores other processes used meanwhile.

Every episode's record is appended to ``bench/results/push_efficiency.jsonl``
as it finishes (fsynced), so an interrupted run loses nothing: ``--resume``
runs only the episodes not in the file. The summary goes to
``bench/results/push_efficiency.json``, the plot (success and time per plan vs
rollouts per plan) to ``bench/results/push_efficiency.png``.

Also measured, alternating in this process: the rollout cost per sample-step
(one 0.05 s control step, 5 physics steps) of the task's ``MujocoDynamics`` vs
calling ``mujoco.rollout`` directly on the same model, K = 1024, H = 25.

The last stdout line is ``push_imle_n16_minus_mppi_n1024_success: X`` (target
>= 0). Runtime on 2 cores: about 1.5 h for 50 seeds, nearly all of it the
K = 1024 baselines (0.2-0.25 s a plan, 120 steps an episode).

    .venv/bin/python bench/push_efficiency.py                     # 50 seeds
    .venv/bin/python bench/push_efficiency.py --resume --json     # continue a run
    .venv/bin/python bench/push_efficiency.py --episodes 2 --only imle_mpc_n16,mppi_n64
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numba
import numpy as np
import torch
from _machine import cpu_name, cpu_seconds, other_cpu_load
from mujoco import rollout as mj_rollout
from tqdm.auto import tqdm

from imle_mpc import __version__
from imle_mpc.core.io import write_json_atomic
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.eval.plots import save_figure
from imle_mpc.eval.report import wilson
from imle_mpc.eval.results import RecordWriter
from imle_mpc.tasks import Task, make_task
from imle_mpc.tasks.experts import ControllerPlanner
from imle_mpc.tasks.push import (
    BLOCK_DIMS,
    PUSH_EXPERT_DETOUR,
    PUSH_GOAL,
    PUSH_GOAL_TOLERANCE,
    PushExpert,
    push_reference_path,
)
from planners.classic import CEMConfig

RESULTS_DIR = Path(__file__).resolve().parent / "results"
RECORDS = RESULTS_DIR / "push_efficiency.jsonl"
RESULTS = RESULTS_DIR / "push_efficiency.json"
PLOT = RESULTS_DIR / "push_efficiency.png"
TASK = "push_block"
IMLE_NS = (8, 16, 32)
SAMPLING_KS = (64, 256, 1024)
POLICY_N = 16
CEM_ITERATIONS = CEMConfig().iterations
DEFAULT_EPISODES = 50
HEADLINE = "push_imle_n16_minus_mppi_n1024_success"
WARMUP_SEED = 2**31 - 1
CONTENDED_CORES = 0.25
"""Other processes using more than this many cores during a configuration: timing warning."""
ROLLOUT_K, ROLLOUT_H, ROLLOUT_ROUNDS = 1024, 25, 7


@dataclass(frozen=True)
class Config:
    """One configuration: ``kind`` is a ``make_planner`` kind or ``"expert"``.

    ``n``: generator chunks (IMLE) or rollouts per plan (the sampling planners).
    """

    method: str
    kind: str
    n: int

    @property
    def key(self) -> str:
        return f"{self.kind}_n{self.n}"

    def rollouts(self) -> int:
        """Trajectories rolled out through the model per plan (0: no model)."""
        if self.kind in ("imle_mpc",):
            return 2 * self.n + 1
        if self.kind in ("mppi", "cem", "predictive_sampling"):
            return self.n
        return 0


# Cheap first, the K = 1024 baselines last: a stopped run has the most rows done.
CONFIGS: tuple[Config, ...] = (
    Config("expert", "expert", 1),
    *(Config("IMLE-MPC", "imle_mpc", n) for n in IMLE_NS),
    Config("IMLE policy", "imle_policy", POLICY_N),
    *(
        Config(method, kind, k)
        for k in SAMPLING_KS
        for method, kind in (
            ("MPPI", "mppi"),
            ("CEM", "cem"),
            ("predictive sampling", "predictive_sampling"),
        )
    ),
)


def expert_planner(task: Task) -> ControllerPlanner:
    """The scripted expert as a planner: route by seed parity, detour jittered 10 %."""
    start = task.initial_state[BLOCK_DIMS[0] : BLOCK_DIMS[1] + 1]

    def controller(seed: int | None) -> PushExpert:
        seed = 0 if seed is None else seed
        route = "left" if seed % 2 == 0 else "right"
        detour = PUSH_EXPERT_DETOUR * np.random.default_rng([seed, 7]).uniform(0.9, 1.1)
        return PushExpert(push_reference_path(route, start=start, detour=detour))

    return ControllerPlanner(task.dynamics, controller)


def make_config_planner(config: Config, task: Task, seed: int) -> Any:
    """The (unguarded) planner of ``config``; ``run_episode`` puts it behind the guard."""
    if config.kind == "expert":
        return expert_planner(task)
    if config.kind == "cem":  # K rollouts a plan over the iterations
        return make_planner("cem", task, seed, num_samples=config.n // CEM_ITERATIONS)
    return make_planner(config.kind, task, seed, num_samples=config.n)


def time_to_success(states: np.ndarray, dt: float) -> float | None:
    """Seconds until the block is first within the goal tolerance (None: never)."""
    dist = np.linalg.norm(states[:, BLOCK_DIMS] - np.asarray(PUSH_GOAL), axis=1)
    inside = np.flatnonzero(dist < PUSH_GOAL_TOLERANCE)
    return float(inside[0] * dt) if inside.size else None


def episode_record(config: Config, task: Task, planner: Any, seed: int) -> dict[str, Any]:
    """One guarded episode: its figures as one flat JSON record."""
    record = run_episode(task, planner, seed, guard=True)
    outcome = EpisodeOutcome.of(task, record)
    states = record.states if record.true_states is None else record.true_states
    out = {"key": f"{config.key}/seed={seed}", "config": config.key} | outcome.to_dict()
    out["time_to_success_s"] = time_to_success(states, task.dynamics.dt)
    out["final_goal_dist"] = float(np.linalg.norm(states[-1, BLOCK_DIMS] - np.asarray(PUSH_GOAL)))
    out["plan_ms"] = np.round(np.asarray(record.plan_times) * 1e3, 4).tolist()
    return out


def run_config(
    config: Config, task: Task, seeds: list[int], done: dict[str, dict[str, Any]],
    writer: RecordWriter, bar: Any,
) -> dict[str, Any] | None:  # fmt: skip
    """The episodes of ``config`` not in ``done``; returns the timing of this run (or None)."""
    todo = [s for s in seeds if f"{config.key}/seed={s}" not in done]
    bar.update(len(seeds) - len(todo))
    if not todo:
        return None
    bar.set_postfix_str(f"{config.method} n={config.n}")
    planner = make_config_planner(config, task, WARMUP_SEED)
    for _ in range(3):  # first-call overheads (JIT, allocations) out of the timings
        planner.plan(task.initial_state.copy())
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    for seed in todo:
        rec = episode_record(config, task, planner, seed)
        writer.append(rec)
        done[rec["key"]] = rec
        bar.update(1)
    wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 2), "other_cpu_cores": other_cpu_load(cpu0, wall)}


def summarise(config: Config, records: list[dict[str, Any]], timing: Any) -> dict[str, Any]:
    """The table row of one configuration from its episode records."""
    n = len(records)
    successes = sum(bool(r["success"]) for r in records)
    lo, hi = wilson(successes, n)
    ms = np.concatenate([np.asarray(r["plan_ms"], dtype=np.float64) for r in records])
    tts = [r["time_to_success_s"] for r in records if r["success"] and r["time_to_success_s"]]
    routes = Counter(str(r["route"]) for r in records)
    return {
        "key": config.key,
        "method": config.method,
        "kind": config.kind,
        "n": config.n,
        "rollouts_per_plan": config.rollouts(),
        "episodes": n,
        "successes": successes,
        "success_rate": round(successes / n, 4),
        "success_ci95": [round(lo, 4), round(hi, 4)],
        "time_to_success_s_median": round(statistics.median(tts), 3) if tts else None,
        "routes": dict(sorted(routes.items())),
        "violation_episodes": sum(r["violation_steps"] > 0 for r in records),
        "violation_steps": sum(r["violation_steps"] for r in records),
        "fallback_steps": sum(r["fallback_steps"] for r in records),
        "final_goal_dist_mean": round(float(np.mean([r["final_goal_dist"] for r in records])), 4),
        "plan_ms_mean": round(float(ms.mean()), 3),
        "plan_ms_p95": round(float(np.percentile(ms, 95)), 3),
        "timing": timing,
    }


# --- the rollout cost, ours vs raw mujoco.rollout ----------------------------------------


def rollout_cost(task: Task) -> dict[str, Any]:
    """Microseconds per sample-step: ``MujocoDynamics.rollout`` vs ``mujoco.rollout``, alternating.

    Both roll the same K x H controls from the task's start on the same model and
    thread count; the raw call gets the full-physics start state and the controls
    repeated ``frame_skip`` times (what the wrapper hands MuJoCo).
    """
    model = task.dynamics
    mj = model.model
    skip = model.frame_skip
    threads = model.num_threads
    U = np.random.default_rng(0).uniform(-0.3, 0.3, (ROLLOUT_K, ROLLOUT_H, model.nu))
    data = mujoco.MjData(mj)
    data.qpos[:] = task.initial_state[: mj.nq]
    data.qvel[:] = task.initial_state[mj.nq : mj.nq + mj.nv]
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.empty(mujoco.mj_stateSize(mj, spec))
    mujoco.mj_getState(mj, data, state, spec)
    initial = np.tile(state, (ROLLOUT_K, 1))
    control = np.ascontiguousarray(np.repeat(U, skip, axis=1))
    datas = [mujoco.MjData(mj) for _ in range(max(threads, 1))]
    ours, raw = [], []
    with mj_rollout.Rollout(nthread=threads) as pool:
        for _ in range(ROLLOUT_ROUNDS):
            t0 = time.perf_counter()
            model.rollout(task.initial_state, U)
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            pool.rollout(mj, datas, initial, control)
            raw.append(time.perf_counter() - t0)
    per = ROLLOUT_K * ROLLOUT_H
    ours_us, raw_us = statistics.median(ours) / per * 1e6, statistics.median(raw) / per * 1e6
    return {
        "K": ROLLOUT_K,
        "H": ROLLOUT_H,
        "frame_skip": skip,
        "threads": threads,
        "rounds": ROLLOUT_ROUNDS,
        "ours_us_per_sample_step": round(ours_us, 3),
        "raw_mujoco_rollout_us_per_sample_step": round(raw_us, 3),
        "overhead_pct": round(100.0 * (ours_us / raw_us - 1.0), 2),
    }


# --- output -------------------------------------------------------------------------------


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'method':<20} {'n':>5} {'K':>5} {'success':>8} {'95% CI':>13} {'t_succ s':>8} "
        f"{'left':>5} {'right':>5} {'other':>5} {'viol':>5} {'fallbk':>6} {'goal m':>7} "
        f"{'ms mean':>8} {'ms p95':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        lo, hi = r["success_ci95"]
        other = sum(c for k, c in r["routes"].items() if k not in ("left", "right"))
        tts = r["time_to_success_s_median"]
        k = str(r["rollouts_per_plan"]) if r["rollouts_per_plan"] else "-"
        print(
            f"{r['method']:<20} {r['n']:>5} {k:>5} {r['success_rate']:>8.2f} "
            f"{f'[{lo:.2f},{hi:.2f}]':>13} {'-' if tts is None else f'{tts:.2f}':>8} "
            f"{r['routes'].get('left', 0):>5} {r['routes'].get('right', 0):>5} {other:>5} "
            f"{r['violation_episodes']:>5} {r['fallback_steps']:>6} "
            f"{r['final_goal_dist_mean']:>7.3f} {r['plan_ms_mean']:>8.2f} {r['plan_ms_p95']:>8.2f}"
        )


STYLE = {
    "IMLE-MPC": ("tab:blue", "o"),
    "MPPI": ("tab:orange", "s"),
    "CEM": ("tab:purple", "D"),
    "predictive sampling": ("tab:brown", "v"),
}


def save_plot(path: Path, rows: list[dict[str, Any]], episodes: int) -> Path | None:
    """Success and time per plan vs rollouts per plan; the policy and expert as lines."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_s, ax_t) = plt.subplots(1, 2, figsize=(12, 4.4))
    for method, (color, marker) in STYLE.items():
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        k = np.array([r["rollouts_per_plan"] for r in mine])
        rate = np.array([r["success_rate"] for r in mine])
        ci = np.array([r["success_ci95"] for r in mine]).T
        ax_s.errorbar(k, rate, yerr=[rate - ci[0], ci[1] - rate], color=color, marker=marker,
                      capsize=3, label=method)  # fmt: skip
        ax_t.plot(k, [r["plan_ms_mean"] for r in mine], color=color, marker=marker, label=method)
    for r, style in ((r, s) for r in rows for m, s in (("IMLE policy", ":"), ("expert", "--"))
                     if r["method"] == m):  # fmt: skip
        ax_s.axhline(r["success_rate"], color="gray", linestyle=style, label=r["method"])
    ax_s.set_ylim(-0.05, 1.05)
    ax_s.set_ylabel(f"success ({episodes} seeds, 95% Wilson CI)")
    ax_s.set_title("push_block, guarded: success vs rollouts per plan")
    ax_t.axhline(50.0, color="red", linestyle=":", label="20 Hz period")
    ax_t.set_yscale("log")
    ax_t.set_ylabel("wall time per plan() [ms]")
    ax_t.set_title("time per plan (mean)")
    for ax in (ax_s, ax_t):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("trajectories rolled out per plan K (IMLE-MPC: 2N+1)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--episodes", type=int, default=DEFAULT_EPISODES,
        help=f"seeded episodes per configuration (seeds 0..N-1; default {DEFAULT_EPISODES})",
    )  # fmt: skip
    parser.add_argument(
        "--only", default="", help="comma-separated configuration keys (e.g. imle_mpc_n16)"
    )
    parser.add_argument("--resume", action="store_true", help="continue the records file")
    parser.add_argument("--records", type=Path, default=RECORDS, help="JSON-lines episode file")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON summary file")
    parser.add_argument("--plot", type=Path, default=PLOT, help="PNG plot file")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    cli_args = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(cli_args)
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    keys = {c.key for c in CONFIGS}
    only = [k for k in args.only.split(",") if k]
    if unknown := sorted(set(only) - keys):
        parser.error(f"unknown configurations {unknown}; choose from {sorted(keys)}")
    configs = [c for c in CONFIGS if not only or c.key in only]

    t_start = time.perf_counter()
    task = make_task(TASK)
    seeds = list(range(args.episodes))
    rollout = rollout_cost(task)
    timings: dict[str, Any] = {}
    with RecordWriter(args.records, resume=args.resume) as writer:
        done = {r["key"]: r for r in writer.existing}
        with tqdm(total=len(configs) * len(seeds), desc=TASK, unit="ep", file=sys.stderr) as bar:
            for config in configs:
                timings[config.key] = run_config(config, task, seeds, done, writer, bar)
    rows = []
    for config in configs:
        records = [done[f"{config.key}/seed={s}"] for s in seeds]
        rows.append(summarise(config, records, timings[config.key]))
    by_key = {r["key"]: r for r in rows}
    headline = (
        by_key["imle_mpc_n16"]["success_rate"] - by_key["mppi_n1024"]["success_rate"]
        if {"imle_mpc_n16", "mppi_n1024"} <= by_key.keys()
        else math.nan
    )
    busy = [
        f"{r['key']} ({r['timing']['other_cpu_cores']:.2f} cores)"
        for r in rows
        if r["timing"] and (r["timing"]["other_cpu_cores"] or 0.0) > CONTENDED_CORES
    ]
    if busy:
        print(
            f"warning: other processes used more than {CONTENDED_CORES} cores during {busy}; "
            "those plan times are inflated (success is not: the episodes are simulated).",
            file=sys.stderr,
        )
    runtime = time.perf_counter() - t_start
    result = {
        "bench": "push_efficiency",
        "command": " ".join(["python bench/push_efficiency.py", *cli_args]),
        "library_version": __version__,
        "mujoco": mujoco.__version__,
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "timing_contended": busy,
        "episodes": args.episodes,
        "steps": task.steps,
        "dt": task.dynamics.dt,
        "rollout_cost": rollout,
        "rows": rows,
        HEADLINE: None if math.isnan(headline) else round(headline, 4),
        "runtime_s": round(runtime, 1),
    }
    plot = save_plot(args.plot, rows, args.episodes)
    result["plot"] = None if plot is None else str(plot)
    write_json_atomic(args.out, result)

    print(
        f"push_block, guarded, {args.episodes} seeded episodes of {task.steps} steps "
        f"({task.dynamics.dt} s) per configuration; {result['cpu']} ({os.cpu_count()} cores)\n"
        "n: generator chunks (IMLE) or rollouts per plan; K: trajectories rolled out per plan; "
        "t_succ: median time to success; viol: episodes with a safety violation\n"
    )
    print_table(rows)
    print(
        f"\nrollout cost per sample-step (K={ROLLOUT_K}, H={ROLLOUT_H}, {rollout['threads']} "
        f"threads): ours {rollout['ours_us_per_sample_step']:.2f} us, raw mujoco.rollout "
        f"{rollout['raw_mujoco_rollout_us_per_sample_step']:.2f} us "
        f"({rollout['overhead_pct']:+.1f} %)"
    )
    print(f"results: {args.out}\nrecords: {args.records}\nplot: {plot}\nruntime: {runtime:.0f} s")
    if args.json:
        summary = {
            "bench": "push_efficiency",
            "episodes": args.episodes,
            HEADLINE: result[HEADLINE],
            "success": {r["key"]: r["success_rate"] for r in rows},
            "violation_episodes": {r["key"]: r["violation_episodes"] for r in rows},
            "rollout_overhead_pct": rollout["overhead_pct"],
            "runtime_s": result["runtime_s"],
        }
        print(json.dumps(summary, separators=(",", ":"), sort_keys=True))
    value = "nan" if math.isnan(headline) else f"{headline:.4g}"
    print(f"{HEADLINE}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
