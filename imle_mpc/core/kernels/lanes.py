"""The fused planner kernel on lane-major blocks: a loop LLVM packs into vector code.

``imle_mpc.core.kernels.fused`` steps a block of samples one sample at a time: each
call takes the sample's state as an array view, and a loop of views does not
vectorise. Here a block of ``LANES`` samples lives lane-last, ``S[i, ln]`` = state
``i`` of lane ``l``, and the model's ``lane_step`` and every term's
``running_lanes`` loop over the lanes with a trip count known only at run time
(a compile-time 8 or 16 gets unrolled into scalar code instead). Branch-free
steps then run as packed vector arithmetic (AVX2, or AVX-512 where the CPU has it):
the pendulum step with its polynomial ``sin`` (``core.kernels.trig``) and both cost
terms took 5 ns a sample-step on one thread of the 2026-12-02 machine, against 20 ns
per sample.

Each lane does its sample's arithmetic in the per-sample functions' order (no
reassociation, no FMA contraction), so costs and states equal the per-sample
kernel's to the bit; the proposals are the same rows (``fill_proposal``).
Terminal costs, which run once per sample, use the per-sample ``terminal``.

The proposals' noise is drawn lane-major too (``sampling.fill_proposal_lanes``): the
table part of every lane's ziggurat draw in one packed loop. On the pendulum (K=1000,
one thread) the draws took 3.7 ns a sample-step per row and 1.5 ns lane-major.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba as nb
import numpy as np

from imle_mpc.core.kernels.rng import quiet_overflow
from imle_mpc.core.kernels.rollout import inline_copy
from imle_mpc.core.kernels.sampling import expand_knots_row, fill_proposal, fill_proposal_lanes

__all__ = ["LANES", "build_lane_kernels", "make_drivers", "propose_block", "weighted_total"]

LANES = 64
"""Samples per lane-major block. Each lane loop then has enough independent vectors for
the core to overlap their latencies. Measured (pendulum, K=1000, H=30, one thread, the
fused plan's kernel without its draws; 2026-12-04, an AVX-512 machine): 16 lanes 8.5 ns
a sample-step, 32 lanes 4.2, 64 lanes 3.3, 128 lanes 3.6. (On 2026-12-02's
machine 16 lanes beat 8: 9.9 against 10.9 ns with the draws.)"""

_CHUNKS_PER_THREAD = 4
"""Each parallel task allocates its block buffers once and works through several
blocks; four tasks a thread balance uneven blocks (the last one is partly empty)."""


@nb.njit(inline="always")
def weighted_total(acc, weights):  # pragma: no cover - compiled
    """Weigh one sample's raw per-term costs in place and return their sum (NaN -> +inf).

    The arithmetic of ``CostSum``: shared by both fused kernels.
    """
    tot = 0.0
    for i in range(acc.shape[0]):
        v = acc[i]
        acc[i] = weights[i] * v
        if v != v:
            tot = np.inf
        else:
            tot += acc[i]
    return tot


@nb.njit(inline="always")
def propose_block(
    k0, k1, Z, U, basis, nominal, sigma, low, high, first_noisy, seed, sample
):  # pragma: no cover - compiled
    """Rows ``k0..k1-1`` of the proposals (``sample``) and their per-step actions (knots).

    Both fused kernels start a block with it, while the block's rows are in L1.
    """
    if sample:
        for k in range(k0, k1):
            fill_proposal(nominal, seed, k, sigma, low, high, k >= first_noisy, Z[k])
    if Z.shape[1] != U.shape[1]:  # knots: expand them to per-step actions
        for k in range(k0, k1):
            expand_knots_row(Z[k], basis, low, high, U[k])


@nb.njit(inline="always")
def _no_running(x_prev, x, U, t, P, A, tmp):  # pragma: no cover - compiled
    pass


def _link_running(prev: Any, fn: Any, i: int) -> Any:
    @nb.njit(inline="always")
    def chained(x_prev, x, U, t, P, A, tmp):  # pragma: no cover - compiled
        prev(x_prev, x, U, t, P, A, tmp)
        fn(x_prev, x, U, t, P[i], tmp)
        for ln in range(tmp.shape[0]):
            A[i, ln] += tmp[ln]

    return chained


def _running_chain(forms: Sequence[Any]) -> Any:
    """One function adding every term's lane costs of step ``t`` into ``A[i, :]``."""
    running = _no_running
    for i, form in enumerate(forms):
        if form.running is not None:
            running = _link_running(running, inline_copy(form.running_lanes), i)
    return running


def build_lane_kernels(lane_step: Any, forms: Sequence[Any], terminal: Any) -> tuple[Any, Any]:
    """The ``(parallel, serial)`` kernels of ``fused.FusedKernels`` on lane-major blocks.

    Args:
        lane_step: the model's ``@njit lane_step(X (nx, L), U (nu, L), params, out (nx, L))``.
        forms: the cost terms' ``fused.StageForm`` s, each with ``running_lanes`` or no
            running cost.
        terminal: ``terminal(x, P, acc)`` adding every term's terminal cost of one sample.
    """
    step_fn = inline_copy(lane_step)
    running = _running_chain(forms)

    @nb.njit(error_model="numpy")
    def score_groups(  # pragma: no cover - compiled
        g0, g1, L, x0, Z, U, basis, nominal, sigma, low, high, first_noisy, seed, sample,
        store, dyn_params, P, weights, X, parts, total,
    ):  # fmt: skip
        # Blocks g0..g1-1 of L samples. Spare lanes of the last block repeat its last
        # sample and are never written back.
        K, H, nu = U.shape
        nx = x0.shape[0]
        n_terms = parts.shape[1]
        knots = Z.shape[1] != H
        S = np.empty((2, nx, L))  # ping-pong states, lane last
        Ub = np.empty((H, nu, L))  # the block's actions, lane last
        Zb = np.empty((Z.shape[1], nu, L)) if knots else Ub  # the block's proposals
        A = np.empty((n_terms, L))  # raw running costs per term and lane
        tmp = np.empty(L)
        streams = np.empty(L, np.uint64)  # the proposal draws' scratch
        draws, signs, layers = np.empty(L), np.empty(L), np.empty(L, np.intp)
        for g in range(g0, g1):
            k0 = g * L
            k1 = min(k0 + L, K)
            if sample:  # the noise of all lanes at once, in packed code
                fill_proposal_lanes(
                    nominal, seed, k0, k1, sigma, low, high, first_noisy, streams, draws,
                    signs, layers, Zb, Z,
                )  # fmt: skip
            # expands knots (the proposals are drawn already)
            propose_block(k0, k1, Z, U, basis, nominal, sigma, low, high, first_noisy, seed, False)
            for ln in range(L):
                if knots or not sample:  # else Ub holds the actions already
                    k = min(k0 + ln, k1 - 1)
                    for t in range(H):
                        for j in range(nu):
                            Ub[t, j, ln] = U[k, t, j]
                for i in range(nx):
                    S[0, i, ln] = x0[i]
            A[:] = 0.0
            for t in range(H):
                now, nxt = S[t & 1], S[(t + 1) & 1]
                step_fn(now, Ub[t], dyn_params, nxt)
                running(now, nxt, Ub, t, P, A, tmp)
                if store:
                    for k in range(k0, k1):
                        for i in range(nx):
                            X[k, t + 1, i] = nxt[i, k - k0]
            last = S[H & 1]
            slot = H if store else H & 1
            for k in range(k0, k1):
                for i in range(nx):
                    X[k, 0, i] = x0[i]
                    X[k, slot, i] = last[i, k - k0]
                acc = parts[k]
                for i in range(n_terms):
                    acc[i] = A[i, k - k0]
                terminal(X[k, slot], P, acc)
                total[k] = weighted_total(acc, weights)

    return make_drivers(score_groups, LANES)


@nb.njit(inline="always")
def block_width(width, K):  # pragma: no cover - compiled
    """Samples per block for a batch of ``K``: ``width``, or ``K`` when fewer (an int64)."""
    return np.int64(min(width, max(K, 1)))


def make_drivers(score_groups: Any, width: int) -> tuple[Any, Any]:
    """The ``(parallel, serial)`` entry points of a fused kernel (``fused.FusedKernels``).

    Args:
        score_groups: ``@njit score_groups(g0, g1, L, *kernel_args)`` scoring the blocks
            ``g0..g1-1`` of ``L`` samples (block ``g`` is samples ``g*L`` to ``g*L+L-1``,
            the last one cut at K).
        width: samples per block of both (fewer for a batch of fewer samples);
            ``serial`` (one or a few samples, e.g. the planner's re-scored plan) runs the
            blocks on the calling thread.
    """

    @quiet_overflow
    @nb.njit(parallel=True, error_model="numpy")
    def parallel(  # pragma: no cover - compiled
        x0, Z, U, basis, nominal, sigma, low, high, first_noisy, seed, sample, store,
        dyn_params, P, weights, X, parts, total,
    ):  # fmt: skip
        L = block_width(width, U.shape[0])
        groups = (U.shape[0] + L - 1) // L
        chunks = min(groups, _CHUNKS_PER_THREAD * nb.get_num_threads())
        for c in nb.prange(chunks):
            score_groups(
                c * groups // chunks, (c + 1) * groups // chunks, L, x0, Z, U, basis,
                nominal, sigma, low, high, first_noisy, seed, sample, store, dyn_params, P,
                weights, X, parts, total,
            )  # fmt: skip

    # The same blocks on the calling thread. Both drivers pass the block width as a
    # run-time int64 (`block_width`), so one specialisation of score_groups serves both
    # (a compile-time `width` in one and an int64 in the other was a second one, 0.4-3 s
    # more to compile every kernel), and a one-row re-score steps one lane, not 64.
    @nb.njit(error_model="numpy")
    def serial_blocks(  # pragma: no cover - compiled
        g0, x0, Z, U, basis, nominal, sigma, low, high, first_noisy, seed, sample, store,
        dyn_params, P, weights, X, parts, total,
    ):  # fmt: skip
        L = block_width(width, U.shape[0])
        score_groups(
            g0, (U.shape[0] + L - 1) // L, L, x0, Z, U, basis, nominal, sigma, low, high,
            first_noisy, seed, sample, store, dyn_params, P, weights, X, parts, total,
        )  # fmt: skip

    @quiet_overflow
    def serial(
        x0: Any, Z: Any, U: Any, basis: Any, nominal: Any, sigma: Any, low: Any, high: Any,
        first_noisy: int, seed: Any, sample: bool, store: bool, dyn_params: Any, P: Any,
        weights: Any, X: Any, parts: Any, total: Any,
    ) -> None:  # fmt: skip
        if U.shape[0] == 0:
            return
        serial_blocks(  # g0 = 0 from here: an int64, as in `parallel` (a literal 0 is not)
            0, x0, Z, U, basis, nominal, sigma, low, high, first_noisy, np.uint64(seed), sample,
            store, dyn_params, P, weights, X, parts, total,
        )  # fmt: skip

    return parallel, serial
