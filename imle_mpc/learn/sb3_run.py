"""What every stable-baselines3 run here shares (the residual's SAC, GenPO's PPO).

``RunHooks`` is the callback around SB3's loop: the progress bar, the learning
curve's evaluations every ``eval_every`` steps and at the end, and a checkpoint
every ``checkpoint_every`` steps, taken at a clean point (the start of a rollout:
every transition collected is stored, every update done). A subclass adds only
what its method records (``collect``, ``before_rollout``), what its evaluator takes
(``evaluated``), its checkpoint's files (``files``) and its bar's figures (``postfix``).

A checkpoint is a few files (SB3's model zip, a replay buffer, ...), each written
atomically under a step-numbered name, then committed by ONE atomic write of
``checkpoint.json`` that names them with the run's step, config, what it trains
(``meta``) and its history. A kill at any moment leaves the last committed
checkpoint whole: files of a newer, uncommitted step are only removed by the next
commit. ``read_checkpoint`` checks a committed checkpoint against the run that
wants to resume it (same format, same config but for the fields a resume may
change, the same ``meta``, its files present) and says what to do when it does not.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Generic, Protocol, TypeVar

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

from imle_mpc.core.io import write_atomic, write_json_atomic
from imle_mpc.learn.model_file import CheckpointError

CHECKPOINT_FILE = "checkpoint.json"
HISTORY_FILE = "history.json"
CHECKPOINT_FORMAT = 1
FREE_ON_RESUME = ("total_steps", "checkpoint_every", "device")
"""Config fields a resumed run may change; every other one must match the saved run."""


class RunConfig(Protocol):
    """A run's config: a dataclass that round-trips through a JSON dict."""

    @property
    def total_steps(self) -> int: ...

    @property
    def checkpoint_every(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...


class RunHistory(Protocol):
    """What a run did, kept across resumed runs: at least the learning curve and the time."""

    evaluations: list[dict[str, Any]]
    seconds: float

    def to_dict(self) -> dict[str, Any]: ...


C = TypeVar("C", bound=RunConfig)
H = TypeVar("H", bound=RunHistory)


@dataclass(frozen=True)
class RunFile:
    """One file of a checkpoint: ``{prefix}_{step:010d}.{suffix}``, written by ``write``.

    Args:
        prefix: the name's stem before the step (``"sac"``, ``"replay"``).
        suffix: the extension (``"zip"``, ``"pkl"``).
        write: ``write(binary_file)``, e.g. ``lambda fh: model.save(fh)``.
    """

    prefix: str
    suffix: str
    write: Callable[[IO[bytes]], Any]

    def name(self, step: int) -> str:
        """The file's name at ``step``."""
        return f"{self.prefix}_{step:010d}.{self.suffix}"


def commit_checkpoint(
    out: Path, step: int, files: Mapping[str, RunFile], record: Mapping[str, Any]
) -> dict[str, str]:
    """Write ``files`` at ``step``, commit them in ``checkpoint.json``, drop older ones.

    Args:
        out: the run's directory.
        step: environment steps of the run so far.
        files: key in ``checkpoint.json`` -> the file to write (e.g. ``{"model": ...}``).
        record: the rest of the record (``config``, ``meta``, ``history``); the history
            (``record["history"]``), when there is one, is also written to ``history.json``.

    Returns:
        key -> the file name committed.
    """
    names = {key: f.name(step) for key, f in files.items()}
    for key, f in files.items():
        write_atomic(out / names[key], f.write)
    write_json_atomic(
        out / CHECKPOINT_FILE,
        {"format_version": CHECKPOINT_FORMAT, "step": step, **names, **record},
    )
    if "history" in record:
        write_json_atomic(out / HISTORY_FILE, record["history"])
    for f in files.values():  # after the commit: a kill before it keeps the old files
        for stale in out.glob(f"{f.prefix}_*.{f.suffix}"):
            if stale.name not in names.values():
                stale.unlink()
    return names


def read_checkpoint(
    out: Path,
    config: C,
    from_dict: Callable[[dict[str, Any]], C],
    meta: Mapping[str, Any],
    *,
    files: Sequence[str] = ("model",),
    trains: str = "trains",
) -> dict[str, Any]:
    """The committed checkpoint of ``out``, checked against this run's config and meta.

    Args:
        out: the run's directory.
        config: this run's config; ``from_dict`` rebuilds the saved one (its type's).
        meta: what this run trains (task, setting, base, ...): must equal the saved.
        files: the keys of the checkpoint's files that must be present.
        trains: the verb for the error message (``"refines"``, ``"fine-tunes"``).

    Returns:
        The ``checkpoint.json`` record.

    Raises:
        CheckpointError: no committed checkpoint, another format, a config or meta that
            differs from the saved run, or a missing file; each says what to do.
    """
    path = out / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(
            f"cannot resume: no committed checkpoint at {path}. Start the run without "
            "--resume (resume=False)."
        )
    try:
        state = json.loads(path.read_text())
        saved = from_dict(state["config"]).to_dict()
        version = state.get("format_version")
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable checkpoint ({exc!r}).") from exc
    if version != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} has checkpoint format {version!r}; this library resumes format "
            f"{CHECKPOINT_FORMAT}. Start a new run (another --out)."
        )
    mine = config.to_dict()
    diff = sorted(k for k in mine if k not in FREE_ON_RESUME and mine[k] != saved[k])
    if diff:
        raise CheckpointError(
            f"cannot resume {path}: {type(config).__name__} fields {diff} differ from the "
            f"saved run ({ {k: saved[k] for k in diff} }); only {list(FREE_ON_RESUME)} may "
            "change."
        )
    if state.get("meta") != dict(meta):
        raise CheckpointError(
            f"cannot resume {path}: it {trains} {state.get('meta')}, this run {dict(meta)}; "
            "use another --out."
        )
    missing = [state[k] for k in files if not (out / state[k]).is_file()]
    if missing:
        raise CheckpointError(f"cannot resume {path}: its files {missing} are missing from {out}.")
    return state


class RunHooks(BaseCallback, Generic[C, H]):
    """The progress bar, evaluations and checkpoints of one SB3 run (module docstring).

    Args:
        out: the run's directory.
        config: the run's config (``total_steps``, ``checkpoint_every``).
        meta: what the run trains; saved in every checkpoint, checked on resume.
        history: the run's history (a resumed run's, or a new one).
        evaluate: ``evaluate(self.evaluated(model)) -> figures``, a learning-curve point;
            None: no evaluations.
        eval_every: environment steps between evaluations (<= 0: none).
        progress: show the tqdm bar.
        callback: ``callback(step, history)`` at the start of each rollout, after any
            checkpoint; an exception there stops the run (a test "kills" a run so).
    """

    description = "training"
    """The bar's label."""

    def __init__(
        self,
        out: Path,
        config: C,
        meta: dict[str, Any],
        history: H,
        evaluate: Callable[[Any], dict[str, Any]] | None,
        eval_every: int,
        progress: bool,
        callback: Callable[[int, H], None] | None,
    ) -> None:
        super().__init__()
        self.out, self.config, self.meta, self.history = out, config, meta, history
        self.evaluate, self.eval_every, self.progress = evaluate, eval_every, progress
        self.user_callback = callback
        self.last_checkpoint = -1
        """The step of the checkpoint on disk (-1: none yet)."""
        self._seconds = history.seconds
        self._t0 = time.perf_counter()
        self._bar: Any = None

    # What a subclass adds.
    def started(self) -> None:
        """At the start of ``learn`` (``self.num_timesteps`` is the resumed step)."""

    def collect(self, infos: Sequence[dict[str, Any]]) -> None:
        """Each environment step's ``infos`` (one per environment)."""

    def before_rollout(self, model: BaseAlgorithm) -> None:
        """At the clean point, before the evaluation and the checkpoint."""

    def evaluated(self, model: BaseAlgorithm) -> Any:
        """What ``evaluate`` takes: the model itself by default."""
        return model

    def files(self, model: BaseAlgorithm) -> dict[str, RunFile]:
        """The checkpoint's files (write any side file, e.g. the exported policy, here)."""
        return {"model": RunFile("model", "zip", lambda fh: model.save(fh))}  # type: ignore[arg-type]

    def postfix(self) -> dict[str, str]:
        """The bar's figures besides the latest evaluation's success."""
        return {}

    # SB3's callback.
    def _on_training_start(self) -> None:
        self._t0 = time.perf_counter()
        self.last_checkpoint = self.num_timesteps
        self.started()
        self._bar = tqdm(
            total=self.config.total_steps, initial=self.num_timesteps, desc=self.description,
            unit="step", disable=not self.progress, smoothing=0.05,
        )  # fmt: skip

    def _on_step(self) -> bool:
        self.collect(self.locals["infos"])
        if self._bar is not None:
            self._bar.update(self.num_timesteps - self._bar.n)
        return True

    def _on_rollout_start(self) -> None:
        step = self.num_timesteps
        self.before_rollout(self.model)
        self._evaluate(self.model, self.eval_every)
        if step - self.last_checkpoint >= self.config.checkpoint_every:
            self.checkpoint(self.model)
        self._show()
        if self.user_callback is not None:
            self.user_callback(step, self.history)

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def finish(self, model: BaseAlgorithm) -> None:
        """The run's end: evaluate and checkpoint the final model (unless just done)."""
        self._evaluate(model, 1)
        if self.last_checkpoint != model.num_timesteps or not (self.out / CHECKPOINT_FILE).exists():
            self.checkpoint(model)

    def _evaluate(self, model: BaseAlgorithm, every: int) -> None:
        """A point of the learning curve, if ``every`` steps passed since the last one."""
        evaluations = self.history.evaluations
        if self.evaluate is None or self.eval_every <= 0:
            return
        last = evaluations[-1]["step"] if evaluations else -math.inf
        if model.num_timesteps - last >= every:
            figures = self.evaluate(self.evaluated(model))
            evaluations.append({"step": int(model.num_timesteps), **figures})

    def _show(self) -> None:
        if self._bar is None:
            return
        postfix = self.postfix()
        if self.history.evaluations and "success_rate" in self.history.evaluations[-1]:
            postfix["eval_success"] = f"{self.history.evaluations[-1]['success_rate']:.2f}"
        self._bar.set_postfix(postfix)

    def checkpoint(self, model: BaseAlgorithm) -> None:
        """Write the run's files, then commit them in ``checkpoint.json``."""
        self.history.seconds = self._seconds + time.perf_counter() - self._t0
        record = {
            "config": self.config.to_dict(), "meta": self.meta, "history": self.history.to_dict()
        }  # fmt: skip
        commit_checkpoint(self.out, int(model.num_timesteps), self.files(model), record)
        self.last_checkpoint = int(model.num_timesteps)
