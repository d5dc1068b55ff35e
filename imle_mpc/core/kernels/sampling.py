"""Proposal sampling kernels: nominal plus scaled noise, clipped to actuator bounds, and
the expansion of spline knots to per-step actions."""

from __future__ import annotations

import numba as nb

from imle_mpc.core.kernels.rng import normal_lanes, quiet_overflow, standard_normal, stream_state


@quiet_overflow
@nb.njit(cache=True, inline="always")
def fill_proposal(nominal, seed, k, sigma, low, high, noisy, row):  # pragma: no cover
    """Row ``k`` of a proposal batch: ``clip(nominal + sigma * noise_k, low, high)``.

    The noise is stream ``(seed, k)`` of ``imle_mpc.core.kernels.rng`` in (t, j)
    order; a row that is not ``noisy`` is the clipped nominal. Shared by the
    sampling kernel and the fused planner kernel so both draw identical rows.
    """
    H, nu = row.shape
    s = stream_state(seed, k)
    for t in range(H):
        for j in range(nu):
            u = nominal[t, j]
            if noisy:
                s, z = standard_normal(s)
                u += sigma[t, j] * z
            row[t, j] = min(max(u, low[j]), high[j])


@nb.njit(inline="always")
def fill_proposal_lanes(
    nominal, seed, k0, k1, sigma, low, high, first_noisy, states, draws, signs, layers, block, Z
):  # pragma: no cover - compiled
    """Rows ``k0..k1-1`` of a proposal batch lane-major: ``fill_proposal``'s numbers.

    Lane ``l`` holds row ``min(k0 + l, k1 - 1)`` (spare lanes repeat the last row) and
    draws from that row's stream, one ``normal_lanes`` call per entry, so the noise of
    all lanes is drawn in packed code. A row below ``first_noisy`` is the clipped nominal.

    Args:
        block: the rows lane-last, Shape=(H, nu, L), written.
        Z: the batch, Shape=(K, H, nu); rows ``k0..k1-1`` written from ``block``.
        states (uint64), draws, signs (float64), layers (intp): scratch, Shape=(L,).
    """
    H, nu, L = block.shape
    for ln in range(L):
        states[ln] = stream_state(seed, min(k0 + ln, k1 - 1))
    for t in range(H):
        for j in range(nu):
            normal_lanes(states, draws, signs, layers)
            mean, scale, lo, hi = nominal[t, j], sigma[t, j], low[j], high[j]
            for ln in range(L):
                u = mean
                if min(k0 + ln, k1 - 1) >= first_noisy:
                    u += scale * draws[ln]
                block[t, j, ln] = min(max(u, lo), hi)
    for k in range(k0, k1):
        for t in range(H):
            for j in range(nu):
                Z[k, t, j] = block[t, j, k - k0]


@quiet_overflow
@nb.njit(parallel=True, cache=True)
def seeded_gaussian_proposals(
    nominal, seed, sigma, low, high, first_noisy, out
):  # pragma: no cover
    """Gaussian proposals around ``nominal``, clipped, with the noise drawn in the kernel.

    Row ``k >= first_noisy`` draws its ``H * nu`` normals, in (t, j) order, from
    stream ``(seed, k)`` of ``imle_mpc.core.kernels.rng``: the proposals depend on the
    seed only, not on the thread count, and need no (K, H, nu) noise buffer.

    Args:
        nominal: Shape=(H, nu).
        seed: uint64 batch seed.
        sigma: per-step, per-dimension standard deviation, Shape=(H, nu).
        low, high: actuator bounds, Shape=(nu,).
        first_noisy: number of leading rows that copy the nominal.
        out: Shape=(K, H, nu), written in place.
    """
    for k in nb.prange(out.shape[0]):
        fill_proposal(nominal, seed, k, sigma, low, high, k >= first_noisy, out[k])


@nb.njit(cache=True, inline="always")
def expand_knots_row(Z, basis, low, high, row):  # pragma: no cover
    """One sample's knots to its per-step actions: ``row = clip(basis @ Z, low, high)``.

    Every interpolation of the knots (zero-order hold, linear, a natural cubic
    spline) is linear in the knot values, so one basis matrix expands all three
    (``planners.knots.KnotSchedule.basis``). Shared by the fused planner kernel and
    ``expand_knots`` so both give the same rows to the last bit.

    Args:
        Z: knot values, Shape=(M, nu).
        basis: Shape=(H, M); ``basis[t, m]`` is knot ``m``'s weight at step ``t``.
        low, high: actuator bounds, Shape=(nu,) (a cubic spline may overshoot them).
        row: Shape=(H, nu), written.
    """
    H, M = basis.shape
    for t in range(H):
        for j in range(row.shape[1]):
            acc = 0.0
            for m in range(M):
                acc += basis[t, m] * Z[m, j]
            row[t, j] = min(max(acc, low[j]), high[j])


@nb.njit(parallel=True, cache=True)
def expand_knots(Z, basis, low, high, out):  # pragma: no cover
    """``out[k] = clip(basis @ Z[k], low, high)`` for every sample, in parallel.

    Args:
        Z: knots, Shape=(K, M, nu).
        basis: Shape=(H, M).
        low, high: actuator bounds, Shape=(nu,).
        out: per-step actions, Shape=(K, H, nu), written.
    """
    for k in nb.prange(Z.shape[0]):
        expand_knots_row(Z[k], basis, low, high, out[k])
