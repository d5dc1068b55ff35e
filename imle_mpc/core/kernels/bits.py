"""A float64's bit pattern as an int64 and back, inside compiled code.

For a non-negative float64 (``+0.0`` up to ``+inf``) the bit pattern read as an int64
grows with the value, so the largest of such numbers is the largest of their patterns.
A compiled loop that takes a float maximum does not vectorise: without fast-math, LLVM
keeps NaN's order-dependent result and runs the comparisons one at a time; an integer
maximum it packs (``cost.constraints``' box excess: 37 -> 15 us for the Panda's
256 x 16 x 14 predicted states, one thread). The caller handles NaN and negative
numbers itself: a negative float64 (``-0.0`` too) has the sign bit set, so it reads as a
negative int64, below the pattern of ``+0.0`` (0); a NaN reads above ``+inf``'s.

Under ``NUMBA_DISABLE_JIT=1`` the functions are plain NumPy conversions, the same numbers.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

__all__ = ["bits_as_float", "float_as_bits"]


@intrinsic
def _float_as_bits(typingctx: Any, x: Any) -> Any:  # pragma: no cover - compiled
    if x != types.float64:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _bits_as_float(typingctx: Any, b: Any) -> Any:  # pragma: no cover - compiled
    if b != types.int64:
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


def _float_as_bits_py(x: float) -> int:
    return int(np.float64(x).view(np.int64))


def _bits_as_float_py(b: int) -> float:
    return float(np.int64(b).view(np.float64))


float_as_bits: Any
"""``float_as_bits(x: float64) -> int64``: the same 64 bits, reinterpreted."""
bits_as_float: Any
"""``bits_as_float(b: int64) -> float64``: the same 64 bits, reinterpreted."""
if getattr(nb.config, "DISABLE_JIT", False):  # an intrinsic needs the compiler
    float_as_bits, bits_as_float = _float_as_bits_py, _bits_as_float_py
else:
    float_as_bits, bits_as_float = _float_as_bits, _bits_as_float
