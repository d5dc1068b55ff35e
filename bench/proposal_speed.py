"""Proposal speed: one IMLE generator pass vs a 100-step denoising loop of the same network.

IMLE Policy's inference claim is that one forward pass replaces Diffusion
Policy's 100 denoising steps. This bench measures both, end to end (NumPy
observation in, float64 NumPy chunks out), for N proposals in {32, 256, 1024}:

* ``one pass``: ``IMLEGenerator.sample(obs_history, N, rng)``: latents from the
  NumPy RNG, one batched forward pass, un-normalisation.
* ``100-step loop``: the same architecture and widths run as a DDPM sampler: the
  U-Net gains Diffusion Policy's timestep embedding (width ``down_dims[0]``) and
  is called 100 times, each step followed by the DDPM update with fresh noise.
  The MLP has no timestep input, so the identical MLP is called 100 times.

Weights are random (speed does not depend on them). The two variants run
alternately in one process; medians are reported. Results go to
``bench/results/proposal_speed.json`` (written atomically). The last stdout
line is ``speedup_vs_100step: X`` (U-Net, N=256).

    python bench/proposal_speed.py                 # CPU, small U-Net, < ~2 min
    python bench/proposal_speed.py --json          # one-line JSON summary
    python bench/proposal_speed.py --device cuda --unet-size paper
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _machine import cpu_name

from imle_mpc import __version__
from imle_mpc.core.io import write_json_atomic
from imle_mpc.learn.imle import GeneratorConfig, IMLEGenerator, parameter_count

RESULTS = Path(__file__).resolve().parent / "results" / "proposal_speed.json"
OBS_DIM = 10
NU = 2
HORIZON = 16
OBS_HORIZON = 2
UNET_SIZES: dict[str, tuple[int, ...]] = {"small": (32, 64, 128), "paper": (256, 512, 1024)}


class DenoisingLoop:
    """A DDPM sampler around a network ``net(x, cond[, t]) -> eps`` (Diffusion Policy's loop).

    Uses the squared-cosine beta schedule and epsilon prediction; the whole
    loop runs under ``torch.inference_mode``.
    """

    def __init__(
        self,
        generator: IMLEGenerator,
        steps: int,
        uses_timestep: bool,
        seed: int = 0,
    ) -> None:
        self.gen = generator
        self.steps = steps
        self.uses_timestep = uses_timestep
        self.device = generator.device
        t = np.linspace(0, 1, steps + 1)
        abar = np.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
        beta = np.clip(1 - abar[1:] / abar[:-1], 0, 0.999)
        alpha = 1 - beta
        alpha_bar = np.cumprod(alpha)
        self.c_eps = (beta / np.sqrt(1 - alpha_bar)).tolist()
        self.c_scale = (1 / np.sqrt(alpha)).tolist()
        self.sigma = np.sqrt(beta).tolist()
        self.timesteps = [
            torch.full((1,), k, dtype=torch.float32, device=self.device)
            for k in range(steps - 1, -1, -1)
        ]
        self.noise_gen = torch.Generator(device=self.device).manual_seed(seed)

    def warm_up(self, n: int) -> None:
        """Two network calls at batch size ``n`` (first-call overheads out of the timings)."""
        cond = torch.zeros(1, self.gen.obs_horizon * self.gen.obs_dim, device=self.device)
        x = torch.zeros(n, self.gen.latent_dim, device=self.device)
        with torch.inference_mode():
            for t in self.timesteps[:2]:
                self.gen.network(x, cond, t) if self.uses_timestep else self.gen.network(x, cond)

    def sample(self, obs_history: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        gen = self.gen
        net = gen.network
        cond_np = gen.obs_normalizer.normalize(obs_history).astype(np.float32).reshape(1, -1)
        x_np = rng.standard_normal((n, gen.latent_dim), dtype=np.float32)
        with torch.inference_mode():
            cond = torch.from_numpy(cond_np).to(self.device)
            x = torch.from_numpy(x_np).to(self.device)
            for i, t in enumerate(self.timesteps):
                k = self.steps - 1 - i
                eps = net(x, cond, t) if self.uses_timestep else net(x, cond)
                x = (x - self.c_eps[k] * eps.reshape(n, -1)) * self.c_scale[k]
                if k > 0:
                    noise = torch.randn(
                        x.shape, generator=self.noise_gen, device=self.device, dtype=x.dtype
                    )
                    x = x + self.sigma[k] * noise
            y = x.cpu().numpy().reshape(n, gen.horizon, gen.nu)
        out = gen.action_normalizer.unnormalize(y)
        return np.ascontiguousarray(out)


def _time_call(fn: Callable[[], Any], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def bench_pair(
    name: str,
    imle: IMLEGenerator,
    loop: DenoisingLoop,
    ns: list[int],
    repeats: int,
    loop_budget_s: float,
) -> list[dict[str, Any]]:
    """Alternate one-pass and loop timings for each N; return one row per N."""
    obs = np.zeros((OBS_HORIZON, OBS_DIM))
    rng = np.random.default_rng(0)
    rows = []
    for n in ns:
        run_one = functools.partial(imle.sample, obs, n, rng)
        run_loop = functools.partial(loop.sample, obs, n, rng)
        # Warm-up (allocator, kernels, first-call overheads): one pass and two loop steps.
        run_one()
        loop.warm_up(n)
        one: list[float] = []
        many: list[float] = []
        loop_repeats = repeats
        for r in range(repeats):
            # Three one-pass calls per loop call: they are ~100x shorter, so cheap to repeat.
            for _ in range(3):
                one.append(_time_call(run_one, imle.device))
            if r < loop_repeats:
                many.append(_time_call(run_loop, imle.device))
            if r == 0:
                # Stay inside the time budget: a slow loop (big N on CPU) is run fewer times.
                loop_repeats = max(1, min(repeats, int(loop_budget_s / many[0])))
        one_ms = statistics.median(one) * 1e3
        loop_ms = statistics.median(many) * 1e3
        rows.append(
            {
                "network": name,
                "n": n,
                "one_pass_ms": round(one_ms, 4),
                "loop_ms": round(loop_ms, 3),
                "loop_steps": loop.steps,
                "speedup": round(loop_ms / one_ms, 2),
                "time_saved_pct": round(100 * (1 - one_ms / loop_ms), 2),
                "one_pass_repeats": len(one),
                "loop_repeats": len(many),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    parser.add_argument("--unet-size", choices=sorted(UNET_SIZES), default="small")
    parser.add_argument("--ns", default="32,256,1024", help="comma-separated batch sizes")
    parser.add_argument("--steps", type=int, default=100, help="denoising steps of the loop")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats (medians)")
    parser.add_argument(
        "--loop-budget",
        type=float,
        default=18.0,
        help="seconds of loop timing per (network, N); a slower loop is timed fewer times "
        "(at least once; the count is in the results)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (0: leave torch's default); 1 is what an MPC loop "
        "that runs its rollouts on the other cores gives the generator",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    parser.add_argument("--json", action="store_true", help="print a one-line JSON summary")
    cli_args = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(cli_args)
    if args.threads > 0:
        torch.set_num_threads(args.threads)  # a benchmark process: setting it here is fine
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but torch.cuda.is_available() is False")
    ns = [int(v) for v in args.ns.split(",")]
    if 256 not in ns:
        parser.error("--ns must include 256 (the headline speedup is U-Net, N=256)")

    down = UNET_SIZES[args.unet_size]
    base = GeneratorConfig(obs_horizon=OBS_HORIZON, horizon=HORIZON, action_horizon=8)
    unet = dataclasses.replace(base, architecture="unet", unet_down_dims=down)
    configs = {
        "mlp": (base, base),
        f"unet-{args.unet_size}": (
            unet,
            dataclasses.replace(unet, unet_timestep_embed_dim=down[0]),
        ),
    }
    rows: list[dict[str, Any]] = []
    params: dict[str, dict[str, int]] = {}
    for name, (imle_cfg, loop_cfg) in configs.items():
        imle = IMLEGenerator.untrained(imle_cfg, OBS_DIM, NU, seed=0, device=device)
        loop_gen = IMLEGenerator.untrained(loop_cfg, OBS_DIM, NU, seed=0, device=device)
        loop = DenoisingLoop(loop_gen, args.steps, uses_timestep=loop_cfg is not imle_cfg)
        params[name] = {
            "imle": parameter_count(imle_cfg, OBS_DIM, NU),
            "denoiser": parameter_count(loop_cfg, OBS_DIM, NU),
        }
        rows += bench_pair(name, imle, loop, ns, args.repeats, args.loop_budget)
        del imle, loop_gen, loop

    unet_name = f"unet-{args.unet_size}"
    headline = next(r for r in rows if r["network"] == unet_name and r["n"] == 256)
    result = {
        "bench": "proposal_speed",
        "command": " ".join(["python bench/proposal_speed.py", *cli_args]),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "library_version": __version__,
        "torch": torch.__version__,
        "device": str(device),
        "device_name": (
            torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
        ),
        "torch_threads": torch.get_num_threads(),
        "shape": {"obs_dim": OBS_DIM, "obs_horizon": OBS_HORIZON, "horizon": HORIZON, "nu": NU},
        "unet_down_dims": list(down),
        "params": params,
        "rows": rows,
        "speedup_vs_100step": headline["speedup"],
    }
    write_json_atomic(args.out, result)

    if args.json:
        print(json.dumps(result, separators=(",", ":")))
    else:
        print(
            f"proposal speed on {result['device']} ({result['device_name']}), "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"H={HORIZON}, nu={NU}, obs {OBS_HORIZON}x{OBS_DIM}"
        )
        header = (
            f"{'network':<12} {'params':>10} {'N':>5} {'one pass ms':>12} "
            f"{f'{args.steps}-step ms':>13} {'speedup':>8} {'saved':>7}"
        )
        print(header)
        print("-" * len(header))
        for r in rows:
            print(
                f"{r['network']:<12} {params[r['network']]['imle']:>10,} {r['n']:>5} "
                f"{r['one_pass_ms']:>12.3f} {r['loop_ms']:>13.1f} {r['speedup']:>7.1f}x "
                f"{r['time_saved_pct']:>6.1f}%"
            )
        print(f"results: {args.out}")
    print(f"speedup_vs_100step: {headline['speedup']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
