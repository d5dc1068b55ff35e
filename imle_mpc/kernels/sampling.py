"""Proposal sampling kernels: nominal plus scaled noise, clipped to actuator bounds."""

from __future__ import annotations

import numba as nb

from imle_mpc.kernels.rng import quiet_overflow, standard_normal, stream_state


@nb.njit(parallel=True, cache=True)
def gaussian_proposals(nominal, noise, sigma, low, high, first_noisy, out):  # pragma: no cover
    """``out[k] = clip(nominal + sigma * noise[k], low, high)`` for ``k >= first_noisy``.

    Rows ``k < first_noisy`` get the clipped nominal itself, so the warm start is
    always re-scored (MuJoCo MPC does the same).

    Args:
        nominal: Shape=(H, nu).
        noise: standard normal draws, Shape=(K, H, nu).
        sigma: per-step, per-dimension standard deviation, Shape=(H, nu).
        low, high: actuator bounds, Shape=(nu,).
        first_noisy: number of leading rows that copy the nominal.
        out: Shape=(K, H, nu), written in place.
    """
    K, H, nu = out.shape
    for k in nb.prange(K):
        for t in range(H):
            for j in range(nu):
                u = nominal[t, j]
                if k >= first_noisy:
                    u += sigma[t, j] * noise[k, t, j]
                out[k, t, j] = min(max(u, low[j]), high[j])


@quiet_overflow
@nb.njit(parallel=True, cache=True)
def seeded_gaussian_proposals(
    nominal, seed, sigma, low, high, first_noisy, out
):  # pragma: no cover
    """Like ``gaussian_proposals``, with the noise drawn in the kernel.

    Row ``k >= first_noisy`` draws its ``H * nu`` normals, in (t, j) order, from
    stream ``(seed, k)`` of ``imle_mpc.kernels.rng``: the proposals depend on the
    seed only, not on the thread count, and need no (K, H, nu) noise buffer.

    Args:
        nominal: Shape=(H, nu).
        seed: uint64 batch seed.
        sigma: per-step, per-dimension standard deviation, Shape=(H, nu).
        low, high: actuator bounds, Shape=(nu,).
        first_noisy: number of leading rows that copy the nominal.
        out: Shape=(K, H, nu), written in place.
    """
    K, H, nu = out.shape
    for k in nb.prange(K):
        s = stream_state(seed, k)
        noisy = k >= first_noisy
        for t in range(H):
            for j in range(nu):
                u = nominal[t, j]
                if noisy:
                    s, z = standard_normal(s)
                    u += sigma[t, j] * z
                out[k, t, j] = min(max(u, low[j]), high[j])
