"""Environment steps per second: the batched env vs Gymnasium's SyncVectorEnv over the single env.

For each task and N in {64, 1024, 4096} (a MuJoCo task: N in {64, 256}), two vector
environments of the same task, in one process, measured alternately (which goes first
alternates too), median of the rounds:

* batched: ``imle_mpc.tasks.vector_env.vector_env(task, N)``, one ``BatchedDynamicsEnv``
  (one parallel Numba kernel a step over the N environments, Numba's default threads;
  for a MuJoCo task, ``push_block``, one threaded ``rollout_from_states`` call of the
  model's rollout pool, ``MujocoDynamics.num_threads`` threads);
* sync: ``gymnasium.vector.SyncVectorEnv`` over N copies of the task's single env, the
  same work per environment: ``TimeLimit(DynamicsEnv(task.dynamics, start, reward=minus
  the task's cost of the transition), task.steps)`` plus a wrapper that evaluates the
  task's safety constraints on the transition into ``info``, as the batched env does.

Both autoreset in the same step (``AutoresetMode.SAME_STEP``) and take the same random
actions in the box. A second mode, ``bare``, drops the reward and the constraints from
both (the physics, the clipping and the autoreset alone). Steps per second count
environment steps (N per vector step). The JSON records the load average before and
after and Numba's thread count; on a shared machine the ratio is noisy.

Usage:
    .venv/bin/python bench/vector_env.py [--tasks nav_one_obstacle,pendulum]
        [--rounds 3] [--json]

Writes ``bench/results/vector_env.json`` (atomically); the last line is
``batched_over_sync_steps_per_s_n1024: X`` (the first task, with reward and constraints,
N = 1024; target >= 50). A MuJoCo task first (``--tasks push_block``): N = 64 / 256,
``bench/results/vector_env_push.json``, ``push_block_batched_over_sync_steps_per_s_n256``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numba
import numpy as np
from _machine import cpu_name
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import TimeLimit

from imle_mpc import __version__
from imle_mpc.core.io import write_json_atomic
from imle_mpc.core.protocols import StepModel
from imle_mpc.loop.plant import DynamicsEnv
from imle_mpc.tasks import Task, make_task
from imle_mpc.tasks.vector_env import cost_reward, vector_env

RESULTS = Path(__file__).resolve().parent / "results" / "vector_env.json"
HEADLINE = "batched_over_sync_steps_per_s_n1024"
SIZES = (64, 1024, 4096)
MUJOCO_SIZES = (64, 256)
"""A MuJoCo step costs ~100x an analytic one: smaller N keep the run in minutes."""
MODES = ("task", "bare")
BATCHED_ENV_STEPS = 400_000  # environment steps per measurement (so ~0.1-0.5 s each)
SYNC_ENV_STEPS = 4_000
MUJOCO_BATCHED_ENV_STEPS = 40_000
MUJOCO_SYNC_ENV_STEPS = 2_000


def is_mujoco(task: Task) -> bool:
    """Whether the task's model steps through the rollout pool (no Numba step function)."""
    return not isinstance(task.dynamics, StepModel)


def sizes_of(task_name: str) -> tuple[int, ...]:
    """The N measured for a task: ``MUJOCO_SIZES`` for a MuJoCo task, else ``SIZES``."""
    return MUJOCO_SIZES if is_mujoco(make_task(task_name)) else SIZES


class SafetyInfo(gym.Wrapper[np.ndarray, np.ndarray, np.ndarray, np.ndarray]):
    """The single env's share of the batched env's work: the task's safety constraints
    on the transition (x_t, x_t+1), in ``info`` as ``constraint_violation``."""

    def __init__(self, env: gym.Env[np.ndarray, np.ndarray], constraints: Any) -> None:
        super().__init__(env)
        self._constraints = constraints
        self._x = np.zeros(env.observation_space.shape or ())

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._x = obs
        return obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        X = np.stack([self._x, obs])[None]
        U = np.clip(action, self.action_space.low, self.action_space.high)[None, None]  # type: ignore[attr-defined]
        info["constraint_violation"] = np.array([c.violation(X, U)[0] for c in self._constraints])
        self._x = obs
        return obs, reward, terminated, truncated, info


def single_env_factory(task: Task, mode: str) -> Any:
    """``make() -> Env``: the task's single env with the same per-env work as the batched."""
    batch_reward = cost_reward(task.cost)

    def reward(x: np.ndarray, u: np.ndarray, x_next: np.ndarray) -> float:
        return float(np.asarray(batch_reward(x[None], u[None], x_next[None]))[0])

    def make() -> gym.Env[Any, Any]:
        env: gym.Env[Any, Any] = DynamicsEnv(
            task.dynamics, task.initial_state, reward=reward if mode == "task" else None
        )
        env = TimeLimit(env, max_episode_steps=task.steps)
        return SafetyInfo(env, task.safety) if mode == "task" else env

    return make


def steps_per_second(env: Any, actions: np.ndarray, steps: int) -> float:
    """Environment steps per second over ``steps`` vector steps (actions reused cyclically)."""
    t0 = time.perf_counter()
    for s in range(steps):
        env.step(actions[s % len(actions)])
    return steps * env.num_envs / (time.perf_counter() - t0)


def measure(task_name: str, n: int, mode: str, rounds: int) -> dict[str, Any]:
    """Median steps/s of the batched and the sync env, alternating, ``rounds`` each."""
    task = make_task(task_name)
    batched = vector_env(task, n) if mode == "task" else vector_env(task, n, reward=None)
    if mode == "bare":
        batched.constraints = ()
    sync = SyncVectorEnv(
        [single_env_factory(task, mode)] * n, autoreset_mode=AutoresetMode.SAME_STEP
    )
    rng = np.random.default_rng(0)
    low, high = task.dynamics.action_low, task.dynamics.action_high
    actions = rng.uniform(low, high, size=(16, n, task.dynamics.nu))
    batched.reset(seed=0)
    sync.reset(seed=0)
    mujoco = is_mujoco(task)
    b_steps = max(20, (MUJOCO_BATCHED_ENV_STEPS if mujoco else BATCHED_ENV_STEPS) // n)
    s_steps = max(3, (MUJOCO_SYNC_ENV_STEPS if mujoco else SYNC_ENV_STEPS) // n)
    steps_per_second(batched, actions, 3)  # compile and warm up
    steps_per_second(sync, actions, 1)
    b_rates, s_rates = [], []
    for r in range(rounds):
        order = (("b", batched), ("s", sync)) if r % 2 == 0 else (("s", sync), ("b", batched))
        for which, env in order:
            if which == "b":
                b_rates.append(steps_per_second(env, actions, b_steps))
            else:
                s_rates.append(steps_per_second(env, actions, s_steps))
    sync.close()
    b, s = statistics.median(b_rates), statistics.median(s_rates)
    return {
        "task": task_name,
        "mode": mode,
        "num_envs": n,
        "batched_steps_per_s": round(b),
        "sync_steps_per_s": round(s),
        "ratio": round(b / s, 1),
        "batched_vector_steps": b_steps,
        "sync_vector_steps": s_steps,
        "rounds": rounds,
        "mujoco_threads": getattr(task.dynamics, "num_threads", None),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="nav_one_obstacle,pendulum", help="comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per point")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON results file (default: by the first task)"
    )
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    cli_args = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(cli_args)
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    tasks = [t for t in args.tasks.split(",") if t]
    load_before = os.getloadavg()[0]
    t_start = time.perf_counter()
    # The headline: the first task at N=1024 (a MuJoCo task first: at its largest N).
    head_n = 1024 if 1024 in sizes_of(tasks[0]) else max(sizes_of(tasks[0]))
    headline_name = HEADLINE if head_n == 1024 else f"{tasks[0]}_{HEADLINE[:-5]}n{head_n}"
    if args.out is None:  # a MuJoCo task first: its own file, vector_env.json stays nav's
        family = tasks[0].split("_")[0]
        args.out = RESULTS if head_n == 1024 else RESULTS.with_name(f"vector_env_{family}.json")
    rows = [
        measure(task, n, mode, args.rounds)
        for task in tasks
        for mode in MODES
        for n in sizes_of(task)
    ]
    load_after = os.getloadavg()[0]
    headline = next(
        r["ratio"]
        for r in rows
        if r["task"] == tasks[0] and r["mode"] == "task" and r["num_envs"] == head_n
    )
    result = {
        "bench": "vector_env",
        "command": " ".join(["python bench/vector_env.py", *cli_args]),
        "library_version": __version__,
        "gymnasium": gym.__version__,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "load_avg_1min_before": round(load_before, 2),
        "load_avg_1min_after": round(load_after, 2),
        "rows": rows,
        headline_name: headline,
        "runtime_s": round(time.perf_counter() - t_start, 1),
    }
    write_json_atomic(args.out, result)
    if max(load_before, load_after) > (os.cpu_count() or 1) * 0.5:
        print(
            f"warning: load average {load_before:.1f} -> {load_after:.1f} on "
            f"{os.cpu_count()} cores: other processes shared the CPU, the ratios are noisy.",
            file=sys.stderr,
        )
    if args.json:
        summary = {k: result[k] for k in ("bench", headline_name, "numba_threads", "runtime_s")}
        summary["ratios"] = {f"{r['task']}/{r['mode']}/{r['num_envs']}": r["ratio"] for r in rows}
        print(json.dumps(summary, separators=(",", ":"), sort_keys=True))
    else:
        print(
            f"vector env: {result['cpu']} ({os.cpu_count()} cores), numba "
            f"{result['numba_threads']} threads, load {load_before:.1f} -> {load_after:.1f}\n"
        )
        header = (
            f"{'task':18} {'mode':5} {'N':>5} {'batched steps/s':>16} {'sync steps/s':>13} "
            f"{'ratio':>7}"
        )
        print(header + "\n" + "-" * len(header))
        for r in rows:
            print(
                f"{r['task']:18} {r['mode']:5} {r['num_envs']:5d} {r['batched_steps_per_s']:16,d} "
                f"{r['sync_steps_per_s']:13,d} {r['ratio']:7.1f}"
            )
        print(f"results: {args.out}\nruntime: {result['runtime_s']:.0f} s")
    print(f"{headline_name}: {headline}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
