"""NumPy's PCG64 stream and its standard normals in Numba: ``Generator.standard_normal``'s numbers.

``generator_normals(rng, out)`` fills ``out`` (float64 or float32) with exactly the numbers
``rng.standard_normal(out=out, dtype=out.dtype)`` would give and leaves ``rng`` in the
state that call would leave it in, when ``rng`` runs on NumPy's ``PCG64`` (what
``np.random.default_rng`` makes); any other bit generator goes through NumPy.

Why. NumPy draws each normal through a function pointer into its bit generator, and
Numba's ``Generator`` support does the same; here the generator's 128-bit state is read
once (the documented ``bit_generator.state``), the stream is advanced in compiled code
and the state written back; the 64 x 64 -> 128-bit product is one widening multiply
(an LLVM intrinsic). Measured on the 2-core machine, idle, one thread, medians: the
Panda's 127 x 112 float32 latents 121-146 (NumPy) -> 38 us, its 128 x 16 x 7 float64
perturbations 134 (NumPy), 53 (Numba's ``Generator``) -> 46 us.

What it reproduces (NumPy's ``pcg64.h`` and ``distributions.c``):

* the step ``s = s * M + inc (mod 2**128)`` then the XSL-RR output of the new state;
* 32-bit draws use both halves of a 64-bit output, low half first, the high half
  kept for the next 32-bit draw (``has_uint32`` / ``uinteger`` in the state);
  64-bit draws do not touch that buffer;
* the 256-layer ziggurats of ``random_standard_normal`` (64-bit draws) and
  ``random_standard_normal_f`` (32-bit draws), with NumPy's tables (as Numba ships
  them, ``numba.np.random._constants``); the rare tail and wedge branches included.

Tested equal to NumPy to the bit, the state after the call included
(``tests/core/test_pcg64.py``).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic
from numba.np.random import _constants as _numpy_tables

__all__ = ["generator_normals"]

_U = np.uint64
_MASK32 = _U(0xFFFFFFFF)
_MASK64 = (1 << 64) - 1
_MUL_HI = _U(2549297995355413924)  # PCG's default 128-bit multiplier, high and low words
_MUL_LO = _U(4865540595714422341)
_S1, _S8, _S9, _S11, _S32, _S58, _S63, _S64 = (_U(s) for s in (1, 8, 9, 11, 32, 58, 63, 64))
_LOW8 = _U(0xFF)
_LOW23 = _U(0x7FFFFF)
_LOW52 = _U(0x000FFFFFFFFFFFFF)
_INV_2_53 = 1.0 / 9007199254740992.0
_INV_2_24 = np.float32(1.0 / 16777216.0)

_KI64 = np.asarray(_numpy_tables.ki_double, dtype=np.uint64)
_WI64 = np.asarray(_numpy_tables.wi_double, dtype=np.float64)
_FI64 = np.asarray(_numpy_tables.fi_double, dtype=np.float64)
_KI32 = np.asarray(_numpy_tables.ki_float, dtype=np.uint32)
_WI32 = np.asarray(_numpy_tables.wi_float, dtype=np.float32)
_FI32 = np.asarray(_numpy_tables.fi_float, dtype=np.float32)
_R64 = float(_numpy_tables.ziggurat_nor_r)
_INV_R64 = float(_numpy_tables.ziggurat_nor_inv_r)
_R32 = np.float32(_numpy_tables.ziggurat_nor_r_f)
_INV_R32 = np.float32(_numpy_tables.ziggurat_nor_inv_r_f)
_NO_JIT = bool(getattr(nb.config, "DISABLE_JIT", False))  # the intrinsic needs the compiler


@intrinsic
def _mul_hi(typingctx, a, b):  # pragma: no cover - compiled
    """High 64 bits of the 128-bit product of two uint64: one widening multiply in LLVM IR."""
    if a != types.uint64 or b != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))

    return types.uint64(types.uint64, types.uint64), codegen


@nb.njit(inline="always")
def _next64(hi, lo, inc_hi, inc_lo):  # pragma: no cover - compiled
    """One PCG64 step: returns ``(hi, lo, output)`` of the new 128-bit state."""
    new_hi = _mul_hi(lo, _MUL_LO) + lo * _MUL_HI + hi * _MUL_LO  # type: ignore[call-arg]
    new_lo = lo * _MUL_LO
    lo = new_lo + inc_lo
    hi = new_hi + inc_hi + _U(lo < new_lo)  # the carry out of the low word
    x = hi ^ lo
    rot = hi >> _S58
    return hi, lo, (x >> rot) | (x << ((_S64 - rot) & _S63))


@nb.njit(cache=True, error_model="numpy")
def _normals64(state, out):  # pragma: no cover - compiled
    """``random_standard_normal`` into ``out`` (flat float64); state = (hi, lo, inc_hi, inc_lo)."""
    hi, lo, inc_hi, inc_lo = state[0], state[1], state[2], state[3]
    for n in range(out.shape[0]):
        while True:
            hi, lo, r = _next64(hi, lo, inc_hi, inc_lo)
            idx = np.intp(r & _LOW8)
            r = r >> _S8
            rabs = (r >> _S1) & _LOW52
            x = np.float64(np.int64(rabs)) * _WI64[idx]  # rabs < 2**52: the convert is exact
            if r & _S1:
                x = -x
            if rabs < _KI64[idx]:
                break
            if idx == 0:  # the tail beyond r
                while True:
                    hi, lo, r = _next64(hi, lo, inc_hi, inc_lo)
                    u1 = np.float64(np.int64(r >> _S11)) * _INV_2_53
                    hi, lo, r = _next64(hi, lo, inc_hi, inc_lo)
                    u2 = np.float64(np.int64(r >> _S11)) * _INV_2_53
                    xx = -_INV_R64 * np.log1p(-u1)
                    yy = -np.log1p(-u2)
                    if yy + yy > xx * xx:
                        x = -(_R64 + xx) if (rabs >> _S8) & _S1 else _R64 + xx
                        break
                break
            hi, lo, r = _next64(hi, lo, inc_hi, inc_lo)
            u = np.float64(np.int64(r >> _S11)) * _INV_2_53
            if (_FI64[idx - 1] - _FI64[idx]) * u + _FI64[idx] < np.exp(-0.5 * x * x):
                break
        out[n] = x
    state[0], state[1] = hi, lo


@nb.njit(inline="always")
def _next32(hi, lo, inc_hi, inc_lo, has, kept):  # pragma: no cover - compiled
    """One 32-bit draw: returns ``(hi, lo, has, kept, value)``; halves of one 64-bit output."""
    if has:
        return hi, lo, False, kept, kept
    hi, lo, r = _next64(hi, lo, inc_hi, inc_lo)
    return hi, lo, True, r >> _S32, r & _MASK32


@nb.njit(cache=True, error_model="numpy")
def _normals32(state, buffer, out):  # pragma: no cover - compiled
    """``random_standard_normal_f`` into ``out`` (flat float32); buffer = (has_uint32, uinteger)."""
    hi, lo, inc_hi, inc_lo = state[0], state[1], state[2], state[3]
    has, kept = buffer[0] != 0, buffer[1]
    for n in range(out.shape[0]):
        while True:
            hi, lo, has, kept, r = _next32(hi, lo, inc_hi, inc_lo, has, kept)
            idx = np.intp(r & _LOW8)
            rabs = (r >> _S9) & _LOW23
            x = np.float32(np.float32(np.int64(rabs)) * _WI32[idx])
            if (r >> _S8) & _S1:
                x = -x
            if rabs < _KI32[idx]:
                break
            if idx == 0:  # the tail beyond r
                while True:
                    hi, lo, has, kept, r = _next32(hi, lo, inc_hi, inc_lo, has, kept)
                    u1 = np.float32(np.float32(np.int64(r >> _S8)) * _INV_2_24)
                    hi, lo, has, kept, r = _next32(hi, lo, inc_hi, inc_lo, has, kept)
                    u2 = np.float32(np.float32(np.int64(r >> _S8)) * _INV_2_24)
                    xx = np.float32(-_INV_R32 * np.float32(np.log1p(-u1)))
                    yy = np.float32(-np.float32(np.log1p(-u2)))
                    if np.float32(yy + yy) > np.float32(xx * xx):
                        tail = np.float32(_R32 + xx)
                        x = -tail if (rabs >> _S8) & _S1 else tail
                        break
                break
            hi, lo, has, kept, r = _next32(hi, lo, inc_hi, inc_lo, has, kept)
            u = np.float32(np.float32(np.int64(r >> _S8)) * _INV_2_24)
            wedge = np.float32((_FI32[idx - 1] - _FI32[idx]) * u + _FI32[idx])
            if wedge < np.exp(-0.5 * np.float64(x) * np.float64(x)):  # C's double exp
                break
        out[n] = x
    state[0], state[1] = hi, lo
    buffer[0], buffer[1] = np.uint64(has), kept


def generator_normals(rng: np.random.Generator, out: np.ndarray) -> np.ndarray:
    """``rng.standard_normal(out=out, dtype=out.dtype)``: the same numbers and the same state after.

    Args:
        rng: the caller's generator, advanced as ``standard_normal`` advances it (compiled
            when its bit generator is NumPy's ``PCG64``, through NumPy otherwise and
            under ``NUMBA_DISABLE_JIT=1``).
        out: C-contiguous float64 or float32 array; written in place.

    Returns:
        ``out``.

    Raises:
        ValueError: ``out`` of another dtype, or not C-contiguous (give a fresh array).
    """
    if out.dtype not in (np.float64, np.float32) or not out.flags.c_contiguous:
        raise ValueError(
            "generator_normals: out must be a C-contiguous float64 or float32 array, got "
            f"{out.dtype} (C-contiguous: {out.flags.c_contiguous}); pass np.empty(shape, dtype)."
        )
    bits = rng.bit_generator
    if type(bits) is not np.random.PCG64 or _NO_JIT:
        return rng.standard_normal(out=out, dtype=out.dtype)
    if not out.size:
        return out
    with bits.lock:  # NumPy's own methods hold it while they advance the state
        full = bits.state
        inner = full["state"]
        s, inc = inner["state"], inner["inc"]
        words = np.array([s >> 64, s & _MASK64, inc >> 64, inc & _MASK64], dtype=np.uint64)
        flat = out.reshape(-1)
        if out.dtype == np.float64:
            _normals64(words, flat)
        else:
            buffer = np.array([full["has_uint32"], full["uinteger"]], dtype=np.uint64)
            _normals32(words, buffer, flat)
            full["has_uint32"], full["uinteger"] = int(buffer[0]), int(buffer[1])
        inner["state"] = (int(words[0]) << 64) | int(words[1])
        bits.state = full
    return out
