"""How many threads a planning step may use, so that plan time stays bounded under load.

Torch and Numba each bring an OpenMP runtime. With several threads each, a
planning step alternates small parallel regions of both, and between regions
their idle workers spin. On a machine where anything else runs (a simulator, a
camera driver, a second controller) the spinning workers and the descheduled
ones hold each other up at every barrier: measured on the 2-core development
machine with two CPU-bound processes beside it, guarded IMLE-MPC on ``nav_trap``
went from about 11 ms to 750 ms at p99 with both runtimes at 2 threads, and MPPI
(K=256) from 0.7 to 240 ms (``bench/loaded_latency.py``). The batches of one
control step are small (tens to a few thousand samples), so one thread each costs
little when the machine is idle and keeps a loaded step within a few times its
idle time. Setting ``OMP_WAIT_POLICY=PASSIVE`` instead stops the spinning but
makes every region wake sleeping threads: the idle median of IMLE-MPC with the
lookahead went from 1.3 to 4.0 ms.

So every planner and the safety guard run their step under a ``ThreadPolicy``
(default: one Numba thread, one torch thread), set on entry and restored on exit:
``numba.set_num_threads`` applies to the calling thread only, torch's intra-op
thread count is the process's and is put back after the step. Give a planner
``ThreadPolicy(numba=None, torch=None)`` to leave both alone (a machine whose cores
are reserved for the controller), or more threads for batches of 10^4 and up.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, TypeVar

import numba

__all__ = ["PLANNING_THREADS", "ThreadPolicy", "ThreadScope", "under_thread_policy"]


@dataclass(frozen=True)
class ThreadPolicy:
    """Threads for one planning step.

    Attributes:
        numba: threads for the Numba parallel kernels the step launches (>= 1, at most
            ``numba.config.NUMBA_NUM_THREADS``); ``None`` leaves the caller's setting.
        torch: torch's intra-op threads during the step (>= 1); ``None`` leaves it.
            Only applied when torch is already imported (a planner without a
            generator never imports it).
    """

    numba: int | None = 1
    torch: int | None = 1

    def __post_init__(self) -> None:
        for name in ("numba", "torch"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(
                    f"ThreadPolicy.{name} must be an int >= 1 or None (leave it), got {value!r}."
                )

    def scope(self) -> ThreadScope:
        """A context manager: this policy inside, the previous settings restored after."""
        return ThreadScope(self)


PLANNING_THREADS = ThreadPolicy()
"""The default: one Numba thread and one torch thread per planning step (measured above)."""


class ThreadScope:
    """Applies a ``ThreadPolicy`` on ``__enter__`` and restores the settings on ``__exit__``."""

    __slots__ = ("_numba_before", "_policy", "_torch", "_torch_before")

    def __init__(self, policy: ThreadPolicy) -> None:
        self._policy = policy
        self._numba_before: int | None = None
        self._torch_before: int | None = None
        self._torch: Any = None

    def __enter__(self) -> ThreadScope:
        policy = self._policy
        if policy.numba is not None:
            before = numba.get_num_threads()
            wanted = min(policy.numba, numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
            if before != wanted:
                numba.set_num_threads(wanted)
                self._numba_before = before
        torch = sys.modules.get("torch")  # never import torch just to set its threads
        if policy.torch is not None and torch is not None:
            before = torch.get_num_threads()
            if before != policy.torch:
                torch.set_num_threads(policy.torch)
                self._torch, self._torch_before = torch, before
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._numba_before is not None:
            numba.set_num_threads(self._numba_before)
            self._numba_before = None
        if self._torch_before is not None:
            self._torch.set_num_threads(self._torch_before)
            self._torch_before = self._torch = None


class _HasThreadPolicy(Protocol):
    thread_policy: ThreadPolicy


Method = TypeVar("Method", bound=Callable[..., Any])


def under_thread_policy(method: Method) -> Method:
    """Run a planner method under its object's ``thread_policy`` (see the module docstring)."""

    @functools.wraps(method)
    def wrapper(self: _HasThreadPolicy, *args: Any, **kwargs: Any) -> Any:
        with ThreadScope(self.thread_policy):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
