"""Generator networks ``G(z, obs_cond) -> chunk``: a small MLP and a 1-D temporal U-Net.

Both take a flat latent ``z`` Shape=(B, H*nu) and a flattened, normalised
observation history ``cond`` Shape=(B, obs_horizon*obs_dim) or (1, ...). A
single conditioning row is broadcast over the batch, so the observation part
of the network runs once per call, not once per sample. Output Shape=(B, H, nu)
in normalised action units.

Parameters are initialised from an explicit ``torch.Generator`` (modules are
built on the meta device, so construction never touches torch's global RNG).
"""

from __future__ import annotations

import itertools
import math
from typing import cast

import torch
from torch import Tensor, nn

from imle_mpc.learn.config import GeneratorConfig

_ACTIVATIONS: dict[str, type[nn.Module]] = {"silu": nn.SiLU, "mish": nn.Mish, "relu": nn.ReLU}


class MLPGenerator(nn.Module):
    """MLP on the latent, FiLM-conditioned on the observation history at every layer.

    ``h_0 = W z``; each hidden layer is ``h = act(h * (1 + scale(e)) + shift(e))``
    with ``e`` an embedding of the observation history. The multiplicative
    conditioning lets the observation decide how much the latent matters:
    spread out (several modes) in one state, collapsed in another.

    Args:
        horizon: H.
        nu: action size.
        cond_dim: obs_horizon * obs_dim.
        hidden: hidden widths.
        activation: ``"silu"``, ``"mish"`` or ``"relu"``.
    """

    def __init__(
        self,
        horizon: int,
        nu: int,
        cond_dim: int,
        hidden: tuple[int, ...],
        activation: str = "silu",
    ) -> None:
        super().__init__()
        self.act = _ACTIVATIONS[activation]()
        self.horizon = horizon
        self.nu = nu
        latent_dim = horizon * nu
        embed = hidden[0]
        self.widths = tuple(hidden)
        self.obs_embed = nn.Sequential(nn.Linear(cond_dim, embed), _ACTIVATIONS[activation]())
        # One linear map gives every layer's FiLM scale and shift (fewer small ops per call).
        self.film = nn.Linear(embed, 2 * sum(hidden))
        self.z_in = nn.Linear(latent_dim, hidden[0])
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(hidden))
        self.out = nn.Linear(hidden[-1], latent_dim)

    def forward(self, z: Tensor, cond: Tensor, timestep: Tensor | None = None) -> Tensor:
        """Chunks Shape=(B, H, nu) from ``z`` Shape=(B, H*nu), ``cond`` Shape=(B or 1, C).

        ``timestep`` is not supported by the MLP and must be None.
        """
        if timestep is not None:
            raise ValueError("MLPGenerator has no timestep input; pass timestep=None.")
        film = self.film(self.obs_embed(cond))
        gains = film[:, : sum(self.widths)] + 1.0  # 1 + scale, for all layers at once
        shifts = film[:, sum(self.widths) :]
        h = self.z_in(z)
        start = 0
        for i, width in enumerate(self.widths):
            if i:
                h = cast(nn.Linear, self.layers[i - 1])(h)
            gain = gains[:, start : start + width]
            shift = shifts[:, start : start + width]
            h = self.act(torch.addcmul(shift, h, gain))
            start += width
        return self.out(h).view(-1, self.horizon, self.nu)


class _ConvBlock(nn.Sequential):
    """Conv1d -> GroupNorm -> Mish, length preserving."""

    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int) -> None:
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2),
            nn.GroupNorm(groups, c_out),
            nn.Mish(),
        )


class _FiLMResBlock(nn.Module):
    """Two conv blocks; the first one's output is scaled and shifted by FiLM of ``cond``."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.conv1 = _ConvBlock(c_in, c_out, kernel, groups)
        self.conv2 = _ConvBlock(c_out, c_out, kernel, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.skip: nn.Module = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.conv1(x)
        scale, shift = self.film(cond).unsqueeze(-1).chunk(2, dim=1)  # (B or 1, C, 1) each
        h = self.conv2(h * scale + shift)
        return h + self.skip(x)


class _Level(nn.Module):
    """Two FiLM residual blocks followed by a re-sampling layer (or identity)."""

    def __init__(self, res1: _FiLMResBlock, res2: _FiLMResBlock, resample: nn.Module) -> None:
        super().__init__()
        self.res1 = res1
        self.res2 = res2
        self.resample = resample

    def blocks(self, x: Tensor, cond: Tensor) -> Tensor:
        return self.res2(self.res1(x, cond), cond)


class _SinusoidalEmbedding(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        half = self.dim // 2
        freq = torch.exp(
            torch.arange(half, device=t.device, dtype=torch.float32)
            * (-math.log(10000.0) / max(half - 1, 1))
        )
        angle = t.to(torch.float32)[:, None] * freq[None, :]
        return torch.cat((angle.sin(), angle.cos()), dim=-1)


class TemporalUnet1D(nn.Module):
    """Diffusion Policy's conditional 1-D U-Net, fed with noise instead of a noisy action.

    Levels of two FiLM residual blocks each, stride-2 down-sampling between
    levels, two middle blocks, mirrored up-sampling with skip connections, and
    a final conv block + 1x1 projection to ``nu`` channels. With
    ``timestep_embed_dim > 0`` a sinusoidal timestep embedding (plus a small MLP)
    is concatenated to the FiLM input, which turns it into Diffusion Policy's
    denoiser (used only by the speed benchmark).

    Args:
        horizon: H (divisible by 2 ** (levels - 1)).
        nu: action size.
        cond_dim: obs_horizon * obs_dim.
        down_dims: channels per level.
        kernel: odd temporal kernel size.
        groups: GroupNorm groups.
        timestep_embed_dim: 0 (IMLE) or the timestep embedding size.
    """

    def __init__(
        self,
        horizon: int,
        nu: int,
        cond_dim: int,
        down_dims: tuple[int, ...],
        kernel: int = 5,
        groups: int = 8,
        timestep_embed_dim: int = 0,
    ) -> None:
        super().__init__()
        self.horizon = horizon
        self.nu = nu
        self.timestep_embed_dim = timestep_embed_dim
        self.time_mlp: nn.Module | None = None
        film_dim = cond_dim
        if timestep_embed_dim:
            d = timestep_embed_dim
            self.time_mlp = nn.Sequential(
                _SinusoidalEmbedding(d), nn.Linear(d, 4 * d), nn.Mish(), nn.Linear(4 * d, d)
            )
            film_dim += d
        dims = (nu, *down_dims)
        levels = list(itertools.pairwise(dims))
        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(levels):
            last = i == len(levels) - 1
            self.down.append(
                _Level(
                    _FiLMResBlock(c_in, c_out, film_dim, kernel, groups),
                    _FiLMResBlock(c_out, c_out, film_dim, kernel, groups),
                    nn.Identity() if last else nn.Conv1d(c_out, c_out, 3, stride=2, padding=1),
                )
            )
        mid = down_dims[-1]
        self.mid = nn.ModuleList(
            [_FiLMResBlock(mid, mid, film_dim, kernel, groups) for _ in range(2)]
        )
        self.up = nn.ModuleList()
        for c_in, c_out in reversed(levels[1:]):
            self.up.append(
                _Level(
                    _FiLMResBlock(2 * c_out, c_in, film_dim, kernel, groups),
                    _FiLMResBlock(c_in, c_in, film_dim, kernel, groups),
                    nn.ConvTranspose1d(c_in, c_in, 4, stride=2, padding=1),
                )
            )
        self.final = nn.Sequential(
            _ConvBlock(down_dims[0], down_dims[0], kernel, groups),
            nn.Conv1d(down_dims[0], nu, 1),
        )

    def forward(self, z: Tensor, cond: Tensor, timestep: Tensor | None = None) -> Tensor:
        """Chunks Shape=(B, H, nu) from ``z`` Shape=(B, H*nu), ``cond`` Shape=(B or 1, C).

        ``timestep`` Shape=(B,) or (1,) is required iff the network was built
        with a timestep embedding.
        """
        if (timestep is None) != (self.time_mlp is None):
            raise ValueError(
                "TemporalUnet1D: pass a timestep exactly when it was built with "
                f"timestep_embed_dim > 0 (it was built with {self.timestep_embed_dim})."
            )
        if self.time_mlp is not None and timestep is not None:
            t_emb = self.time_mlp(timestep.reshape(-1))
            rows = max(t_emb.shape[0], cond.shape[0])
            cond = torch.cat((t_emb.expand(rows, -1), cond.expand(rows, -1)), dim=-1)
        x = z.view(-1, self.horizon, self.nu).transpose(1, 2)  # (B, nu, H)
        skips = []
        for level in cast(list[_Level], self.down):
            x = level.blocks(x, cond)
            skips.append(x)
            x = level.resample(x)
        for res in self.mid:
            x = res(x, cond)
        for level in cast(list[_Level], self.up):
            x = level.resample(level.blocks(torch.cat((x, skips.pop()), dim=1), cond))
        return self.final(x).transpose(1, 2)  # (B, H, nu)


def build_network(
    config: GeneratorConfig, obs_dim: int, nu: int, generator: torch.Generator | None = None
) -> nn.Module:
    """The network ``config`` describes, initialised from ``generator`` (CPU, float32).

    Args:
        config: architecture and sizes.
        obs_dim: size of one observation.
        nu: action size.
        generator: source of the initial weights; None leaves the weights
            uninitialised (for loading a checkpoint into them).
    """
    net = _construct_on_meta(config, obs_dim, nu).to_empty(device="cpu")
    if generator is not None:
        init_parameters(net, generator)
    return net


def parameter_count(config: GeneratorConfig, obs_dim: int, nu: int) -> int:
    """Parameters of the network ``config`` describes, counted without allocating it."""
    return count_parameters(_construct_on_meta(config, obs_dim, nu))


def _construct_on_meta(config: GeneratorConfig, obs_dim: int, nu: int) -> nn.Module:
    cond_dim = config.obs_horizon * obs_dim
    with torch.device("meta"):
        if config.architecture == "mlp":
            return MLPGenerator(
                config.horizon, nu, cond_dim, config.mlp_hidden, config.mlp_activation
            )
        return TemporalUnet1D(
            config.horizon,
            nu,
            cond_dim,
            config.unet_down_dims,
            config.unet_kernel_size,
            config.unet_groups,
            config.unet_timestep_embed_dim,
        )


def init_parameters(net: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation, drawn from ``generator`` instead of the global RNG."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Linear, nn.Conv1d, nn.ConvTranspose1d)):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
                    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            elif isinstance(module, nn.GroupNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif any(True for _ in module.parameters(recurse=False)):
                raise TypeError(f"init_parameters does not know how to initialise {module!r}.")


def count_parameters(net: nn.Module) -> int:
    """Number of scalar parameters."""
    return sum(p.numel() for p in net.parameters())
