"""TD3+BC (Fujimoto and Gu, 2021) on a fixed dataset, acting in a box [-1, 1]^d.

Written here, small, because no well-kept library fitted: d3rlpy (2.8.1, the
maintained offline-RL library on PyPI) pins ``gymnasium==1.0.0`` and pulls in the
retired ``gym``, while this project runs gymnasium 1.4; stable-baselines3 has no
offline algorithm, and its TD3 would need its whole ``train`` step replaced to add the
behaviour-cloning term and learn from a fixed dataset. What TD3+BC adds to TD3 is one
term of the actor's loss and the observation normalisation; the rest is TD3's twin
critics, clipped double-Q targets, target-policy smoothing and delayed actor updates.

The agent does not know which box it acts in: ``imle_mpc.learn.offline.spaces`` maps
real actions into it (``RawBox``: the actuator box; ``FlowLatent``: a flow's latent,
where every point decodes in support). With ``alpha = 0`` it is behaviour cloning
(the actor's MSE to the dataset's actions; the critics are not trained).

Every random draw (initial weights, batches, smoothing noise) comes from one
``torch.Generator`` seeded by ``OfflineRLConfig.seed``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn
from tqdm.auto import tqdm

from imle_mpc.core.validation import FloatArray
from imle_mpc.learn.config import OfflineRLConfig
from imle_mpc.learn.offline.transitions import Transitions


def _mlp(sizes: list[int], tanh: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if tanh:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


@dataclass
class OfflineHistory:
    """Mean losses over each block of ``log_every`` steps.

    Attributes:
        steps: the step count at the end of each block.
        critic_loss: the twin critics' TD loss (NaN for behaviour cloning).
        actor_loss: the actor's loss.
        bc_loss: the actor's mean squared distance to the dataset's actions.
    """

    steps: list[int] = field(default_factory=list)
    critic_loss: list[float] = field(default_factory=list)
    actor_loss: list[float] = field(default_factory=list)
    bc_loss: list[float] = field(default_factory=list)


class TD3BC:
    """An offline actor-critic for a box action space (module docstring).

    Args:
        data: the transitions it learns from (their observation statistics normalise
            its inputs).
        config: the algorithm's settings.
    """

    def __init__(self, data: Transitions, config: OfflineRLConfig | None = None) -> None:
        self._build(data.obs.mean(axis=0), data.obs.std(axis=0) + 1e-3, data.action_dim, config)
        self._data: dict[str, torch.Tensor] | None = self._tensors(data)

    @classmethod
    def for_acting(
        cls,
        obs_mean: ArrayLike,
        obs_std: ArrayLike,
        action_dim: int,
        config: OfflineRLConfig | None = None,
    ) -> TD3BC:
        """An agent without a dataset, to load saved weights into (``load_agent``): it acts
        and values, ``fit`` refuses (a loaded agent is not resumable training).

        Args:
            obs_mean: the observation mean it normalises by, Shape=(obs_dim,).
            obs_std: the observation std, Shape=(obs_dim,).
            action_dim: the box's dimension d.
            config: the settings it was trained with (sizes, seed).
        """
        agent = cls.__new__(cls)
        agent._build(np.asarray(obs_mean), np.asarray(obs_std), int(action_dim), config)
        agent._data = None
        return agent

    def _build(
        self,
        obs_mean: np.ndarray,
        obs_std: np.ndarray,
        action_dim: int,
        config: OfflineRLConfig | None,
    ) -> None:
        self.config = OfflineRLConfig() if config is None else config
        cfg = self.config
        self.device = torch.device(cfg.device)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.obs_mean = np.asarray(obs_mean, dtype=np.float64)
        self.obs_std = np.asarray(obs_std, dtype=np.float64)
        self.obs_dim, self.action_dim = int(self.obs_mean.size), int(action_dim)
        sizes = list(cfg.hidden)
        # Initialise from the run's own generator, leaving torch's global RNG untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=self.gen)))
            self.actor = _mlp([self.obs_dim, *sizes, self.action_dim], tanh=True)
            self.critics = nn.ModuleList(
                _mlp([self.obs_dim + self.action_dim, *sizes, 1], tanh=False) for _ in range(2)
            )
        self.actor.to(self.device)
        self.critics.to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critics_target = copy.deepcopy(self.critics).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.learning_rate)
        self.critic_opt = torch.optim.Adam(self.critics.parameters(), lr=cfg.learning_rate)
        self.steps = 0

    # ---- data ------------------------------------------------------------------------------
    def _norm(self, obs: ArrayLike) -> torch.Tensor:
        o = (np.asarray(obs, dtype=np.float64) - self.obs_mean) / self.obs_std
        return torch.as_tensor(o, dtype=torch.float32, device=self.device)

    def _tensors(self, data: Transitions) -> dict[str, torch.Tensor]:
        def f(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(x, dtype=torch.float32, device=self.device)

        return {
            "obs": self._norm(data.obs),
            "actions": f(data.actions),
            "rewards": f(data.rewards)[:, None],
            "next_obs": self._norm(data.next_obs),
            "not_done": 1.0 - f(data.dones)[:, None],
        }

    def _batch(self) -> dict[str, torch.Tensor]:
        if self._data is None:
            raise RuntimeError(
                "this agent has no dataset (it was loaded to act: TD3BC.for_acting / "
                "load_agent); train a new one with TD3BC(transitions, config).fit()."
            )
        n = self._data["obs"].shape[0]
        idx = torch.randint(n, (self.config.batch_size,), generator=self.gen).to(self.device)
        return {k: v[idx] for k, v in self._data.items()}

    # ---- learning --------------------------------------------------------------------------
    def _q(self, critics: nn.ModuleList, obs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, u], dim=1)
        return torch.cat([c(x) for c in critics], dim=1)  # (B, 2)

    def critic_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The twin critics' TD loss on ``batch`` (clipped double-Q, smoothed target policy)."""
        cfg = self.config
        with torch.no_grad():
            noise = torch.randn(batch["actions"].shape, generator=self.gen).to(self.device)
            noise = (cfg.policy_noise * noise).clamp(-cfg.noise_clip, cfg.noise_clip)
            next_u = (self.actor_target(batch["next_obs"]) + noise).clamp(-1.0, 1.0)
            q_next = self._q(self.critics_target, batch["next_obs"], next_u).min(dim=1).values
            target = batch["rewards"] + cfg.gamma * batch["not_done"] * q_next[:, None]
        q = self._q(self.critics, batch["obs"], batch["actions"])
        return ((q - target) ** 2).mean()

    def actor_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, bc)``: ``-lam * Q(s, pi(s)) + bc_weight * bc``, ``bc`` the MSE to the
        dataset's actions and ``lam = alpha / mean |Q|``."""
        u = self.actor(batch["obs"])
        bc = ((u - batch["actions"]) ** 2).mean()
        if self.config.alpha == 0.0:
            return bc, bc
        q = self.critics[0](torch.cat([batch["obs"], u], dim=1))
        lam = self.config.alpha / q.abs().mean().detach().clamp_min(1e-6)
        return -lam * q.mean() + self.config.bc_weight * bc, bc

    def update(self) -> dict[str, float]:
        """One gradient step of the critics (and, every ``policy_delay``, of the actor)."""
        cfg = self.config
        batch = self._batch()
        out: dict[str, float] = {}
        if cfg.alpha > 0.0:
            loss = self.critic_loss(batch)
            self.critic_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.critic_opt.step()
            out["critic_loss"] = float(loss.detach())
        self.steps += 1
        if self.steps % cfg.policy_delay == 0 or cfg.alpha == 0.0:
            actor_loss, bc = self.actor_loss(batch)
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            out["actor_loss"], out["bc_loss"] = float(actor_loss.detach()), float(bc.detach())
            with torch.no_grad():
                pairs = [(self.actor, self.actor_target), (self.critics, self.critics_target)]
                for net, target in pairs:
                    for p, t in zip(net.parameters(), target.parameters(), strict=True):
                        t.lerp_(p, cfg.tau)
        return out

    def fit(
        self,
        steps: int | None = None,
        progress: bool = True,
        log_every: int = 500,
        callback: Callable[[int, OfflineHistory], None] | None = None,
    ) -> OfflineHistory:
        """Run ``steps`` updates (default ``config.steps``) under a tqdm bar.

        Args:
            steps: updates to run.
            progress: show the bar (losses in its postfix).
            log_every: steps per history entry (and per ``callback`` call).
            callback: ``callback(step, history)`` after each block.
        """
        total = self.config.steps if steps is None else steps
        history = OfflineHistory()
        sums: dict[str, list[float]] = {"critic_loss": [], "actor_loss": [], "bc_loss": []}
        with tqdm(total=total, desc="td3+bc", unit="step", disable=not progress) as bar:
            for i in range(1, total + 1):
                for k, v in self.update().items():
                    sums[k].append(v)
                bar.update()
                if i % log_every == 0 or i == total:
                    history.steps.append(self.steps)
                    for k, values in sums.items():
                        getattr(history, k).append(float(np.mean(values)) if values else np.nan)
                        values.clear()
                    bar.set_postfix(
                        critic=f"{history.critic_loss[-1]:.3g}", bc=f"{history.bc_loss[-1]:.3g}"
                    )
                    if callback is not None:
                        callback(self.steps, history)
        return history

    # ---- acting ----------------------------------------------------------------------------
    def act(self, obs: ArrayLike) -> FloatArray:
        """The actor's box points for observations Shape=(N, obs_dim) -> Shape=(N, d)."""
        with torch.inference_mode():
            u = self.actor(self._norm(np.atleast_2d(obs)))
        return np.asarray(u.cpu().numpy(), dtype=np.float64)

    def q_values(self, obs: ArrayLike, u: ArrayLike) -> FloatArray:
        """The smaller of the twin critics' values, Shape=(N,)."""
        with torch.inference_mode():
            ut = torch.as_tensor(np.atleast_2d(u), dtype=torch.float32, device=self.device)
            q = self._q(self.critics, self._norm(np.atleast_2d(obs)), ut)
        return np.asarray(q.min(dim=1).values.cpu().numpy(), dtype=np.float64)
