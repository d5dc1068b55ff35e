"""The file format of every learned model here, and the resumable training state.

A model file is ONE ``.safetensors`` file: the weights as tensors, and in the
header metadata (key ``imle_mpc``) a JSON document with the model's ``kind``,
the format version, the library version and whatever the model needs to be
rebuilt (its configs, sizes, normalisation, what it was trained for). Every
file is written atomically, so a crash while saving leaves the previous file
intact and never a half-written one. ``read_model_file`` checks, in order: the
file exists; it is a complete safetensors file; it is an imle_mpc model of the
asked ``kind`` and of this format version. ``check_weights`` then checks the
tensors against the network the metadata describes (names, shapes, finite).

The IMLE generator (``imle_mpc.learn.imle.checkpoint``), the flow
(``imle_mpc.learn.flow.checkpoint``), the offline agent
(``imle_mpc.learn.offline.checkpoint``, its action space referenced) and the two PPO
policies of exact likelihood (``imle_mpc.learn.genpo.policy``, ``genpo.flow_policy``)
are stored this way.

The training state (``training_state.pt``) holds what resuming needs: online
and EMA weights, optimiser state, step/epoch counters, the torch RNG state and
the history so far.
"""

from __future__ import annotations

import io
import json
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import imle_mpc
from imle_mpc.core.errors import InputError
from imle_mpc.core.io import write_atomic

FORMAT_VERSION = 1
"""Bump when the file layout changes; ``read_model_file`` refuses other versions."""

META_KEY = "imle_mpc"

T = TypeVar("T")


class CheckpointError(InputError):
    """A checkpoint is missing, unreadable, truncated or does not fit this library."""


@dataclass(frozen=True)
class ModelKind:
    """How a kind of model file is named in the file and in messages.

    Attributes:
        kind: the ``kind`` entry of the metadata (``"imle_generator"``, ``"chunk_flow"``).
        noun: what to call it in messages (``"generator"``, ``"flow"``).
        default_file: the file name inside a training ``out_dir``.
        retrain: what to do about a broken file (the last sentence of every error).
        missing: what to do when there is no file at all.
    """

    kind: str
    noun: str
    default_file: str
    retrain: str
    missing: str


def library_version() -> str:
    """The version of this library, written into every file."""
    return str(imle_mpc.__version__)


def write_model_file(
    path: str | Path, kind: ModelKind, weights: dict[str, torch.Tensor], meta: dict[str, Any]
) -> Path:
    """Write ``weights`` and ``meta`` to ``path`` (a directory: its ``kind.default_file``).

    ``kind``, ``format_version`` and ``library_version`` are added to ``meta``.

    Returns:
        The file written.
    """
    target = Path(path)
    if target.is_dir():
        target = target / kind.default_file
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in weights.items()}
    document = {
        "kind": kind.kind,
        "format_version": FORMAT_VERSION,
        "library_version": library_version(),
        **meta,
    }
    payload = st_save(tensors, metadata={META_KEY: json.dumps(document, sort_keys=True)})
    return write_atomic(target, lambda fh: fh.write(payload))


def _read_header(path: Path, raw: bytes, kind: ModelKind) -> dict[str, Any]:
    """The safetensors JSON header of ``raw``; CheckpointError if it is cut short."""
    what = f"a readable {kind.noun} checkpoint"
    if len(raw) < 8:
        raise CheckpointError(
            f"{path} is not {what}: only {len(raw)} bytes, it is truncated or empty. {kind.retrain}"
        )
    (header_len,) = struct.unpack("<Q", raw[:8])
    if header_len > len(raw) - 8:
        raise CheckpointError(
            f"{path} is not {what}: its header claims {header_len} bytes but the file has "
            f"{len(raw)}; it is truncated or not a safetensors file. {kind.retrain}"
        )
    try:
        header = json.loads(raw[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{path} is not {what} (corrupt header: {exc}). {kind.retrain}"
        ) from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} has a malformed safetensors header. {kind.retrain}")
    return header


def read_model_file(
    path: str | Path, kind: ModelKind
) -> tuple[Path, dict[str, Any], dict[str, torch.Tensor]]:
    """The file, its metadata and its tensors; a ``CheckpointError`` naming the file if bad.

    Args:
        path: the ``.safetensors`` file, or a training ``out_dir`` holding ``kind.default_file``.
        kind: the kind of model expected.
    """
    p = Path(path)
    if p.is_dir():
        p = p / kind.default_file
    if not p.is_file():
        raise CheckpointError(f"no {kind.noun} checkpoint at {p}. {kind.missing}")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {kind.noun} checkpoint {p}: {exc}.") from exc
    header = _read_header(p, raw, kind)
    meta_json = (header.get("__metadata__") or {}).get(META_KEY)
    if meta_json is None:
        raise CheckpointError(
            f"{p} is a safetensors file but not an imle_mpc {kind.noun} checkpoint (no "
            f"'{META_KEY}' metadata). {kind.retrain}"
        )
    try:
        meta = json.loads(meta_json)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{p} has corrupt imle_mpc metadata ({exc}). {kind.retrain}") from exc
    if meta.get("kind") != kind.kind:
        raise CheckpointError(f"{p} holds a {meta.get('kind')!r}, not a {kind.kind!r}.")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{p} has checkpoint format version {version!r} (written by imle_mpc "
            f"{meta.get('library_version')!r}); this imle_mpc {library_version()} reads format "
            f"version {FORMAT_VERSION}. Retrain the {kind.noun} with this version, or load it "
            "with the version that wrote it."
        )
    if meta.get("library_version") != library_version():
        warnings.warn(
            f"{p} was written by imle_mpc {meta.get('library_version')!r}, this is "
            f"{library_version()}; the format version matches, so it is loaded.",
            stacklevel=3,
        )
    try:
        tensors = st_load(raw)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{p} is not a readable {kind.noun} checkpoint ({exc}); it may be truncated or "
            f"corrupt. {kind.retrain}"
        ) from exc
    return p, meta, tensors


def read_statistics(
    path: Path, meta: dict[str, Any], key: str, parse: Callable[[Any], T], retrain: str
) -> T:
    """``parse(meta[key])`` (a normaliser, a calibration); a CheckpointError naming the file
    and the key if it raises ``ValueError``."""
    try:
        return parse(meta[key])
    except ValueError as exc:  # NaN/inf (or null) statistics, low > high, wrong shapes
        raise CheckpointError(f"{path}: the {key} statistics are invalid: {exc} {retrain}") from exc


def _non_finite(tensors: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors of ``tensors`` that hold a NaN or inf."""
    return sorted(
        name
        for name, t in tensors.items()
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(t.isfinite().all())
    )


def check_finite(path: Path, tensors: dict[str, Any], retrain: str, what: str = "weights") -> None:
    """Refuse NaN/inf weights: such a network decodes NaN chunks, which become zero actions."""
    bad = _non_finite(tensors)
    if bad:
        raise CheckpointError(
            f"{path}: {what} {bad[:5]}{' ...' if len(bad) > 5 else ''} contain NaN/inf (a "
            f"diverged training run, or a corrupted file), so the network cannot be used. "
            f"{retrain}"
        )


def check_weights(
    path: Path,
    expected: dict[str, torch.Tensor],
    found: dict[str, torch.Tensor],
    retrain: str,
) -> None:
    """Refuse tensors that do not fit the network the metadata describes, or are not finite."""
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
            f"The file and its metadata disagree. {retrain}"
        )
    check_finite(path, found, retrain)


def save_training_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Write a resumable training state atomically (torch's zip format)."""
    buffer = io.BytesIO()
    torch.save({"format_version": FORMAT_VERSION, **state}, buffer)
    payload = buffer.getvalue()
    return write_atomic(path, lambda fh: fh.write(payload))


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read a training state written by ``save_training_state``; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(
            f"cannot resume: no training state at {p}. Train without resume=True first."
        )
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises a variety of errors for broken zips
        raise CheckpointError(
            f"{p} is not a readable training state ({type(exc).__name__}: {exc}); it may be "
            "truncated. Delete it and train from scratch (resume=False)."
        ) from exc
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        version = state.get("format_version") if isinstance(state, dict) else None
        raise CheckpointError(
            f"{p} has training-state format version {version!r}; this library reads "
            f"{FORMAT_VERSION}. Train from scratch (resume=False)."
        )
    for key in ("network", "ema"):
        weights = state.get(key)
        if isinstance(weights, dict):
            check_finite(p, weights, "Train from scratch (resume=False).", f"the {key} weights")
    return state
