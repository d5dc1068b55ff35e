"""Generator networks and the ``IMLEGenerator`` sampling contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imle_mpc.core.protocols import ChunkGenerator
from imle_mpc.learn.imle import (
    GeneratorConfig,
    IMLEGenerator,
    MLPGenerator,
    TemporalUnet1D,
    build_network,
    parameter_count,
)
from imle_mpc.learn.imle.networks import count_parameters

UNET_SMALL = GeneratorConfig(architecture="unet", unet_down_dims=(16, 32, 64), horizon=16)


def test_unet_forward_shape_and_broadcast_conditioning() -> None:
    net = build_network(UNET_SMALL, obs_dim=3, nu=2, generator=torch.Generator().manual_seed(0))
    assert isinstance(net, TemporalUnet1D)
    z = torch.randn(5, 32, generator=torch.Generator().manual_seed(1))
    cond = torch.randn(1, 6, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = net(z, cond)
        # One conditioning row broadcast over the batch == the row repeated.
        repeated = net(z, cond.expand(5, -1).contiguous())
    assert out.shape == (5, 16, 2)
    torch.testing.assert_close(out, repeated)
    with pytest.raises(ValueError, match="timestep"):
        net(z, cond, torch.zeros(1))


def test_unet_with_timestep_is_a_denoiser_of_the_same_shape() -> None:
    cfg = GeneratorConfig(
        architecture="unet", unet_down_dims=(16, 32), horizon=8, unet_timestep_embed_dim=16
    )
    net = build_network(cfg, obs_dim=2, nu=1, generator=torch.Generator().manual_seed(0))
    z = torch.randn(4, 8)
    with torch.no_grad():
        a = net(z, torch.zeros(1, 4), torch.tensor([3.0]))
        b = net(z, torch.zeros(1, 4), torch.tensor([70.0]))
    assert a.shape == (4, 8, 1)
    assert not torch.allclose(a, b)  # the timestep changes the output
    with pytest.raises(ValueError, match="timestep"):
        net(z, torch.zeros(1, 4))


def test_paper_sized_unet_has_about_61m_parameters() -> None:
    # Counted on the meta device: nothing is allocated or run.
    count = parameter_count(GeneratorConfig.paper_unet(), obs_dim=20, nu=2)
    assert 58e6 < count < 64e6, count
    # Diffusion Policy's denoiser (timestep embedding 256) is the ~65M network.
    denoiser = parameter_count(
        GeneratorConfig.paper_unet(unet_timestep_embed_dim=256), obs_dim=20, nu=2
    )
    assert 63e6 < denoiser < 68e6, denoiser


def test_default_mlp_is_small() -> None:
    cfg = GeneratorConfig()
    net = build_network(cfg, obs_dim=10, nu=2, generator=torch.Generator().manual_seed(0))
    assert isinstance(net, MLPGenerator)
    assert count_parameters(net) == parameter_count(cfg, 10, 2) < 300_000


def test_init_uses_the_given_generator_only() -> None:
    state = torch.get_rng_state()
    a = build_network(UNET_SMALL, 3, 2, torch.Generator().manual_seed(4)).state_dict()
    b = build_network(UNET_SMALL, 3, 2, torch.Generator().manual_seed(4)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("architecture", ["mlp", "unet"])
def test_generator_contract(architecture: str) -> None:
    cfg = GeneratorConfig(
        architecture=architecture,  # type: ignore[arg-type]
        horizon=8,
        action_horizon=4,
        mlp_hidden=(32, 32),
        unet_down_dims=(16, 32),
    )
    gen = IMLEGenerator.untrained(cfg, obs_dim=3, nu=2, seed=0)
    assert isinstance(gen, ChunkGenerator)
    assert (gen.horizon, gen.nu, gen.obs_horizon, gen.obs_dim, gen.latent_dim) == (8, 2, 2, 3, 16)
    obs = np.arange(6, dtype=float).reshape(2, 3) / 10
    chunks = gen.sample(obs, 10, np.random.default_rng(0))
    assert chunks.shape == (10, 8, 2) and chunks.dtype == np.float64
    assert chunks.flags.c_contiguous
    # sample == decode of the latents the same RNG would draw.
    z = np.random.default_rng(0).standard_normal((10, 16), dtype=np.float32)
    np.testing.assert_array_equal(gen.decode(obs, z), chunks)
    # Batch of observations: one pass, same results as one observation at a time.
    obs_b = np.stack([obs, obs + 0.5])
    zb = np.random.default_rng(1).standard_normal((2, 10, 16))
    batch = gen.decode_batch(obs_b, zb)
    assert batch.shape == (2, 10, 8, 2)
    np.testing.assert_allclose(batch[1], gen.decode(obs_b[1], zb[1]), rtol=1e-5, atol=1e-6)
    assert gen.sample_batch(obs_b, 3, np.random.default_rng(0)).shape == (2, 3, 8, 2)


def test_generator_checks_its_inputs() -> None:
    gen = IMLEGenerator.untrained(GeneratorConfig(horizon=4, action_horizon=2), obs_dim=3, nu=1)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"obs_history must have Shape=\(2, 3\)"):
        gen.sample(np.zeros(3), 4, rng)
    with pytest.raises(ValueError, match="NaN"):
        gen.sample(np.full((2, 3), np.nan), 4, rng)
    with pytest.raises(ValueError, match="n must be"):
        gen.sample(np.zeros((2, 3)), 0, rng)
    with pytest.raises(ValueError, match=r"z must have Shape=\(n, 4\)"):
        gen.decode(np.zeros((2, 3)), np.zeros((5, 3)))


def test_unnormalisation_maps_back_to_action_units() -> None:
    from imle_mpc.learn.imle import MinMaxNormalizer

    cfg = GeneratorConfig(horizon=4, action_horizon=2, mlp_hidden=(8,))
    net = build_network(cfg, 1, 2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()  # the network outputs 0 = the centre of the normalised range
    act = MinMaxNormalizer(np.array([0.0, -10.0]), np.array([2.0, 30.0]))
    gen = IMLEGenerator(net, cfg, MinMaxNormalizer.identity(1), act)
    chunks = gen.sample(np.zeros((2, 1)), 3, np.random.default_rng(0))
    np.testing.assert_allclose(chunks, np.broadcast_to([1.0, 10.0], (3, 4, 2)))
