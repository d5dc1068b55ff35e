"""The machine record every benchmark writes (a module the bench scripts share).

``other_cpu_load`` tells whether other processes shared the cores while a
configuration ran (timings are then inflated; simulated success is not).
Linux only where it reads ``/proc``; elsewhere it returns None.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

CpuMark = tuple[float, float, float]
"""(busy s of the whole machine excluding steal, steal s, this process's CPU s)."""


def cpu_seconds() -> CpuMark | None:
    """A mark to pass to ``other_cpu_load`` later; None where ``/proc/stat`` is missing."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(v) for v in fields]
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq = ticks[:7]
    steal = ticks[7] if len(ticks) > 7 else 0
    own = time.process_time()
    return ((user + nice + system + irq + softirq) / hz, steal / hz, own)


def other_cpu_load(start: CpuMark | None, wall: float) -> float | None:
    """Cores used by other processes (and stolen by the hypervisor) since ``start``."""
    end = cpu_seconds()
    if start is None or end is None or wall <= 0:
        return None
    busy, steal, own = (b - a for a, b in zip(start, end, strict=True))
    return round(max(0.0, busy - own + steal) / wall, 3)


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``), else what ``platform`` knows.

    Virtual machines often report a bare family name ("AMD EPYC") for CPUs whose
    speed differs by half or more, so the family, model and stepping numbers are
    appended where ``/proc/cpuinfo`` has them: figures from two sessions compare
    only on the same line.
    """
    try:
        fields: dict[str, str] = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break  # the first processor's block is enough
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        fields = {}
    name = fields.get("model name")
    if name is None:
        return platform.processor() or platform.machine()
    numbers = [(k, fields[k]) for k in ("cpu family", "model", "stepping") if k in fields]
    if not numbers:
        return name
    return f"{name} ({', '.join(f'{k} {v}' for k, v in numbers)})"


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads, then restore the previous count.

    Restoring matters: with torch left at 1 thread, the OpenMP runtime shared
    with Numba's ``omp`` threading layer makes every parallel Numba kernel of
    the planners ~50x slower on this 2-core machine (measured: 48 ms instead of
    0.8 ms per IMLE-MPC plan).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
