"""Atomic, resumable checkpoints of a stable-baselines3 run (the residual's SAC, GenPO's PPO).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from imle_mpc.core.io import write_atomic, write_json_atomic
from imle_mpc.learn.model_file import CheckpointError

CHECKPOINT_FILE = "checkpoint.json"
HISTORY_FILE = "history.json"
CHECKPOINT_FORMAT = 1
FREE_ON_RESUME = ("total_steps", "checkpoint_every", "device")
"""Config fields a resumed run may change; every other one must match the saved run."""


class RunConfig(Protocol):
    """A run's config: a dataclass that round-trips through a JSON dict."""

    def to_dict(self) -> dict[str, Any]: ...


C = TypeVar("C", bound=RunConfig)


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
