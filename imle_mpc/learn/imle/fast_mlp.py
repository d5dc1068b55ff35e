"""The MLP generator's forward pass in NumPy, on preallocated buffers: small CPU batches.

Why: at the batch sizes of a control step (16 chunks a step, 33 continuations in the
lookahead) a torch pass of the 3-layer MLP is mostly per-operator overhead (module
calls, dispatch, allocation). Measured on the 2-core development machine, loaded, one
thread: batch 1 94 -> 32 us, batch 16 (one condition row) 133 -> 54 us; at batch 256
the two are even, arithmetic dominates. The same float32 weights in the same order
of operations agree with torch to about 1e-6 (tests/learn/imle/test_fast_mlp.py:
the shipped generators, batch 1..256).

``NumpyMLP`` is a snapshot of an ``MLPGenerator``'s weights; it notices when they
change in place (an EMA update during training, ``load_state_dict``: torch's version
counters) and takes a new snapshot. The matrix products run on the calling thread
only (``imle_mpc.core.blas.blas_threads``): NumPy's BLAS pool is not part of the
planners' thread policy. Torch stays the path for training, gradients, CUDA, the
U-Net and large batches (``IMLEGenerator.inference``).

Each hidden layer is one matrix product, one compiled pass for its bias, FiLM and the
SiLU's negation, NumPy's SIMD ``exp`` and one compiled divide, each the same float32
operations in the same order as the NumPy ufuncs they replace (tested to the bit):
the Panda's 127-latent pass 348 -> 294 us (one thread, idle, alternating calls).
"""

from __future__ import annotations

import threading
from typing import Literal

import numba as nb
import numpy as np
import torch

from imle_mpc.core.blas import blas_threads
from imle_mpc.learn.imle.networks import MLPGenerator

__all__ = ["INFERENCE_PATHS", "NUMPY_MAX_BATCH", "InferencePath", "NumpyMLP"]

InferencePath = Literal["auto", "torch", "numpy"]
INFERENCE_PATHS: tuple[InferencePath, ...] = ("auto", "torch", "numpy")
NUMPY_MAX_BATCH = 256
"""``auto`` takes the NumPy path up to this many rows (measured even with torch there)."""

_KEEP_BUFFERS = 8  # batch shapes whose buffers are kept (a planner uses two or three)


def _silu(x: np.ndarray, tmp: np.ndarray) -> None:
    np.negative(x, out=tmp)
    np.exp(tmp, out=tmp)  # overflows to inf for x < -88: x / inf = -0, as torch gives
    tmp += 1.0
    np.divide(x, tmp, out=x)


def _mish(x: np.ndarray, tmp: np.ndarray) -> None:
    np.logaddexp(0.0, x, out=tmp)  # softplus without overflow
    np.tanh(tmp, out=tmp)
    x *= tmp


def _relu(x: np.ndarray, tmp: np.ndarray) -> None:
    np.maximum(x, 0.0, out=x)


_ACTIVATIONS = {"silu": _silu, "mish": _mish, "relu": _relu}


@nb.njit(cache=True, error_model="numpy")
def _bias_and_film(h, bias, film, start, total, negated):  # pragma: no cover - compiled
    """``h = (h + bias) * film[:, start:] + film[:, total + start:]`` in one pass, float32.

    NumPy's three in-place ufuncs (``h += b``, ``h *= scale``, ``h += shift``), each
    operation rounded to float32 in that order: the same numbers (no contraction into
    FMAs without fastmath). ``film`` Shape=(1 or B, 2 * total) holds 1 + scale, then
    shift; one row is broadcast. ``negated`` Shape=(B, W) receives ``-h`` (the SiLU's
    first step; scratch for the other activations).
    """
    B, W = h.shape
    broadcast = film.shape[0] == 1
    for i in range(B):
        r = 0 if broadcast else i
        # row views: unit-stride loops LLVM packs (indexing film[r, start + j] did not)
        scale = film[r, start : start + W]
        shift = film[r, total + start : total + start + W]
        row = h[i]
        minus = negated[i]
        for j in range(W):
            v = (row[j] + bias[j]) * scale[j] + shift[j]
            row[j] = v
            minus[j] = -v


@nb.njit(cache=True, error_model="numpy")
def _film_bias(film, bias, total):  # pragma: no cover - compiled
    """``film += bias; film[:, :total] += 1`` in one pass, float32: the FiLM layer's bias,
    then ``1 + scale`` (the torch forward's), each addition rounded in that order."""
    one = np.float32(1.0)
    B, W = film.shape
    for i in range(B):
        row = film[i]
        for j in range(total):
            row[j] = (row[j] + bias[j]) + one
        for j in range(total, W):
            row[j] = row[j] + bias[j]


@nb.njit(cache=True, error_model="numpy")
def _bias_and_negate(h, bias, negated):  # pragma: no cover - compiled
    """``h += bias`` and ``negated = -h`` in one pass, float32 (the embedding's bias and
    its SiLU's first step: NumPy's ``h += b`` and ``np.negative``, the same numbers)."""
    B, W = h.shape
    for i in range(B):
        row = h[i]
        minus = negated[i]
        for j in range(W):
            v = row[j] + bias[j]
            row[j] = v
            minus[j] = -v


@nb.njit(cache=True, error_model="numpy")
def _divide_by_one_plus(h, e):  # pragma: no cover - compiled
    """``h = h / (e + 1)`` in place, float32: the SiLU's ``x / (1 + exp(-x))`` once ``e`` holds
    ``exp(-x)`` (NumPy's ``e += 1; np.divide(h, e)``, the same rounding). ``error_model=
    "numpy"``: Python's zero-division check kept the loop scalar (41 -> ~3 us)."""
    one = np.float32(1.0)
    B, W = h.shape
    for i in range(B):
        row = h[i]
        denominator = e[i]
        for j in range(W):
            row[j] = row[j] / (denominator[j] + one)


class _Buffers:
    """Work arrays for one (rows of latents, rows of conditions) shape."""

    def __init__(
        self, batch: int, rows: int, embed: int, film: int, widths: tuple[int, ...], out: int
    ) -> None:
        f32 = np.float32
        self.embed = np.empty((rows, embed), f32)
        self.embed_tmp = np.empty((rows, embed), f32)
        self.film = np.empty((rows, film), f32)
        self.hidden = [np.empty((batch, w), f32) for w in widths]
        self.tmp = [np.empty((batch, w), f32) for w in widths]
        self.out = np.empty((batch, out), f32)


class NumpyMLP:
    """An ``MLPGenerator``'s forward pass in float32 NumPy (see the module docstring).

    Args:
        network: the torch MLP whose weights are evaluated (read, never written).
    """

    def __init__(self, network: MLPGenerator) -> None:
        self._network = network
        self._widths = tuple(int(w) for w in network.widths)
        self._act = _ACTIVATIONS[_activation_name(network)]
        self._local = threading.local()  # work buffers per thread: a shared generator is safe
        self._snapshot()

    def _snapshot(self) -> None:
        net = self._network
        linears = [net.obs_embed[0], net.film, net.z_in, *net.layers, net.out]
        self._tracked = [t for lin in linears for t in (lin.weight, lin.bias)]
        self._versions = [t._version for t in self._tracked]
        with torch.no_grad():
            # y = x @ W.T + b: the transposed weight, contiguous, as the right operand
            pairs = [
                (
                    np.ascontiguousarray(lin.weight.detach().cpu().numpy().T),
                    lin.bias.detach().cpu().numpy().copy(),
                )
                for lin in linears
            ]
        (self._w_embed, self._b_embed), (self._w_film, self._b_film), *rest = pairs
        self._w_in, self._b_in = rest[0]
        self._w_layers = rest[1:-1]
        self._w_out, self._b_out = rest[-1]

    @property
    def stale(self) -> bool:
        """Whether the torch weights changed in place since the snapshot."""
        return any(t._version != v for t, v in zip(self._tracked, self._versions, strict=True))

    def __call__(self, z: np.ndarray, cond: np.ndarray) -> np.ndarray:
        """Normalised chunks, flat: Shape=(B, H*nu), float32 (a work buffer: copy it out).

        Args:
            z: latents Shape=(B, H*nu), float32, C-contiguous.
            cond: condition rows Shape=(1 or B, C), float32 (one row is broadcast).
        """
        if self.stale:
            self._snapshot()
        batch, rows = z.shape[0], cond.shape[0]
        if rows not in (1, batch):
            raise ValueError(f"NumpyMLP: cond has {rows} rows for {batch} latents; 1 or {batch}.")
        buffers: dict[tuple[int, int], _Buffers] | None = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = self._local.buffers = {}
        buf = buffers.get((batch, rows))
        if buf is None:
            if len(buffers) >= _KEEP_BUFFERS:
                buffers.clear()
            buf = _Buffers(
                batch,
                rows,
                self._w_embed.shape[1],
                self._w_film.shape[1],
                self._widths,
                self._w_out.shape[1],
            )
            buffers[(batch, rows)] = buf
        total = sum(self._widths)
        silu = self._act is _silu
        with blas_threads(1), np.errstate(over="ignore"):
            e = buf.embed
            np.matmul(cond, self._w_embed, out=e)
            if silu:  # as the hidden layers below: one compiled pass, NumPy's exp, a divide
                _bias_and_negate(e, self._b_embed, buf.embed_tmp)
                np.exp(buf.embed_tmp, out=buf.embed_tmp)
                _divide_by_one_plus(e, buf.embed_tmp)
            else:
                e += self._b_embed
                self._act(e, buf.embed_tmp)
            film = buf.film
            np.matmul(e, self._w_film, out=film)
            _film_bias(film, self._b_film, total)  # + bias, then 1 + scale as torch's forward
            h = buf.hidden[0]
            np.matmul(z, self._w_in, out=h)
            bias = self._b_in
            start = 0
            for i, width in enumerate(self._widths):
                if i:
                    w, bias = self._w_layers[i - 1]
                    h = buf.hidden[i]
                    np.matmul(buf.hidden[i - 1], w, out=h)
                tmp = buf.tmp[i]
                # bias, FiLM and (SiLU) the negation in one pass; NumPy's SIMD exp between
                # (Numba's would be libm's, per element): 26 -> 14 us a 127 x 128 layer
                _bias_and_film(h, bias, film, start, total, tmp)
                if silu:
                    np.exp(tmp, out=tmp)  # overflows to inf for x < -88: x / inf = -0
                    _divide_by_one_plus(h, tmp)
                else:
                    self._act(h, tmp)
                start += width
            np.matmul(h, self._w_out, out=buf.out)
            buf.out += self._b_out
        return buf.out


def _activation_name(network: MLPGenerator) -> str:
    for name, cls in (("silu", torch.nn.SiLU), ("mish", torch.nn.Mish), ("relu", torch.nn.ReLU)):
        if isinstance(network.act, cls):
            return name
    raise TypeError(f"NumpyMLP does not know the activation {network.act!r}; use the torch path.")
