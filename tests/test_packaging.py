"""The import packages are this repository's, and every import runs down the layer table.

The layer test reads every module with ``ast`` (imports inside functions
included) and checks each import of a project module against ``LAYERS``; a
function-level import is allowed only where the imported module (or package)
is heavy (torch, pinocchio, mujoco, casadi, ray, matplotlib), and the module
graph, function-level imports included, has no cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("imle_mpc", "dynamics", "cost", "planners")

LAYERS: dict[str, set[str]] = {
    "core": set(),
    "dynamics": {"core"},
    "cost": {"core"},
    "planners": {"core", "cost", "dynamics"},
    "loop": {"core"},
    "learn": {"core", "loop"},
    "tasks": {"core", "dynamics", "cost", "planners", "loop", "learn"},
    "eval": {"core", "dynamics", "cost", "planners", "loop", "learn", "tasks"},
    "bridge": {"core", "dynamics", "cost", "planners", "loop", "learn", "tasks", "eval"},
    "view": {"core", "dynamics", "cost", "planners", "loop", "learn", "tasks", "eval"},
    "cli": {
        "core",
        "dynamics",
        "cost",
        "planners",
        "loop",
        "learn",
        "tasks",
        "eval",
        "bridge",
        "view",
    },
}
"""Layer -> the layers it may import (besides itself). The README draws the same table."""

HEAVY = {
    "torch", "pinocchio", "mujoco", "casadi", "ray", "matplotlib", "example_robot_data",
    "stable_baselines3", "zmq", "viser",
}  # fmt: skip
"""Third-party packages slow or optional enough to import only inside the function needing them."""


def layer_of(module: str) -> str:
    """The layer of a project module: ``imle_mpc.X...`` -> X, the others by package."""
    parts = module.split(".")
    if parts[0] != "imle_mpc":
        return parts[0]
    if len(parts) == 1:
        return "core"  # the top package re-exports the core only
    return "cli" if parts[1] == "cli" else parts[1]


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    in_function: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


def _known_modules() -> set[str]:
    return {module_name(p) for p in project_files()}


def imports_of(path: Path, known: set[str]) -> Iterator[Import]:
    """Every import in ``path``: the project modules it names, and heavy third-party ones."""
    tree = ast.parse(path.read_text(), str(path))
    me = module_name(path)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    inside = {id(n) for f in functions for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import sub` imports the submodule where there is one
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                for a in node.names
            ]
        else:
            continue
        for name in names:
            yield Import(me, name, node.lineno, id(node) in inside)


def _is_project(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _heavy_modules(known: set[str]) -> set[str]:
    """Project modules that import a heavy package at module level (directly or through others)."""
    direct: dict[str, set[str]] = {}
    for path in project_files():
        for imp in imports_of(path, known):
            if not imp.in_function:
                direct.setdefault(imp.importer, set()).add(imp.imported)
    heavy = {m for m, deps in direct.items() if any(d.split(".")[0] in HEAVY for d in deps)}
    changed = True
    while changed:
        changed = False
        for m, deps in direct.items():
            if m not in heavy and deps & heavy:
                heavy.add(m)
                changed = True
    return heavy


def layer_violations(files: list[Path]) -> list[str]:
    """Upward imports, and function-level imports of light modules, in ``files``."""
    known = _known_modules() | {module_name(p) for p in files}
    heavy = _heavy_modules(known)
    problems = []
    for path in files:
        for imp in imports_of(path, known):
            where = f"{path.relative_to(REPO)}:{imp.line}"
            if _is_project(imp.imported):
                src, dst = layer_of(imp.importer), layer_of(imp.imported)
                if dst != src and dst not in LAYERS[src]:
                    problems.append(f"{where}: {src} imports {dst} ({imp.imported})")
            if imp.in_function and imp.importer != "imle_mpc.cli":
                light = _is_project(imp.imported) and imp.imported not in heavy
                if light:
                    problems.append(
                        f"{where}: {imp.imported} imported inside a function (it is light: "
                        "import it at module level)"
                    )
    return problems


def import_cycles() -> list[list[str]]:
    """Cycles in the graph of project modules, function-level imports included."""
    known = _known_modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    for path in project_files():
        for imp in imports_of(path, known):
            if imp.imported in known and imp.imported != imp.importer:
                graph[imp.importer].add(imp.imported)
    cycles, state = [], dict.fromkeys(graph, 0)  # 0 new, 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state[n] == 1:
                cycles.append([*stack[stack.index(n) :], n])
            elif state[n] == 0:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if state[m] == 0:
            visit(m)
    return cycles


def test_every_import_runs_down_the_layer_table() -> None:
    problems = layer_violations(project_files())
    assert not problems, "\n".join(problems)


def test_no_import_cycles() -> None:
    cycles = import_cycles()
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_layer_test_catches_a_planted_upward_import(tmp_path: Path) -> None:
    # A core module that reaches up into the tasks inside a function, and one into cost.
    planted = REPO / "imle_mpc" / "core" / "_planted_for_test.py"
    planted.write_text(
        "from cost import CostSum\n\n\ndef f():\n    from imle_mpc.tasks import make_task\n"
        "    return make_task, CostSum\n"
    )
    try:
        problems = layer_violations([planted])
    finally:
        planted.unlink()
    assert any("core imports cost" in p for p in problems), problems
    assert any("core imports tasks" in p for p in problems), problems
    assert any("inside a function" in p for p in problems), problems


def test_every_module_has_a_layer() -> None:
    layers = {layer_of(m) for m in _known_modules()}
    assert layers <= set(LAYERS), layers - set(LAYERS)


@pytest.mark.parametrize("name", PACKAGES)
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


def test_core_imports_no_implementation_package() -> None:
    loaded = _modules_after_import("import imle_mpc, imle_mpc.core.checks, imle_mpc.loop.runner")
    assert not {"dynamics", "cost", "planners"} & loaded


def test_cost_stays_light() -> None:
    loaded = _modules_after_import("import cost")
    heavy = HEAVY & loaded
    assert not heavy, f"`import cost` pulled in {heavy}"


def test_the_cli_starts_without_torch() -> None:
    loaded = _modules_after_import("import imle_mpc.cli")
    assert not {"torch", "pinocchio", "casadi", "ray", "stable_baselines3", "zmq", "viser"} & loaded
