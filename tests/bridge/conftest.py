"""Real bridge processes for the tests: `imle-mpc bridge controller|robot` over loopback.

Each process writes its log to a file (a pipe nobody reads would fill and block it) and
its per-tick trace to a JSON-lines file; the tests read both while the processes run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TASK = "nav_one_obstacle"
PERIOD = 0.05
"""Seconds per tick in the tests: the task's model (dt 0.1 s) runs at twice real time."""
TIMEOUT = 0.3
"""The state timeout (controller) and the action timeout (robot), seconds."""
STARTUP = 120.0
"""Seconds a controller may take to start: compiling the planner (8-20 s on a loaded machine)."""


def free_port() -> int:
    """An ephemeral TCP port on loopback that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """A bridge process, its log and its trace."""

    popen: subprocess.Popen[str]
    log: Path
    trace: Path
    out: Path

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def trace_lines(self) -> list[dict[str, Any]]:
        if not self.trace.exists():
            return []
        lines = self.trace.read_text().splitlines()
        # The last line may be half written.
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return out

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match[str]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            match = re.search(pattern, self.log_text())
            if match:
                return match
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the log within {timeout} s:\n{self.log_text()}")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to say goodbye (a crash, a cut cable)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> dict[str, Any]:
        """SIGTERM, then its --json summary."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        self.popen.wait(timeout=30)
        return dict(json.loads(self.out.read_text().strip().splitlines()[-1]))


class Bridge:
    """Starts bridge processes in ``tmp``; kills what is left at the end of the test."""

    TASK = TASK
    PERIOD = PERIOD
    TIMEOUT = TIMEOUT
    free_port = staticmethod(free_port)

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[Proc] = []
        self.env = dict(
            os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYTHONPATH=str(REPO)
        )

    def _start(self, name: str, args: list[str]) -> Proc:
        n = len(self.procs)
        log, trace, out = (self.tmp / f"{name}{n}.{ext}" for ext in ("log", "jsonl", "out"))
        command = [sys.executable, "-m", "imle_mpc.cli", "bridge", *args]
        command += ["--trace", str(trace), "--json"]
        with open(log, "w") as err, open(out, "w") as stdout:
            popen = subprocess.Popen(
                command, cwd=REPO, env=self.env, stdout=stdout, stderr=err, text=True
            )
        proc = Proc(popen, log, trace, out)
        self.procs.append(proc)
        return proc

    def controller(self, port: int, *extra: str, task: str = TASK) -> Proc:
        """A controller on ``port``, ready (compiled and bound) when this returns."""
        proc = self._start(
            "controller",
            ["controller", task, "--port", str(port), "--period", str(PERIOD),
             "--state-timeout", str(TIMEOUT), *extra],
        )  # fmt: skip
        proc.wait_for_log(r"controller ready on", STARTUP)
        return proc

    def robot(self, port: int, *extra: str, task: str = TASK, wait: bool = True) -> Proc:
        """A simulated robot connecting to ``port``."""
        proc = self._start(
            "robot",
            ["robot", task, "--port", str(port), "--period", str(PERIOD),
             "--action-timeout", str(TIMEOUT), *extra],
        )  # fmt: skip
        if wait:
            proc.wait_for_log(r"robot 'robot' ready", 60)
        return proc

    @staticmethod
    def wait_until(predicate: Any, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"not within {timeout} s: {what}")

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Bridge]:
    b = Bridge(tmp_path)
    try:
        yield b
    finally:
        b.close()
