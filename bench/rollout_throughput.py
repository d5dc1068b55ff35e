"""Rollout throughput of the rigid-body backends, each against the raw library call it wraps.

For K in {64, 256, 1024} sequences of H = 16 steps, in one process, calls
alternating (and which goes first), median of the repeats:

* MuJoCo: ``MujocoDynamics.rollout`` (shape checks, x0 into MuJoCo's
  full-physics state, states copied out, failure marking) against
  ``mujoco.rollout.Rollout.rollout`` called directly on preallocated outputs,
  the same thread count (``os.cpu_count()``) and one ``MjData`` per thread. Two
  models: the 7-DoF Panda (example_robot_data's URDF through MuJoCo's importer,
  no contacts, Euler, 10 ms per step) and Gymnasium's InvertedPendulum XML (RK4,
  frame_skip 1), where the physics is cheapest and the wrapper's share largest.
  The overhead is the median of ``ours / raw - 1`` over back-to-back pairs of calls, in percent.
* Pinocchio: ``PinocchioDynamics.rollout`` (``pin.abaInParallel`` over the batch,
  NumPy semi-implicit Euler) against ``pin.aba`` called per sample and step in a
  Python loop, on the Panda with the fingers locked, 10 ms per step.

Then the batching options for Pinocchio at K = 256, H = 16 (why the backend
uses ``abaInParallel``): a Python loop over ``pin.aba`` sample by sample, the
same loop stepping all samples together, a thread pool over ``pin.aba``,
``abaInParallel`` with 1 and with ``os.cpu_count()`` threads. A CasADi
function is listed as unavailable when the wheel has no ``pinocchio.casadi``.

Last, the closed-loop control rate of guarded IMLE-MPC on ``panda_reach_around``
(K = 256, H = 16, the shipped generator; ``arm_control_rate``): 1 / the median
wall time of a control step and its 95th percentile, over 2 seeded episodes a round,
with per-stage medians, for three variants taking turns episode by episode: the
library's default (the generator's NumPy path, one Numba and one torch thread), the
baseline (the same with the generator on torch) and two Numba threads. Targets
(issue 17): at least 1 kHz with p95 at most 1 ms. ``--arm-only`` runs just this part
(results in ``bench/results/rollout_throughput_arm.json``).

Steps per second = K * H / seconds per call (one step = one control step).
On a busy machine run it with ``OMP_WAIT_POLICY=PASSIVE`` (see
``dynamics/pinocchio_model.py``); the JSON records the setting and the load.

Usage:
    .venv/bin/python bench/rollout_throughput.py [--reps N] [--out PATH] [--json]
        [--arm-rounds N] [--arm-only]

Writes ``bench/results/rollout_throughput.json``, prints the largest MuJoCo
overhead over the models and K (target <= 10 %), ``arm_plan_p95_ms: X`` and,
last, ``arm_control_hz: X`` (the default variant).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import example_robot_data
import mujoco
import numpy as np
import pinocchio as pin
from _machine import cpu_name, cpu_seconds, other_cpu_load
from mujoco import rollout as mj_rollout

from dynamics.mujoco_model import MujocoDynamics, model_from_urdf
from dynamics.pinocchio_model import PinocchioDynamics
from imle_mpc.core.io import write_json_atomic

SAMPLE_COUNTS = (64, 256, 1024)
HORIZON = 16
DT = 0.01
BATCHING_K = 256
OVERHEAD_TARGET_PCT = 10.0
FINGERS = ("panda_finger_joint1", "panda_finger_joint2")
Q_HOME = np.array([0.0, -0.3, 0.0, -2.0, 0.0, 1.8, 0.7])
RESULTS = Path(__file__).resolve().parent / "results" / "rollout_throughput.json"
ARM_RESULTS = RESULTS.with_name("rollout_throughput_arm.json")  # --arm-only
THREADS = os.cpu_count() or 1


# --- models ---------------------------------------------------------------------------------


def panda_urdf() -> Path:
    root = Path(example_robot_data.getModelPath("panda_description/urdf/panda.urdf"))
    return root / "panda_description/urdf/panda.urdf"


def panda_mujoco() -> mujoco.MjModel:
    """The Panda arm in MuJoCo: fingers welded, no geometry, Euler at 10 ms."""
    model = model_from_urdf(panda_urdf(), fixed_joints=FINGERS)
    model.opt.timestep = DT
    model.opt.integrator = mujoco.mjtIntegrator.mjINT_EULER
    return model


def inverted_pendulum_mujoco() -> mujoco.MjModel:
    import gymnasium

    xml = Path(gymnasium.__file__).parent / "envs/mujoco/assets/inverted_pendulum.xml"
    return mujoco.MjModel.from_xml_path(str(xml))


def panda_pinocchio(num_threads: int = THREADS) -> PinocchioDynamics:
    return PinocchioDynamics(panda_urdf(), dt=DT, locked_joints=FINGERS, num_threads=num_threads)


# --- timing -----------------------------------------------------------------------------------


def _time_alternating(
    calls: dict[str, Callable[[], object]], reps: int, budget_s: float, warmup: int = 3
) -> dict[str, list[float]]:
    """Seconds of each call of each function, calls alternating and rotating order.

    Stops early (after at least 7 rounds) once ``budget_s`` is spent.
    """
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    t_end = time.perf_counter() + budget_s
    for rep in range(reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            t0 = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - t0)
        if rep >= 6 and time.perf_counter() > t_end:
            break
    return times


def _row(K: int, times: dict[str, list[float]], ours: str, raw: str) -> dict[str, Any]:
    """Medians, and the overhead as the median ratio of back-to-back pairs of calls.

    Pairing cancels most of the drift in machine load (other processes) that
    the two medians alone would pick up.
    """
    steps = K * HORIZON
    t_ours, t_raw = np.median(times[ours]), np.median(times[raw])
    ratio = np.median(np.asarray(times[ours]) / np.asarray(times[raw]))
    return {
        "K": K,
        "H": HORIZON,
        "reps": len(times[ours]),
        "ours_ms": t_ours * 1e3,
        "raw_ms": t_raw * 1e3,
        "ours_steps_per_s": steps / t_ours,
        "raw_steps_per_s": steps / t_raw,
        "overhead_pct": 100.0 * (ratio - 1.0),
    }


def mujoco_rows(name: str, model: mujoco.MjModel, reps: int, budget_s: float) -> list[dict]:
    """``MujocoDynamics.rollout`` against ``Rollout.rollout`` on preallocated arrays."""
    ours = MujocoDynamics(model, num_threads=THREADS)
    pool = mj_rollout.Rollout(nthread=THREADS)
    datas = [mujoco.MjData(model) for _ in range(max(1, THREADS))]
    full = int(mujoco.mjtState.mjSTATE_FULLPHYSICS)
    nstate = mujoco.mj_stateSize(model, full)
    rng = np.random.default_rng(0)
    x0 = np.zeros(ours.nx)
    if name == "panda":
        x0[:7] = Q_HOME
    initial = np.zeros((1, nstate))
    initial[0, 1 : 1 + ours.nx] = x0
    rows = []
    for K in SAMPLE_COUNTS:
        low = np.where(np.isfinite(ours.action_low), ours.action_low, -1.0)
        high = np.where(np.isfinite(ours.action_high), ours.action_high, 1.0)
        U = rng.uniform(low, high, (K, HORIZON, ours.nu))
        state = np.empty((K, HORIZON, nstate))
        sensordata = np.empty((K, HORIZON, model.nsensordata))
        out = np.empty((K, HORIZON + 1, ours.nx))

        def raw(U: np.ndarray = U, state: np.ndarray = state, sd: np.ndarray = sensordata) -> None:
            pool.rollout(model, datas, initial, U, state=state, sensordata=sd)

        def wrapped(U: np.ndarray = U, out: np.ndarray = out) -> None:
            ours.rollout(x0, U, out)

        times = _time_alternating({"ours": wrapped, "raw": raw}, reps, budget_s)
        raw()
        same = np.array_equal(out[:, 1:], state[:, :, 1 : 1 + ours.nx])
        rows.append({**_row(K, times, "ours", "raw"), "model": name, "same_states": same})
    pool.close()
    ours.close()
    return rows


def _aba_loop(arm: PinocchioDynamics, x0: np.ndarray, U: np.ndarray) -> np.ndarray:
    """The raw call: ``pin.aba`` per sample and step, semi-implicit Euler, in Python."""
    m, d, nv = arm.model, arm.model.createData(), arm.nu
    K, H, _ = U.shape
    X = np.empty((K, H + 1, 2 * nv))
    X[:, 0] = x0
    for k in range(K):
        q, v = x0[:nv].copy(), x0[nv:].copy()
        for t in range(H):
            v = v + DT * pin.aba(m, d, q, v, U[k, t])
            q = q + DT * v
            X[k, t + 1, :nv] = q
            X[k, t + 1, nv:] = v
    return X


def pinocchio_rows(reps: int, budget_s: float) -> list[dict]:
    arm = panda_pinocchio()
    x0 = np.concatenate([Q_HOME, np.zeros(7)])
    rng = np.random.default_rng(0)
    rows = []
    for K in SAMPLE_COUNTS:
        U = rng.uniform(arm.action_low, arm.action_high, (K, HORIZON, 7))
        out = np.empty((K, HORIZON + 1, 14))

        def ours(U: np.ndarray = U, out: np.ndarray = out) -> None:
            arm.rollout(x0, U, out)

        def raw(U: np.ndarray = U) -> None:
            _aba_loop(arm, x0, U)

        calls: dict[str, Callable[[], object]] = {"ours": ours, "raw": raw}
        times = _time_alternating(calls, max(7, reps // 4), budget_s, warmup=1)
        err = float(np.abs(arm.rollout(x0, U) - _aba_loop(arm, x0, U)).max())
        rows.append({**_row(K, times, "ours", "raw"), "model": "panda", "max_abs_diff": err})
    return rows


# --- Pinocchio batching options -----------------------------------------------------------------


def pinocchio_batching(reps: int, budget_s: float) -> dict[str, Any]:
    """Seconds per rollout (K = BATCHING_K, H = HORIZON) of each way to batch ``pin.aba``."""
    arm = panda_pinocchio()
    m, nv, K = arm.model, arm.nu, BATCHING_K
    x0 = np.concatenate([Q_HOME, np.zeros(nv)])
    U = np.random.default_rng(1).uniform(arm.action_low, arm.action_high, (K, HORIZON, nv))

    def stepped_together() -> None:
        d = m.createData()
        Q, V, A = np.tile(x0[:nv], (K, 1)), np.zeros((K, nv)), np.empty((K, nv))
        for t in range(HORIZON):
            for k in range(K):
                A[k] = pin.aba(m, d, Q[k], V[k], U[k, t])
            V += DT * A
            Q += DT * V

    datas = [m.createData() for _ in range(THREADS)]
    executor = ThreadPoolExecutor(THREADS)

    def thread_pool() -> None:
        Q, V, A = np.tile(x0[:nv], (K, 1)), np.zeros((K, nv)), np.empty((K, nv))

        def work(i: int, t: int) -> None:
            for k in range(i, K, THREADS):
                A[k] = pin.aba(m, datas[i], Q[k], V[k], U[k, t])

        for t in range(HORIZON):
            list(executor.map(work, range(THREADS), [t] * THREADS))
            V += DT * A
            Q += DT * V

    one_thread = panda_pinocchio(num_threads=1)
    out = np.empty((K, HORIZON + 1, 2 * nv))
    options: dict[str, Callable[[], object]] = {
        "python_loop_per_sample": lambda: _aba_loop(arm, x0, U),
        "python_loop_samples_stepped_together": stepped_together,
        f"thread_pool_{THREADS}_threads": thread_pool,
        "abaInParallel_1_thread": lambda: one_thread.rollout(x0, U, out),
        f"abaInParallel_{THREADS}_threads": lambda: arm.rollout(x0, U, out),
    }
    times = _time_alternating(options, max(7, reps // 4), budget_s, warmup=1)
    seconds = {name: float(np.median(values)) for name, values in times.items()}
    executor.shutdown()
    try:
        import pinocchio.casadi  # noqa: F401

        casadi = "available (not measured)"
    except ImportError:
        casadi = "unavailable: the pip wheel has no pinocchio.casadi"
    return {
        "K": K,
        "H": HORIZON,
        "options": {
            name: {"ms": s * 1e3, "steps_per_s": K * HORIZON / s} for name, s in seconds.items()
        },
        "casadi": casadi,
        "chosen": f"abaInParallel_{THREADS}_threads",
    }


# --- hook for the arm control-rate part ---------------------------------------------------------


ARM_SAMPLES = 256
ARM_EPISODES = 2
ARM_ROUNDS = 2
ARM_RATE_TARGET_HZ = 1000.0
ARM_P95_TARGET_MS = 1.0
ARM_HEADLINE = "numpy_1_thread"


def _arm_variants() -> dict[str, tuple[str, Any]]:
    """Name -> (generator inference path, thread policy) of each arm planner timed."""
    from imle_mpc.core.threads import PLANNING_THREADS, ThreadPolicy

    return {
        # the library's default: the generator's NumPy path, one Numba and one torch thread
        "numpy_1_thread": ("auto", PLANNING_THREADS),
        # the baseline: the same planner with the generator on torch (before issue 17)
        "torch_1_thread": ("torch", PLANNING_THREADS),
        # both cores for the step's Numba kernels (a machine that runs only the controller)
        "numpy_2_threads": ("auto", ThreadPolicy(numba=2, torch=1)),
    }


def arm_control_rate(args: argparse.Namespace) -> dict[str, Any]:
    """Closed-loop control rate of guarded IMLE-MPC on ``panda_reach_around``.

    K = ``ARM_SAMPLES`` rows per step (the warm start, 127 generator chunks, 128
    perturbations of them), H = 16, the shipped generator, inside the safety
    guard, ``ARM_EPISODES`` seeded episodes of 80 steps per round, ``ARM_ROUNDS``
    rounds; the variants (``_arm_variants``) take turns episode by episode (and
    which goes first), so load drift hits them alike. The rate is 1 / (median wall
    time of a guarded ``plan`` call); the per-stage medians (proposals, rollout,
    cost, constraints) come from the planner's timings.
    """
    import runpy

    from imle_mpc.eval.episodes import run_episode
    from imle_mpc.tasks.panda import panda_reach_around
    from imle_mpc.tasks.panda.robot import classify_panda_route

    example = runpy.run_path(
        str(Path(__file__).resolve().parents[1] / "examples/panda_reach_around.py")
    )
    task = panda_reach_around()
    variants = _arm_variants()
    planners: dict[str, Any] = {}
    plan_times: dict[str, list[float]] = {name: [] for name in variants}
    # CPU seconds of the calling thread per guarded plan: with one thread for the step
    # (all of it on the caller) about what the wall time is on an idle machine, so a
    # figure that holds when other processes share the cores.
    cpu_times: dict[str, list[float]] = {name: [] for name in variants}
    stages: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
    episodes: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for name, (inference, threads) in variants.items():
        planner = example["build_planner"](task, ARM_SAMPLES, 0, threads)
        inner = planner.planner
        inner.sampler.generator.set_inference(inference)
        original_plan = inner.plan

        def timed_plan(
            state: np.ndarray, plan: Any = original_plan, into: Any = stages[name]
        ) -> Any:
            result = plan(state)
            for stage, seconds in result.timings.items():
                into.setdefault(stage, []).append(seconds)
            return result

        inner.plan = timed_plan
        guarded_plan = planner.plan

        def cpu_timed_plan(
            state: np.ndarray, plan: Any = guarded_plan, into: list[float] = cpu_times[name]
        ) -> Any:
            t0 = time.thread_time()
            result = plan(state)
            into.append(time.thread_time() - t0)
            return result

        planner.plan = cpu_timed_plan
        planners[name] = planner
    names = list(variants)
    turn = 0
    for _ in range(args.arm_rounds):
        for seed in range(ARM_EPISODES):
            order = names[turn % len(names) :] + names[: turn % len(names)]
            turn += 1
            for name in order:
                planner = planners[name]
                planner.reset(seed)
                record = run_episode(task, planner, seed=seed)
                plan_times[name].extend(record.plan_times.tolist())
                episodes[name].append(
                    {"seed": seed, "success": bool(record.success),
                     "route": classify_panda_route(record.states),
                     "fallback_steps": record.fallback_steps}
                )  # fmt: skip
    rows: dict[str, Any] = {}
    for name, (inference, threads) in variants.items():
        times = np.asarray(plan_times[name])
        median = float(np.median(times))
        rows[name] = {
            "generator_inference": inference,
            "threads": {"numba": threads.numba, "torch": threads.torch},
            "plans": int(times.size),
            "plan_ms_median": median * 1e3,
            "plan_ms_p95": float(np.percentile(times, 95)) * 1e3,
            "control_hz": 1.0 / median,
            "caller_cpu_ms_median": float(np.median(cpu_times[name])) * 1e3,
            "caller_cpu_ms_p95": float(np.percentile(cpu_times[name], 95)) * 1e3,
            "successes": sum(e["success"] for e in episodes[name]),
            "episodes": episodes[name],
            "stage_ms_median": {k: float(np.median(v)) * 1e3 for k, v in stages[name].items()},
        }
    head = rows[ARM_HEADLINE]
    baseline = rows["torch_1_thread"]
    return {
        "task": task.name,
        "planner": "imle_mpc (guarded)",
        "K": ARM_SAMPLES,
        "H": task.hints.horizon,
        "variants": rows,
        "headline_variant": ARM_HEADLINE,
        "plan_ms_median": head["plan_ms_median"],
        "plan_ms_p95": head["plan_ms_p95"],
        "control_hz": head["control_hz"],
        "speedup_over_torch_path": baseline["plan_ms_median"] / head["plan_ms_median"],
        "target_hz": ARM_RATE_TARGET_HZ,
        "target_p95_ms": ARM_P95_TARGET_MS,
        "headline": ("arm_control_hz", round(head["control_hz"], 1)),
    }


def _print_arm(arm: dict[str, Any]) -> None:
    print(
        f"\nguarded IMLE-MPC on {arm['task']}, K={arm['K']}, H={arm['H']}, variants "
        "alternating episode by episode:"
    )
    print(
        f"  {'variant':<17} {'median ms':>9} {'p95 ms':>7} {'Hz':>7} | {'caller CPU ms':>13} "
        f"{'p95':>6} | success"
    )
    for name, row in arm["variants"].items():
        print(
            f"  {name:<17} {row['plan_ms_median']:>9.3f} {row['plan_ms_p95']:>7.3f} "
            f"{row['control_hz']:>7.0f} | {row['caller_cpu_ms_median']:>13.3f} "
            f"{row['caller_cpu_ms_p95']:>6.3f} | {row['successes']}/{len(row['episodes'])}"
        )
    print(
        "  (caller CPU: CPU time of the planning thread per guarded plan; with one thread "
        "about the idle wall time)"
    )
    ok = arm["control_hz"] >= arm["target_hz"] and arm["plan_ms_p95"] <= arm["target_p95_ms"]
    print(
        f"  {arm['headline_variant']}: {arm['control_hz']:.0f} Hz, p95 "
        f"{arm['plan_ms_p95']:.3f} ms (target >= {arm['target_hz']:.0f} Hz and p95 <= "
        f"{arm['target_p95_ms']:.1f} ms: {'met' if ok else 'MISSED'}); "
        f"{arm['speedup_over_torch_path']:.2f}x the torch path"
    )


# --- report --------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "mujoco": mujoco.__version__,
        "pin": version("pin"),
        "example-robot-data": version("example-robot-data"),
    }


def _print_tables(rows: list[dict], batching: dict[str, Any]) -> None:
    print(f"rollout throughput, H={HORIZON}, {THREADS} threads, median of alternating calls")
    print(
        f"{'backend':<9} {'model':<18} {'K':>5} | {'ours ms':>9} | {'raw ms':>9} | "
        f"{'ours Msteps/s':>13} | {'raw Msteps/s':>12} | {'overhead':>8}"
    )
    print("-" * 100)
    for r in rows:
        print(
            f"{r['backend']:<9} {r['model']:<18} {r['K']:>5} | {r['ours_ms']:>9.3f} | "
            f"{r['raw_ms']:>9.3f} | {r['ours_steps_per_s'] / 1e6:>13.3f} | "
            f"{r['raw_steps_per_s'] / 1e6:>12.3f} | {r['overhead_pct']:>7.1f}%"
        )
    print("(pinocchio raw = pin.aba in a Python loop, so its 'overhead' is negative: a speedup)")
    print(f"\npinocchio batching options, Panda, K={batching['K']}, H={batching['H']}:")
    for name, value in batching["options"].items():
        print(f"  {name:<40} {value['ms']:>8.2f} ms  {value['steps_per_s'] / 1e6:>6.3f} Msteps/s")
    print(f"  {'casadi':<40} {batching['casadi']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=60, help="timed calls per variant and K")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds per timing table row")
    parser.add_argument(
        "--out", default=None, help="where to write the JSON results (default: bench/results/)"
    )
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    parser.add_argument(
        "--arm-rounds", type=int, default=ARM_ROUNDS, help="rounds of the arm's episodes"
    )
    parser.add_argument(
        "--arm-only", action="store_true", help="only the arm's control rate (skip the rollouts)"
    )
    args = parser.parse_args(argv)
    if args.reps < 7:
        parser.error("--reps must be >= 7")
    if args.arm_rounds < 1:
        parser.error("--arm-rounds must be >= 1")

    load_before = os.getloadavg()
    t_start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    batching: dict[str, Any] | None = None
    if not args.arm_only:
        models = {"panda": panda_mujoco(), "inverted_pendulum": inverted_pendulum_mujoco()}
        rows = [
            {**row, "backend": "mujoco"}
            for name, model in models.items()
            for row in mujoco_rows(name, model, args.reps, args.budget)
        ]
        rows += [{**row, "backend": "pinocchio"} for row in pinocchio_rows(args.reps, args.budget)]
        batching = pinocchio_batching(args.reps, args.budget)
    mark = cpu_seconds()
    t_arm = time.perf_counter()
    arm = arm_control_rate(args)
    arm["other_cpu_load"] = other_cpu_load(mark, time.perf_counter() - t_arm)
    load_after = os.getloadavg()
    arm["loadavg_1min_after"] = load_after[0]

    mujoco = [r["overhead_pct"] for r in rows if r["backend"] == "mujoco"]
    headline = max(mujoco) if mujoco else None
    results: dict[str, Any] = {
        "benchmark": "rollout_throughput",
        "command": "python bench/rollout_throughput.py " + " ".join(sys.argv[1:]),
        "setup": {
            "horizon": HORIZON,
            "sample_counts": list(SAMPLE_COUNTS),
            "threads": THREADS,
            "panda": "example_robot_data URDF, fingers locked/welded, 10 ms steps, no contacts",
            "mujoco_raw": "mujoco.rollout.Rollout(nthread).rollout on preallocated arrays",
            "pinocchio_raw": "pin.aba per sample and step in a Python loop",
            "arm_only": args.arm_only,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "processor": cpu_name(),
            "loadavg_1min_before_after": [load_before[0], load_after[0]],
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
            # forces NumPy's OpenBLAS kernels (the generator's matrix products) when set
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        },
        "versions": _versions(),
        "timing": rows,
        "pinocchio_batching": batching,
        "arm_control_rate": arm,
        "mujoco_overhead_pct": headline,
        "mujoco_overhead_target_pct": OVERHEAD_TARGET_PCT,
        "wall_s": time.perf_counter() - t_start,
    }
    out_path = args.out if args.out is not None else (ARM_RESULTS if args.arm_only else RESULTS)
    out = write_json_atomic(out_path, results)

    if batching is not None:
        _print_tables(rows, batching)
    busy = max(load_before[0], load_after[0])
    if busy > 0.5 * (os.cpu_count() or 1):
        print(
            f"\nnote: the machine was busy (1-min load average up to {busy:.1f} on "
            f"{os.cpu_count()} CPUs; other processes {arm['other_cpu_load']} cores during the "
            "arm's episodes): the timings are inflated."
        )
        if os.environ.get("OMP_WAIT_POLICY", "").lower() != "passive":
            print("      abaInParallel spin-waits on a busy machine: try OMP_WAIT_POLICY=PASSIVE.")
    if headline is not None:
        ok = "ok" if headline <= OVERHEAD_TARGET_PCT else "MISSED"
        print(f"\nMuJoCo wrapper overhead, worst case: {headline:.1f} % (target <= "
              f"{OVERHEAD_TARGET_PCT:.0f} %: {ok})")  # fmt: skip
    _print_arm(arm)
    print(f"results written to {out} ({results['wall_s']:.0f} s)")
    if args.json:
        summary = {
            "benchmark": "rollout_throughput",
            "mujoco_overhead_pct": None if headline is None else round(headline, 2),
            "steps_per_s": {
                f"{r['backend']}/{r['model']}/{r['K']}": round(r["ours_steps_per_s"]) for r in rows
            },
            "arm_control_hz": round(arm["control_hz"], 1),
            "arm_plan_p95_ms": round(arm["plan_ms_p95"], 4),
            "results": str(out),
        }
        print(json.dumps(summary, sort_keys=True))
    print(f"arm_plan_p95_ms: {arm['plan_ms_p95']:.3f}")
    name, value = arm["headline"]
    print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
