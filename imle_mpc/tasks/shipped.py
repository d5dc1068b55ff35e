"""The demonstrations and generators shipped with the package, looked up by task name.

Each task says what ships for it (``Task.demos``); this module only finds the
task in the registry. ``python -m imle_mpc.tasks.shipped`` rewrites the shipped
datasets whose recipe is quick (the scripted experts); the Panda's optimiser
has its own command (``python -m imle_mpc.tasks.panda.task``).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Any

from imle_mpc.learn.demos import DemoDataset
from imle_mpc.tasks.registry import TASKS, make_task


@functools.cache
def shipped_generators() -> tuple[str, ...]:
    """Registered tasks that ship a generator, in registry order."""
    tasks = (make_task(name) for name in TASKS)
    return tuple(t.name for t in tasks if t.demos is not None and t.demos.generator_file)


def generate_demonstrations(
    task_name: str, num_demos: int | None = None, seed: int | None = None
) -> DemoDataset:
    """Demonstrations of a registered task from its recipe (``Task.generate_demonstrations``)."""
    return make_task(task_name).generate_demonstrations(num_demos, seed)


def load_default_dataset(task_name: str) -> DemoDataset:
    """The shipped demonstrations of ``task_name``."""
    return make_task(task_name).load_demonstrations()


def load_task_generator(task_name: str, path: str | Path | None = None) -> Any:
    """The shipped generator of ``task_name``, or the one at ``path`` (``Task.load_generator``)."""
    return make_task(task_name).load_generator(path)


def write_default_datasets(out_dir: str | Path | None = None) -> dict[str, Path]:
    """Regenerate the shipped datasets of the tasks with a quick recipe.

    Args:
        out_dir: target folder; default the package's data folder.

    Returns:
        Task name -> written file.
    """
    written = {}
    for name in TASKS:
        task = make_task(name)
        if task.demos is None or not task.demos.quick or task.demos.dataset_file is None:
            continue
        target = task.dataset_path if out_dir is None else Path(out_dir) / task.demos.dataset_file
        target.parent.mkdir(parents=True, exist_ok=True)
        written[name] = task.generate_demonstrations().save(target)
    return written


def main(argv: list[str] | None = None) -> None:
    """``python -m imle_mpc.tasks.shipped [--out DIR]``: rewrite the quick shipped datasets."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", type=Path, default=None, help="folder (default: package data)")
    args = parser.parse_args(argv)
    for name, path in write_default_datasets(args.out).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
