"""The browser view's server (viser): a recorded episode with a time slider, or a live one.

``ViewServer`` holds the viser server, the scene (``scene.SceneView``) and the panel:
the step's figures and guard event, a step slider, a plot of the chosen plan's cost
terms over time and the list of the guard's events. ``ReplayView`` shows an
``EpisodeRecording``; ``LiveView`` is an episode observer (``run_episode(...,
observer=view)``) that draws every step as it is planned.

The server binds to the loopback address (``LOOPBACK``) unless a host is given: the
view shows the robot's state and plans to whoever connects, so exposing it is a choice
(over ssh, forward the port instead: ``ssh -L 8080:127.0.0.1:8080 HOST``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import viser

from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.validation import FloatArray
from imle_mpc.tasks.base import Task
from imle_mpc.view.geometry import TaskGeometry, geometry_of
from imle_mpc.view.recording import MAX_PROPOSALS, EpisodeRecording, Frame, Recorder
from imle_mpc.view.scene import SceneView

LOOPBACK = "127.0.0.1"
"""The default address: only this machine can connect."""
DEFAULT_PORT = 8080
SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


class ViewServer:
    """A viser server with the scene and the panel of one episode.

    Args:
        geometry: what the task looks like.
        title: the panel's heading (task, planner, seed).
        host: the address to bind (default the loopback one).
        port: the TCP port (viser takes the next free one if it is taken: see ``port``).
    """

    def __init__(
        self, geometry: TaskGeometry, title: str, host: str = LOOPBACK, port: int = DEFAULT_PORT
    ) -> None:
        self.server = viser.ViserServer(host=host, port=port, label="imle_mpc view", verbose=False)
        self._lock = threading.Lock()
        size = geometry.extent()
        centre = np.asarray(geometry.centre(), dtype=np.float64)
        self.server.initial_camera.position = tuple(centre + np.array([0.0, -0.75, 0.75]) * size)
        self.server.initial_camera.look_at = tuple(centre)
        self.scene = SceneView(self.server, geometry)
        gui = self.server.gui
        gui.add_markdown(f"**{title}**")
        self.status = gui.add_markdown("")
        self.slider = gui.add_slider("step", min=0, max=1, step=1, initial_value=0)
        self.slider.on_update(lambda _: self._slid())
        self.plot: Any = None
        self._plot_names: list[str] = []
        self.events: Any = None  # made after the plot, so it lies below it
        self._frame_of: Any = None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self.server.get_port())

    @property
    def url(self) -> str:
        return f"http://{self.server.get_host()}:{self.port}"

    def close(self) -> None:
        self.server.stop()

    def show(self, frame: Frame, trail: FloatArray | None = None) -> None:
        """Draw ``frame`` and its figures; ``trail``: the states executed up to it."""
        with self._lock:
            self.scene.draw(frame, trail)
            feasible = int(frame.feasible.sum())
            event = frame.fallback or "none (the plan was sent)"
            self.status.content = (
                f"step **{frame.step}** · plan cost {frame.cost:.4g} · feasible "
                f"{frame.num_feasible} (drawn: {feasible} of {len(frame.proposal_costs)}, "
                f"infeasible red) · guard: {event}"
            )

    def plot_terms(self, names: Sequence[str], steps: np.ndarray, terms: np.ndarray) -> None:
        """The cost terms of the chosen plans over time, ``terms`` Shape=(T, len(names))."""
        columns = [np.asarray(terms[:, i], dtype=np.float64) for i in range(len(names))]
        data = (np.asarray(steps, dtype=np.float64), *columns)
        if self.plot is not None and list(names) != self._plot_names:
            self.plot.remove()  # a term appeared: the series change
            self.plot = None
        if self.plot is None:
            self._plot_names = list(names)
            series: tuple[Any, ...] = (
                {"label": "step"},
                *({"label": n, "stroke": SERIES_COLORS[i % len(SERIES_COLORS)], "width": 2}
                  for i, n in enumerate(names)),
            )  # fmt: skip
            self.plot = self.server.gui.add_uplot(
                data=data,
                series=series,
                title="cost terms of the chosen plan",
                aspect=1.8,
                scales={"x": {"time": False}},  # steps, not timestamps
            )
        else:
            self.plot.data = data

    def list_events(self, fallbacks: Sequence[str]) -> None:
        lines = [f"- step {i}: {e}" for i, e in enumerate(fallbacks) if e]
        text = "**guard events**\n\n" + ("\n".join(lines[-30:]) or "none")
        if self.events is None:
            self.events = self.server.gui.add_markdown(text)
        else:
            self.events.content = text

    def _slid(self) -> None:
        if self._frame_of is not None:
            frame, trail = self._frame_of(int(self.slider.value))
            self.show(frame, trail)


class ReplayView(ViewServer):
    """A recorded episode with a time slider.

    Args:
        recording: the episode (``read_recording``).
        task: the task it was recorded on (its geometry).
        host: as ``ViewServer``.
        port: as ``ViewServer``.
        step: the step shown first.
    """

    def __init__(
        self, recording: EpisodeRecording, task: Task, host: str = LOOPBACK,
        port: int = DEFAULT_PORT, step: int = 0,
    ) -> None:  # fmt: skip
        h = recording.header
        title = f"{task.name} · {h.get('planner', '?')} · seed {h.get('seed')}"
        super().__init__(geometry_of(task), title, host, port)
        self.recording = recording
        self.slider.max = max(recording.steps - 1, 1)
        self.plot_terms(recording.term_names, np.arange(recording.steps), recording.term_costs)
        self.list_events(list(recording.fallbacks))
        self._frame_of = self._recorded
        step = min(max(step, 0), recording.steps - 1)
        if step == 0:
            self.show(*self._recorded(0))
        else:
            self.slider.value = step  # type: ignore[misc]  # its callback draws the step

    def _recorded(self, step: int) -> tuple[Frame, FloatArray]:
        step = min(max(step, 0), self.recording.steps - 1)
        return self.recording.frame(step), self.recording.states[: step + 1]


class LiveView(ViewServer):
    """An episode observer that draws every step as it is planned.

    The proposals are rolled out on the calling (loop) thread after the step's action
    was sent: do not use it with a deadline (``real_time``), whose worker may still be
    planning on the same model.

    Args:
        task: the task the episodes run on.
        host: as ``ViewServer``.
        port: as ``ViewServer``.
        max_proposals: proposals drawn per step.
    """

    def __init__(
        self, task: Task, host: str = LOOPBACK, port: int = DEFAULT_PORT,
        max_proposals: int = MAX_PROPOSALS, title: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(geometry_of(task), title or task.name, host, port)
        self.task = task
        self.max_proposals = max_proposals
        self.start_episode()
        self._frame_of = self._seen

    def start_episode(self) -> None:
        """Forget the last episode's steps (the next step is a new episode's first)."""
        self.recorder = Recorder(self.task.dynamics, self.max_proposals)
        self._states: list[FloatArray] = []
        self._terms: list[dict[str, float]] = []
        self._fallbacks: list[str] = []

    def __call__(self, step: int, state: FloatArray, result: PlanResult) -> None:
        self.recorder(step, state, result)
        self._states.append(np.array(state, dtype=np.float64))
        self._terms.append(dict(result.term_costs))
        self._fallbacks.append(result.fallback or "")
        names = sorted({n for t in self._terms for n in t})
        terms = np.array([[t.get(n, np.nan) for n in names] for t in self._terms])
        self.plot_terms(names, np.arange(len(self._terms)), terms.reshape(len(self._terms), -1))
        self.list_events(self._fallbacks)
        last = len(self._states) - 1
        self.slider.max = max(last, 1)
        if int(self.slider.value) == last:
            self.show(*self._seen(last))
        else:
            self.slider.value = last  # type: ignore[misc]  # follow the episode (its callback draws the step)

    def _seen(self, step: int) -> tuple[Frame, FloatArray]:
        step = min(max(step, 0), len(self.recorder) - 1)
        return self.recorder.frame(step), np.array(self._states[: step + 1])
