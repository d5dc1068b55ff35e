"""NumPy's order of summation, inside compiled code, so a fused kernel gives its numbers.

``a.sum(axis=-1)`` over rows of a C-contiguous float64 array adds each row with
NumPy's pairwise summation (``pairwise_sum`` in its ``loops_utils``): a row of fewer
than 8 numbers one after another; up to 128 numbers in 8 running sums (the entries
``j, j + 8, j + 16, ...``) combined as ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 +
r7))``, then the remainder added one by one; the row's sum is added to +0.0. Longer
rows split recursively; the kernels here cover rows of up to ``NUMPY_PAIRWISE_BLOCK``
numbers and the callers go through NumPy for longer ones. Tested equal to NumPy to the bit
(``tests/core/test_sums.py``).
"""

from __future__ import annotations

import numba as nb

__all__ = ["NUMPY_PAIRWISE_BLOCK", "numpy_row_sum"]

NUMPY_PAIRWISE_BLOCK = 128
"""The longest row ``numpy_row_sum`` adds as NumPy does (NumPy's ``PW_BLOCKSIZE``)."""


@nb.njit(inline="always")
def numpy_row_sum(row, n):  # pragma: no cover - compiled
    """``row[:n].sum()`` in NumPy's order; ``row`` 1-D, ``n <= NUMPY_PAIRWISE_BLOCK``."""
    if n < 8:
        total = 0.0
        for i in range(n):
            total += row[i]
        return total
    r0, r1, r2, r3 = row[0], row[1], row[2], row[3]
    r4, r5, r6, r7 = row[4], row[5], row[6], row[7]
    whole = n - n % 8
    for i in range(8, whole, 8):
        r0 += row[i]
        r1 += row[i + 1]
        r2 += row[i + 2]
        r3 += row[i + 3]
        r4 += row[i + 4]
        r5 += row[i + 5]
        r6 += row[i + 6]
        r7 += row[i + 7]
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(whole, n):
        total += row[i]
    return 0.0 + total  # NumPy adds the row to the identity, +0.0: a -0.0 sum reads +0.0
