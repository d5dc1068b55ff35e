"""What ``imle-mpc run --record/--view`` and ``imle-mpc view TASK`` attach to each episode.

``EpisodeWatch`` gives ``run_episode`` one observer per episode (a ``Recorder`` and,
with a live view, the view) and writes the recording when the episode ends. No viser
here: the live view is any observer with ``start_episode()`` (``server.LiveView``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imle_mpc.core.plan_result import PlanResult
from imle_mpc.core.validation import FloatArray
from imle_mpc.loop.runner import EpisodeRecord, StepObserver
from imle_mpc.tasks.base import Task
from imle_mpc.view.recording import MAX_PROPOSALS, Recorder, write_recording


def recording_path(path: str | Path, seed: int, episodes: int) -> Path:
    """Where an episode's recording goes: ``path`` itself for one episode, else
    ``path`` with ``_seed<N>`` before its suffix (``ep.npz`` -> ``ep_seed3.npz``)."""
    path = Path(path)
    if episodes == 1:
        return path
    return path.with_name(f"{path.stem}_seed{seed}{path.suffix or '.npz'}")


class EpisodeWatch:
    """Records and/or shows the episodes of one command.

    Args:
        task_spec: the task as given on the command line (replay rebuilds it from this).
        planner: the planner's name, for the recording's header.
        episodes: episodes the command runs (names the recordings, ``recording_path``).
        record: where to write recordings (None: none).
        live: a live view (``server.LiveView``) or None.
        max_proposals: proposals kept per step.
    """

    def __init__(
        self, task_spec: str, planner: str, episodes: int = 1, record: str | Path | None = None,
        live: Any = None, max_proposals: int = MAX_PROPOSALS,
    ) -> None:  # fmt: skip
        self.task_spec = task_spec
        self.planner = planner
        self.episodes = episodes
        self.record = record
        self.live = live
        self.max_proposals = max_proposals
        self.written: list[Path] = []
        self._recorder: Recorder | None = None

    def observer(self, task: Task) -> StepObserver | None:
        """The observer of the next episode of ``task`` (None: nothing to watch)."""
        self._recorder = Recorder(task.dynamics, self.max_proposals) if self.record else None
        if self.live is not None:
            self.live.start_episode()
        observers = [o for o in (self._recorder, self.live) if o is not None]
        if not observers:
            return None

        def observe(step: int, state: FloatArray, result: PlanResult) -> None:
            for o in observers:
                o(step, state, result)

        return observe

    def finished(self, record: EpisodeRecord) -> Path | None:
        """Write the episode's recording (if asked); returns its path."""
        if self._recorder is None or self.record is None:
            return None
        seed = int(record.info.get("seed", 0))
        recording = self._recorder.recording(record, task=self.task_spec, planner=self.planner)
        path = write_recording(recording_path(self.record, seed, self.episodes), recording)
        self.written.append(path)
        return path
