"""IMLE-MPC plans the same on the generator's NumPy path as on its torch path."""

from __future__ import annotations

import numpy as np

from imle_mpc.eval.factory import make_planner
from imle_mpc.learn.imle.fast_mlp import InferencePath
from imle_mpc.tasks import make_task


def _closed_loop(inference: InferencePath, steps: int) -> list[tuple[int, np.ndarray, float]]:
    task = make_task("nav_trap")
    gen = task.load_generator()
    gen.set_inference(inference)
    # the task's IMLE-MPC: 16 chunks, 16 perturbed copies, the warm start, 32-step lookahead
    planner = make_planner("imle_mpc", task, seed=3, num_samples=16, generator=gen)
    x = np.array(task.initial_state, dtype=np.float64)
    out = []
    for _ in range(steps):
        result = planner.plan(x)
        out.append((result.best_index, result.actions[0].copy(), result.cost))
        x = task.dynamics.rollout(x, result.actions[None, :1])[0, 1]
    return out


def test_the_numpy_path_chooses_the_torch_paths_plans() -> None:
    torch_plans = _closed_loop("torch", 25)
    numpy_plans = _closed_loop("numpy", 25)
    for (i_t, u_t, c_t), (i_n, u_n, c_n) in zip(torch_plans, numpy_plans, strict=True):
        assert i_n == i_t  # the same candidate wins every step
        # the chunks agree to float32 rounding (about 1e-6 of the action range)
        np.testing.assert_allclose(u_n, u_t, rtol=0, atol=5e-6)
        np.testing.assert_allclose(c_n, c_t, rtol=1e-5)
