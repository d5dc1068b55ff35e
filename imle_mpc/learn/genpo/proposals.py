"""A (fine-tuned) exact-likelihood policy as IMLE-MPC's proposal generator, with densities.

``PolicyChunks(policy, dynamics, horizon)`` is a ``ChunkGenerator`` (the protocol the
IMLE planners take; ``make_planner("imle_mpc", task, generator=PolicyChunks(...))``):
a chunk is the policy rolled through the model for ``horizon`` steps from the current
state, ``u_t = policy(x_t)``, ``x_t+1 = model(x_t, u_t)``, all ``n`` chunks at once (one
batched policy call and one batched model step per step). The policy is either kind of
``LatentPolicy``: GenPO's ``GenerativePolicy`` or the zuko ``FlowPolicy``. Its latent is
the standard-normal base draws of every step, Shape=(n, H * policy.latent_dim) (GenPO
2nu a step, the flow nu), so ``decode`` replays a chunk from its latent
(``LatentPolicy.draw_from_normal``), and each ``sample`` leaves the chunks' exact
log-densities in ``last_log_prob`` Shape=(n,): the sum over the steps of the policy's
log-density of what it drew (GenPO: the action and dummy pair; the flow: the action;
in the box), given the model's states. The policy's observation must be the
model's state (the navigation tasks'); the model steps ``n`` states at once through its
Numba step function (``StepModel``) or ``rollout_from_states``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from imle_mpc.core.protocols import Dynamics, MultiStartRollout, StepModel
from imle_mpc.learn.genpo.policy import LatentPolicy
from imle_mpc.loop.vector_env import batched_step_kernel


def _batched_step(dynamics: Dynamics) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``step(X Shape=(n, nx), U Shape=(n, nu)) -> X_next`` of the model (U clipped)."""
    step = getattr(dynamics, "step_function", None) if isinstance(dynamics, StepModel) else None
    low = np.ascontiguousarray(dynamics.action_low, dtype=np.float64)
    high = np.ascontiguousarray(dynamics.action_high, dtype=np.float64)
    if step is not None:
        kernel = batched_step_kernel(step)

        def kernel_step(X: np.ndarray, U: np.ndarray) -> np.ndarray:
            out, clipped = np.empty_like(X), np.empty_like(U)
            finite = np.empty(X.shape[0], dtype=np.bool_)
            params = dynamics.params_vector()  # type: ignore[attr-defined]
            kernel(np.ascontiguousarray(X), np.ascontiguousarray(U), low, high, params,
                   clipped, out, finite)  # fmt: skip
            return out

        return kernel_step
    if isinstance(dynamics, MultiStartRollout):

        def rollout_step(X: np.ndarray, U: np.ndarray) -> np.ndarray:
            U1 = np.clip(U, low, high)[:, None, :]
            return np.asarray(dynamics.rollout_from_states(X, U1))[:, 1]

        return rollout_step
    raise TypeError(
        f"PolicyChunks needs a StepModel or MultiStartRollout model; {type(dynamics).__name__} "
        "is neither."
    )


class PolicyChunks:
    """A ``ChunkGenerator`` of policy rollouts through the model (see the module).

    Args:
        policy: a ``LatentPolicy`` (``GenerativePolicy`` or ``FlowPolicy``; observation =
            the model's state).
        dynamics: the planner's model.
        horizon: H, steps per chunk.
    """

    obs_horizon = 1

    def __init__(self, policy: LatentPolicy, dynamics: Dynamics, horizon: int) -> None:
        if policy.obs_dim != dynamics.nx or policy.nu != dynamics.nu:
            raise ValueError(
                f"PolicyChunks needs a policy of the model's state and action (obs_dim "
                f"{policy.obs_dim} vs nx {dynamics.nx}, nu {policy.nu} vs {dynamics.nu})."
            )
        if isinstance(policy, torch.nn.Module):
            policy.eval()
        self.policy = policy
        self.dynamics = dynamics
        self._horizon = int(horizon)
        self._step = _batched_step(dynamics)
        self.last_log_prob: np.ndarray = np.zeros(0)

    @property
    def horizon(self) -> int:
        return self._horizon

    @property
    def nu(self) -> int:
        return self.policy.nu

    @property
    def obs_dim(self) -> int:
        return self.policy.obs_dim

    @property
    def latent_dim(self) -> int:
        return self._horizon * self.policy.latent_dim

    def sample(self, obs_history: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` chunks Shape=(n, H, nu) from the latest observation; densities in
        ``last_log_prob``."""
        return self.decode(obs_history, rng.standard_normal((n, self.latent_dim)))

    def decode(self, obs_history: np.ndarray, z: np.ndarray) -> np.ndarray:
        """The chunks of base draws ``z`` Shape=(n, latent_dim) (``last_log_prob`` set too)."""
        start = np.asarray(obs_history, np.float64)[-1]
        return self._roll(np.repeat(start[None], z.shape[0], axis=0), z)

    def decode_batch(self, obs_histories: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Chunks Shape=(K, m, H, nu) from K histories Shape=(K, 1, obs_dim), each with its
        own ``m`` latents ``z`` Shape=(K, m, latent_dim) (the planners' lookahead)."""
        K, m = z.shape[0], z.shape[1]
        starts = np.repeat(np.asarray(obs_histories, np.float64)[:, -1], m, axis=0)
        chunks = self._roll(starts, np.asarray(z).reshape(K * m, -1))
        return chunks.reshape(K, m, self._horizon, self.policy.nu)

    def _roll(self, X: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Roll the policy from states ``X`` Shape=(n, nx) with base draws ``z``."""
        H, nu, policy = self._horizon, self.policy.nu, self.policy
        n = z.shape[0]
        dtype = policy.box_mid.dtype
        Z = torch.as_tensor(
            np.array(z, dtype=np.float64).reshape(n, H, policy.latent_dim), dtype=dtype
        )
        chunks = np.empty((n, H, nu))
        log_prob = np.zeros(n)
        with torch.no_grad():
            for t in range(H):
                action, step_log_prob = policy.draw_from_normal(
                    torch.as_tensor(X, dtype=dtype), Z[:, t]
                )
                log_prob += step_log_prob.numpy()
                chunks[:, t] = action.numpy()
                X = self._step(X, chunks[:, t])
        self.last_log_prob = log_prob
        return chunks

    def describe(self) -> dict[str, Any]:
        """What the generator is, for records."""
        kind = f"{self.policy.model_kind}_rollout"  # genpo_policy_rollout, flow_policy_rollout
        return {"kind": kind, "horizon": self._horizon, **self.policy.trained_for}
