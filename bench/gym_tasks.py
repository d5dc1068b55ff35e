"""Gymnasium MuJoCo environments as tasks: success with and without the LQR terminal value.

Three environments through ``imle_mpc.tasks.gym_env.gym_task``, each episode ON the
Gymnasium environment (``Task.plant``; its own reset noise per seed, its own
termination), planned with ``MujocoDynamics`` on its model:

* ``InvertedPendulum-v5`` (under-actuated balancing, dt 0.04 s, 1000 steps = 40 s):
  success = the pole never passes 0.2 rad (the env never terminates);
* ``InvertedDoublePendulum-v5`` (under-actuated balancing, harder, dt 0.05 s, 1000
  steps = 50 s): success = the tip never drops to 1 m (never terminates);
* ``Reacher-v5`` (reaching, dt 0.02 s, 50 steps = 1 s, the target drawn per episode):
  success = the fingertip ends within 1 cm of the target.

Per environment: MPPI at two horizons (a short one, and a longer one: the pendulums'
hint is the short one, Reacher's the longer) and predictive sampling at the short
one, each with and without the terminal value. The
value is the LQR cost-to-go of the model linearised at the upright equilibrium
(the balancing tasks, ``gym_task(terminal_value=True)``) or at the pose that puts
the fingertip on this episode's target (Reacher, ``with_episode_goal_value``). K = 64
rollouts a plan everywhere; the task's hints otherwise (noise, temperature).

Per configuration over seeds 0..N-1: successes with a 95 % Wilson interval, the
median steps before the env terminated (balancing) or the median final distance
(Reacher), the mean and p95 wall time of one ``plan()`` over all steps of all
episodes, the share of steps whose plan took longer than the control period, and the
cores other processes used meanwhile (``other_cpu_cores``; the 1-minute load average
is recorded at the start and the end). Success does not depend on the timing: the
episodes are simulated, not run in real time.

Results go to ``bench/results/gym_tasks.json`` (atomically). The last stdout line is
``lqr_value_success_gain: X``, the success rate with the value minus without it, for
MPPI at the short horizon, averaged over the three environments.

    .venv/bin/python bench/gym_tasks.py                  # 10 seeds, ~20 min on 2 loaded cores
    .venv/bin/python bench/gym_tasks.py --episodes 3 --envs Reacher-v5 --json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from _machine import cpu_name, cpu_seconds, other_cpu_load
from tqdm.auto import tqdm

from dynamics.mujoco_model import MujocoDynamics
from imle_mpc import __version__
from imle_mpc.core.io import write_json_atomic
from imle_mpc.eval.episodes import run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.eval.report import wilson
from imle_mpc.tasks import Task
from imle_mpc.tasks.gym_env import FingertipDistance, gym_task, with_episode_goal_value

RESULTS = Path(__file__).resolve().parent / "results" / "gym_tasks.json"
HEADLINE = "lqr_value_success_gain"
DEFAULT_EPISODES = 10
SAMPLES = 64
HORIZONS = {
    "InvertedPendulum-v5": (5, 15),
    "InvertedDoublePendulum-v5": (5, 10),
    "Reacher-v5": (3, 10),
}
"""The short and the long horizon per environment, in control steps."""
ENVS = tuple(HORIZONS)
PER_EPISODE_GOAL = {"Reacher-v5"}
"""Environments whose terminal value is linearised at each episode's goal."""
WARMUP_SEED = 2**31 - 1
CONTENDED_CORES = 0.25


@dataclass(frozen=True)
class Config:
    """One row: a planner kind, its horizon, and whether the terminal value is on."""

    kind: str
    horizon: int
    value: bool

    @property
    def key(self) -> str:
        return f"{self.kind}_h{self.horizon}_{'value' if self.value else 'plain'}"


def configs(short: int, long: int) -> list[Config]:
    rows = []
    for value in (False, True):
        rows.append(Config("mppi", short, value))
        rows.append(Config("mppi", long, value))
        rows.append(Config("predictive_sampling", short, value))
    return rows


def episode_task(base: Task, plain: Task, config: Config, env_id: str, seed: int) -> Task:
    """The task one episode runs: the configuration's horizon and terminal value."""
    if not config.value:
        task = plain
    elif env_id in PER_EPISODE_GOAL:
        task = with_episode_goal_value(plain, seed)
    else:
        task = base
    return replace(task, hints=replace(task.hints, num_samples=SAMPLES, horizon=config.horizon))


def run_config(
    env_id: str, base: Task, plain: Task, config: Config, seeds: list[int], bar: Any
) -> dict[str, Any]:
    """All episodes of one configuration: the table row."""
    warm_task = episode_task(base, plain, config, env_id, seeds[0])
    warm = make_planner(config.kind, warm_task, WARMUP_SEED)
    for _ in range(3):  # first-call overheads out of the timings
        warm.plan(warm_task.initial_state.copy())
    model = base.dynamics
    assert isinstance(model, MujocoDynamics)
    reach = FingertipDistance.of(model.model) if env_id == "Reacher-v5" else None
    successes, lengths, finals, times = 0, [], [], []
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    bar.set_postfix_str(f"{env_id} {config.key}")
    for seed in seeds:
        task = episode_task(base, plain, config, env_id, seed)
        record = run_episode(task, make_planner(config.kind, task, seed), seed=seed)
        successes += bool(record.success)
        lengths.append(record.steps)
        if reach is not None and record.true_states is not None:
            finals.append(float(reach.distance(record.true_states[-1])))
        times.append(record.plan_times)
        bar.update(1)
    wall = time.perf_counter() - t0
    ms = np.concatenate(times) * 1e3
    period_ms = base.dynamics.dt * 1e3
    lo, hi = wilson(successes, len(seeds))
    row: dict[str, Any] = {
        "key": config.key,
        "planner": config.kind,
        "horizon": config.horizon,
        "horizon_s": round(config.horizon * base.dynamics.dt, 3),
        "terminal_value": config.value,
        "num_samples": SAMPLES,
        "episodes": len(seeds),
        "successes": successes,
        "success_rate": successes / len(seeds),
        "success_ci95": [round(lo, 4), round(hi, 4)],
        "steps_median": float(np.median(lengths)),
        "steps_min": int(min(lengths)),
        "steps_per_seed": lengths,
        "plan_ms_mean": round(float(ms.mean()), 3),
        "plan_ms_p95": round(float(np.percentile(ms, 95)), 3),
        "over_period_share": round(float(np.mean(ms > period_ms)), 4),
        "plan_calls": int(ms.size),
        "wall_s": round(wall, 1),
        "other_cpu_cores": other_cpu_load(cpu0, wall),
    }
    if finals:
        row["final_distance_median_m"] = round(float(np.median(finals)), 5)
        row["final_distance_per_seed_m"] = [round(d, 5) for d in finals]
    return row


def run_env(env_id: str, seeds: list[int]) -> dict[str, Any]:
    base = gym_task(env_id, terminal_value=env_id not in PER_EPISODE_GOAL)
    plain = gym_task(env_id, terminal_value=False)
    rows = []
    table = configs(*HORIZONS[env_id])
    with tqdm(total=len(table) * len(seeds), desc=env_id, unit="ep", file=sys.stderr) as bar:
        for config in table:
            rows.append(run_config(env_id, base, plain, config, seeds, bar))
    return {
        "dt": base.dynamics.dt,
        "steps": base.steps,
        "hint_horizon": base.hints.horizon,
        "short_horizon": HORIZONS[env_id][0],
        "cost_terms": list(plain.cost.names),
        "rows": rows,
    }


def headline_per_env(envs: dict[str, Any]) -> dict[str, float]:
    """MPPI at the short horizon: success with the value minus without it."""
    out = {}
    for env_id, res in envs.items():
        by_key = {r["key"]: r for r in res["rows"]}
        h = res["short_horizon"]
        gain = (
            by_key[f"mppi_h{h}_value"]["success_rate"] - by_key[f"mppi_h{h}_plain"]["success_rate"]
        )
        out[env_id] = round(float(gain), 4)
    return out


def print_table(env_id: str, res: dict[str, Any]) -> None:
    print(f"{env_id}: dt {res['dt']} s, {res['steps']} steps, cost {res['cost_terms']}")
    header = (
        f"{'planner':<20} {'H':>3} {'H s':>5} {'value':>5} {'success':>8} {'95% CI':>13} "
        f"{'steps med':>9} {'min':>5} {'final m':>8} {'ms mean':>8} {'ms p95':>7} {'>period':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in res["rows"]:
        lo, hi = r["success_ci95"]
        final = r.get("final_distance_median_m")
        print(
            f"{r['planner']:<20} {r['horizon']:>3} {r['horizon_s']:>5.2f} "
            f"{'on' if r['terminal_value'] else 'off':>5} {r['successes']:>3}/{r['episodes']:<4} "
            f"{f'[{lo:.2f},{hi:.2f}]':>13} {r['steps_median']:>9.0f} {r['steps_min']:>5} "
            f"{'-' if final is None else f'{final:.4f}':>8} {r['plan_ms_mean']:>8.2f} "
            f"{r['plan_ms_p95']:>7.2f} {r['over_period_share']:>7.1%}"
        )
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--episodes", type=int, default=DEFAULT_EPISODES,
        help=f"seeded episodes per configuration (seeds 0..N-1; default {DEFAULT_EPISODES})",
    )  # fmt: skip
    parser.add_argument("--envs", default=",".join(ENVS), help="comma-separated env ids")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    cli_args = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(cli_args)
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    env_ids = [e for e in args.envs.split(",") if e]
    unknown = [e for e in env_ids if e not in ENVS]
    if unknown:
        parser.error(f"unknown envs {unknown}; choose from {list(ENVS)}")

    load_start = round(os.getloadavg()[0], 2)
    t_start = time.perf_counter()
    seeds = list(range(args.episodes))
    envs = {env_id: run_env(env_id, seeds) for env_id in env_ids}
    per_env = headline_per_env(envs)
    headline = float(np.mean(list(per_env.values()))) if per_env else math.nan
    runtime = time.perf_counter() - t_start
    busy = [
        f"{env_id}/{r['key']} ({r['other_cpu_cores']:.2f} cores)"
        for env_id, res in envs.items()
        for r in res["rows"]
        if (r["other_cpu_cores"] or 0.0) > CONTENDED_CORES
    ]
    if busy:
        print(
            f"warning: other processes used more than {CONTENDED_CORES} cores during {busy}; "
            "those plan times are inflated (success is not: the episodes are simulated).",
            file=sys.stderr,
        )
    result = {
        "bench": "gym_tasks",
        "command": " ".join(["python bench/gym_tasks.py", *cli_args]),
        "library_version": __version__,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min_start": load_start,
        "load_avg_1min_end": round(os.getloadavg()[0], 2),
        "timing_contended": busy,
        "episodes": args.episodes,
        "seeds": seeds,
        "num_samples": SAMPLES,
        "envs": envs,
        HEADLINE: None if math.isnan(headline) else round(headline, 4),
        f"{HEADLINE}_per_env": per_env,
        "runtime_s": round(runtime, 1),
    }
    write_json_atomic(args.out, result)
    if args.json:
        summary = {
            "bench": "gym_tasks",
            "episodes": args.episodes,
            HEADLINE: result[HEADLINE],
            f"{HEADLINE}_per_env": per_env,
            "success": {
                env_id: {r["key"]: r["success_rate"] for r in res["rows"]}
                for env_id, res in envs.items()
            },
            "runtime_s": result["runtime_s"],
        }
        print(json.dumps(summary, separators=(",", ":"), sort_keys=True))
    else:
        print(
            f"Gymnasium MuJoCo tasks: {args.episodes} seeded episodes per configuration, "
            f"K = {SAMPLES} rollouts a plan, {result['cpu']} ({os.cpu_count()} cores), "
            f"1-min load {load_start} -> {result['load_avg_1min_end']}\n"
            "steps med / min: steps before the env ended the episode; final m: median final "
            "fingertip-target distance; >period: plans slower than the control period\n"
        )
        for env_id, res in envs.items():
            print_table(env_id, res)
        gains = ", ".join(f"{k} {v:+.2f}" for k, v in per_env.items())
        print(f"success with the value minus without (MPPI, short horizon): {gains}")
        print(f"results: {args.out}\nruntime: {runtime:.0f} s")
    value = "nan" if math.isnan(headline) else f"{headline:.4g}"
    print(f"{HEADLINE}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
