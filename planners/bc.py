"""Plain behaviour cloning: regress the action chunk with MSE (the unimodal baseline).

The control experiment for IMLE (trained by ``imle_mpc.learn.bc.train_mse_policy``):
the latent is pinned to zero, so the network is a deterministic regressor
``obs_history -> chunk``. Where the demonstrations split into modes (pass above
or below an obstacle) the MSE optimum is their average, which is exactly what a
multi-modal task punishes.

``MSEPolicy`` runs the regressor as a controller, like ``planners.imle.IMLEPolicy``:
it predicts a chunk, plays its first ``action_horizon`` actions open loop, then
predicts again. No model, no costs, no sampling.
"""

from __future__ import annotations

import time

import numpy as np

from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import ChunkGenerator
from imle_mpc.core.threads import PLANNING_THREADS, ThreadPolicy, under_thread_policy
from imle_mpc.core.validation import FloatArray
from planners.chunks import ChunkPlayer
from planners.imle import ObservationFn, ObservationHistory


class MSEPolicy:
    """Deterministic chunk regressor as a controller (implements the ``Planner`` protocol).

    Args:
        model: the trained regressor: a chunk generator whose latent is
            always zero (see ``imle_mpc.learn.bc.train_mse_policy``).
        observation_fn: state -> observation (as in training).
        action_horizon: steps executed from each chunk before predicting again.

    ``thread_policy``: the threads a step may use (``imle_mpc.core.threads``).
    """

    thread_policy: ThreadPolicy = PLANNING_THREADS

    def __init__(
        self, model: ChunkGenerator, observation_fn: ObservationFn, action_horizon: int = 8
    ) -> None:
        self.player = ChunkPlayer("MSEPolicy", action_horizon, model.horizon)
        self.model = model
        self.observation_fn = observation_fn
        self.history = ObservationHistory(model.obs_horizon, model.obs_dim)
        self._zero = np.zeros((1, model.latent_dim), dtype=np.float32)
        self.reset()

    @property
    def horizon(self) -> int:
        """H, the regressor's chunk length."""
        return self.model.horizon

    @property
    def action_horizon(self) -> int:
        """Steps executed from each chunk before predicting again."""
        return self.player.action_horizon

    def reset(self, seed: int | None = None) -> None:
        """Forget the history and the current chunk (``seed`` is unused: nothing is random)."""
        self.history.clear()
        self.player.reset()

    def predict(self, obs_history: FloatArray) -> FloatArray:
        """The chunk for one observation history Shape=(obs_horizon, obs_dim): Shape=(H, nu)."""
        return self.model.decode(obs_history, self._zero)[0]

    @under_thread_policy
    def plan(self, state: FloatArray) -> PlanResult:
        """Observe ``state``; predict when the chunk is played out; the chunk's rest."""
        t0 = time.perf_counter()
        self.history.push(np.asarray(self.observation_fn(state), dtype=np.float64))
        if self.player.due:
            self.player.load(self.predict(self.history.array))
        actions = self.player.next_plan()
        elapsed = time.perf_counter() - t0
        return PlanResult(
            actions=actions, cost=float("nan"), term_costs={}, num_feasible=1,
            best_index=0, predicted_states=np.empty((0, 0)), timings={"total": elapsed},
        )  # fmt: skip


__all__ = ["MSEPolicy"]
