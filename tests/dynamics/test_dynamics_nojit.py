"""The model kernels as plain Python: ``NUMBA_DISABLE_JIT=1`` must give the same answers.

Numba compiles the kernels, so a bug that only shows in the interpreter's
semantics (integer division, out-of-bounds writes, aliasing of ``x`` and
``out``) would otherwise go unnoticed. The reference tests are re-run in a
subprocess, because the JIT switch is read once at import; the rerun sets an
environment variable so it does not spawn itself again.
"""

from __future__ import annotations

import pytest

from tests.conftest import in_no_jit_rerun, run_without_jit


@pytest.mark.skipif(in_no_jit_rerun(), reason="already the no-JIT run")
def test_kernels_match_numpy_without_jit() -> None:
    result = run_without_jit("tests/dynamics", "-k", "reference")
    report = result.stdout[-4000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"no-JIT run failed (exit {result.returncode}):\n{report}"
    # Guard against a vacuous pass: the reference tests must have run, all of them.
    assert " passed" in result.stdout and "failed" not in result.stdout, report
    assert "skipped" not in result.stdout, report
