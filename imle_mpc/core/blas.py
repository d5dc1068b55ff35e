"""NumPy's BLAS threads, held at a count for the length of a block.

``ThreadPolicy`` (``imle_mpc.core.threads``) covers torch and Numba; NumPy brings a
third thread pool, its OpenBLAS, which runs a matrix product above a small size on
every core and spins those threads between calls. On the 2-core development machine
with two other CPU-bound processes beside it, one (33 x 128) @ (128 x 768) float32
product (the generator's FiLM layer in the lookahead) took a median 32 ms on
OpenBLAS's two threads and 78 us on one. Code that runs NumPy products inside a
planning step (the generator's NumPy path, ``imle_mpc.learn.imle.fast_mlp``) holds
them to the calling thread with ``blas_threads(1)``.

The handle is NumPy's own OpenBLAS (the copy its wheel bundles, or the one the
process mapped), found once and driven through ``openblas_set_num_threads_local``
(OpenBLAS >= 0.3.27). Despite its name that setting is process-wide in the pthreads
builds NumPy ships (OpenBLAS 0.3.32 calls the global setter), so two planner threads
each holding their own scope raced: one thread's exit put the machine's count back
while the other was still inside, mid-product. A fresh-clone CI run saw it once as
a shared generator's result differing from its single-threaded one. So the scopes
are counted process-wide here: the count in force is the smallest any open scope
asks for, set when that changes, and the count from before the first scope is put
back when the last one closes. Where NumPy uses another BLAS the scope does nothing
and ``blas_threads_controllable()`` says so.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import threading
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

__all__ = ["BlasThreads", "blas_thread_count", "blas_threads", "blas_threads_controllable"]

_SETTER = "openblas_set_num_threads_local"
# the getter's name carries the build's symbol prefix and suffix
_GETTERS = (
    "scipy_openblas_get_num_threads64_",
    "openblas_get_num_threads64_",
    "openblas_get_num_threads",
)


@functools.cache
def _functions() -> tuple[Any, Any]:
    """NumPy's OpenBLAS ``(set_num_threads_local, get_num_threads)``; (None, None) if absent."""
    for path in _openblas_candidates():
        try:
            lib = ctypes.CDLL(path)  # already loaded by NumPy: the same handle
        except OSError:
            continue
        setter = getattr(lib, _SETTER, None)
        if setter is None:
            continue
        setter.restype = ctypes.c_int
        setter.argtypes = [ctypes.c_int]
        getter = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        if getter is not None:
            getter.restype = ctypes.c_int
        return setter, getter
    return None, None


def _setter() -> Any:
    return _functions()[0]


def blas_thread_count() -> int | None:
    """The threads NumPy's BLAS would use now on this thread; None where unknown."""
    getter = _functions()[1]
    return None if getter is None else int(getter())


def _openblas_candidates() -> list[str]:
    here = Path(np.__file__).resolve().parent
    # manylinux wheels bundle it in numpy.libs/, macOS wheels in numpy/.dylibs/
    paths = [
        *glob.glob(str(here.parent / "numpy.libs" / "*openblas*")),
        *glob.glob(str(here / ".dylibs" / "*openblas*")),
    ]
    try:  # any other build: the OpenBLAS this process has mapped (Linux)
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        maps = ""
    for line in maps.splitlines():
        name = line.rsplit(" ", 1)[-1]
        if "openblas" in os.path.basename(name) and name not in paths:
            paths.append(name)
    return paths


def blas_threads_controllable() -> bool:
    """Whether ``blas_threads`` can set NumPy's BLAS threads in this process."""
    return _setter() is not None


class _OpenScopes:
    """The open ``BlasThreads`` scopes of the process, and the count from before them.

    Process-wide because the BLAS setting it drives is (see the module docstring).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asked: Counter[int] = Counter()  # thread counts the open scopes ask for
        self._before = 0  # the count before the first open scope
        self._in_force = 0

    def open(self, setter: Any, n: int) -> None:
        with self._lock:
            if not self._asked:
                self._before = int(setter(n))
                self._in_force = n
            elif n < self._in_force:  # fewer threads never breaks the other scopes
                setter(n)
                self._in_force = n
            self._asked[n] += 1

    def close(self, setter: Any, n: int) -> None:
        with self._lock:
            self._asked[n] -= 1
            if self._asked[n] == 0:
                del self._asked[n]
            wanted = min(self._asked) if self._asked else self._before
            if wanted != self._in_force:
                setter(wanted)
                self._in_force = wanted


_OPEN_SCOPES = _OpenScopes()


class BlasThreads:
    """A context manager: NumPy's BLAS on at most ``n`` threads inside.

    Scopes nest and may be open on several threads at once: the count in force is
    the smallest any open scope asks for, and the count from before the first one
    comes back when the last one closes (see the module docstring).

    Args:
        n: threads (>= 1).
    """

    __slots__ = ("_n", "_open")

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"blas_threads needs an int >= 1, got {n!r}.")
        self._n = n
        self._open = False

    def __enter__(self) -> BlasThreads:
        setter = _setter()
        if setter is not None:
            _OPEN_SCOPES.open(setter, self._n)
            self._open = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._open:
            _OPEN_SCOPES.close(_setter(), self._n)
            self._open = False


def blas_threads(n: int) -> BlasThreads:
    """``with blas_threads(1): ...`` runs NumPy's matrix products on the calling thread."""
    return BlasThreads(n)
