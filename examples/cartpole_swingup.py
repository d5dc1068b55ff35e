"""Cart-pole swing-up with MPPI: from hanging down to balancing upright.

The planner sees a quadratic cost on the state (the pole angle wrapped, so
"upright" is one target however many turns the pole has made) plus a small
effort penalty; nothing in the cost says "swing back and forth first". MPPI
finds the pumping motion by itself because its 1.5 s horizon is long enough to
see a swing that ends upright.

Run:
    python examples/cartpole_swingup.py --steps 100 --seed 0 --samples 256

The script exits with status 0 when the pole ends the run in the upright band
(|angle| < 0.3 rad, |cart| < 2 m for the whole last second), 1 otherwise.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cost import ControlEffort, CostSum, StateTracking, Term
from dynamics import CartPole
from planners import MPPI, MPPIConfig

UPRIGHT_ANGLE = 0.3  # rad, band around upright that counts as "up"
CART_LIMIT = 2.0  # m, the cart must stay within this distance of the origin


def wrap_angle(angle: float) -> float:
    """Map an angle to [-pi, pi)."""
    return float((angle + np.pi) % (2.0 * np.pi) - np.pi)


def make_planner(model: CartPole, samples: int, seed: int) -> MPPI:
    """MPPI for the swing-up: 1.5 s horizon, wide noise, the angle weighted most."""
    cost = CostSum(
        Term(
            "state",
            StateTracking(target=np.zeros(4), weights=[1.0, 10.0, 0.1, 0.1], angle_dims=[1]),
        ),
        Term("effort", ControlEffort(), 0.01),
    )
    config = MPPIConfig(
        num_samples=samples, horizon=30, temperature=1.0, noise_sigma=5.0, seed=seed
    )
    return MPPI(model, cost, config)


def is_up(x: np.ndarray) -> bool:
    """Whether a state is in the upright band with the cart near the origin."""
    return bool(abs(wrap_angle(x[1])) < UPRIGHT_ANGLE and abs(x[0]) < CART_LIMIT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="control steps of 0.05 s")
    parser.add_argument("--seed", type=int, default=0, help="planner RNG seed")
    parser.add_argument("--samples", type=int, default=256, help="MPPI samples per step")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.samples < 2 or args.seed < 0:
        parser.error("need --steps >= 1, --samples >= 2 and --seed >= 0")

    model = CartPole()
    t0 = time.perf_counter()
    planner = make_planner(model, args.samples, args.seed)
    print(f"compiled in {time.perf_counter() - t0:.1f} s; {model}")

    steps_per_second = round(1.0 / model.dt)
    x = np.array([0.0, np.pi, 0.0, 0.0])  # hanging down, at rest
    up = []
    plan_time = 0.0
    for t in range(args.steps):
        t_plan = time.perf_counter()
        res = planner.plan(x)
        plan_time += time.perf_counter() - t_plan
        x = model.step(x, res.action)
        up.append(is_up(x))
        if (t + 1) % steps_per_second == 0 or t + 1 == args.steps:
            print(
                f"t={(t + 1) * model.dt:5.2f} s  cart={x[0]:+6.2f} m  "
                f"angle={wrap_angle(x[1]):+6.2f} rad  force={res.action[0]:+6.2f} N  "
                f"cost={res.cost:9.2f}  {'UP' if up[-1] else '  '}"
            )

    hold = min(steps_per_second, args.steps)  # the last second must be all upright
    success = all(up[-hold:])
    first_up = next((i + 1 for i, u in enumerate(up) if u), None)
    reached = f"first upright after {first_up} steps" if first_up else "never upright"
    print(f"{1e3 * plan_time / args.steps:.2f} ms per plan; {reached}")
    verdict = "SUCCESS" if success else "FAILED"
    print(f"{verdict}: pole {'held' if success else 'not held'} upright for the last {hold} steps")
    return 0 if success else 1


if __name__ == "__main__":
    raise SystemExit(main())
