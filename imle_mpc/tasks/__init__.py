"""Tasks: what a task is (``base``), one module per task family, and the one registry.

``make_task(name)`` builds a registered task; ``load_task(spec)`` also takes
your own (``module:function`` or ``file.py:function``).
"""

from imle_mpc.tasks.base import (
    DATA_DIR,
    Demonstrations,
    PlannerHints,
    Refinement,
    Routes,
    Task,
    wrap_angle,
)
from imle_mpc.tasks.registry import TASKS, load_task, make_task

__all__ = [
    "DATA_DIR",
    "TASKS",
    "Demonstrations",
    "PlannerHints",
    "Refinement",
    "Routes",
    "Task",
    "load_task",
    "make_task",
    "wrap_angle",
]
