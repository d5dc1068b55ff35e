"""Counter-seeded normal random numbers inside Numba kernels.

Each sample ``k`` of a batch owns a random stream: a SplitMix64 generator
(Steele, Lea and Flood, 2014) whose state starts at ``mix64(seed + (k + 1) * γ)``.
A stream depends only on ``(seed, k)``, so a parallel kernel gives the same
numbers whatever the thread count or schedule, and a planner that draws one
``seed`` per step from its ``np.random.Generator`` stays reproducible.

Normals come from a 256-layer ziggurat (Marsaglia and Tsang, 2000; the layout
of NumPy's ``random_standard_normal``): about 99% of draws cost one 64-bit
random number, a table lookup and a multiply, no ``log`` or ``exp``.

Use from a kernel::

    s = stream_state(seed, k)
    for t in range(H):
        s, z = standard_normal(s)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numba as nb
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_ONE = np.uint64(1)
_S8 = np.uint64(8)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_LOW8 = np.uint64(0xFF)
_LOW52 = np.uint64((1 << 52) - 1)
_INV_2_53 = 1.0 / 9007199254740992.0  # 2**-53


def _ziggurat_tables(
    layers: int = 256, r: float = 3.6541528853610088
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tables of a ziggurat for the half-normal density ``f(x) = exp(-x^2 / 2)``.

    Layer 0 is the base strip (the rectangle ``[0, r] x [0, f(r)]`` plus the tail
    beyond ``r``); layer ``i >= 1`` is the rectangle ``[0, x[i-1]] x [f(x[i-1]), f(x[i])]``.
    All layers have the same area ``v``, so a layer is picked uniformly.

    Returns:
        ``k`` (uint64): a 52-bit draw below ``k[i]`` lies inside the density
        (accept at once); ``w``: draw-to-abscissa scale; ``f``: ``f(x[i])``.
    """
    density = lambda x: math.exp(-0.5 * x * x)  # noqa: E731
    v = r * density(r) + math.sqrt(math.pi / 2.0) * math.erfc(r / math.sqrt(2.0))
    x = [r]
    for _ in range(1, layers - 1):
        x.append(math.sqrt(-2.0 * math.log(v / x[-1] + density(x[-1]))))
    x.append(0.0)  # the top layer ends at the mode (the recurrence gives 0 to 1e-15)
    width = [v / density(r), *x[:-1]]  # layer 0 is a pseudo-rectangle of area v
    scale = float(1 << 52)
    k = np.array([int(x[i] / width[i] * scale) for i in range(layers)], dtype=np.uint64)
    w = np.array([width[i] / scale for i in range(layers)])
    f = np.array([density(xi) for xi in x])
    return k, w, f


ZIG_K, ZIG_W, ZIG_F = _ziggurat_tables()
ZIG_R = 3.6541528853610088
_INV_R = 1.0 / ZIG_R


def quiet_overflow(fn: F) -> F:
    """Silence NumPy's uint64 overflow warnings when kernels run as plain Python.

    Under ``NUMBA_DISABLE_JIT=1`` the generators run on NumPy scalars, which warn
    when arithmetic wraps around 2**64; the wraparound is intended (it is what
    the compiled code does). Compiled kernels are returned unchanged.
    """
    if not getattr(nb.config, "DISABLE_JIT", False):
        return fn

    @functools.wraps(fn)
    def wrapper(*args: Any) -> Any:
        with np.errstate(over="ignore"):
            return fn(*args)

    return wrapper  # type: ignore[return-value]


@nb.njit(inline="always")
def mix64(z):  # pragma: no cover - compiled
    """SplitMix64's output function: a bijective 64-bit hash. ``z`` is uint64."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@nb.njit(inline="always")
def stream_state(seed, k):  # pragma: no cover - compiled
    """Start state of stream ``k`` (int >= 0) of a batch seeded with ``seed`` (uint64)."""
    return mix64(np.uint64(seed) + np.uint64(k + 1) * GOLDEN)


@nb.njit(inline="always")
def next_uint64(s):  # pragma: no cover - compiled
    """Advance a stream: returns ``(new_state, 64 random bits)``."""
    s = np.uint64(s) + GOLDEN  # a no-op cast in kernels; guards a Python int state
    return s, mix64(s)


@nb.njit(inline="always")
def next_double(s):  # pragma: no cover - compiled
    """Uniform double in [0, 1) with 53 random bits: returns ``(new_state, u)``."""
    s, z = next_uint64(s)
    return s, np.float64(np.int64(z >> _S11)) * _INV_2_53


@nb.njit(inline="always")
def _ziggurat_attempt(s):  # pragma: no cover - compiled
    """One attempt's table part: ``(new_state, x, sign, idx, inside)``.

    ``inside``: the draw lies in its layer's inner rectangle (~99%), and ``x`` is the
    normal. Otherwise ``_ziggurat_edge(s, x, sign, idx)`` finishes the attempt.
    Branch-free, so a loop of it over lanes runs as packed code (``normal_lanes``).
    """
    s, z = next_uint64(s)
    idx = np.intp(z & _LOW8)
    r = z >> _S8
    sign = 1.0 - 2.0 * np.float64(np.int64(r & _ONE))  # branch-free: a coin flip
    rabs = (r >> _ONE) & _LOW52
    x = sign * np.float64(np.int64(rabs)) * ZIG_W[idx]  # < 2**52: signed convert is exact
    return s, x, sign, idx, rabs < ZIG_K[idx]


@nb.njit(inline="always")
def _ziggurat_edge(s, x, sign, idx):  # pragma: no cover - compiled
    """The rest of an attempt outside the inner rectangle: ``(new_state, accepted, x)``."""
    if idx == 0:
        # The tail beyond r (Marsaglia 1964); 1 - u avoids log(0).
        while True:
            s, u1 = next_double(s)
            s, u2 = next_double(s)
            xx = -math.log1p(-u1) * _INV_R
            yy = -math.log1p(-u2)
            if yy + yy > xx * xx:
                return s, True, sign * (ZIG_R + xx)
    s, u = next_double(s)
    y = ZIG_F[idx - 1] + u * (ZIG_F[idx] - ZIG_F[idx - 1])
    return s, y < math.exp(-0.5 * x * x), x


@nb.njit(inline="always")
def standard_normal(s):  # pragma: no cover - compiled
    """One standard normal draw by the ziggurat: returns ``(new_state, x)``."""
    while True:
        s, x, sign, idx, inside = _ziggurat_attempt(s)
        if inside:
            return s, x
        s, accepted, x = _ziggurat_edge(s, x, sign, idx)
        if accepted:
            return s, x


@nb.njit(inline="always")
def normal_lanes(states, out, signs, layers):  # pragma: no cover - compiled
    """The next ``standard_normal`` of every lane's stream: the same numbers, lane-major.

    ``states`` (uint64, Shape=(L,)) advance as ``standard_normal`` advances them;
    ``out`` Shape=(L,) gets the draws. The table part runs for all lanes in one
    branch-free loop (packed code: in the pendulum's plan, L = 64, 1.5 ns a draw against
    3.7 drawn row by row); the ~1% of lanes outside their layer's inner rectangle finish
    in a second loop.
    ``signs`` (float64) and ``layers`` (intp), Shape=(L,), are scratch.
    """
    L = states.shape[0]
    for ln in range(L):
        s, x, sign, idx, inside = _ziggurat_attempt(states[ln])
        states[ln] = s
        out[ln] = x
        signs[ln] = sign
        layers[ln] = -1 if inside else idx
    for ln in range(L):
        if layers[ln] >= 0:
            s, accepted, x = _ziggurat_edge(states[ln], out[ln], signs[ln], layers[ln])
            if not accepted:
                s, x = standard_normal(s)  # a fresh attempt, as standard_normal's loop
            states[ln] = s
            out[ln] = x


@quiet_overflow
@nb.njit(parallel=True, cache=True)
def fill_standard_normal(seed, out):  # pragma: no cover - compiled
    """``out[k, :]`` = the first ``n`` normals of stream ``k``. out Shape=(K, n), float64.

    Args:
        seed: uint64 seed of the batch (e.g. drawn from an ``np.random.Generator``).
        out: written in place; row ``k`` depends only on ``(seed, k)``.
    """
    K, n = out.shape
    for k in nb.prange(K):
        s = stream_state(seed, k)
        for i in range(n):
            s, z = standard_normal(s)
            out[k, i] = z


def draw_seed(rng: np.random.Generator) -> np.uint64:
    """A fresh uint64 batch seed: the next raw 64-bit output of the caller's generator."""
    return np.uint64(rng.bit_generator.random_raw())
