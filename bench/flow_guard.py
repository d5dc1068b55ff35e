"""The flow's density guard on a shifted navigation scenario: what it flags, what it changes.

``nav_two_obstacles`` (four demonstrated routes past two discs) and a shifted copy of it
in which a disc at (2.0, 1.0), radius 0.3, blocks both demonstrated routes above the
first obstacle (``blocked_task``). The flow (``imle_mpc.learn.flow``) is trained here on
the task's 40 shipped demonstrations (``FlowConfig()``: 6 coupling layers of box
splines, obs horizon 1; 8 episodes held out, 2 per route; seed 0) or loaded with
``--flow DIR``. The guard's threshold is the 2 % quantile of the held-out
demonstrations' log-densities (``ChunkFlow.threshold(0.02)``); a chunk below it is
flagged.

1. False alarms: every (state, chunk) pair of 16 fresh expert demonstrations (seed
   1000, never seen by the flow or its calibration), unshifted scenario; the flagged
   share is ``in_distribution_false_alarm_rate`` (target <= 0.05).
2. What is flagged: guarded MPPI (K = 256) and guarded IMLE-MPC (the shipped generator,
   N = 16) run the shifted scenario; every 4th step their whole batch of proposals is
   kept with its predicted states. A proposal made from a demonstrated state (within 0.1
   of one) is labelled by its predicted states alone, without the flow: out of
   distribution (OOD) when one of them lies farther than 0.3 from every demonstrated
   state (positions in m, velocities weighted by 0.5 s), in distribution when all lie
   within 0.1 (between, or from an undemonstrated state: not labelled).
   ``ood_proposals_flagged_fraction`` is the flagged share of the OOD proposals
   (target >= 0.9); the flagged shares of the in-distribution proposals and of each
   source (MPPI samples, generator chunks, their perturbations) are in the JSON.
3. What it does: seeded guarded episodes on both scenarios for IMLE-MPC and MPPI, each
   without and with the density constraint in the planner (hard for IMLE-MPC; soft,
   ``MPPI_DENSITY_WEIGHT`` per nat, for MPPI, whose white-noise samples are all
   flagged), IMLE-MPC on the flow's proposals, and latent CEM in the flow's box vs in
   the generator's latent (``LatentIMLEMPC``, 33 samples, 3 iterations). Per
   configuration: success, violation steps, fallback steps, plan time, the share of
   executed plans that are flagged, and the share of candidates in support (inside the
   demonstrations' action range and above the threshold). The density constraint stays
   out of the guard: the guard executes the least total violation when no fallback
   passes, and a brake is never like a demonstration.

Results: ``bench/results/flow_guard.json`` (atomically). Last line:
``ood_proposals_flagged_fraction: X`` with the false-alarm rate beside it.

    .venv/bin/python bench/flow_guard.py                 # ~10 min on 2 cores
    .venv/bin/python bench/flow_guard.py --episodes 2 --epochs 5 --json   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _machine import cpu_name, cpu_seconds, other_cpu_load, torch_threads
from scipy.spatial import cKDTree
from tqdm.auto import tqdm

from cost import DensityConstraint, ObstacleConstraint, Scene
from imle_mpc import __version__
from imle_mpc.core.io import write_json_atomic
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.wrapper import PlannerWrapper
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode
from imle_mpc.eval.factory import make_planner
from imle_mpc.learn.config import FlowConfig, TrainConfig
from imle_mpc.learn.demos import DemoDataset, Episode
from imle_mpc.learn.flow import ChunkFlow, train_flow
from imle_mpc.learn.pairs import build_training_pairs
from imle_mpc.tasks import Task, make_task
from imle_mpc.tasks.experts import observation, simulate
from imle_mpc.tasks.navigation import (
    NAV_GOAL_TOLERANCE,
    NAV_LAYOUTS,
    NAV_OBSTACLE_MARGIN,
    NavigationExpert,
    arrived_clear,
    nav_reference_path,
    planar_goal_cost,
)
from planners.imle import (
    IMLEMPC,
    IMLEMPCConfig,
    IMLEProposals,
    LatentIMLEMPC,
    LatentPlanConfig,
)

RESULTS = Path(__file__).resolve().parent / "results" / "flow_guard.json"
TASK = "nav_two_obstacles"
BLOCKER = (2.0, 1.0, 0.3)
"""The disc that blocks the demonstrated routes above the first obstacle."""
QUANTILE = 0.02
FRESH_DEMOS, FRESH_SEED = 16, 1000
EPOCHS = 60
KEEP_EVERY = 4
"""Every how many steps a planner's whole batch of proposals is kept for the labels."""
OOD_DISTANCE, IN_DISTANCE = 0.3, 0.1
VELOCITY_WEIGHT = 0.5
"""Seconds: a velocity difference of 1 m/s counts like 0.5 m of position."""
DEFAULT_EPISODES = 6
MPPI_DENSITY_WEIGHT = 0.01
DETOUR_HEIGHT = 1.75
HEADLINE = "ood_proposals_flagged_fraction"


def blocked_task(task: Task) -> Task:
    """``task`` with ``BLOCKER`` added to its obstacles (cost, constraints, safety, success)."""
    layout = NAV_LAYOUTS[task.name]
    scene = Scene(
        circles=[*[list(c) for c in layout.obstacles], list(BLOCKER)],
        capsules=[list(w) for w in layout.walls],
    )
    goal = layout.goal_state
    return replace(
        task,
        name=f"{task.name}_blocked",
        cost=planar_goal_cost(goal, scene),
        constraints=(ObstacleConstraint(scene, margin=NAV_OBSTACLE_MARGIN),),
        safety_constraints=(ObstacleConstraint(scene, margin=0.0, name="collision"),),
        scene=scene,
        success=arrived_clear(scene, goal[:2].copy(), NAV_GOAL_TOLERANCE),
    )


def get_flow(path: Path | None, epochs: int) -> tuple[ChunkFlow, dict[str, Any]]:
    """The flow of ``path``, or one trained here on the task's shipped demonstrations."""
    task = make_task(TASK)
    if path is not None:
        return task.load_flow(path), {"loaded": str(path)}
    t0 = time.perf_counter()
    with torch_threads(1):
        flow, history = train_flow(
            task.load_demonstrations(), FlowConfig(),
            TrainConfig(epochs=epochs, warmup_steps=50, seed=0), progress=False,
        )  # fmt: skip
    info = {
        "epochs": epochs,
        "train_s": round(time.perf_counter() - t0, 1),
        "final_nll": round(history.loss[-1], 3),
        "held_out_nll": round(history.held_out_nll[-1], 3),
    }
    return flow, info


class Recorder(PlannerWrapper):
    """Keeps what the wrapped planner returned at each step (and every few steps its batch)."""

    def __init__(self, planner: Any, keep_every: int) -> None:
        super().__init__(planner)
        self.keep_every = keep_every
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            super().reset(seed)
        self.states: list[np.ndarray] = []
        self.plans: list[np.ndarray] = []
        self.batches: list[tuple[np.ndarray, np.ndarray]] = []

    def plan(self, state: np.ndarray) -> PlanResult:
        result = self.planner.plan(state)
        step = len(self.plans)
        self.states.append(np.array(state, dtype=np.float64))
        self.plans.append(result.actions.copy())
        if result.samples is not None and step % self.keep_every == 0:
            self.batches.append((self.states[-1], result.samples[0].copy()))
        return result


@dataclass
class Flagging:
    """The flow's verdict on chunks: log-density, in range, flagged."""

    flow: ChunkFlow
    threshold: float
    log_probs: list[np.ndarray] = field(default_factory=list)

    def judge(self, states: np.ndarray, chunks: np.ndarray) -> np.ndarray:
        """Log-densities Shape=(K,) of chunks Shape=(K, H, nu) each from its state Shape=(K, nx)."""
        out = []
        for start in range(0, len(chunks), 512):
            obs = observation(states[start : start + 512])[:, None]
            out.append(self.flow.log_prob(obs, chunks[start : start + 512]))
        return np.concatenate(out) if out else np.zeros(0)


def demo_state_tree(task: Task) -> cKDTree:
    """All demonstrated states, velocities weighted, as a KD-tree (for the flow-free labels)."""
    states = np.concatenate([ep.states for ep in task.load_demonstrations().episodes])
    return cKDTree(_weighted(states))


def _weighted(states: np.ndarray) -> np.ndarray:
    out = np.array(states[..., :4], dtype=np.float64)
    out[..., 2:] *= VELOCITY_WEIGHT
    return out


def label_proposals(tree: cKDTree, X: np.ndarray) -> np.ndarray:
    """Per proposal: 1 OOD, 0 in distribution, -1 not labelled; X Shape=(K, H+1, nx).

    Only proposals from a demonstrated state (X[:, 0] within ``IN_DISTANCE``) are
    labelled: from a state no demonstration visited, every proposal would be OOD.
    """
    start, _ = tree.query(_weighted(X[:1, 0]))
    if start[0] >= IN_DISTANCE:
        return np.full(X.shape[0], -1)
    dist, _ = tree.query(_weighted(X[:, 1:]).reshape(-1, 4))
    worst = dist.reshape(X.shape[0], -1).max(axis=1)
    return np.where(worst > OOD_DISTANCE, 1, np.where(worst < IN_DISTANCE, 0, -1))


def detour_probe(task: Task, flag: Flagging, tree: cKDTree) -> dict[str, Any]:
    """Smooth chunks no demonstration shows: the expert over the blocker at ``DETOUR_HEIGHT``.

    The navigation expert follows the two routes above the first obstacle with a detour
    bump of ``DETOUR_HEIGHT`` m there (the demonstrations' is 1.0 m, 10 % jitter) on the
    shifted scenario; its (state, chunk) pairs are labelled like the planners' proposals.
    """
    layout = NAV_LAYOUTS[TASK]
    model: Any = task.dynamics
    goal = np.asarray(layout.goal, dtype=np.float64)
    labels, flagged = [], []
    for route in ("above-above", "above-below"):
        x0 = np.array(task.initial_state, dtype=np.float64)
        heights = [DETOUR_HEIGHT, layout.detour_points[1].height]
        path = nav_reference_path(layout, route, start=x0[:2], heights=heights)
        run = simulate(task, x0, NavigationExpert(path, goal, model.mass, model.drag))
        episode = Episode(observation(run.states[:-1]), run.states[:-1], run.actions)
        pairs = build_training_pairs(DemoDataset((episode,)), 1, flag.flow.horizon)
        states = run.states[:-1]
        lp = flag.judge(states, pairs.actions)
        for k in range(len(states)):
            X = task.dynamics.rollout(states[k], pairs.actions[k : k + 1])
            labels.append(int(label_proposals(tree, X)[0]))
        flagged.append(lp < flag.threshold)
    lab, flg = np.array(labels), np.concatenate(flagged)
    ood = lab == 1
    return {
        "detour_height_m": DETOUR_HEIGHT,
        "chunks": int(lab.size),
        "ood": int(ood.sum()),
        "ood_flagged": round(float(flg[ood].mean()), 4) if ood.any() else None,
        "all_flagged": round(float(flg.mean()), 4),
    }


def false_alarms(flag: Flagging) -> dict[str, Any]:
    """Flagged share of fresh expert demonstrations' (state, chunk) pairs."""
    fresh = make_task(TASK).generate_demonstrations(num_demos=FRESH_DEMOS, seed=FRESH_SEED)
    pairs = build_training_pairs(fresh, flag.flow.obs_horizon, flag.flow.horizon)
    lp = flag.flow.log_prob(pairs.obs, pairs.actions)
    return {
        "demos": FRESH_DEMOS,
        "seed": FRESH_SEED,
        "chunks": len(pairs),
        "flagged": int(np.sum(lp < flag.threshold)),
        "rate": round(float(np.mean(lp < flag.threshold)), 4),
        "log_prob_median": round(float(np.median(lp)), 2),
    }


@dataclass(frozen=True)
class Config:
    """A planner configuration: ``build(task, seed, density) -> planner`` (record_samples on)."""

    key: str
    method: str
    build: Callable[[Task, int, DensityConstraint | None], Any]
    density: str = "none"  # "none", "hard" or "soft": the density constraint in the planner
    sources: tuple[tuple[str, int, int], ...] = ()
    """Rows of the batch by source: (name, first row, end row); end -1: to the last."""


def configs(generator: Any, flow: ChunkFlow) -> list[Config]:
    def imle(chunks: Any) -> Callable[[Task, int, Any], Any]:
        def build(task: Task, seed: int, density: Any) -> Any:
            config = IMLEMPCConfig(
                horizon=16, num_samples=33, seed=seed, record_samples=True,
                proposals=IMLEProposals(num_imle=16),
            )  # fmt: skip
            constraints = (*task.constraints, *(() if density is None else (density,)))
            return IMLEMPC(task.dynamics, task.cost, chunks, observation, config, constraints)

        return build

    def latent(chunks: Any, bound: float, sigma: float) -> Callable[[Task, int, Any], Any]:
        def build(task: Task, seed: int, density: Any) -> Any:
            config = LatentPlanConfig(
                horizon=16, num_samples=33, iterations=3, num_elites=6, latent_bound=bound,
                init_sigma=sigma, seed=seed, record_samples=True,
            )  # fmt: skip
            constraints = (*task.constraints, *(() if density is None else (density,)))
            return LatentIMLEMPC(task.dynamics, task.cost, chunks, observation, config, constraints)

        return build

    def mppi(task: Task, seed: int, density: Any) -> Any:
        shaped = (
            task if density is None else replace(task, constraints=(*task.constraints, density))
        )
        return make_planner("mppi", shaped, seed, num_samples=256, record_samples=True)

    imle_rows = (("warm start", 0, 1), ("generator chunks", 1, 17), ("perturbed chunks", 17, -1))
    return [
        Config("imle_mpc", "IMLE-MPC (generator)", imle(generator), "none", imle_rows),
        Config("imle_mpc_density", "IMLE-MPC (generator) + density", imle(generator), "hard"),
        Config("mppi", "MPPI K=256", mppi, "none", (("MPPI samples", 0, -1),)),
        Config("mppi_density", "MPPI K=256 + soft density", mppi, "soft"),
        Config("imle_mpc_flow", "IMLE-MPC (flow proposals)", imle(flow), "none"),
        Config("latent_flow", "latent CEM, flow box", latent(flow, 1.0, 0.5), "none"),
        Config("latent_generator", "latent CEM, generator", latent(generator, 2.0, 1.0), "none"),
    ]


def run_config(
    config: Config, task: Task, flag: Flagging, tree: cKDTree | None, seeds: list[int], bar: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Episodes of one configuration; its row, and its labelled proposals (with ``tree``)."""
    density = None
    if config.density != "none":
        hard = config.density == "hard"
        density = DensityConstraint(
            flag.flow, observation, flag.threshold, hard=hard,
            weight=1.0 if hard else MPPI_DENSITY_WEIGHT,
        )  # fmt: skip
    outcomes, executed, candidates, proposals = [], [], [], []
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    for seed in seeds:
        recorder = Recorder(config.build(task, seed, density), KEEP_EVERY)
        record = run_episode(task, recorder, seed=seed, guard=True)
        outcomes.append(EpisodeOutcome.of(task, record))
        lp = flag.judge(np.array(recorder.states), np.array(recorder.plans))
        executed.append(lp < flag.threshold)
        for state, U in recorder.batches:
            lp_batch = flag.judge(np.repeat(state[None], len(U), 0), U)
            in_range = np.isfinite(lp_batch)
            candidates.append(in_range & (lp_batch >= flag.threshold))
            if tree is not None and config.sources:
                X = task.dynamics.rollout(state, U)
                labels = label_proposals(tree, X)
                for name, first, end in config.sources:
                    rows = slice(first, None if end < 0 else end)
                    proposals.append(
                        {
                            "source": name,
                            "label": labels[rows],
                            "flagged": lp_batch[rows] < flag.threshold,
                        }
                    )
        bar.update(1)
    wall = time.perf_counter() - t0
    n = len(seeds)
    times = np.array([o.plan_ms_mean for o in outcomes])
    row = {
        "key": config.key,
        "method": config.method,
        "density_in_planner": config.density,
        "episodes": n,
        "success_rate": sum(o.success for o in outcomes) / n,
        "violation_steps": sum(o.violation_steps for o in outcomes),
        "episodes_with_violation": sum(o.violation_steps > 0 for o in outcomes),
        "fallback_steps": sum(o.fallback_steps for o in outcomes),
        "routes": sorted({str(o.route) for o in outcomes}),
        "executed_plans_flagged": round(float(np.mean(np.concatenate(executed))), 4),
        "candidates_in_support": round(float(np.mean(np.concatenate(candidates))), 4)
        if candidates
        else None,
        "plan_ms_mean": round(float(times.mean()), 2),
        "plan_ms_p95": round(float(np.percentile([o.plan_ms_p95 for o in outcomes], 50)), 2),
        "wall_s": round(wall, 1),
        "other_cpu_cores": other_cpu_load(cpu0, wall),
    }
    return row, proposals


def summarise_proposals(proposals: list[dict[str, Any]]) -> dict[str, Any]:
    """Flagged shares of the OOD and in-distribution proposals, overall and per source."""

    def shares(items: list[dict[str, Any]]) -> dict[str, Any]:
        labels = np.concatenate([p["label"] for p in items])
        flagged = np.concatenate([p["flagged"] for p in items])
        ood, ind = labels == 1, labels == 0
        return {
            "proposals": int(labels.size),
            "ood": int(ood.sum()),
            "in_distribution": int(ind.sum()),
            "unlabelled": int((labels < 0).sum()),
            "ood_flagged": round(float(flagged[ood].mean()), 4) if ood.any() else None,
            "in_distribution_flagged": round(float(flagged[ind].mean()), 4) if ind.any() else None,
        }

    sources = sorted({p["source"] for p in proposals})
    return {
        "all": shares(proposals),
        "by_source": {s: shares([p for p in proposals if p["source"] == s]) for s in sources},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=DEFAULT_EPISODES, help="seeds per config")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="flow training epochs")
    parser.add_argument("--flow", type=Path, default=None, help="a trained flow DIR instead")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    cli_args = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(cli_args)
    if args.episodes < 1 or args.epochs < 1:
        parser.error("--episodes and --epochs must be >= 1")
    t_start = time.perf_counter()
    flow, flow_info = get_flow(args.flow, args.epochs)
    flag = Flagging(flow, flow.threshold(QUANTILE))
    alarms = false_alarms(flag)
    nominal = make_task(TASK)
    shifted = blocked_task(nominal)
    generator = nominal.load_generator()
    tree = demo_state_tree(nominal)
    seeds = list(range(args.episodes))
    rows: dict[str, list[dict[str, Any]]] = {}
    proposals: list[dict[str, Any]] = []
    plan = configs(generator, flow)
    with tqdm(total=2 * len(plan) * len(seeds), unit="ep", file=sys.stderr) as bar:
        for task in (shifted, nominal):
            rows[task.name] = []
            for config in plan:
                bar.set_postfix_str(f"{task.name} {config.key}")
                labelled = tree if task is shifted else None
                row, kept = run_config(config, task, flag, labelled, seeds, bar)
                rows[task.name].append(row)
                proposals += kept
    flagged = summarise_proposals(proposals)
    detour = detour_probe(shifted, flag, tree)
    headline = flagged["all"]["ood_flagged"]
    result = {
        "bench": "flow_guard",
        "command": " ".join(["python bench/flow_guard.py", *cli_args]),
        "library_version": __version__,
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "task": TASK,
        "blocker": BLOCKER,
        "flow": flow_info | {"held_out_chunks": flow.calibration.size if flow.calibration else 0},
        "quantile": QUANTILE,
        "threshold": round(flag.threshold, 3),
        "labels": {
            "ood_distance": OOD_DISTANCE,
            "in_distance": IN_DISTANCE,
            "velocity_weight_s": VELOCITY_WEIGHT,
            "keep_every": KEEP_EVERY,
        },
        "in_distribution_false_alarm": alarms,
        "proposals": flagged,
        "smooth_detour_probe": detour,
        "episodes": rows,
        HEADLINE: headline,
        "in_distribution_false_alarm_rate": alarms["rate"],
        "runtime_s": round(time.perf_counter() - t_start, 1),
    }
    write_json_atomic(args.out, result)
    print_tables(result)
    if args.json:
        summary = {k: result[k] for k in ("bench", HEADLINE, "in_distribution_false_alarm_rate")}
        summary["success"] = {
            name: {r["key"]: r["success_rate"] for r in task_rows}
            for name, task_rows in rows.items()
        }
        print(json.dumps(summary, sort_keys=True))
    print(f"{HEADLINE}: {headline:.4f}  (in-distribution false-alarm rate: {alarms['rate']:.4f})")
    return 0


def print_tables(result: dict[str, Any]) -> None:
    alarms = result["in_distribution_false_alarm"]
    print(
        f"threshold {result['threshold']:.2f} (the {result['quantile']:.0%} quantile of "
        f"{result['flow']['held_out_chunks']} held-out chunks); fresh demonstrations flagged: "
        f"{alarms['flagged']}/{alarms['chunks']} = {alarms['rate']:.3f}"
    )
    head = f"{'n':>7} {'OOD':>7} {'flagged':>8} {'in-dist':>8} {'flagged':>8}"
    print(f"{'proposals (shifted)':<22} {head}")
    table = {"all": result["proposals"]["all"], **result["proposals"]["by_source"]}
    for name, s in table.items():
        print(
            f"{name:<22} {s['proposals']:>7} {s['ood']:>7} {_pct(s['ood_flagged']):>8} "
            f"{s['in_distribution']:>8} {_pct(s['in_distribution_flagged']):>8}"
        )
    d = result["smooth_detour_probe"]
    print(
        f"expert detour over the blocker ({d['detour_height_m']} m, smooth, undemonstrated): "
        f"{d['ood']} of {d['chunks']} chunks OOD, flagged {_pct(d['ood_flagged'])}"
    )
    for task_name, task_rows in result["episodes"].items():
        print(f"\n{task_name}")
        print(
            f"{'method':<34} {'success':>7} {'viol':>5} {'fallb':>6} {'exec flagged':>12} "
            f"{'in support':>10} {'ms mean':>8}"
        )
        for r in task_rows:
            print(
                f"{r['method']:<34} {r['success_rate']:>7.2f} {r['violation_steps']:>5} "
                f"{r['fallback_steps']:>6} {_pct(r['executed_plans_flagged']):>12} "
                f"{_pct(r['candidates_in_support']):>10} {r['plan_ms_mean']:>8.1f}"
            )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
