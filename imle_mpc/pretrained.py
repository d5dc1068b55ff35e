"""The generators shipped with the package, one per demonstration task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"

SHIPPED_GENERATORS = (
    "nav_one_obstacle",
    "nav_two_obstacles",
    "nav_trap",
    "arm_reach_around",
    "panda_reach_around",
)


def generator_path(task_name: str) -> Path:
    """Where the pretrained generator of ``task_name`` lives."""
    return DATA_DIR / f"{task_name}_generator.safetensors"


def load_task_generator(task_name: str, path: str | Path | None = None) -> Any:
    """Load the generator for ``task_name`` (the shipped one unless ``path`` is given).

    Raises:
        FileNotFoundError: no generator for the task, with the command that trains one.
    """
    from imle_mpc.imle import load_generator

    file = Path(path) if path is not None else generator_path(task_name)
    if not file.is_file():
        raise FileNotFoundError(
            f"no generator for task {task_name!r} at {file}. Train one with "
            f"`imle-mpc train --task {task_name}` (shipped: {list(SHIPPED_GENERATORS)})."
        )
    return load_generator(file)
