"""The ``imle-mpc`` command line.

Subcommands:
    demo    guarded IMLE-MPC on the navigation tasks with the shipped generators:
            success, collisions, planning time, and a plot of proposals and paths
    run     one task with one planner over several seeds
    eval    guarded rollouts with injected faults: success, violations, fallbacks;
            or a sweep over tasks x planners x samples x faults x guard x seeds
    report  Markdown tables and plots of a sweep's results
    train   train a generator with RS-IMLE (or a flow, --model flow) on the shipped (or
            your) demonstrations
    refine  learn a residual on a frozen base online (Policy Decorator), guarded
    bridge  the controller as its own process and a simulated robot over a socket
            (``bridge controller TASK``, ``bridge robot TASK``, ``bridge keys DIR``)
    finetune  behaviour-clone a policy on the demonstrations, then fine-tune it with PPO
            on batched envs (GenPO's exact-likelihood generative policy, or a Gaussian)
    data    check a demonstration dataset: its episodes ranked by a flow's density
    view    the planner in the browser (viser): a live episode, or a recording replayed
            with a time slider (``run --record FILE`` records one, ``run --view`` shows it)

Every subcommand takes ``--json`` and then prints a one-line JSON summary last.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from dynamics.ensemble import ModelEnsemble
from imle_mpc.core.errors import InputError
from imle_mpc.core.io import write_json_atomic
from imle_mpc.eval import plots
from imle_mpc.eval.episodes import EpisodeOutcome, run_episode
from imle_mpc.eval.evaluation import EvalConfig, evaluate
from imle_mpc.eval.factory import PLANNERS, make_planner
from imle_mpc.eval.finetune import POLICIES as FINETUNE_POLICIES
from imle_mpc.eval.finetune import FinetuneConfig, finetune
from imle_mpc.eval.refine import RefineConfig, load_refined, refine, setting_of
from imle_mpc.eval.report import config_rows, totals, write_report
from imle_mpc.eval.summary import summarise
from imle_mpc.eval.sweep import GUARD_CHOICES, BackendConfig, SweepConfig, fault_config, run_sweep
from imle_mpc.learn.config import FlowConfig, GeneratorConfig, ResidualSACConfig, TrainConfig
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.loop.runner import EpisodeRecord
from imle_mpc.tasks import TASKS, Task, load_task
from imle_mpc.view.watch import EpisodeWatch
from planners.risk import RiskMeasure, RiskScoring
from planners.sampling import SamplingPlanner

if TYPE_CHECKING:  # torch: imported by the commands that train, not by the CLI itself
    from imle_mpc.learn.genpo import GenPOConfig

DEMO_TASKS = ("nav_one_obstacle", "nav_two_obstacles", "nav_trap")
LOOPBACK = "127.0.0.1"
"""The bridge's default address (``imle_mpc.bridge.transport.LOOPBACK``, without pyzmq)."""
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "hip", "hpu", "xla", "meta", "mtia", "privateuseone")
"""torch device types ``--device`` accepts (an index may follow: ``cuda:1``)."""


# --- option types: a bad value is argparse's one-line error and exit 2 ----------------------


def _number(text: str, kind: type, what: str, ok: Any) -> Any:
    """``kind(text)`` if it parses and ``ok`` of it holds, else "must be <what>, got <text>"."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (counts: samples, episodes, epochs, sizes)."""
    return int(_number(text, int, "a positive integer", lambda v: v >= 1))


def non_negative_int(text: str) -> int:
    """An integer >= 0 (seeds, warm-up steps, thread counts where 0 means "leave")."""
    return int(_number(text, int, "an integer >= 0", lambda v: v >= 0))


def finite_float(text: str) -> float:
    """A finite number (not nan or inf)."""
    return float(_number(text, float, "a finite number", np.isfinite))


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates)."""
    return float(_number(text, float, "a finite number > 0", lambda v: np.isfinite(v) and v > 0))


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (scales, radii)."""
    return float(_number(text, float, "a finite number >= 0", lambda v: np.isfinite(v) and v >= 0))


def open_fraction(text: str) -> float:
    """A number strictly between 0 and 1 (shares of a dataset)."""
    return float(_number(text, float, "a number in (0, 1)", lambda v: 0.0 < v < 1.0))


def torch_device(text: str) -> str:
    """A torch device string: a type of ``DEVICE_TYPES``, optionally ``:index``."""
    kind, _, index = text.partition(":")
    if kind not in DEVICE_TYPES or (index and not index.isdigit()) or text.endswith(":"):
        raise argparse.ArgumentTypeError(
            f"must be a torch device such as cpu, cuda or cuda:1 (one of "
            f"{', '.join(DEVICE_TYPES)}, optionally :INDEX), got {text!r}"
        )
    return text


def unit_fraction(text: str) -> float:
    """A number in (0, 1] (a fraction of a range)."""
    return float(_number(text, float, "a number in (0, 1]", lambda v: 0 < v <= 1))


TRAIN_DEFAULTS = TrainConfig()
GEN_DEFAULTS = GeneratorConfig()
FLOW_DEFAULTS = FlowConfig()
SAC_DEFAULTS = ResidualSACConfig()
REFINE_DEFAULTS = RefineConfig()


def _risk(task: Task, args: argparse.Namespace, scale: float = 1.0) -> RiskScoring | None:
    """``--ensemble M [--risk R]``: score over M models spanning the task's stated model
    mismatch (times ``scale``), member 0 the nominal; None without ``--ensemble``."""
    if args.ensemble is None:
        if args.risk is not None:
            raise InputError(
                f"--risk {args.risk} aggregates costs over a model ensemble: add --ensemble M "
                "(e.g. --ensemble 4)."
            )
        return None
    mismatch = task.faults.only("mismatch").scaled(scale).model_mismatch if task.faults else {}
    if not mismatch:
        raise InputError(
            f"--ensemble: the task {task.name!r} states no model mismatch for the ensemble's "
            "ranges to span; use planners.risk.RiskScoring(ModelEnsemble(ranges=...)) from "
            "Python, or drop --ensemble."
        )
    measure = RiskMeasure.parse(args.risk or "cvar:0.25")
    return RiskScoring(ModelEnsemble.covering(mismatch, args.ensemble), measure)


def _episodes(
    task_spec: str,
    planner: str,
    seeds: Sequence[int],
    samples: int | None,
    quiet: bool,
    guard: bool = True,
    real_time: bool = False,
    generator: str | None = None,
    args: argparse.Namespace | None = None,
    watch: EpisodeWatch | None = None,
    steps: int | None = None,
) -> tuple[list[EpisodeRecord], Task, Any]:
    """Run ``task_spec`` for each seed (behind the safety guard unless ``guard`` is False).

    ``real_time``: hold the control period on the wall clock; the guard then
    gives the planner 90 % of the period and plays the previous plan on a miss.
    ``watch``: records and/or shows each episode. ``steps``: episode length (default the
    task's). Returns the records, the task, and the last (unwrapped) planner.
    """
    task = load_task(task_spec)
    risk = _risk(task, args) if args is not None else None
    records = []
    planner_obj = None
    for seed in tqdm(seeds, desc=f"{task.name}/{planner}", disable=quiet, leave=False):
        planner_obj = make_planner(
            planner, task, seed=seed, num_samples=samples, record_samples=True,
            generator=generator, risk=risk,
        )  # fmt: skip
        deadline = 0.9 * task.dynamics.dt if real_time else None
        observer = watch.observer(task) if watch is not None else None
        record = run_episode(
            task, planner_obj, seed, guard=guard, deadline=deadline, real_time=real_time,
            steps=steps, observer=observer,
        )  # fmt: skip
        if watch is not None:
            watch.finished(record)
        records.append(record)
    return records, task, planner_obj


def _aggregate(task: Task, planner: str, records: Sequence[EpisodeRecord]) -> dict[str, Any]:
    outcomes = [EpisodeOutcome.of(task, r).to_dict() for r in records]
    return {"task": task.name, "planner": planner, **summarise(outcomes)}


def _print_table(rows: Sequence[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="closed-loop results")
    columns = (
        "task",
        "planner",
        "episodes",
        "success",
        "collisions",
        "fallbacks",
        "plan ms mean",
        "p95",
        "routes taken",
    )
    for col in columns:
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["task"],
            r["planner"],
            str(r["episodes"]),
            f"{r['success_rate']:.0%}",
            str(r["collisions"]),
            str(r.get("fallback_steps", 0)),
            f"{r['plan_ms_mean']:.2f}",
            f"{r['plan_ms_p95']:.2f}",
            ", ".join(f"{k} {v}" for k, v in sorted(r.get("routes", {}).items())),
        )
    Console(width=140).print(table)


def _first_step_proposals(task: Any, planner: Any) -> np.ndarray | None:
    """Roll out the proposals of one planning step from the start, to show their spread."""
    if not isinstance(planner, SamplingPlanner):  # the IMLE policy has no batch to show
        return None
    planner.reset(0)
    result = planner.plan(task.initial_state)
    if result.samples is None:
        return None
    return task.dynamics.rollout(task.initial_state, result.samples[0][:64])


def _demo_plot(results: dict[str, tuple[list[EpisodeRecord], Any, Any]], path: Path) -> Path:
    fig, axes = plots.new_figure(len(results))
    for ax, (name, (records, task, planner)) in zip(axes, results.items(), strict=True):
        if task.scene is not None:
            proposals = _first_step_proposals(task, planner)
            plots.plot_paths(ax, records, task.scene, proposals, task.goal)
            ax.set_title(f"{name}: first-step proposals, paths")
        else:
            index = 1 if name == "cartpole" else 0
            plots.plot_angle(ax, records, index, task.dynamics.dt, f"{name} swing-up")
    return plots.save_figure(fig, path)


def cmd_demo(args: argparse.Namespace) -> dict[str, Any]:
    seeds = list(range(args.episodes))
    results = {}
    rows = []
    for name in args.tasks:
        results[name] = _episodes(
            name, args.planner, seeds, args.samples, args.json, guard=not args.no_guard,
            generator=args.generator,
        )  # fmt: skip
        rows.append(_aggregate(results[name][1], args.planner, results[name][0]))
    _print_table(rows)
    plot = _demo_plot(results, Path(args.out) / "demo.png")
    print(f"plot written to {plot}")
    return {
        "command": "demo",
        "success_rate": float(np.mean([r["success_rate"] for r in rows])),
        "collisions": int(sum(r["collisions"] for r in rows)),
        "plot": str(plot),
        "results": rows,
    }


def cmd_run(args: argparse.Namespace) -> dict[str, Any]:
    seeds = list(range(args.seed, args.seed + args.episodes))
    if args.view and args.real_time:
        raise InputError(
            "--view draws each step on the loop's thread, where a deadline's worker may still "
            "be planning on the same model: drop --real-time, or --record FILE and replay it "
            "with imle-mpc view --replay FILE."
        )
    live = _live_view(args.task, args) if args.view else None
    watch = EpisodeWatch(
        args.task, args.planner, args.episodes, args.record, live, args.max_proposals
    )
    records, task, _ = _episodes(
        args.task, args.planner, seeds, args.samples, args.json,
        guard=not args.no_guard, real_time=args.real_time, generator=args.generator, args=args,
        watch=watch,
    )  # fmt: skip
    row = _aggregate(task, args.planner, records)
    _print_table([row])
    if args.out:
        for rec in records:
            rec.save(Path(args.out) / f"{task.name}_{args.planner}_seed{rec.info['seed']}.npz")
    for path in watch.written:
        print(f"recording written to {path} (replay: imle-mpc view --replay {path})")
    if live is not None:
        _serve(live, None)
    return {"command": "run", **row, "recordings": [str(p) for p in watch.written]}


def _live_view(task_spec: str, args: argparse.Namespace) -> Any:
    from imle_mpc.view.server import LiveView  # viser only for the view (the view extra)

    view = LiveView(
        load_task(task_spec), host=args.host, port=args.port, max_proposals=args.max_proposals,
        title=f"{task_spec} · {args.planner}",
    )  # fmt: skip
    _announce(view)
    return view


def _announce(view: Any) -> None:
    exposed = "" if view.server.get_host() == LOOPBACK else " (reachable from other hosts)"
    print(f"imle-mpc view: serving {view.url}{exposed}; Ctrl-C stops it", file=sys.stderr,
          flush=True)  # fmt: skip


def _serve(view: Any, duration: float | None) -> None:
    """Keep ``view`` up for ``duration`` seconds (None: until Ctrl-C or SIGTERM)."""
    stopped = [False]
    signal.signal(signal.SIGTERM, lambda signum, frame: stopped.__setitem__(0, True))
    end = None if duration is None else time.monotonic() + duration
    try:
        while not stopped[0] and (end is None or time.monotonic() < end):
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        view.close()


def cmd_view(args: argparse.Namespace) -> dict[str, Any]:
    if (args.task is None) == (args.replay is None):
        raise InputError("give a TASK to watch live, or --replay FILE (not both).")
    if args.replay is not None:
        from imle_mpc.view.recording import read_recording
        from imle_mpc.view.server import ReplayView

        recording = read_recording(args.replay)
        task = load_task(str(recording.header.get("task")))
        if args.step >= recording.steps:
            raise InputError(
                f"--step {args.step}: the recording has steps 0..{recording.steps - 1}."
            )
        view = ReplayView(recording, task, host=args.host, port=args.port, step=args.step)
        _announce(view)
        url = view.url
        _serve(view, args.duration)
        return {"command": "view", "replay": str(args.replay), "url": url,
                "steps": recording.steps}  # fmt: skip
    live = _live_view(args.task, args)
    watch = EpisodeWatch(args.task, args.planner, 1, args.record, live, args.max_proposals)
    records, task, _ = _episodes(
        args.task, args.planner, [args.seed], args.samples, args.json, guard=not args.no_guard,
        generator=args.generator, watch=watch, steps=args.steps,
    )  # fmt: skip
    url = live.url
    _serve(live, args.duration)
    return {"command": "view", "task": task.name, "url": url,
            **EpisodeOutcome.of(task, records[0]).to_dict(),
            "recordings": [str(p) for p in watch.written]}  # fmt: skip


def _bridge_setup() -> list[bool]:
    """Bridge logs on stderr; SIGTERM (and Ctrl-C) end the loop with its summary."""
    logging.basicConfig(format="imle-mpc bridge: %(message)s", stream=sys.stderr)
    stopped = [False]

    def stop(signum: int, frame: Any) -> None:
        stopped[0] = True

    signal.signal(signal.SIGTERM, stop)
    return stopped


def _bridge_period(task: Task, period: float | None) -> float:
    return float(task.dynamics.dt) if period is None else period


def cmd_bridge_controller(args: argparse.Namespace) -> dict[str, Any]:
    # pyzmq only for the bridge (the `bridge` extra): the other commands start without it.
    from imle_mpc.bridge.controller import BridgeController, ControllerConfig, guarded_planner
    from imle_mpc.bridge.transport import ControllerSocket, load_keys, require_secure

    stopped = _bridge_setup()
    keys = load_keys(args.keys, "controller") if args.keys else None
    require_secure(args.address, keys, "controller")  # before the planner compiles (seconds)
    task = load_task(args.task)
    config = ControllerConfig(
        robot=args.robot, period=_bridge_period(task, args.period),
        state_timeout=args.state_timeout, duration=args.duration,
    )  # fmt: skip
    planner = guarded_planner(
        task, config, args.planner, seed=args.seed, num_samples=args.samples,
        generator=args.generator, offset_free=not args.no_offset_free,
    )  # fmt: skip
    planner.plan(task.initial_state)  # compile before serving: the first tick is on time
    planner.reset()
    socket = ControllerSocket(args.address, args.port, keys)
    controller = BridgeController(
        planner, task.dynamics.nx, task.dynamics.nu, socket, config, trace=args.trace
    )

    def ready() -> None:
        print(
            f"imle-mpc bridge: controller ready on {socket.address} (robot {config.robot!r}, "
            f"period {config.period} s, state timeout {config.state_timeout} s, "
            f"curve {'on' if socket.curve else 'off'})",
            file=sys.stderr, flush=True,
        )  # fmt: skip

    try:
        summary = controller.run(stop=lambda: stopped[0], ready=ready)
    finally:
        controller.close()
        socket.close()
    return {"command": "bridge controller", "task": task.name, **summary}


def cmd_bridge_robot(args: argparse.Namespace) -> dict[str, Any]:
    from imle_mpc.bridge.robot_client import RobotClient
    from imle_mpc.bridge.sim_robot import SimRobotConfig, SimulatedRobot
    from imle_mpc.bridge.transport import load_keys

    stopped = _bridge_setup()
    task = load_task(args.task)
    keys = load_keys(args.keys, "robot") if args.keys else None
    start = None
    if args.start is not None:
        try:
            start = tuple(float(v) for v in args.start.split(","))
        except ValueError:
            raise InputError(
                f"--start {args.start!r}: give the state as comma-separated numbers"
            ) from None
    config = SimRobotConfig(
        period=_bridge_period(task, args.period), duration=args.duration, start=start
    )
    client = RobotClient(
        task.dynamics.nx, task.dynamics.nu, args.port, host=args.connect, robot=args.robot,
        keys=keys, action_timeout=args.action_timeout,
    )  # fmt: skip
    try:
        robot = SimulatedRobot(task, client, config, trace=args.trace)
        robot.brake(robot.plant.state)  # the brake's model compiled before the first tick

        def ready() -> None:
            print(
                f"imle-mpc bridge: robot {args.robot!r} ready, connecting to "
                f"{client.socket.address} (period {config.period} s, action timeout "
                f"{args.action_timeout} s)",
                file=sys.stderr, flush=True,
            )  # fmt: skip

        summary = robot.run(stop=lambda: stopped[0], ready=ready)
        robot.close()
    finally:
        client.close()
    return {"command": "bridge robot", "task": task.name, **summary}


def cmd_bridge_keys(args: argparse.Namespace) -> dict[str, Any]:
    from imle_mpc.bridge.transport import make_keys

    made = make_keys(args.dir)
    for role, path in made.items():
        print(f"{role}: {path} (secret) and {path.with_suffix('.key')} (public)")
    return {"command": "bridge keys", **{role: str(path) for role, path in made.items()}}


def cmd_data(args: argparse.Namespace) -> dict[str, Any]:
    # torch and zuko only for this subcommand.
    import torch

    from imle_mpc.learn.flow import load_flow
    from imle_mpc.learn.flow.quality import CROSS_FIT_TRAIN, QualityRule, cross_fit, score_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = DemoDataset.load(args.data)
    try:
        rule = QualityRule(tail=args.tail, spread=args.spread, quantile=args.quantile)
    except ValueError as err:
        raise InputError(str(err)) from None
    if args.flow:
        report = score_dataset(load_flow(args.flow), dataset, rule)
    else:
        train = dataclasses.replace(CROSS_FIT_TRAIN, epochs=args.epochs, seed=args.seed)
        report = cross_fit(
            dataset, args.folds, train_config=train, rule=rule, progress=not args.json
        )
    quality = dataset.meta.get("quality")
    print(f"{'rank':>4} {'episode':>7} {'score':>9} {'mean':>9} {'unlikely':>8}  flagged")
    for rank, i in enumerate(report.ranking):
        e = report.episodes[i]
        known = f"  ({quality[i]})" if isinstance(quality, list) else ""
        mark = "yes" if e.flagged else ""
        print(
            f"{rank:>4} {i:>7} {e.score:>9.1f} {e.mean_log_prob:>9.1f} "
            f"{e.unlikely_share:>8.0%}  {mark}{known}"
        )
    print(
        f"{len(report.flagged)} of {len(dataset.episodes)} episodes flagged (score below "
        f"{report.cutoff:.1f} nats; {report.method}, {report.folds} fold(s))"
    )
    if args.out:
        write_json_atomic(args.out, report.to_dict())
    if args.write_clean:
        report.cleaned(dataset).save(args.write_clean)
        print(f"cleaned dataset written to {args.write_clean}")
    return {
        "command": "data check",
        "data": str(args.data),
        "method": report.method,
        "episodes": len(dataset.episodes),
        "flagged": list(report.flagged),
        "ranking": list(report.ranking),
        "cutoff": report.cutoff,
        "train_seconds": report.train_seconds,
    }


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    # torch only for this subcommand: the others start without it.
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(
            f"--device {args.device}: torch finds no CUDA device here; use --device cpu."
        )
    dataset = (
        DemoDataset.load(args.data) if args.data else load_task(args.task).load_demonstrations()
    )
    try:
        train_config = TrainConfig(
            epochs=args.epochs, lr=args.lr, warmup_steps=args.warmup, seed=args.seed,
            device=args.device, batch_size=args.batch_size, epsilon=args.epsilon,
            num_candidates=args.candidates, checkpoint_every=args.checkpoint_every,
        )  # fmt: skip
    except ValueError as err:  # a config field: name it as the option it came from
        raise InputError(str(err)) from None
    # With --data the demonstrations say whose they are, not the --task default.
    task = dataset.meta.get("task", args.task) if args.data else args.task
    trained = _train_flow if args.model == "flow" else _train_generator
    return {
        "command": "train",
        "task": task,
        "model": args.model,
        **trained(args, dataset, train_config),
    }


def _train_generator(
    args: argparse.Namespace, dataset: DemoDataset, train_config: TrainConfig
) -> dict[str, Any]:
    from imle_mpc.learn.imle import train_generator

    obs_horizon = GEN_DEFAULTS.obs_horizon if args.obs_horizon is None else args.obs_horizon
    try:
        gen_config = GeneratorConfig(
            architecture=args.architecture, horizon=args.horizon, obs_horizon=obs_horizon,
            action_horizon=args.action_horizon,
        )  # fmt: skip
    except ValueError as err:
        raise InputError(str(err)) from None
    out = Path(args.out or "out/generator")
    _, history = train_generator(
        dataset, gen_config, train_config, out_dir=out, resume=args.resume,
        progress=not args.json,
    )  # fmt: skip
    path = out / "generator.safetensors"
    print(f"generator written to {path}")
    return {
        "generator": str(path),
        "epochs": history.epochs,
        "final_loss": float(history.loss[-1]),
        "rejected_fraction": float(history.rejected_fraction[-1]),
        "train_seconds": float(sum(history.epoch_seconds)),
    }


def _train_flow(
    args: argparse.Namespace, dataset: DemoDataset, train_config: TrainConfig
) -> dict[str, Any]:
    from imle_mpc.learn.flow import FLOW_FILE, train_flow

    obs_horizon = FLOW_DEFAULTS.obs_horizon if args.obs_horizon is None else args.obs_horizon
    try:
        flow_config = FlowConfig(
            horizon=args.horizon, obs_horizon=obs_horizon, action_horizon=args.action_horizon,
            held_out_fraction=args.held_out,
        )  # fmt: skip
    except ValueError as err:
        raise InputError(str(err)) from None
    out = Path(args.out or "out/flow")
    flow, history = train_flow(
        dataset, flow_config, train_config, out_dir=out, resume=args.resume,
        progress=not args.json,
    )  # fmt: skip
    path = out / FLOW_FILE
    calibration = flow.calibration
    assert calibration is not None  # train_flow always calibrates
    print(
        f"flow written to {path}; held-out log-density 5 % quantile "
        f"{flow.threshold(0.05):.2f} over {calibration.size} chunks of "
        f"{calibration.episodes} held-out episodes"
    )
    return {
        "flow": str(path),
        "epochs": history.epochs,
        "final_nll": float(history.loss[-1]),
        "held_out_nll": float(history.held_out_nll[-1]),
        "threshold_q05": flow.threshold(0.05),
        "held_out_episodes": calibration.episodes,
        "train_seconds": float(sum(history.epoch_seconds)),
    }


def cmd_refine(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        sac = ResidualSACConfig(
            total_steps=args.steps, num_envs=args.envs, learning_starts=args.learning_starts,
            batch_size=args.batch_size, learning_rate=args.lr, n_steps=args.n_steps,
            sde=not args.no_sde,
            checkpoint_every=args.checkpoint_every, seed=args.seed, device=args.device,
            train_every=_train_every(args.envs),
        )  # fmt: skip
        config = RefineConfig(
            task=args.task, setting=args.setting, base=args.base, num_samples=args.samples,
            generator=args.generator, fraction=args.scale, explore_steps=args.explore_steps,
            guard=not args.no_guard, eval_every=args.eval_every,
            eval_episodes=args.eval_episodes, sac=sac,
        )  # fmt: skip
    except ValueError as err:  # a config field: name it as the option it came from
        raise InputError(str(err)) from None
    try:
        actor, history = refine(config, args.out, resume=args.resume, progress=not args.json)
    except ModuleNotFoundError as err:
        if err.name != "stable_baselines3":
            raise
        raise InputError(str(err)) from None
    steps = history.episodes[-1]["step"] if history.episodes else 0
    path = Path(args.out) / "residual.safetensors"
    last = history.evaluations[-1] if history.evaluations else None
    print(f"residual written to {path} ({history.seconds:.0f} s of training)")
    if last is not None:
        print(
            f"last evaluation at {last['step']} steps ({last['episodes']} episodes): success "
            f"{last['success_rate']:.1%}, violation steps {last['violation_steps']}, guard "
            f"interventions {last['fallback_steps']}"
        )
    return {
        "command": "refine", "task": args.task, "base": args.base,
        "setting": actor.meta["refinement"]["setting"],
        "residual": str(path), "episodes": len(history.episodes), "last_episode_step": steps,
        "seconds": round(history.seconds, 1), "evaluation": last,
    }  # fmt: skip


def _genpo_config(mix: float | None, min_log_scale: float | None) -> GenPOConfig | None:
    """The ``GenPOConfig`` the finetune flags ask for (``None``: the finetune defaults)."""
    from imle_mpc.learn.genpo import GenPOConfig

    if mix is None and min_log_scale is None:
        return None
    default = GenPOConfig()
    return GenPOConfig(
        mix=default.mix if mix is None else mix,
        min_log_scale=default.min_log_scale if min_log_scale is None else min_log_scale,
    )


def cmd_finetune(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        from imle_mpc.learn.genpo.ppo import PPOConfig
    except ModuleNotFoundError as err:
        raise InputError(
            f"imle-mpc finetune needs stable-baselines3: pip install -e '.[rl]' ({err})"
        ) from None
    try:
        ppo = PPOConfig(
            total_steps=args.steps, learning_rate=args.lr,
            desired_kl=None if args.desired_kl == 0 else args.desired_kl,
            critic_learning_rate=None if args.critic_lr == 0 else args.critic_lr,
            checkpoint_every=args.checkpoint_every, seed=args.seed, device=args.device,
            gaussian_log_std=args.gaussian_log_std,
        )  # fmt: skip
        config = FinetuneConfig(
            task=args.task, policy=args.policy, num_envs=args.num_envs, bc_epochs=args.bc_epochs,
            eval_every=args.eval_every, eval_episodes=args.eval_episodes, ppo=ppo,
            genpo=_genpo_config(args.genpo_mix, args.genpo_min_log_scale),
        )  # fmt: skip
    except ValueError as err:
        raise InputError(str(err)) from None
    model, history = finetune(config, args.out, resume=args.resume, progress=not args.json)
    first = history.evaluations[0] if history.evaluations else None
    last = history.evaluations[-1] if history.evaluations else None
    print(f"fine-tuned {args.policy} policy in {args.out} ({history.seconds:.0f} s)")
    for name, point in (("start (BC)", first), ("end", last)):
        if point is not None:
            print(
                f"{name} at {point['step']} steps ({point['episodes']} episodes): success "
                f"{point['success_rate']:.1%}, return {point['mean_return']:.0f}, routes "
                + ", ".join(f"{k} {v:.0%}" for k, v in point["routes"].items())
            )
    return {
        "command": "finetune", "task": args.task, "policy": args.policy,
        "steps": int(model.num_timesteps), "out": str(args.out),
        "seconds": round(history.seconds, 1), "start": first, "end": last,
    }  # fmt: skip


def _train_every(envs: int) -> int:
    """Environment steps between rounds of updates: 64 (the reference's) rounded up to a
    multiple of the environments stepped together."""
    return max(1, -(-SAC_DEFAULTS.train_every // envs)) * envs


SWEEP_OPTIONS = (
    "tasks", "planners", "fault_scales", "guard", "workers", "ray", "ray_address",
    "ray_temp_dir", "resume", "store_states",
)  # fmt: skip
"""``eval`` options that only a sweep has: any of them (or several --samples or --faults
values, or an --out ending in .jsonl) turns ``eval`` into a sweep."""


def _is_sweep(args: argparse.Namespace) -> bool:
    given = any(getattr(args, name) not in (None, False) for name in SWEEP_OPTIONS)
    several = len(args.samples or ()) > 1 or len(args.faults) > 1
    return given or several or str(args.out or "").endswith(".jsonl")


def cmd_eval(args: argparse.Namespace) -> dict[str, Any]:
    if _is_sweep(args) and (args.residual or args.setting):
        raise InputError(
            "--residual and --setting evaluate one configuration; drop the sweep options."
        )
    if _is_sweep(args):
        print(
            "note: eval with sweep options is `imle-mpc sweep` now; eval keeps running sweeps "
            "for this release.",
            file=sys.stderr,
        )
        return _eval_sweep(args)
    if args.samples is not None:
        args.samples = args.samples[0]
    args.faults = args.faults[0]
    return _eval_one(args)


def cmd_sweep(args: argparse.Namespace) -> dict[str, Any]:
    return _eval_sweep(args)


def _eval_subject(args: argparse.Namespace) -> tuple[Task, Any, Any, str, dict[str, Any]]:
    """What ``eval`` runs: the task, the faults, a ready planner (None: from the task's
    hints), its label, and figures for the summary; a residual or a refinement setting
    brings its own task, plant and success test."""
    if not (args.residual or args.setting):
        task = load_task(args.task)
        faults = fault_config(task, args.faults, args.fault_scale)
        risk = _risk(task, args, args.fault_scale)
        if risk is None:
            return task, faults, None, args.planner, {}
        planner = make_planner(
            args.planner, task, seed=args.seed, num_samples=args.samples[0] if args.samples
            else None, generator=args.generator, risk=risk,
        )  # fmt: skip
        extra = {"ensemble": risk.members, "risk": args.risk or "cvar:0.25"}
        return task, faults, planner, f"{args.planner}+ensemble", extra
    if args.faults != "none":
        raise InputError(
            "--residual and --setting run on the refinement setting's plant; leave --faults "
            "out (imle-mpc eval --faults ... measures the task's stated faults)."
        )
    if args.ensemble is not None:
        raise InputError(
            "--ensemble scores the task's own planner; with --residual or --setting drop it."
        )
    if args.residual:
        refined = load_refined(args.residual)
        if args.setting not in (None, refined.setting.name):
            raise InputError(
                f"--setting {args.setting}: the residual {args.residual} was refined for "
                f"{refined.setting.name!r}; leave --setting out."
            )
        task, setting, planner = refined.task, refined.setting, refined.planner
        label = f"{refined.meta['base']}+residual"
        extra = {"residual": str(args.residual), "residual_steps": refined.meta.get("steps")}
    else:
        task, setting = setting_of(args.task, args.setting)
        planner = make_planner(
            args.planner, task, seed=args.seed, num_samples=args.samples, generator=args.generator
        )
        label, extra = args.planner, {}
    return task, setting.faults, planner, label, {"setting": setting.name, **extra}


def _eval_one(args: argparse.Namespace) -> dict[str, Any]:
    task, faults, planner, name, extra = _eval_subject(args)
    config = EvalConfig(
        task=args.task, planner=args.planner, episodes=args.episodes, faults=faults,
        guard=not args.no_guard, offset_free=not args.no_offset_free,
        num_samples=args.samples, seed=args.seed, generator=args.generator,
    )  # fmt: skip
    label = f"{task.name}/{name}/{'guard' if config.guard else 'no guard'}"
    with tqdm(total=args.episodes, desc=label, disable=args.json, unit="ep") as bar:

        def tick(outcome: Any) -> None:
            bar.update(1)
            bar.set_postfix(violations=outcome.violation_steps, success=outcome.success)

        summary, outcomes = evaluate(config, on_episode=tick, planner=planner, task=task)
    summary.update(planner=name, fault_scale=args.fault_scale, fault_settings=faults.to_dict())
    summary.update(extra)
    print(
        f"{label}: {summary['episodes']} episodes, faults {summary['faults'] or 'none'}: "
        f"success {summary['success_rate']:.1%}, violation steps {summary['violation_steps']} "
        f"(in {summary['violation_episodes']} episodes), fallback steps "
        f"{summary['fallback_steps']}, deadline overruns {summary['deadline_overruns']}"
        + (
            f", min clearance {clear:.3f} m"
            if (clear := summary["min_clearance"]) is not None
            else ""
        )
    )
    if args.out:
        episodes = [o.to_dict() for o in outcomes]
        path = write_json_atomic(args.out, {"summary": summary, "episodes": episodes})
        print(f"results written to {path}")
    return {"command": "eval", **summary}


def _sweep_config(args: argparse.Namespace) -> SweepConfig:
    if args.guard is not None and args.no_guard:
        raise InputError("--no-guard and --guard both given; use --guard off (or on, both).")
    guard = args.guard or ("off" if args.no_guard else "on")
    try:
        return SweepConfig(
            tasks=args.tasks or [args.task],
            planners=args.planners or [args.planner],
            samples=args.samples or [None],
            faults=args.faults,
            fault_scales=args.fault_scales or [args.fault_scale],
            guards=GUARD_CHOICES[guard],
            episodes=args.episodes,
            seed=args.seed,
            store_states=args.store_states,
        )
    except ValueError as err:  # a SweepConfig field: name it as the option it came from
        raise InputError(str(err)) from None


def _backend(args: argparse.Namespace) -> BackendConfig:
    if args.ray or args.ray_address or args.ray_temp_dir:
        return BackendConfig("ray", args.workers, args.ray_address, args.ray_temp_dir)
    if args.workers is not None:
        return BackendConfig("local", args.workers)
    return BackendConfig("serial")


def _eval_sweep(args: argparse.Namespace) -> dict[str, Any]:
    if not args.out:
        raise InputError(
            "a sweep appends one record per episode to a JSON-lines file: add --out "
            "PATH.jsonl (and --resume to continue an interrupted sweep)."
        )
    if args.ensemble is not None or args.risk is not None:
        raise InputError(
            "--ensemble and --risk evaluate one configuration (imle-mpc eval); drop them "
            "from the sweep."
        )
    config = _sweep_config(args)
    backend = _backend(args)
    try:
        result = run_sweep(config, args.out, backend, resume=args.resume, progress=not args.json)
    except KeyboardInterrupt:
        print(
            f"interrupted: the finished episodes are in {args.out}; run the same command "
            "with --resume to complete the sweep.",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    rows = config_rows(result.records)
    overall = totals(result.records)
    workers = f"{result.workers} worker{'s' if result.workers != 1 else ''}"
    print(
        f"sweep: {len(rows)} configurations x {config.episodes} seeds = {config.size} "
        f"episodes; ran {result.ran} in {result.seconds:.1f} s ({result.episodes_per_s:.2f} "
        f"episodes/s, {backend.backend}, {workers}), {result.skipped} already in {args.out}"
    )
    print(
        f"success {overall['success_rate']:.1%}, violation steps {overall['violation_steps']} "
        f"(in {overall['violation_episodes']} episodes), fallback steps "
        f"{overall['fallback_steps']}, deadline overruns {overall['deadline_overruns']}"
    )
    print(f"results in {args.out}; tables and plots: imle-mpc report {args.out} --out DIR")
    return {
        "command": "eval",
        "sweep": True,
        **overall,
        "configurations": len(rows),
        "ran": result.ran,
        "skipped": result.skipped,
        "seconds": round(result.seconds, 3),
        "episodes_per_s": round(result.episodes_per_s, 4) if result.ran else None,
        "backend": backend.backend,
        "workers": result.workers,
        "out": str(args.out),
    }


def cmd_report(args: argparse.Namespace) -> dict[str, Any]:
    report = write_report(args.results, args.out)
    print(f"report written to {report.path} ({len(report.rows)} configurations)")
    for name, path in report.plots.items():
        print(f"  {name}: {path}")
    for name, why in report.skipped.items():
        print(f"  {name}: left out ({why})")
    return {
        "command": "report",
        **totals(report.records),
        "configurations": len(report.rows),
        "report": str(report.path),
        "plots": {name: str(path) for name, path in report.plots.items()},
        "skipped_plots": report.skipped,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imle-mpc", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print a one-line JSON summary last")

    demo = sub.add_parser("demo", help="IMLE-MPC on the navigation tasks: table and plot")
    task_help = (
        f"a task ({', '.join(sorted(TASKS))}) or your own: module:function or file.py:function"
    )
    generator_help = (
        "the learned planners' generator: a checkpoint or an `imle-mpc train --out` DIR"
    )
    demo.add_argument(
        "--tasks", nargs="+", default=list(DEMO_TASKS), metavar="TASK", help=task_help
    )
    demo.add_argument("--generator", default=None, help=generator_help)
    demo.add_argument("--planner", default="imle_mpc", choices=PLANNERS)
    demo.add_argument("--episodes", type=positive_int, default=5, help="seeded episodes per task")
    demo.add_argument(
        "--samples", type=positive_int, default=None, help="samples (IMLE: chunks) per step"
    )
    demo.add_argument("--out", default="out", help="directory for the plot")
    demo.add_argument("--no-guard", action="store_true", help="run without the safety guard")
    common(demo)
    demo.set_defaults(func=cmd_demo)

    def ensemble_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--ensemble", type=positive_int, default=None, metavar="M",
            help="score each sample over M models spanning the task's stated model mismatch "
            "(member 0 the nominal; planners.risk)",
        )  # fmt: skip
        p.add_argument(
            "--risk", default=None, metavar="R",
            help="with --ensemble: mean, worst or cvar:ALPHA (default cvar:0.25)",
        )  # fmt: skip

    run = sub.add_parser("run", help="one task with one planner over several seeds")
    run.add_argument("task", help=task_help)
    run.add_argument("--generator", default=None, help=generator_help)
    run.add_argument("--planner", default="mppi", choices=PLANNERS)
    run.add_argument("--episodes", type=positive_int, default=1)
    run.add_argument("--seed", type=non_negative_int, default=0, help="first seed")
    run.add_argument("--samples", type=positive_int, default=None, help="override the sample count")
    run.add_argument("--out", default=None, help="directory for episode records (.npz)")
    run.add_argument("--no-guard", action="store_true", help="run without the safety guard")
    run.add_argument(
        "--real-time", action="store_true",
        help="hold the control period on the wall clock; a late plan is never waited for",
    )  # fmt: skip
    ensemble_options(run)
    run.add_argument(
        "--record", default=None, metavar="FILE",
        help="record each episode (.npz; several episodes: FILE_seedN.npz) for view --replay",
    )  # fmt: skip
    run.add_argument(
        "--view", action="store_true",
        help="show the episodes live in the browser (needs viser: pip install -e '.[view]')",
    )  # fmt: skip
    _view_options(run)
    common(run)
    run.set_defaults(func=cmd_run)
    _view_parser(sub, common, task_help, generator_help)

    def eval_options(ev: argparse.ArgumentParser) -> None:
        ev.add_argument("--task", default="nav_one_obstacle", help=task_help)
        ev.add_argument("--generator", default=None, help=generator_help)
        ev.add_argument("--planner", default="imle_mpc", choices=PLANNERS)
        ev.add_argument(
            "--episodes", "--seeds", type=positive_int, default=200,
            help="seeded episodes (per configuration in a sweep)",
        )  # fmt: skip
        ev.add_argument("--seed", type=non_negative_int, default=0, help="first episode seed")
        ev.add_argument(
            "--samples", type=positive_int, nargs="+", default=None, metavar="N",
            help="samples (IMLE: chunks) per step; several values: a sweep",
        )  # fmt: skip
        ev.add_argument(
            "--faults", nargs="+", default=["none"], metavar="SPEC",
            help="none, all, or a comma list of noise,delay,mismatch,push,drop,dropout "
            "(task magnitudes); several values: a sweep",
        )  # fmt: skip
        ev.add_argument(
            "--fault-scale", type=non_negative_float, default=1.0, help="multiply every magnitude"
        )
        ev.add_argument("--no-guard", action="store_true", help="execute plans unchecked")
        ensemble_options(ev)
        ev.add_argument(
            "--no-offset-free", action="store_true",
            help="guarded, but without estimating the plant's action offset (model mismatch)",
        )  # fmt: skip
        ev.add_argument(
            "--out", default=None,
            help="JSON file for the summary and every episode; a sweep's JSON-lines results file",
        )  # fmt: skip
        sweep = ev.add_argument_group("sweep options")
        sweep.add_argument("--tasks", nargs="+", metavar="TASK", help="tasks to sweep")
        sweep.add_argument(
            "--planners", nargs="+", choices=PLANNERS, metavar="PLANNER", help="planners to sweep"
        )
        sweep.add_argument(
            "--fault-scales",
            type=non_negative_float,
            nargs="+",
            metavar="SCALE",
            help="factors on the fault magnitudes",
        )
        sweep.add_argument("--guard", choices=("on", "off", "both"), help="guard setting(s)")
        sweep.add_argument(
            "--workers",
            type=positive_int,
            metavar="N",
            help="worker processes (a local pool; with --ray: actors)",
        )
        sweep.add_argument(
            "--ray", action="store_true", help="run on Ray (a local instance unless --ray-address)"
        )
        sweep.add_argument(
            "--ray-address", help="join this Ray cluster (e.g. auto, ray://host:10001)"
        )
        sweep.add_argument(
            "--ray-temp-dir", help="the local Ray instance's files (default: .ray beside --out)"
        )
        sweep.add_argument("--resume", action="store_true", help="skip episodes already in --out")
        sweep.add_argument(
            "--store-states", action="store_true", help="keep measured states (trajectory plots)"
        )
        common(ev)

    ev = sub.add_parser(
        "eval",
        help="guarded rollouts with injected faults (one configuration, or a sweep)",
        description="One configuration (the summary and, with --out FILE.json, every episode), "
        "or a sweep over a grid: any sweep option below, several --samples or --faults "
        "values, or --out FILE.jsonl makes it one. A sweep appends one record per episode to "
        "--out as it finishes (--resume skips those already there); summarise it with "
        "imle-mpc report.",
    )
    eval_options(ev)
    refinement = ev.add_argument_group("residual refinement")
    refinement.add_argument(
        "--setting", default=None, metavar="NAME",
        help="the task's refinement setting (its plant and success test), e.g. heavy for "
        "push_block: measures the frozen base where it is short",
    )  # fmt: skip
    refinement.add_argument(
        "--residual", default=None, metavar="DIR",
        help="base + the residual of `imle-mpc refine --out DIR` (its task, setting and base; "
        "--task and --planner are ignored)",
    )  # fmt: skip
    ev.set_defaults(func=cmd_eval)

    sw = sub.add_parser(
        "sweep",
        help="guarded rollouts over a grid: tasks x planners x samples x faults x guard x seeds",
        description="Every combination of the options runs --episodes seeds; one record per "
        "episode is appended to --out (JSON lines) as it finishes, --resume skips those already "
        "there; summarise it with imle-mpc report.",
    )
    eval_options(sw)
    sw.set_defaults(func=cmd_sweep)

    rep = sub.add_parser("report", help="Markdown tables and plots of a sweep's results")
    rep.add_argument("results", help="a sweep's JSON-lines results file (eval --out X.jsonl)")
    rep.add_argument("--out", default="out/report", help="directory for report.md and plots")
    common(rep)
    rep.set_defaults(func=cmd_report)

    ref = sub.add_parser(
        "refine",
        help="learn a residual on a frozen base online (Policy Decorator, SAC)",
        description="Learns r for a = a_base + alpha * r with SAC (stable-baselines3, the rl "
        "extra) in simulation, in the task's refinement setting, every executed action checked "
        "by the safety guard; the residual acts in an episode with probability "
        "min(step / --explore-steps, 1). Writes OUT/residual.safetensors and resumable "
        "checkpoints (--resume continues a killed run); evaluate with imle-mpc eval --residual.",
    )  # fmt: skip
    ref.add_argument("--task", default="push_block", help=task_help)
    ref.add_argument(
        "--setting", default=None, help="the task's refinement setting (default: its first)"
    )
    ref.add_argument(
        "--base", default=REFINE_DEFAULTS.base, choices=PLANNERS, help="the frozen base"
    )
    ref.add_argument("--generator", default=None, help=generator_help)
    ref.add_argument("--samples", type=positive_int, default=None, help="the base's samples")
    ref.add_argument(
        "--scale", type=unit_fraction, default=REFINE_DEFAULTS.fraction,
        help="alpha as a fraction of the actuator box's half range (the paper: 0.03-0.3)",
    )  # fmt: skip
    ref.add_argument(
        "--steps", type=positive_int, default=SAC_DEFAULTS.total_steps, help="environment steps"
    )
    ref.add_argument(
        "--envs",
        type=positive_int,
        default=SAC_DEFAULTS.num_envs,
        help="environments stepped together",
    )
    ref.add_argument(
        "--explore-steps", type=non_negative_int, default=REFINE_DEFAULTS.explore_steps,
        help="steps until the residual acts in every episode (0: the schedule off)",
    )  # fmt: skip
    ref.add_argument(
        "--learning-starts", type=non_negative_int, default=SAC_DEFAULTS.learning_starts
    )
    ref.add_argument("--batch-size", type=positive_int, default=SAC_DEFAULTS.batch_size)
    ref.add_argument("--lr", type=positive_float, default=SAC_DEFAULTS.learning_rate)
    ref.add_argument(
        "--n-steps", type=positive_int, default=SAC_DEFAULTS.n_steps,
        help="n-step returns for the critic's targets",
    )  # fmt: skip
    ref.add_argument(
        "--no-sde", action="store_true",
        help="explore with fresh Gaussian noise every step instead of gSDE",
    )  # fmt: skip
    ref.add_argument(
        "--eval-every", type=non_negative_int, default=REFINE_DEFAULTS.eval_every,
        help="steps between evaluations of the learning curve (0: none)",
    )  # fmt: skip
    ref.add_argument("--eval-episodes", type=positive_int, default=REFINE_DEFAULTS.eval_episodes)
    ref.add_argument(
        "--checkpoint-every", type=positive_int, default=SAC_DEFAULTS.checkpoint_every,
        help="steps between resumable checkpoints",
    )  # fmt: skip
    ref.add_argument("--no-guard", action="store_true", help="train without the safety guard")
    ref.add_argument("--out", default="out/residual", help="directory for the residual")
    ref.add_argument("--seed", type=non_negative_int, default=0)
    ref.add_argument("--device", type=torch_device, default="cpu", help="torch device")
    ref.add_argument(
        "--threads", type=non_negative_int, default=1, help="torch CPU threads (0: leave)"
    )
    ref.add_argument("--resume", action="store_true", help="continue from --out's last checkpoint")
    common(ref)
    ref.set_defaults(func=cmd_refine)

    ft = sub.add_parser(
        "finetune",
        help="behaviour-clone, then fine-tune with PPO (GenPO, a flow or a Gaussian policy)",
        description="Clones a policy on the task's shipped demonstrations (--policy genpo: the "
        "exact-likelihood generative policy; flow: a zuko normalizing flow over the action, "
        "exact likelihood too; gaussian: SB3's MlpPolicy, its mean cloned), then "
        "fine-tunes it with PPO (stable-baselines3, the rl extra; KL-adaptive learning rate) on "
        "--num-envs batched environments of the task. Writes OUT/history.json (the learning "
        "curve: success, return, route shares), OUT/policy.safetensors (genpo) or "
        "OUT/flow_policy.safetensors (flow) and resumable "
        "checkpoints (--resume continues a killed run).",
    )  # fmt: skip
    ft.add_argument("--task", default="nav_two_obstacles", help=task_help)
    ft.add_argument("--policy", default="genpo", choices=FINETUNE_POLICIES)
    ft.add_argument("--steps", type=positive_int, default=200_000, help="environment steps")
    ft.add_argument(
        "--num-envs", type=positive_int, default=64, help="environments stepped together"
    )
    ft.add_argument("--bc-epochs", type=positive_int, default=150, help="behaviour-cloning epochs")
    ft.add_argument("--lr", type=positive_float, default=3e-4, help="initial learning rate")
    ft.add_argument(
        "--desired-kl", type=non_negative_float, default=0.01,
        help="KL target of the adaptive learning rate (0: a fixed rate)",
    )  # fmt: skip
    ft.add_argument(
        "--critic-lr", type=non_negative_float, default=1e-3,
        help="the value network's fixed learning rate (0: the actor's, adapted with it)",
    )  # fmt: skip
    ft.add_argument(
        "--genpo-mix", type=positive_float, default=None,
        help="GenPO's mixing weight p in (0, 1] (default 0.8; 1: no mixing, the bench's on "
        "nav_two_obstacles)",
    )  # fmt: skip
    ft.add_argument(
        "--genpo-min-log-scale", type=finite_float, default=None,
        help="the floor under GenPO's final log-scale (default -1.2; the bench's on "
        "nav_two_obstacles: -2.3)",
    )  # fmt: skip
    ft.add_argument(
        "--gaussian-log-std", type=finite_float, default=-0.5,
        help="the Gaussian policy's initial log-std, in the action's units (push_block's "
        "+-0.3 box: -2.4, the bench's)",
    )  # fmt: skip
    ft.add_argument(
        "--eval-every", type=non_negative_int, default=20_000,
        help="steps between learning-curve points (0: none)",
    )  # fmt: skip
    ft.add_argument("--eval-episodes", type=positive_int, default=100)
    ft.add_argument(
        "--checkpoint-every", type=positive_int, default=20_000,
        help="steps between resumable checkpoints",
    )  # fmt: skip
    ft.add_argument("--out", default="out/finetune", help="directory for the run")
    ft.add_argument("--seed", type=non_negative_int, default=0)
    ft.add_argument("--device", type=torch_device, default="cpu", help="torch device")
    ft.add_argument(
        "--threads", type=non_negative_int, default=1, help="torch CPU threads (0: leave)"
    )
    ft.add_argument("--resume", action="store_true", help="continue from --out's last checkpoint")
    common(ft)
    ft.set_defaults(func=cmd_finetune)
    data = sub.add_parser("data", help="demonstration datasets: check their quality")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser(
        "check",
        help="rank a dataset's episodes by a flow's density and flag the unlikely ones",
        description="Each episode is scored by the least likely 5 %% (--tail) of its chunks' "
        "log-densities under a flow that did not see it: by default flows trained on the "
        "other folds of DATA (cross-fitting, --folds trainings), or --flow, one trained on "
        "other, trusted demonstrations. An episode is flagged when its score lies more than "
        "--spread robust standard deviations below the median episode's.",
    )
    check.add_argument("data", help="the demonstrations (.npz)")
    check.add_argument(
        "--flow", default=None, help="score with this flow (its dir or .safetensors) instead"
    )
    check.add_argument("--folds", type=positive_int, default=4, help="cross-fitting folds")
    check.add_argument(
        "--epochs", type=positive_int, default=40, help="cross-fitting: epochs a fold's flow"
    )
    check.add_argument(
        "--tail", type=open_fraction, default=0.05, help="score: this quantile of the chunks"
    )
    check.add_argument(
        "--spread", type=positive_float, default=3.0, help="flag below median - SPREAD sigma"
    )
    check.add_argument(
        "--quantile",
        type=open_fraction,
        default=0.05,
        help="the calibrated threshold the reported unlikely share counts against",
    )
    check.add_argument("--out", default=None, help="write the full report here (JSON)")
    check.add_argument(
        "--write-clean", default=None, help="write DATA without the flagged episodes here (.npz)"
    )
    check.add_argument("--seed", type=non_negative_int, default=0)
    check.add_argument(
        "--threads", type=non_negative_int, default=1, help="torch CPU threads (0: leave)"
    )
    common(check)
    check.set_defaults(func=cmd_data)

    train = sub.add_parser("train", help="train a generator with RS-IMLE, or a flow")
    train.add_argument(
        "--model",
        default="imle",
        choices=("imle", "flow"),
        help="imle: the RS-IMLE generator; flow: the conditional normalizing flow (density, "
        "bounded latent; needs zuko, pip install -e '.[flow]')",
    )
    train.add_argument("--task", default="nav_one_obstacle", help="shipped demonstrations to use")
    train.add_argument("--data", default=None, help="your own demonstrations (.npz) instead")
    train.add_argument(
        "--out", default=None, help="directory for the checkpoint (out/generator or out/flow)"
    )
    train.add_argument("--epochs", type=positive_int, default=TRAIN_DEFAULTS.epochs)
    train.add_argument("--lr", type=positive_float, default=TRAIN_DEFAULTS.lr)
    train.add_argument(
        "--warmup",
        type=non_negative_int,
        default=TRAIN_DEFAULTS.warmup_steps,
        help="warm-up optimiser steps",
    )
    train.add_argument("--architecture", default="mlp", choices=("mlp", "unet"))
    train.add_argument(
        "--horizon",
        type=positive_int,
        default=GEN_DEFAULTS.horizon,
        help="steps per generated chunk",
    )
    train.add_argument(
        "--obs-horizon",
        type=positive_int,
        default=None,
        help=f"observations conditioned on (generator {GEN_DEFAULTS.obs_horizon}, flow "
        f"{FLOW_DEFAULTS.obs_horizon}: the density guard conditions on one)",
    )
    train.add_argument(
        "--held-out",
        type=open_fraction,
        default=FLOW_DEFAULTS.held_out_fraction,
        help="flow: share of each route's episodes kept to calibrate the density threshold",
    )
    train.add_argument(
        "--action-horizon",
        type=positive_int,
        default=GEN_DEFAULTS.action_horizon,
        help="steps the IMLE policy plays per chunk",
    )
    train.add_argument("--batch-size", type=positive_int, default=TRAIN_DEFAULTS.batch_size)
    train.add_argument(
        "--epsilon",
        type=non_negative_float,
        default=TRAIN_DEFAULTS.epsilon,
        help="RS-IMLE rejection radius",
    )
    train.add_argument(
        "--candidates",
        type=positive_int,
        default=TRAIN_DEFAULTS.num_candidates,
        help="latents per target",
    )
    train.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=TRAIN_DEFAULTS.checkpoint_every,
        help="epochs between resumable checkpoints",
    )
    train.add_argument("--seed", type=non_negative_int, default=0)
    train.add_argument(
        "--device", type=torch_device, default="cpu", help="torch device (cpu, cuda, cuda:1, mps)"
    )
    train.add_argument(
        "--threads", type=non_negative_int, default=1, help="torch CPU threads (0: leave)"
    )
    train.add_argument("--resume", action="store_true", help="continue from --out's last state")
    common(train)
    train.set_defaults(func=cmd_train)
    _bridge_parsers(sub, common, task_help, generator_help)
    return parser


def _view_options(p: argparse.ArgumentParser) -> None:
    """The browser view's address and what it keeps per step (``run`` and ``view``)."""
    p.add_argument(
        "--host", default=LOOPBACK,
        help="address to serve the view on (default: loopback only; over ssh forward the port)",
    )  # fmt: skip
    p.add_argument("--port", type=non_negative_int, default=8080, help="the view's TCP port")
    p.add_argument(
        "--max-proposals", type=positive_int, default=64,
        help="proposals recorded and drawn per step (the cheapest always among them)",
    )  # fmt: skip


def _view_parser(sub: Any, common: Any, task_help: str, generator_help: str) -> None:
    view = sub.add_parser(
        "view",
        help="the planner in the browser: live (TASK) or a recording (--replay FILE)",
        description="Serves a 3-D view (viser; pip install -e '.[view]') at http://HOST:PORT: "
        "the robot, the obstacles, the step's proposals coloured by cost (infeasible ones red), "
        "the chosen plan, the guard's events and the cost terms over time. With TASK an "
        "episode runs and is drawn step by step; --replay FILE shows a recording (imle-mpc "
        "run --record FILE) with a time slider. The view stays up until Ctrl-C or --duration.",
    )  # fmt: skip
    view.add_argument("task", nargs="?", default=None, help=task_help)
    view.add_argument("--replay", default=None, metavar="FILE", help="a recording to replay")
    view.add_argument(
        "--step", type=non_negative_int, default=0, help="replay: the step shown first"
    )
    view.add_argument("--planner", default="imle_mpc", choices=PLANNERS)
    view.add_argument("--generator", default=None, help=generator_help)
    view.add_argument("--seed", type=non_negative_int, default=0, help="the episode's seed")
    view.add_argument("--samples", type=positive_int, default=None, help="override the samples")
    view.add_argument(
        "--steps", type=positive_int, default=None, help="episode length (default: the task's)"
    )
    view.add_argument("--no-guard", action="store_true", help="run without the safety guard")
    view.add_argument("--record", default=None, metavar="FILE", help="also record the episode")
    view.add_argument(
        "--duration", type=positive_float, default=None,
        help="seconds to keep serving once the episode ran or the recording loaded "
        "(default: until Ctrl-C)",
    )  # fmt: skip
    _view_options(view)
    common(view)
    view.set_defaults(func=cmd_view)


def _bridge_parsers(sub: Any, common: Any, task_help: str, generator_help: str) -> None:
    bridge = sub.add_parser(
        "bridge", help="the controller as its own process, a simulated robot over a socket"
    )
    roles = bridge.add_subparsers(dest="role", required=True)

    def link(p: argparse.ArgumentParser, timeout: str, timeout_help: str) -> None:
        p.add_argument("task", help=task_help)
        p.add_argument("--port", type=non_negative_int, default=0, help="TCP port")
        p.add_argument(
            "--keys", default=None, metavar="DIR",
            help="CURVE keys from `imle-mpc bridge keys DIR` (needed off the loopback address)",
        )  # fmt: skip
        p.add_argument("--robot", default="robot", help="the robot's name (both sides agree)")
        p.add_argument(
            "--period", type=positive_float, default=None,
            help="seconds per tick (default: the task's dt)",
        )  # fmt: skip
        p.add_argument(timeout, type=positive_float, default=0.3, help=timeout_help)
        p.add_argument(
            "--duration", type=positive_float, default=None,
            help="seconds to run (default: until SIGTERM or Ctrl-C)",
        )  # fmt: skip
        p.add_argument("--trace", default=None, help="append one JSON line per tick to this file")
        common(p)

    ctl = roles.add_parser("controller", help="serve a robot with a guarded planner")
    link(
        ctl, "--state-timeout",
        "seconds without a fresh state before the guard stops the robot",
    )  # fmt: skip
    ctl.add_argument(
        "--address", default=LOOPBACK, help="address to bind (other than loopback: needs --keys)"
    )
    ctl.add_argument("--planner", default="mppi", choices=PLANNERS)
    ctl.add_argument("--generator", default=None, help=generator_help)
    ctl.add_argument("--samples", type=positive_int, default=None, help="samples per step")
    ctl.add_argument("--seed", type=non_negative_int, default=0)
    ctl.add_argument(
        "--no-offset-free", action="store_true", help="without the action-offset estimate"
    )
    ctl.set_defaults(func=cmd_bridge_controller)

    rob = roles.add_parser("robot", help="the task's plant as a simulated robot")
    link(rob, "--action-timeout", "seconds without a valid action before the robot brakes")
    rob.add_argument(
        "--connect", default=LOOPBACK, help="the controller's address (off loopback: --keys)"
    )
    rob.add_argument("--start", default=None, help="start state, comma-separated (resume)")
    rob.set_defaults(func=cmd_bridge_robot)

    keys = roles.add_parser("keys", help="write a CURVE key pair for each side")
    keys.add_argument("dir", help="directory for the key files")
    common(keys)
    keys.set_defaults(func=cmd_bridge_keys)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``imle-mpc`` console script.

    A bad option value is argparse's one-line error (exit 2). A setting the
    option types cannot judge alone (e.g. ``--samples 1`` for MPPI, which needs
    two) is refused by the config it builds; that ValueError or TypeError is
    printed as one line ``imle-mpc: error: ...`` with exit 2 too, no traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        summary = args.func(args)
    except (FileNotFoundError, InputError, ValueError, TypeError) as err:
        print(f"imle-mpc: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
