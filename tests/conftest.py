"""Shared fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def run_without_jit(test_path: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run a test file again in a subprocess with NUMBA_DISABLE_JIT=1 (kernels as plain Python)."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", IMLE_MPC_NO_JIT_RERUN="1")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_path, *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_python_snippet(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter from the repository root (for what could crash
    the interpreter, e.g. a segfault in a compiled kernel, so that pytest survives it)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )


def in_no_jit_rerun() -> bool:
    return os.environ.get("IMLE_MPC_NO_JIT_RERUN") == "1"
