"""Errors about the user's input (files, data, settings) rather than bugs in the library.

The CLI turns these into a one-line message and exit code 2; everything else
is a bug and keeps its traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Something the user supplied is missing, malformed or inconsistent.

    The message says what is wrong and how to fix it.
    """


class PlanningTimeoutError(TimeoutError):
    """Planning did not finish within its deadline (or the step was dropped).

    The safety guard catches it and executes the previous plan's next action.
    """
