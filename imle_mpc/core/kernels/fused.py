"""The fused hot path: Gaussian sampling (+ knot expansion) + rollout + per-step cost in one pass.

The generic path makes four passes over K x H memory (draw noise, form
proposals, roll out, score), each its own parallel region. When the model is a
single-step ``@njit`` function and every cost term can be written per step
(a ``StageForm``), one parallel loop over blocks of samples does all of it
while a block's states are still in L1: draw each sample's noise from its own
counter-seeded stream (``imle_mpc.core.kernels.rng``), clip, expand spline knots to
per-step actions (when the plan is parameterized by knots), then step the block's
samples in lockstep and charge the stage costs, then the terminal costs.

Results equal the generic path's: the same proposals for the same seed, the
same states, and per-term costs summed in the same order (the built-in terms'
batch kernels call the same per-step functions).

What one step costs here (pendulum, K=1000, H=30, one thread of this 2-core VM):
about 15 ns for the model (mostly ``sin``), 6 ns to draw and store the normal, 6 ns
for the two cost terms. When the model has a lane step and every running term a
lane form, the same pass runs on lane-major blocks instead
(``imle_mpc.core.kernels.lanes``): packed vector code, 18 ns a sample-step against 33
(2026-12-02's machine; on 2026-12-04's, with 64-lane blocks and the draws lane-major too,
4.9 ns against 12.3 for the 16-lane kernel with per-row draws).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba as nb
import numpy as np

from imle_mpc.core.kernels.lanes import (
    build_lane_kernels,
    make_drivers,
    propose_block,
    weighted_total,
)
from imle_mpc.core.kernels.rollout import BLOCK, inline_copy

__all__ = ["FusedKernels", "StageForm", "make_fused_kernels", "pack_params"]


@dataclass(frozen=True, eq=False)
class StageForm:
    """A cost term written per step, so the fused kernel can charge it during the rollout.

    ``term(X, U) == sum_t running(X[t], X[t+1], U, t, params) + terminal(X[H], params)``
    for every sample, with the sum over ``t`` accumulated in that order.

    Attributes:
        running: ``@njit running(x_prev Shape=(nx,), x Shape=(nx,), U Shape=(H, nu), t,
            params) -> float``, the cost of step ``t``: ``x = X[t+1]`` is the state it
            leads to, ``x_prev = X[t]`` the one it starts from (for costs on the path
            between them, e.g. a swept obstacle distance). It may read ``U[:t+1]``
            (e.g. for action differences). ``None``: no running cost.
        terminal: ``@njit terminal(x Shape=(nx,), params) -> float`` on ``X[H]``, or ``None``.
        params: the term's parameters, Shape=(p,), float64.
        running_lanes: optional ``@njit lanes(x_prev Shape=(nx, L), x Shape=(nx, L),
            U Shape=(H, nu, L), t, params, out Shape=(L,))`` writing ``running`` of every
            lane of a block (lane ``l`` is one sample), with each lane's arithmetic in
            ``running``'s order. With it (and a model's ``lane_step_function``) the
            kernel steps a block lane by lane in loops LLVM packs into vector code.
    """

    running: Any
    terminal: Any
    params: np.ndarray
    running_lanes: Any = None


class FusedKernels(NamedTuple):
    """``parallel`` scores a batch (``prange`` over samples); ``serial`` one or a few samples.

    Both have the signature ``kernel(x0, Z, U, basis, nominal, sigma, low, high,
    first_noisy, seed, sample, store, dyn_params, P, weights, X, parts, total)``:

    Args:
        x0: start state, Shape=(nx,).
        Z: the search's parameters, Shape=(K, M, nu): spline knots (M < H), or ``U``
            itself (per-step actions, M = H). Written when ``sample`` is True, read
            otherwise.
        U: per-step actions, Shape=(K, H, nu). With knots (``Z.shape[1] != H``) the
            kernel writes ``clip(basis @ Z[k])`` into it; otherwise it is ``Z``.
        basis: the knot expansion, Shape=(H, M) (any 2-D array when ``Z`` is ``U``).
        nominal, sigma: mean and std of the Gaussian proposals, Shape=(M, nu).
        low, high: actuator bounds, Shape=(nu,).
        first_noisy: leading rows that copy the clipped nominal (no noise drawn).
        seed: uint64 batch seed; row ``k`` draws from stream ``(seed, k)``.
        sample: True to draw the proposals, False to score ``U`` as given.
        store: True to keep every state in ``X``; False to use ``X`` Shape=(K, 2, nx)
            as scratch (no K x (H+1) x nx of memory traffic when nobody reads it).
        dyn_params: the model's parameter vector.
        P: per-term parameters, padded rows, Shape=(n_terms, p_max).
        weights: per-term weights, Shape=(n_terms,).
        X: states, Shape=(K, H+1, nx) (``store``) or scratch Shape=(K, 2, nx), written.
        parts: weighted per-term costs, Shape=(K, n_terms), written.
        total: total cost, Shape=(K,), written; NaN becomes +inf.
    """

    parallel: Any
    serial: Any
    lanes: bool = False
    """Whether the kernels step lane-major blocks (``make_fused_kernels``'s ``lane_step``)."""


_KERNEL_CACHE: dict[tuple[Any, ...], FusedKernels] = {}


@nb.njit(inline="always")
def _no_running(x_prev, x, U, t, P, acc):  # pragma: no cover - compiled
    pass


@nb.njit(inline="always")
def _no_terminal(x, P, acc):  # pragma: no cover - compiled
    pass


def _link_running(prev: Any, fn: Any, i: int) -> Any:
    @nb.njit(inline="always")
    def chained(x_prev, x, U, t, P, acc):  # pragma: no cover - compiled
        prev(x_prev, x, U, t, P, acc)
        acc[i] += fn(x_prev, x, U, t, P[i])

    return chained


def _link_terminal(prev: Any, fn: Any, i: int) -> Any:
    @nb.njit(inline="always")
    def chained(x, P, acc):  # pragma: no cover - compiled
        prev(x, P, acc)
        acc[i] += fn(x, P[i])

    return chained


def _chains(forms: Sequence[StageForm], inline: bool) -> tuple[Any, Any]:
    """One function that adds every term's running cost into ``acc[i]``; one for terminals."""
    running, terminal = _no_running, _no_terminal
    for i, form in enumerate(forms):
        if form.running is not None:
            fn = inline_copy(form.running) if inline else form.running
            running = _link_running(running, fn, i)
        if form.terminal is not None:
            fn = inline_copy(form.terminal) if inline else form.terminal
            terminal = _link_terminal(terminal, fn, i)
    return running, terminal


def pack_params(forms: Sequence[StageForm]) -> np.ndarray:
    """Stack the terms' parameter vectors into zero-padded rows, Shape=(n_terms, p_max)."""
    width = max([1, *(np.size(f.params) for f in forms)])
    P = np.zeros((len(forms), width))
    for i, form in enumerate(forms):
        p = np.asarray(form.params, dtype=np.float64).ravel()
        P[i, : p.size] = p
    return P


def make_fused_kernels(
    step: Any, forms: Sequence[StageForm], inline: bool = True, lane_step: Any = None
) -> FusedKernels:
    """Build (or fetch from the cache) the fused kernels for a step function and cost terms.

    Kernels depend only on the functions, not on parameter values, so every
    planner with the same model class and the same kinds of terms shares one
    compilation.

    Args:
        step: ``@njit step(x, u, params, out)`` of the model.
        forms: one ``StageForm`` per cost term, in the cost's term order.
        inline: inline the step and the terms into the loop (faster; turn off
            only if Numba cannot inline one of them).
        lane_step: the model's ``@njit lane_step(X Shape=(nx, L), U Shape=(nu, L),
            params, out Shape=(nx, L))``, ``step`` for every lane with each lane's
            arithmetic in ``step``'s order, or ``None``. Used when every running term
            has ``running_lanes`` too (``imle_mpc.core.kernels.lanes``); the results
            are the same to the bit.
    """
    use_lanes = lane_step is not None and all(
        f.running is None or f.running_lanes is not None for f in forms
    )
    key = (
        step,
        inline,
        lane_step if use_lanes else None,
        tuple((f.running, f.terminal, f.running_lanes) for f in forms),
    )
    if key not in _KERNEL_CACHE:
        if use_lanes:
            terminal = _chains(forms, inline)[1]
            _KERNEL_CACHE[key] = FusedKernels(*build_lane_kernels(lane_step, forms, terminal), True)
        else:
            _KERNEL_CACHE[key] = _build(step, forms, inline)
    return _KERNEL_CACHE[key]


def _build(step: Any, forms: Sequence[StageForm], inline: bool) -> FusedKernels:
    step_fn = inline_copy(step) if inline else step
    running, terminal = _chains(forms, inline)

    # error_model="numpy": no ZeroDivisionError branches, so Numba can drop the
    # reference counting of the per-step array views (a 25% speedup); a division
    # by zero gives inf/NaN, i.e. an infinite cost, instead of an exception.
    # One block of BLOCK samples (kernels.rollout.BLOCK): sample them, then step
    # them in lockstep. Not inlined into the two drivers below: a call per
    # block costs nothing, and compiling the drivers is then quicker.
    @nb.njit(error_model="numpy")
    def score_block(  # pragma: no cover - compiled
        k0, k1, x0, Z, U, basis, nominal, sigma, low, high, first_noisy, seed, sample, store,
        dyn_params, P, weights, X, parts, total,
    ):  # fmt: skip
        H = U.shape[1]
        propose_block(k0, k1, Z, U, basis, nominal, sigma, low, high, first_noisy, seed, sample)
        for k in range(k0, k1):
            for i in range(parts.shape[1]):
                parts[k, i] = 0.0
            for i in range(x0.shape[0]):
                X[k, 0, i] = x0[i]
        for t in range(H):
            now = t if store else t & 1  # without store, X is a 2-slot ping-pong buffer
            nxt = t + 1 if store else (t + 1) & 1
            for k in range(k0, k1):
                step_fn(X[k, now], U[k, t], dyn_params, X[k, nxt])
                running(X[k, now], X[k, nxt], U[k], t, P, parts[k])
        last = H if store else H & 1
        for k in range(k0, k1):
            acc = parts[k]
            terminal(X[k, last], P, acc)
            total[k] = weighted_total(acc, weights)

    @nb.njit(error_model="numpy")
    def score_groups(  # pragma: no cover - compiled
        g0, g1, L, x0, Z, U, basis, nominal, sigma, low, high, first_noisy, seed, sample,
        store, dyn_params, P, weights, X, parts, total,
    ):  # fmt: skip
        K = U.shape[0]
        for g in range(g0, g1):
            score_block(
                g * L, min(g * L + L, K), x0, Z, U, basis, nominal, sigma, low, high,
                first_noisy, seed, sample, store, dyn_params, P, weights, X, parts, total,
            )  # fmt: skip

    return FusedKernels(*make_drivers(score_groups, BLOCK))
