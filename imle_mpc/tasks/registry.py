"""The one task registry: a name -> a builder, and user tasks named by ``module:function``.

Adding a task is one module (its builder, with its routes, expert and shipped
files on the ``Task``) and one line here.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from imle_mpc.core.errors import InputError
from imle_mpc.tasks.arm import arm_reach_around
from imle_mpc.tasks.base import Task
from imle_mpc.tasks.classic import cartpole_swingup, pendulum_swingup, point_mass_obstacle
from imle_mpc.tasks.navigation import nav_one_obstacle, nav_trap, nav_two_obstacles
from imle_mpc.tasks.panda import panda_reach_around
from imle_mpc.tasks.push import push_block

TASKS: dict[str, Callable[[], Task]] = {
    "pendulum": pendulum_swingup,
    "cartpole": cartpole_swingup,
    "point_mass": point_mass_obstacle,
    "nav_one_obstacle": nav_one_obstacle,
    "nav_two_obstacles": nav_two_obstacles,
    "nav_trap": nav_trap,
    "arm_reach_around": arm_reach_around,
    "panda_reach_around": panda_reach_around,
    "push_block": push_block,
}


GYM_PREFIX = "gym:"
"""``load_task("gym:InvertedPendulum-v5")``: a Gymnasium MuJoCo environment as a task."""


def make_task(name: str) -> Task:
    """Build a registered task by name; the error lists the known names."""
    try:
        return TASKS[name]()
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}.") from None


def load_task(spec: str) -> Task:
    """A registered task's name, a Gymnasium MuJoCo environment as ``gym:ENV_ID``
    (``imle_mpc.tasks.gym_env.gym_task``), or your own: ``package.module:function`` or
    ``file.py:function``.

    The function takes no arguments and returns a ``Task``.

    Raises:
        InputError: an unknown name, a module or file that cannot be imported, no such
            function, or one that does not return a ``Task``.
    """
    if ":" not in spec:
        if spec not in TASKS:
            raise InputError(
                f"unknown task {spec!r}; choose one of {sorted(TASKS)}, a Gymnasium MuJoCo "
                "environment as gym:ENV_ID, or name your own as module:function or "
                "path/to/file.py:function."
            )
        return TASKS[spec]()
    if spec.startswith(GYM_PREFIX):
        # Imported here: gym_env loads mujoco, which ``import imle_mpc.tasks`` does not.
        from imle_mpc.tasks.gym_env import gym_task

        return gym_task(spec[len(GYM_PREFIX) :])
    where, _, attr = spec.rpartition(":")
    module = _import_file(Path(where)) if where.endswith(".py") else _import_module(where)
    builder = getattr(module, attr, None)
    if not callable(builder):
        raise InputError(f"{where} has no function {attr!r} (from --task {spec}).")
    task = builder()
    if not isinstance(task, Task):
        raise InputError(f"{spec} returned {type(task).__name__}, not an imle_mpc.tasks.Task.")
    return task


def _import_module(name: str) -> object:
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise InputError(f"cannot import module {name!r} ({err}); is it on PYTHONPATH?") from None


def _import_file(path: Path) -> object:
    if not path.is_file():
        raise InputError(f"no task file {str(path)!r}.")
    name = f"imle_mpc_user_task_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot load {str(path)!r} as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    return module
