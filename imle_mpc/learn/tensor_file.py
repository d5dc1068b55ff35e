"""A network file: its tensors and a JSON document in ONE safetensors file, written atomically.

The generator checkpoints (``imle_mpc.learn.imle.checkpoint``) and the residual
actors (``imle_mpc.learn.residual``) are such files: the weights as tensors, and in
the header metadata (key ``imle_mpc``) a JSON document with the file's kind, the
format version, the library version and whatever its reader needs. A crash while
saving leaves the previous file intact, never a half-written one. Reading checks,
in order: a complete safetensors header, our metadata, the kind, the format version
(another library version only warns); then the tensors, their names and shapes
against the network, and that every weight is finite. Every failure is a
``CheckpointError`` naming the file and what to do.
"""

from __future__ import annotations

import json
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import imle_mpc
from imle_mpc.core.errors import InputError
from imle_mpc.core.io import write_atomic

META_KEY = "imle_mpc"


class CheckpointError(InputError):
    """A checkpoint is missing, unreadable, truncated or does not fit this library."""


@dataclass(frozen=True)
class FileKind:
    """What a kind of network file is called in messages, and how to make a new one.

    Attributes:
        kind: the ``kind`` entry of the metadata.
        noun: what the file holds, in messages ("generator").
        label: the same with its article, in messages ("an IMLE generator").
        format_version: the layout this library writes and reads.
        remedy: the sentence that says how to get a good file.
    """

    kind: str
    noun: str
    label: str
    format_version: int
    remedy: str


def library_version() -> str:
    """The version of imle_mpc, recorded in every file."""
    return str(imle_mpc.__version__)


def save_tensor_file(
    path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any], kind: FileKind
) -> Path:
    """Write ``tensors`` and ``meta`` (plus kind and versions) to ``path`` atomically."""
    payload_tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    document = {
        "kind": kind.kind,
        "format_version": kind.format_version,
        "library_version": library_version(),
        **meta,
    }
    payload = st_save(payload_tensors, metadata={META_KEY: json.dumps(document, sort_keys=True)})
    return write_atomic(path, lambda fh: fh.write(payload))


def read_tensor_file(path: Path, kind: FileKind) -> tuple[dict[str, Any], bytes]:
    """The metadata of the network file ``path``, checked up to its format version, and its bytes.

    Raises:
        CheckpointError: unreadable, truncated, not ours, another kind or format version.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {kind.noun} checkpoint {path}: {exc}.") from exc
    header = _read_header(path, raw, kind)
    meta_json = (header.get("__metadata__") or {}).get(META_KEY)
    if meta_json is None:
        raise CheckpointError(
            f"{path} is a safetensors file but not an imle_mpc {kind.noun} checkpoint (no "
            f"'{META_KEY}' metadata). {kind.remedy}"
        )
    try:
        meta = json.loads(meta_json)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{path} has corrupt imle_mpc metadata ({exc}). {kind.remedy}"
        ) from exc
    if meta.get("kind") != kind.kind:
        raise CheckpointError(f"{path} holds a {meta.get('kind')!r}, not {kind.label}.")
    version = meta.get("format_version")
    if version != kind.format_version:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r} (written by imle_mpc "
            f"{meta.get('library_version')!r}); this imle_mpc {library_version()} reads format "
            f"version {kind.format_version}. Retrain the {kind.noun} with this version, or load "
            "it with the version that wrote it."
        )
    if meta.get("library_version") != library_version():
        warnings.warn(
            f"{path} was written by imle_mpc {meta.get('library_version')!r}, this is "
            f"{library_version()}; the format version matches, so it is loaded.",
            stacklevel=3,
        )
    return meta, raw


def load_tensors(
    path: Path, raw: bytes, kind: FileKind, expected: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The tensors of ``raw`` (the file ``path``), checked against a network's ``expected``.

    Raises:
        CheckpointError: unreadable tensors, missing/unexpected names, wrong shapes, NaN/inf.
    """
    try:
        tensors = st_load(raw)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} is not a readable {kind.noun} checkpoint ({exc}); it may be truncated or "
            f"corrupt. {kind.remedy}"
        ) from exc
    check_state_dict(path, expected, tensors, kind)
    check_finite(path, tensors, kind)
    return tensors


def _read_header(path: Path, raw: bytes, kind: FileKind) -> dict[str, Any]:
    """The safetensors JSON header of ``raw``; CheckpointError if it is cut short."""
    what = f"{path} is not a readable {kind.noun} checkpoint"
    if len(raw) < 8:
        raise CheckpointError(
            f"{what}: only {len(raw)} bytes, it is truncated or empty. {kind.remedy}"
        )
    (header_len,) = struct.unpack("<Q", raw[:8])
    if header_len > len(raw) - 8:
        raise CheckpointError(
            f"{what}: its header claims {header_len} bytes but the file has {len(raw)}; it is "
            f"truncated or not a safetensors file. {kind.remedy}"
        )
    try:
        header = json.loads(raw[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{what} (corrupt header: {exc}). {kind.remedy}") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} has a malformed safetensors header. {kind.remedy}")
    return header


def non_finite(tensors: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors of ``tensors`` that hold a NaN or inf."""
    return sorted(
        name
        for name, t in tensors.items()
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(t.isfinite().all())
    )


def check_finite(
    path: Path, tensors: dict[str, Any], kind: FileKind, what: str = "weights"
) -> None:
    """Refuse NaN/inf weights: such a network outputs NaN, which the loop cannot use."""
    bad = non_finite(tensors)
    if bad:
        raise CheckpointError(
            f"{path}: {what} {bad[:5]}{' ...' if len(bad) > 5 else ''} contain NaN/inf (a "
            f"diverged training run, or a corrupted file), so the network cannot be used. "
            f"{kind.remedy}"
        )


def check_state_dict(
    path: Path, expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], kind: FileKind
) -> None:
    """Refuse tensors whose names or shapes do not fit the network the metadata describes."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = [
        f"{k}: file {tuple(found[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in found and found[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing weights {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        problems.append(
            f"unexpected weights {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}"
        )
    if wrong:
        problems.append(f"wrong shapes [{'; '.join(wrong[:5])}{' ...' if len(wrong) > 5 else ''}]")
    if problems:
        raise CheckpointError(
            f"{path}: the weights do not fit the configured network ({', '.join(problems)}). "
            f"The file and its metadata disagree. {kind.remedy}"
        )
