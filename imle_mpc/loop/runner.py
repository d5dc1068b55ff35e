"""The closed loop: read state -> plan -> send the first action, at a fixed period."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imle_mpc.core.io import write_atomic
from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.protocols import Planner
from imle_mpc.core.validation import FloatArray, require_int_at_least, require_positive
from imle_mpc.loop.plant import EpisodicRobot, Robot

Progress = Callable[[int, FloatArray], None]
StepObserver = Callable[[int, FloatArray, PlanResult], None]
"""``observer(step, state, result)``: called after each plan with the measured state
Shape=(nx,) the plan was made from and the ``PlanResult`` whose first action was sent
(an episode recording, the browser view)."""
SuccessFn = Callable[[FloatArray], bool]
"""``success(states Shape=(T+1, nx)) -> bool``: judged on the whole measured trajectory."""


@dataclass(frozen=True)
class LoopConfig:
    """How the loop runs.

    Attributes:
        steps: control steps to run (>= 1).
        control_period: seconds between actions in real-time mode.
        real_time: if True, hold a fixed wall-clock rate (sleep out the rest of
            each period; an overrun is counted, never waited for). If False,
            run as fast as possible (simulation).
        stop_when_done: stop early when the robot reports ``done`` (Gymnasium
            terminated/truncated).
    """

    steps: int = 200
    control_period: float = 0.05
    real_time: bool = False
    stop_when_done: bool = True

    def __post_init__(self) -> None:
        require_int_at_least("LoopConfig", "steps", self.steps, 1)
        require_positive("LoopConfig", "control_period (seconds)", self.control_period)


@dataclass
class EpisodeRecord:
    """What happened in one closed-loop episode.

    Attributes:
        states: measured states, Shape=(T+1, nx) (the last one after the last action).
        actions: executed actions, Shape=(T, nu).
        plan_costs: cost of the plan chosen at each step, Shape=(T,).
        term_costs: per-term cost of each chosen plan, name -> Shape=(T,).
        plan_times: wall-clock seconds of each ``plan`` call, Shape=(T,).
        num_feasible: feasible samples at each step, Shape=(T,).
        overruns: steps whose planning took longer than the control period.
        success: the task's success predicate on the measured trajectory, if given.
        info: free-form extras (task name, seed, fault settings, ...).
        fallbacks: per step, why the safety guard replaced the plan and with
            what ("" where it did not), Shape=(T,).
        deadline_overruns: steps on which planning missed its deadline and the
            previous plan's next action was executed.
        true_states: the plant's true states, Shape=(T+1, nx), where they differ
            from the measured ones (a simulated plant with sensor faults); None: not known.
    """

    states: FloatArray
    actions: FloatArray
    plan_costs: FloatArray
    term_costs: dict[str, FloatArray]
    plan_times: FloatArray
    num_feasible: np.ndarray
    overruns: int = 0
    success: bool | None = None
    info: dict[str, Any] = field(default_factory=dict)
    fallbacks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    deadline_overruns: int = 0
    true_states: FloatArray | None = None

    @property
    def fallback_steps(self) -> int:
        """Steps on which the guard executed a fallback instead of the plan."""
        return int(np.count_nonzero(self.fallbacks != ""))

    @property
    def steps(self) -> int:
        return int(self.actions.shape[0])

    def summary(self) -> dict[str, Any]:
        """Scalar figures for logs and JSON output."""
        times = self.plan_times * 1e3
        return {
            "steps": self.steps,
            "success": self.success,
            "final_cost": float(self.plan_costs[-1]) if self.steps else float("nan"),
            "plan_ms_mean": float(times.mean()) if self.steps else float("nan"),
            "plan_ms_p95": float(np.percentile(times, 95)) if self.steps else float("nan"),
            "min_feasible": int(self.num_feasible.min()) if self.steps else 0,
            "overruns": self.overruns,
            "fallback_steps": self.fallback_steps,
            "deadline_overruns": self.deadline_overruns,
        }

    def save(self, path: str | Path) -> Path:
        """Write the record to an ``.npz`` file atomically."""
        arrays = {
            "states": self.states,
            "actions": self.actions,
            "plan_costs": self.plan_costs,
            "plan_times": self.plan_times,
            "num_feasible": self.num_feasible,
            "overruns": np.array(self.overruns),
            "fallbacks": np.asarray(self.fallbacks, dtype=str),
            "deadline_overruns": np.array(self.deadline_overruns),
            "success": np.array(-1 if self.success is None else int(self.success)),
        }
        arrays.update({f"term_{k}": v for k, v in self.term_costs.items()})
        # A file handle, not a name: np.savez would append ".npz" to a temp name.
        return write_atomic(path, lambda fh: np.savez(fh, **arrays))  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path) -> EpisodeRecord:
        """Read a record written by ``save``."""
        with np.load(path) as data:
            success_code = int(data["success"])
            return cls(
                states=data["states"],
                actions=data["actions"],
                plan_costs=data["plan_costs"],
                term_costs={k[5:]: data[k] for k in data.files if k.startswith("term_")},
                plan_times=data["plan_times"],
                num_feasible=data["num_feasible"],
                overruns=int(data["overruns"]),
                success=None if success_code < 0 else bool(success_code),
                fallbacks=data["fallbacks"] if "fallbacks" in data.files else np.zeros(0, str),
                deadline_overruns=int(data.get("deadline_overruns", 0)),
            )


def run_closed_loop(
    robot: Robot,
    planner: Planner,
    config: LoopConfig = LoopConfig(),
    success: SuccessFn | None = None,
    progress: Progress | None = None,
    observer: StepObserver | None = None,
) -> EpisodeRecord:
    """Run ``planner`` on ``robot`` for ``config.steps`` control steps.

    Each step reads the state, plans, and sends the plan's first action; the
    planner shifts its warm start itself. In real-time mode the loop keeps a
    fixed period measured from the start of each step.

    Args:
        robot: the robot or a simulated plant (``EnvRobot``).
        planner: anything with ``plan(state) -> PlanResult``.
        config: steps, period, real-time mode.
        success: predicate on the measured states Shape=(T+1, nx), recorded as
            ``record.success``.
        progress: called as ``progress(step, state)`` after each step.
        observer: called as ``observer(step, state, result)`` after each step, with the
            whole ``PlanResult`` (proposals, fallback) the step's action came from.

    Returns:
        The episode record.
    """
    states: list[FloatArray] = []
    actions: list[FloatArray] = []
    costs: list[float] = []
    terms: dict[str, list[float]] = {}
    times: list[float] = []
    feasible: list[int] = []
    fallbacks: list[str] = []
    overruns = 0
    deadline_overruns = 0
    # once, not per step: a check against a runtime Protocol walks its members
    episodic = config.stop_when_done and isinstance(robot, EpisodicRobot)
    next_tick = time.perf_counter()
    for step in range(config.steps):
        x = np.asarray(robot.read_state(), dtype=np.float64)
        t0 = time.perf_counter()
        result = planner.plan(x)
        elapsed = time.perf_counter() - t0
        robot.send_action(result.action)
        states.append(x)
        actions.append(result.action.copy())
        costs.append(result.cost)
        for name, value in result.term_costs.items():
            terms.setdefault(name, []).append(value)
        times.append(elapsed)
        feasible.append(result.num_feasible)
        fallbacks.append(result.fallback or "")
        deadline_overruns += int(result.deadline_missed)
        if elapsed > config.control_period:
            overruns += 1
        if observer is not None:
            observer(step, x, result)
        if progress is not None:
            progress(step, x)
        if config.real_time:
            next_tick += config.control_period
            delay = next_tick - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:  # behind schedule: restart the clock rather than burst to catch up
                next_tick = time.perf_counter()
        if episodic and robot.done:  # type: ignore[attr-defined]
            break
    states.append(np.asarray(robot.read_state(), dtype=np.float64))
    trajectory = np.array(states)
    return EpisodeRecord(
        states=trajectory,
        actions=np.array(actions),
        plan_costs=np.array(costs),
        term_costs={k: np.array(v) for k, v in terms.items()},
        plan_times=np.array(times),
        num_feasible=np.array(feasible),
        overruns=overruns,
        success=None if success is None else bool(success(trajectory)),
        fallbacks=np.array(fallbacks, dtype=str),
        deadline_overruns=deadline_overruns,
    )
