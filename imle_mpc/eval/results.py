"""Durable JSON-lines result files: one record per line, each on disk before the next.

``RecordWriter`` appends a record as one ``write`` of one line, then flushes and
fsyncs, so a sweep that is interrupted (Ctrl-C, SIGKILL, power loss) loses no
finished record. A crash in the middle of a write can leave a *torn* last line
(no newline, or not valid JSON): ``read_records`` ignores it with a
``TornLineWarning``, and ``RecordWriter(resume=True)`` cuts it off before
appending. A broken line anywhere else is not the trace of a crash; it is an
``InputError`` naming the line.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from imle_mpc.core.errors import InputError


class TornLineWarning(UserWarning):
    """The last line of a results file was cut off by a crash and is ignored."""


def _parse(line: bytes) -> dict[str, Any]:
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError(f"a JSON {type(record).__name__}, not an object")
    return record


def _scan(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Records of ``path`` and the byte length of its intact part (before a torn line)."""
    data = path.read_bytes()
    body, newline, tail = data.rpartition(b"\n")
    if not newline:
        body, tail = b"", data
    records: list[dict[str, Any]] = []
    lines = body.split(b"\n") if newline else []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(_parse(line))
        except ValueError as err:
            raise InputError(
                f"{path}: line {number} is not a JSON object ({err}). Only the last line can "
                "be torn by a crash; delete or repair that line, then run again."
            ) from None
    intact = len(body) + 1 if newline else 0
    if not tail.strip():
        return records, len(data)
    try:
        records.append(_parse(tail))  # whole, only its newline is missing: keep it
        return records, len(data)
    except ValueError as err:
        warnings.warn(
            f"{path}: line {len(lines) + 1} is torn ({len(tail)} bytes, {err}) and is ignored: "
            "a write was interrupted; --resume runs that episode again.",
            TornLineWarning,
            stacklevel=3,
        )
        return records, intact


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every intact record of a JSON-lines file (a torn last line warns and is skipped).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        InputError: a line other than the last is not a JSON object.
    """
    return _scan(Path(path))[0]


def _clean(value: Any) -> Any:
    """NaN and infinities as ``None`` (strict JSON); NumPy scalars as Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _clean(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One record as one line of strict JSON (sorted keys, NaN as null), newline included."""
    return (json.dumps(_clean(record), sort_keys=True, allow_nan=False) + "\n").encode()


class RecordWriter:
    """Appends records to a JSON-lines file, each one flushed and fsynced.

    Args:
        path: the results file (its directory is created).
        resume: keep the records already in ``path`` (a torn last line is cut
            off). Without it an existing non-empty file is an ``InputError``,
            so a finished sweep is never overwritten or mixed with a new one.

    Attributes:
        existing: the records that were in the file when it was opened.
    """

    def __init__(self, path: str | os.PathLike[str], resume: bool = False) -> None:
        self.path = Path(path)
        self.existing: list[dict[str, Any]] = []
        if self.path.exists() and self.path.stat().st_size > 0:
            if not resume:
                raise InputError(
                    f"{self.path} already holds results; pass --resume to continue that "
                    "sweep, or choose another --out."
                )
            self.existing, intact = _scan(self.path)
            if intact < self.path.stat().st_size:
                os.truncate(self.path, intact)
            elif intact > 0 and not self.path.read_bytes().endswith(b"\n"):
                with open(self.path, "ab") as fh:
                    fh.write(b"\n")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab")  # noqa: SIM115 (closed in close())

    def append(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` as one line; it is on disk when this returns."""
        self._fh.write(encode_record(record))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def extend(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            self.append(record)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
