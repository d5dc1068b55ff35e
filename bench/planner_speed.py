"""MPPI speed: this project's ``planners.MPPI`` against pytorch_mppi, side by side.

Both planners get the same problem: the ``dynamics.Pendulum`` defaults
(theta = 0 upright, semi-implicit Euler, dt = 0.05 s, torque limit 2 N m, speed
clip 8 rad/s; written once more in torch for pytorch_mppi), the same cost per
step on the next state (wrapped angle^2 + 0.1 theta_dot^2 + 0.001 u^2), the
same K, H = 30, float64, noise sigma 1, lambda 1, two torch threads and two
Numba threads, in one process. Calls alternate between the two planners (and
which goes first), and the median time of one ``plan()`` / ``command()`` is
reported per K, with the speedup.

Next to each time: wall nanoseconds per sample-step (time / (K * H)) and the floor
on this machine, measured in the same run: a Numba kernel on the same threads doing
exactly K * H normal draws (the planner's generator, ``imle_mpc.core.kernels.rng``)
and K * H libm ``sin`` (the pendulum's step has one), nothing else. Each row records
the load average and the cores other processes used while it ran.

Then the quality check: a closed-loop swing-up from hanging (theta = pi) with
each planner at K = 1000 on the same simulated pendulum.

Differences that are part of the algorithms, not of the problem: pytorch_mppi
adds its perturbation cost ``lambda * u^T Sigma^-1 eps`` to each sample (this
MPPI leaves it out, as MuJoCo MPC does) and fills the end of the shifted plan
with zeros (this MPPI repeats the last action).

Usage:
    .venv/bin/python bench/planner_speed.py [--json] [--reps N] [--out PATH]

Writes ``bench/results/planner_speed.json`` and prints its headline last:
``speedup_vs_pytorch_mppi: X`` (pytorch_mppi median / ours, K = 1000; targets 10x at
K = 1000 and 5x at K = 16384).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytorch_mppi
import torch
from _machine import cpu_name, cpu_seconds, other_cpu_load

from cost import ControlEffort, CostSum, StateTracking, Term
from dynamics import Pendulum
from imle_mpc.core.io import write_json_atomic
from imle_mpc.core.kernels.rng import standard_normal, stream_state
from imle_mpc.core.threads import ThreadPolicy
from planners import MPPI, MPPIConfig

THREADS = 2
HORIZON = 30
SIGMA = 1.0
LAMBDA = 1.0
SAMPLE_COUNTS = (256, 1000, 4096, 16384)
HEADLINE_K = 1000
TARGETS = {1000: 10.0, 16384: 5.0}  # required speedups (issue 17)
SWINGUP_STEPS = 300  # 15 s: both planners swing up in 8-12 s at lambda = 1, H = 30
UPRIGHT = 0.3  # rad: |wrapped theta| below this counts as upright
HOLD_STEPS = 50  # ... for the last 2.5 s of the run
RESULTS = Path(__file__).resolve().parent / "results" / "planner_speed.json"


# --- the problem, once in NumPy/Numba (ours) and once in torch (pytorch_mppi) ---------


def our_cost() -> CostSum:
    return CostSum(
        Term("upright", StateTracking([0.0, 0.0], [1.0, 0.1], angle_dims=[0])),
        Term("effort", ControlEffort(), 0.001),
    )


class TorchPendulum:
    """``dynamics.pendulum.pendulum_step`` for a batch, in torch (same operations, same order)."""

    def __init__(self, model: Pendulum) -> None:
        mass, length, g, b, dt, vmax = (float(v) for v in model.params_vector())
        self.g_over_l, self.b, self.dt, self.vmax = g / length, b, dt, vmax
        self.mll = mass * length * length

    def __call__(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``state`` Shape=(K, 2), ``action`` Shape=(K, 1) -> next state Shape=(K, 2)."""
        theta, omega = state[:, 0], state[:, 1]
        theta_ddot = self.g_over_l * torch.sin(theta) + (action[:, 0] - self.b * omega) / self.mll
        omega = torch.clamp(omega + self.dt * theta_ddot, -self.vmax, self.vmax)
        return torch.stack((theta + self.dt * omega, omega), dim=1)


def torch_running_cost(state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """``our_cost()`` per step: wrapped angle^2 + 0.1 omega^2 + 0.001 u^2, Shape=(K,)."""
    e = state[:, 0] - 2.0 * math.pi * torch.floor((state[:, 0] + math.pi) / (2.0 * math.pi))
    return e * e + 0.1 * state[:, 1] ** 2 + 0.001 * action[:, 0] ** 2


def make_ours(model: Pendulum, K: int, seed: int = 0) -> MPPI:
    # The same threads as pytorch_mppi gets (the library's default for a control step is
    # one: see imle_mpc.core.threads and bench/loaded_latency.py).
    config = MPPIConfig(
        num_samples=K, horizon=HORIZON, temperature=LAMBDA, noise_sigma=SIGMA, seed=seed,
        threads=ThreadPolicy(numba=THREADS, torch=THREADS),
    )  # fmt: skip
    return MPPI(model, our_cost(), config)


def make_theirs(model: Pendulum, K: int, seed: int = 0) -> pytorch_mppi.MPPI:
    torch.manual_seed(seed)  # pytorch_mppi draws from torch's global generator
    f64 = torch.float64
    return pytorch_mppi.MPPI(
        TorchPendulum(model),
        torch_running_cost,
        nx=2,
        noise_sigma=torch.tensor([[SIGMA**2]], dtype=f64),
        num_samples=K,
        horizon=HORIZON,
        lambda_=LAMBDA,
        u_min=torch.tensor([-model.max_torque], dtype=f64),
        u_max=torch.tensor([model.max_torque], dtype=f64),
        U_init=torch.zeros(HORIZON, 1, dtype=f64),
        device="cpu",
    )


# --- the floor: K * H libm sin and normal draws, nothing else ---------------------------


@numba.njit(parallel=True, error_model="numpy")
def _sin_and_normal(seed: np.uint64, H: int, out: np.ndarray) -> None:  # pragma: no cover
    """``out[k] = sum_t sin(z_kt)``: exactly K * H normal draws (the planner's generator,
    ``imle_mpc.core.kernels.rng``) and K * H libm ``sin``, over the planner's threads."""
    for k in numba.prange(out.shape[0]):
        s = stream_state(seed, k)
        acc = 0.0
        for _ in range(H):
            s, z = standard_normal(s)
            acc += math.sin(z)
        out[k] = acc


def floor_ns(K: int, reps: int = 30) -> float:
    """Median ns per sample-step of ``_sin_and_normal`` at K x HORIZON on THREADS threads."""
    out = np.empty(K)
    seed = np.uint64(12345)
    with ThreadPolicy(numba=THREADS, torch=None).scope():
        _sin_and_normal(seed, HORIZON, out)
        seconds = []
        for _ in range(reps):
            t0 = time.perf_counter()
            _sin_and_normal(seed, HORIZON, out)
            seconds.append(time.perf_counter() - t0)
    return float(np.median(seconds)) / (K * HORIZON) * 1e9


# --- timing -----------------------------------------------------------------------


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {
        "median_ms": float(np.median(ms)),
        "p10_ms": float(np.percentile(ms, 10)),
        "p90_ms": float(np.percentile(ms, 90)),
    }


def time_pair(
    model: Pendulum, K: int, reps: int, warmup: int = 20, budget_s: float = 15.0
) -> dict[str, Any]:
    """Median time per call of both planners, calls alternating, from the hanging state.

    Stops early (after at least 20 pairs) once ``budget_s`` is spent, so a busy
    machine cannot stretch the benchmark past a couple of minutes.
    """
    ours, theirs = make_ours(model, K), make_theirs(model, K)
    x = np.array([math.pi, 0.0])
    xt = torch.tensor(x, dtype=torch.float64)
    for _ in range(warmup):
        ours.plan(x)
        theirs.command(xt)
    t_ours: list[float] = []
    t_theirs: list[float] = []
    phases: dict[str, list[float]] = {}

    def run_ours() -> None:
        t0 = time.perf_counter()
        result = ours.plan(x)
        t_ours.append(time.perf_counter() - t0)
        for name, value in result.timings.items():
            phases.setdefault(name, []).append(value)

    def run_theirs() -> None:
        t0 = time.perf_counter()
        theirs.command(xt)
        t_theirs.append(time.perf_counter() - t0)

    t_end = time.perf_counter() + budget_s
    for rep in range(reps):
        first, second = (run_ours, run_theirs) if rep % 2 == 0 else (run_theirs, run_ours)
        first()
        second()
        if rep >= 20 and time.perf_counter() > t_end:
            break
    row: dict[str, Any] = {
        "K": K,
        "ours": _stats(t_ours),
        "pytorch_mppi": _stats(t_theirs),
        "our_phases_median_ms": {k: float(np.median(v) * 1e3) for k, v in phases.items()},
        "our_path": "fused" if ours.uses_fused_path else "generic",
        "reps": len(t_ours),
    }
    row["speedup"] = row["pytorch_mppi"]["median_ms"] / row["ours"]["median_ms"]
    steps = K * HORIZON
    row["ours_ns_per_sample_step"] = row["ours"]["median_ms"] * 1e6 / steps
    row["pytorch_mppi_ns_per_sample_step"] = row["pytorch_mppi"]["median_ms"] * 1e6 / steps
    row["floor_ns_per_sample_step"] = floor_ns(K)
    return row


# --- result quality: closed-loop swing-up -------------------------------------------


def _wrap(theta: np.ndarray) -> np.ndarray:
    return (theta + np.pi) % (2.0 * np.pi) - np.pi


def swing_up(model: Pendulum, which: str, K: int = HEADLINE_K, seed: int = 0) -> dict[str, Any]:
    """Closed loop on the true pendulum from hanging; each planner re-plans every step."""
    x = np.array([math.pi, 0.0])
    states = [x]
    if which == "ours":
        planner = make_ours(model, K, seed)
        act = lambda s: planner.plan(s).action  # noqa: E731
    else:
        mppi = make_theirs(model, K, seed)
        act = lambda s: mppi.command(torch.tensor(s, dtype=torch.float64)).numpy()  # noqa: E731
    t0 = time.perf_counter()
    for _ in range(SWINGUP_STEPS):
        u = np.clip(np.asarray(act(x), dtype=np.float64).reshape(1), -2.0, 2.0)
        x = model.step(x, u)
        states.append(x)
    elapsed = time.perf_counter() - t0
    theta = np.abs(_wrap(np.array(states)[:, 0]))
    upright = theta < UPRIGHT
    # First step from which the pendulum stays upright to the end.
    stays_from = next((i for i in range(len(upright)) if upright[i:].all()), None)
    return {
        "planner": which,
        "steps": SWINGUP_STEPS,
        "simulated_s": SWINGUP_STEPS * model.dt,
        "success": bool(upright[-HOLD_STEPS:].all()),
        "final_abs_theta": float(theta[-1]),
        "max_abs_theta_held": float(theta[-HOLD_STEPS:].max()),
        "upright_from_s": None if stays_from is None else stays_from * model.dt,
        "mean_step_ms": elapsed / SWINGUP_STEPS * 1e3,
    }


# --- report -----------------------------------------------------------------------


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": torch.__version__,
        "pytorch_mppi": version("pytorch-mppi"),
    }


def _print_table(rows: list[dict[str, Any]], quality: list[dict[str, Any]]) -> None:
    print(f"MPPI plan() vs pytorch_mppi command(): pendulum, H={HORIZON}, float64, "
          f"{THREADS} threads each, median of alternating calls")  # fmt: skip
    print(
        f"{'K':>6} | {'ours ms':>9} | {'pytorch_mppi ms':>15} | {'speedup':>7} | "
        f"{'ours ns/ss':>10} | {'floor ns/ss':>11} | target"
    )
    print("-" * 86)
    for r in rows:
        target = TARGETS.get(r["K"])
        mark = (
            ""
            if target is None
            else f">= {target:.0f}x " + ("ok" if r["speedup"] >= target else "MISSED")
        )
        print(
            f"{r['K']:>6} | {r['ours']['median_ms']:>9.3f} | "
            f"{r['pytorch_mppi']['median_ms']:>15.3f} | {r['speedup']:>6.1f}x | "
            f"{r['ours_ns_per_sample_step']:>10.1f} | {r['floor_ns_per_sample_step']:>11.1f} | "
            f"{mark}  (load {r['loadavg_1min']:.1f}, others {r['other_cpu_load']} cores)"
        )
    print(
        f"(ns/ss: wall ns per sample-step on {THREADS} threads; floor: a Numba kernel doing "
        "only the K*H libm sin and normal draws)"
    )
    print()
    print(f"swing-up from hanging, K={HEADLINE_K}, {SWINGUP_STEPS} steps "
          f"({quality[0]['simulated_s']:.1f} s), success = |theta| < {UPRIGHT} rad for the "
          f"last {HOLD_STEPS} steps:")  # fmt: skip
    for q in quality:
        since = "never" if q["upright_from_s"] is None else f"{q['upright_from_s']:.2f} s"
        print(
            f"  {q['planner']:<13} success={q['success']!s:<5} final |theta|="
            f"{q['final_abs_theta']:.3f} rad, upright from {since}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200, help="timed calls per planner and K")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    args = parser.parse_args(argv)
    if args.reps < 5:
        parser.error("--reps must be >= 5")

    torch.set_num_threads(THREADS)
    numba.set_num_threads(THREADS)
    model = Pendulum()
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    rows = []
    for K in SAMPLE_COUNTS:
        reps = max(5, args.reps // (4 if K >= 16384 else 2)) if K >= 4096 else args.reps
        mark, t0 = cpu_seconds(), time.perf_counter()
        row = time_pair(model, K, reps)
        row["other_cpu_load"] = other_cpu_load(mark, time.perf_counter() - t0)
        row["loadavg_1min"] = os.getloadavg()[0]
        rows.append(row)
    quality = [swing_up(model, "ours"), swing_up(model, "pytorch_mppi")]
    load_after = os.getloadavg()

    headline = next(r["speedup"] for r in rows if r["K"] == HEADLINE_K)
    results = {
        "benchmark": "planner_speed",
        "command": "python bench/planner_speed.py " + " ".join(sys.argv[1:]),
        "problem": {
            "dynamics": "dynamics.Pendulum() defaults; torch copy for pytorch_mppi",
            "cost": "wrapped theta^2 + 0.1 theta_dot^2 + 0.001 u^2 per step, on the next state",
            "horizon": HORIZON,
            "noise_sigma": SIGMA,
            "lambda": LAMBDA,
            "dtype": "float64",
            "threads": {"torch": torch.get_num_threads(), "numba": numba.get_num_threads()},
        },
        "machine": {
            "cpus": os.cpu_count(),
            "processor": cpu_name(),
            "loadavg_1min_before_after": [load_before[0], load_after[0]],
        },
        "versions": _versions(),
        "timing": rows,
        "swing_up": quality,
        "targets": {
            str(K): {"required": t, "measured": next(r["speedup"] for r in rows if r["K"] == K)}
            for K, t in TARGETS.items()
        },
        "speedup_vs_pytorch_mppi": headline,
        "wall_s": time.perf_counter() - t_start,
    }
    out = write_json_atomic(args.out, results)

    _print_table(rows, quality)
    busy = max(load_before[0], load_after[0])
    if busy > 0.5 * (os.cpu_count() or 1):
        print(
            f"\nnote: the machine was busy (1-min load average up to {busy:.1f} on "
            f"{os.cpu_count()} CPUs): parallel timings of both planners are noisy.",
        )
    print(f"\nresults written to {out} ({results['wall_s']:.0f} s)")
    if args.json:
        summary = {
            "benchmark": "planner_speed",
            "speedup_vs_pytorch_mppi": round(headline, 2),
            "median_ms": {
                str(r["K"]): {
                    "ours": round(r["ours"]["median_ms"], 4),
                    "pytorch_mppi": round(r["pytorch_mppi"]["median_ms"], 4),
                }
                for r in rows
            },
            "swing_up_success": {q["planner"]: q["success"] for q in quality},
            "results": str(out),
        }
        print(json.dumps(summary, sort_keys=True))
    print(f"speedup_vs_pytorch_mppi: {headline:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
