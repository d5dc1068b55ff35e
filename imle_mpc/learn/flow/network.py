"""The flow's torch module: zuko coupling layers of box splines, and the uniform box as base.

zuko (``zuko.flows.GeneralCouplingTransform`` with ``zuko.transforms.MonotonicRQSTransform``)
provides the coupling layers, their hyper-networks and the exact log-determinants;
what is ours is the choice of domain: every spline is defined on [-1, 1] (``bound=1``)
and maps it onto itself, so the composed transform is a bijection of the box
[-1, 1]^D and the base is the uniform distribution on that box. The direction is
zuko's: the transform maps a normalised chunk ``x`` to its latent ``z``; sampling
runs the inverse.

The base density is evaluated here rather than by ``torch.distributions.Uniform``,
whose support excludes the upper face: the demonstrations' largest actions lie
exactly on it.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn
from zuko.flows import GeneralCouplingTransform
from zuko.lazy import LazyComposedTransform
from zuko.transforms import ComposedTransform, MonotonicRQSTransform

from imle_mpc.learn.config import FlowConfig

BOX_TOLERANCE = 1e-5
"""How far (normalised units) a latent may leave the box by rounding and still count as inside."""


class BoxFlow(nn.Module):
    """A conditional bijection of [-1, 1]^D with the uniform base: ``log p(x | c)`` and ``x(z, c)``.

    Args:
        features: D, the flattened chunk size.
        context: size of the flattened, normalised observation history.
        config: transforms, bins and hyper-network widths.
        rng: draws the coupling masks and the initial weights (None: the caller loads
            weights, masks included: they are buffers).
    """

    def __init__(
        self, features: int, context: int, config: FlowConfig, rng: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.features = features
        self.context = context
        seed = 0 if rng is None else int(torch.randint(2**62, (1,), generator=rng))
        # zuko initialises its layers from torch's global RNG: fork it so that the
        # run's own generator decides the weights and the global state is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers = []
            for _ in range(config.transforms):
                mask = torch.zeros(features, dtype=torch.bool)
                mask[torch.randperm(features)[: features // 2]] = True
                layers.append(
                    GeneralCouplingTransform(
                        features,
                        context,
                        mask=mask,
                        univariate=partial(MonotonicRQSTransform, bound=1.0),
                        shapes=[(config.bins,), (config.bins,), (config.bins - 1,)],
                        hidden_features=config.hidden,
                    )
                )
        self.transform = LazyComposedTransform(*layers)
        self._log_base = -features * math.log(2.0)  # the uniform density on [-1, 1]^D

    def bijection(self, c: torch.Tensor) -> ComposedTransform:
        """The transform x -> z for contexts ``c`` Shape=(B, context)."""
        transform: ComposedTransform = self.transform(c)
        return transform

    def log_prob(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Exact log-density Shape=(B,) of normalised chunks ``x`` Shape=(B, D) in the box.

        ``log p(x | c) = log u(z) + log |det dz/dx|`` with ``u`` the uniform density on
        the box. The caller decides what lies outside the box (it has density 0);
        entries here are clamped onto it.
        """
        z, ladj = self.bijection(c).call_and_ladj(x.clamp(-1.0, 1.0))
        inside = (z.abs() <= 1.0 + BOX_TOLERANCE).all(dim=-1)  # always, up to rounding
        return torch.where(inside, ladj + self._log_base, torch.full_like(ladj, -math.inf))

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Normalised chunks Shape=(B, D) in [-1, 1] for latents ``z`` Shape=(B, D) in the box."""
        x = self.bijection(c).inv(z.clamp(-1.0, 1.0))
        return x.clamp(-1.0, 1.0)


def build_box_flow(
    config: FlowConfig, obs_dim: int, nu: int, rng: torch.Generator | None = None
) -> BoxFlow:
    """The flow for chunks of ``config.horizon`` actions of size ``nu`` given
    ``config.obs_horizon`` observations of size ``obs_dim``."""
    return BoxFlow(config.latent_dim(nu), config.obs_horizon * obs_dim, config, rng)
