"""Offline RL in the flow's bounded latent vs in raw actions vs behaviour cloning (CNF).

``--task nav_one_obstacle`` (the default): a mixed-quality dataset
(``imle_mpc.tasks.bad_demos``): the 20 shipped expert demonstrations, 10 noisy ones
(N(0, 0.8 N) on every action), 5 that drive through the obstacle and 5 that stop halfway
(failing), seed 2; 40 episodes, 2400 transitions.

``--task push_block``: the 20 shipped expert pushes, 10 noisy ones (N(0, 0.03 m/s) on
every action), 4 pushed straight into the post, 3 that stop halfway and 3 whose pusher
slips off the block after 30 steps (failing), seed 2; 40 episodes, 4800 transitions.

Each step's reward is minus the task's cost of the transition times 0.1
(``imle_mpc.eval.offline.task_transitions``).

A flow over single actions given the state (``FlowConfig(horizon=1)``, 30 epochs) is
fitted to the dataset. The same agent (``imle_mpc.learn.offline.TD3BC``: TD3+BC,
alpha 2.5, 2 x 64 networks, ``--steps`` updates; ``--seeds`` training seeds) learns

* ``latent``: in the flow's latent box (the dataset's actions encoded through the
  flow's exact inverse; the actor's tanh output decoded by the flow);
* ``raw``: in the actuator box;
* ``bc``: behaviour cloning in the actuator box (alpha 0);
* ``latent_td3`` / ``raw_td3``: TD3 without the cloning term (the CNF paper's agent
  relies on the bounded latent alone), in each box.

Each runs as a planner (``AgentPlanner``: its rollout over the task's planning horizon
on the model, 16 steps for navigation, 10 on MuJoCo for pushing, so the guard checks a
stopping distance of its intentions) in guarded episodes with the task's stated faults
(observation noise, pushes, dropped plans, model mismatch), seeds 0..``--episodes``-1:
success (over every seed's episodes; per seed in the JSON), return (the same reward
over the true states), violation steps, the guard's
interventions (fallback steps) and the share of executed actions the flow calls unlikely
(below its 2 % threshold: outside the data's support); then ``--unguarded`` episodes
per seed without the guard: success and violation steps.

Defaults per task (``SETUPS``; the flags override them): navigation 15k updates, 3
seeds, 20 + 10 episodes a seed; pushing 5k updates, 2 seeds, 8 + 2 episodes a seed
and 10-step agent plans (a push episode is 120 steps, each plan a rollout decoded
through the flow step by step: about 4 CPU-s an episode for the latent agent; the
budget is cut so that the run fits 15 min on two cores shared with a load of 8-10).

Results: ``bench/results/offline_latent.json`` / ``offline_latent_push.json``
(atomically). Last line: ``latent_minus_raw_success: X`` (navigation) or
``push_latent_minus_raw_success: X``. ``--save DIR`` also writes each agent of the
first training seed and the flow (``imle_mpc.learn.offline.save_agent``).

    .venv/bin/python bench/offline_latent.py          # latent, raw, bc, 3 seeds: ~12 min
    .venv/bin/python bench/offline_latent.py --agents latent_td3 raw_td3 \
        --out bench/results/offline_latent_td3.json      # the TD3-only rows, ~7 min
    .venv/bin/python bench/offline_latent.py --task push_block   # ~4 CPU-min
    .venv/bin/python bench/offline_latent.py --quick     # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _machine import cpu_name, cpu_seconds, other_cpu_load, torch_threads
from tqdm.auto import tqdm

from imle_mpc import __version__
from imle_mpc.core.io import write_json_atomic
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode
from imle_mpc.eval.offline import AgentPlanner, episode_return, task_transitions
from imle_mpc.learn.config import FlowConfig, OfflineRLConfig, TrainConfig
from imle_mpc.learn.flow import ChunkFlow, save_flow, train_flow
from imle_mpc.learn.offline import TD3BC, ActionSpace, FlowLatent, RawBox, save_agent
from imle_mpc.tasks import Task, make_task
from imle_mpc.tasks.bad_demos import mixed_dataset


@dataclass(frozen=True)
class Setup:
    """A task's comparison: its dataset, budgets and result names."""

    bad: dict[str, int]
    steps: int
    seeds: int
    episodes: int
    unguarded: int
    goal_dims: tuple[int, int]
    agent_horizon: int | None
    headline: str
    results: str


SETUPS = {
    "nav_one_obstacle": Setup(
        bad={"noisy": 10, "through_obstacle": 5, "stop_short": 5},
        steps=15_000, seeds=3, episodes=20, unguarded=10, goal_dims=(0, 1), agent_horizon=None,
        headline="latent_minus_raw_success", results="offline_latent.json",
    ),
    "push_block": Setup(
        bad={"noisy": 10, "through_post": 4, "stop_short": 3, "lose_contact": 3},
        steps=5_000, seeds=2, episodes=8, unguarded=2, goal_dims=(2, 3), agent_horizon=10,
        headline="push_latent_minus_raw_success", results="offline_latent_push.json",
    ),
}  # fmt: skip
"""Per task: the bad episodes mixed in (seed ``DATA_SEED``), the default budgets, the
state dims the goal is a position of (the robot's for navigation, the block's for
pushing), the agent's plan length (None: the task's horizon; pushing: 10 steps, 0.5 s,
since the latent agent decodes each step through the flow, 10 ms a decode on the loaded
machine, and the velocity-driven pusher stops within two steps: 0.3 to 0.01 m/s in
0.1 s), the headline and the results file."""
DATA_SEED = 2
REWARD_SCALE = 0.1
HIDDEN = (64, 64)
FLOW_EPOCHS = 30
QUANTILE = 0.02
AGENTS: dict[str, tuple[str, float, float]] = {
    # name: (space, alpha, bc_weight)
    "latent": ("latent", 2.5, 1.0),
    "raw": ("raw", 2.5, 1.0),
    "bc": ("raw", 0.0, 1.0),
    "latent_td3": ("latent", 2.5, 0.0),
    "raw_td3": ("raw", 2.5, 0.0),
}
DEFAULT_AGENTS = ("latent", "raw", "bc")
"""The comparison the headline is of; the TD3-only rows run on their own (``--agents
latent_td3 raw_td3 --out bench/results/offline_latent_td3.json``), each run under 15 min."""
RESULTS_DIR = Path(__file__).parent / "results"


def unlikely_share(flow: ChunkFlow, threshold: float, states: np.ndarray, U: np.ndarray) -> float:
    """Share of executed actions whose flow log-density (given the state) is below ``threshold``."""
    lp = flow.log_prob(states[:-1, None, :], U[:, None, :])
    return float(np.mean(lp < threshold))


def evaluate(
    task: Task,
    agent: TD3BC,
    space: ActionSpace,
    flow: ChunkFlow,
    episodes: int,
    unguarded: int,
    goal_dims: tuple[int, int],
    horizon: int | None,
    bar: tqdm,
) -> dict[str, Any]:
    """Guarded episodes with the task's faults, seeds 0..episodes-1, then ``unguarded``
    episodes without the guard (seeds 0..unguarded-1)."""
    threshold = flow.threshold(QUANTILE)
    rows = []
    t0, mark = time.perf_counter(), cpu_seconds()
    for seed in range(episodes):
        planner = AgentPlanner(task, agent, space, horizon)
        record = run_episode(task, planner, seed, guard=True, faults=task.faults)
        outcome = EpisodeOutcome.of(task, record)
        states = record.states if record.true_states is None else record.true_states
        rows.append(
            {
                "seed": seed,
                "success": outcome.success,
                "return": episode_return(task, record, REWARD_SCALE),
                "violation_steps": outcome.violation_steps,
                "fallback_steps": outcome.fallback_steps,
                "unlikely_actions": unlikely_share(flow, threshold, states, record.actions),
                "final_distance": float(
                    np.linalg.norm(states[-1, list(goal_dims)] - np.asarray(task.goal))
                ),
            }
        )
        bar.update()
    wall = time.perf_counter() - t0
    bare = []
    for seed in range(unguarded):  # the same agent with nothing checking it
        planner = AgentPlanner(task, agent, space, horizon)
        record = run_episode(task, planner, seed, guard=False, faults=task.faults)
        bare.append(EpisodeOutcome.of(task, record))
        bar.update()
    return {
        "unguarded": {
            "episodes": unguarded,
            "success": sum(o.success for o in bare),
            "violation_steps": sum(o.violation_steps for o in bare),
            "episodes_with_violations": sum(o.violation_steps > 0 for o in bare),
        },
        "episodes": episodes,
        "success": sum(r["success"] for r in rows),
        "success_rate": round(sum(r["success"] for r in rows) / episodes, 4),
        "return_mean": round(float(np.mean([r["return"] for r in rows])), 2),
        "violation_steps": sum(r["violation_steps"] for r in rows),
        "fallback_steps": sum(r["fallback_steps"] for r in rows),
        "unlikely_actions": round(float(np.mean([r["unlikely_actions"] for r in rows])), 4),
        "eval_s": round(wall, 1),
        "other_cpu_load": other_cpu_load(mark, wall),
        "per_episode": rows,
    }


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The runs of one agent (one a training seed) added up: success over all episodes,
    means of return and unlikely share, sums of violations, fallbacks and training time."""
    episodes = sum(r["episodes"] for r in runs)
    success = sum(r["success"] for r in runs)
    return {
        "episodes": episodes,
        "success": success,
        "success_rate": round(success / episodes, 4),
        "success_by_seed": [r["success_rate"] for r in runs],
        "return_mean": round(float(np.mean([r["return_mean"] for r in runs])), 2),
        "violation_steps": sum(r["violation_steps"] for r in runs),
        "fallback_steps": sum(r["fallback_steps"] for r in runs),
        "unlikely_actions": round(float(np.mean([r["unlikely_actions"] for r in runs])), 4),
        "train_s": round(sum(r["train_s"] for r in runs), 1),
        "unguarded": {
            k: sum(r["unguarded"][k] for r in runs)
            for k in ("episodes", "success", "violation_steps", "episodes_with_violations")
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="nav_one_obstacle", choices=sorted(SETUPS))
    parser.add_argument("--episodes", type=int, help="seeds per agent (default: the task's)")
    parser.add_argument("--steps", type=int, help="gradient steps per agent (the task's)")
    parser.add_argument("--agents", nargs="+", default=list(DEFAULT_AGENTS), choices=list(AGENTS))
    parser.add_argument(
        "--unguarded", type=int, help="episodes per seed without the guard (the task's)"
    )
    parser.add_argument("--seeds", type=int, help="training seeds per agent (the task's)")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny budgets")
    parser.add_argument("--out", type=Path, help="JSON results file (the task's default)")
    parser.add_argument("--save", type=Path, help="write each agent of seed 0 and the flow here")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    cli_args = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(cli_args)
    setup = SETUPS[args.task]
    steps = setup.steps if args.steps is None else args.steps
    episodes = setup.episodes if args.episodes is None else args.episodes
    seeds = setup.seeds if args.seeds is None else args.seeds
    flow_epochs = FLOW_EPOCHS
    if args.quick:
        steps, episodes, flow_epochs = 200, 2, 3
    out = RESULTS_DIR / setup.results if args.out is None else args.out
    headline_name = setup.headline
    t_start, mark = time.perf_counter(), cpu_seconds()
    task = make_task(args.task)
    data = mixed_dataset(task, task.load_demonstrations(), setup.bad, seed=DATA_SEED)
    model: Any = task.dynamics
    raw_space = RawBox(model.action_low, model.action_high)
    dataset_return = float(
        task_transitions(task, data, raw_space, REWARD_SCALE).rewards.sum() / len(data.episodes)
    )
    agents: dict[str, Any] = {}
    with torch_threads(1):
        t0 = time.perf_counter()
        flow_config = FlowConfig(horizon=1, action_horizon=1)
        flow_train = TrainConfig(epochs=flow_epochs, warmup_steps=20, seed=0)
        flow, _ = train_flow(data, flow_config, flow_train, progress=False)
        flow_s = time.perf_counter() - t0
        flow_file = None if args.save is None else save_flow(flow, args.save / "flow.safetensors")
        spaces: dict[str, ActionSpace] = {"latent": FlowLatent(flow), "raw": raw_space}
        unguarded = min(episodes, setup.unguarded if args.unguarded is None else args.unguarded)
        total = (episodes + unguarded) * len(args.agents) * seeds
        with tqdm(total=total, unit="ep", file=sys.stderr) as bar:
            for name in args.agents:
                space_name, alpha, bc_weight = AGENTS[name]
                space = spaces[space_name]
                transitions = task_transitions(task, data, space, REWARD_SCALE)
                runs = []
                for seed in range(seeds):
                    bar.set_postfix_str(f"training {name} seed {seed}")
                    config = OfflineRLConfig(
                        steps=steps, alpha=alpha, bc_weight=bc_weight, hidden=HIDDEN, seed=seed
                    )
                    t0 = time.perf_counter()
                    agent = TD3BC(transitions, config)
                    history = agent.fit(progress=False, log_every=max(1, steps // 10))
                    train_s = time.perf_counter() - t0
                    bar.set_postfix_str(f"evaluating {name} seed {seed}")
                    runs.append(
                        {
                            "seed": seed,
                            "train_s": round(train_s, 1),
                            "critic_loss": [round(v, 4) for v in history.critic_loss],
                            "bc_loss": [round(v, 4) for v in history.bc_loss],
                            **evaluate(
                                task,
                                agent,
                                space,
                                flow,
                                episodes,
                                unguarded,
                                setup.goal_dims,
                                setup.agent_horizon,
                                bar,
                            ),
                        }
                    )
                    if args.save is not None and seed == 0:
                        file = args.save / f"{name}.safetensors"
                        save_agent(agent, space, file, flow_file=flow_file, task=task.name)
                agents[name] = {
                    "space": space_name,
                    "alpha": alpha,
                    "bc_weight": bc_weight,
                    **pooled(runs),
                    "runs": runs,
                }
    wall = time.perf_counter() - t_start
    have = set(agents)
    headline = (
        agents["latent"]["success_rate"] - agents["raw"]["success_rate"]
        if {"latent", "raw"} <= have
        else float("nan")
    )
    result = {
        "bench": "offline_latent",
        "command": " ".join(["python bench/offline_latent.py", *cli_args]),
        "library_version": __version__,
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "other_cpu_load": other_cpu_load(mark, wall),
        "task": args.task,
        "bad": setup.bad,
        "data_seed": DATA_SEED,
        "seeds": seeds,
        "episodes_in_dataset": len(data.episodes),
        "transitions": data.num_steps,
        "dataset_return_per_episode": round(dataset_return, 2),
        "reward_scale": REWARD_SCALE,
        "flow": {"epochs": flow_epochs, "train_s": round(flow_s, 1), "quantile": QUANTILE},
        "steps": steps,
        "hidden": list(HIDDEN),
        "agents": agents,
        headline_name: headline,
        "runtime_s": round(wall, 1),
    }
    write_json_atomic(out, result)
    print_table(result)
    if args.json:
        summary = {"bench": "offline_latent", "task": args.task, headline_name: headline}
        summary["success"] = {k: v["success_rate"] for k, v in agents.items()}
        print(json.dumps(summary, sort_keys=True))
    print(f"{headline_name}: {headline:.4f}")
    return 0


def print_table(result: dict[str, Any]) -> None:
    print(f"\ndataset: {result['episodes_in_dataset']} episodes, return/episode "
          f"{result['dataset_return_per_episode']}")  # fmt: skip
    print(f"{'agent':<12} {'success':>8} {'return':>9} {'violations':>10} {'guard':>6} "
          f"{'unlikely':>8} {'train s':>8}  unguarded: success, violations (episodes)")  # fmt: skip
    for name, a in result["agents"].items():
        u = a["unguarded"]
        print(
            f"{name:<12} {a['success']:>4}/{a['episodes']:<3} {a['return_mean']:>9.1f} "
            f"{a['violation_steps']:>10} {a['fallback_steps']:>6} {a['unlikely_actions']:>8.0%} "
            f"{a['train_s']:>8.1f}  {u['success']}/{u['episodes']}, {u['violation_steps']} "
            f"({u['episodes_with_violations']})"
        )


if __name__ == "__main__":
    raise SystemExit(main())
