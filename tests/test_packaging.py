"""The four import packages are this repository's, and the dependency rule holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["imle_mpc", "dynamics", "cost", "planners"])
def test_package_is_this_repos(name: str) -> None:
    # Other PyPI projects are called `dynamics` and `planners`: make sure we got ours.
    module = __import__(name)
    assert Path(module.__file__).resolve().parent == REPO / name


def _modules_after_import(stmt: str) -> set[str]:
    code = f"import sys; {stmt}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    return set(out.stdout.split())


def test_core_does_not_import_implementations() -> None:
    loaded = _modules_after_import(
        "import imle_mpc, imle_mpc.runner, imle_mpc.tasks, imle_mpc.cli, imle_mpc.episodes"
    )
    assert not {"dynamics", "cost", "planners"} & loaded


def test_cost_stays_light() -> None:
    loaded = _modules_after_import("import cost")
    heavy = {"torch", "pinocchio", "mujoco", "casadi", "ray"} & loaded
    assert not heavy, f"`import cost` pulled in {heavy}"
