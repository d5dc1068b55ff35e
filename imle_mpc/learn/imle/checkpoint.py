"""Generator checkpoints (safetensors + JSON metadata) and resumable training state.

A generator checkpoint is ONE ``.safetensors`` file: the EMA weights as
tensors, and in the header metadata (key ``imle_mpc``) a JSON document with the
format version, the library version, both configs, ``obs_dim``/``nu`` and the
normalisation statistics. Every file is written atomically, so a crash while
saving leaves the previous file intact and never a half-written one.

The training state (``training_state.pt``) holds what resuming needs: online
and EMA weights, optimiser state, step/epoch counters, the torch RNG state and
the history so far.
"""

from __future__ import annotations

import io
import json
import struct
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import imle_mpc
from imle_mpc.core.errors import InputError
from imle_mpc.core.io import write_atomic
from imle_mpc.learn.config import GeneratorConfig, TrainConfig
from imle_mpc.learn.imle.data import MinMaxNormalizer
from imle_mpc.learn.imle.generator import IMLEGenerator
from imle_mpc.learn.imle.networks import build_network
from imle_mpc.learn.imle.trained_for import TrainedFor

FORMAT_VERSION = 1
"""Bump when the checkpoint layout changes; ``load_generator`` refuses other versions."""

GENERATOR_FILE = "generator.safetensors"
TRAINING_STATE_FILE = "training_state.pt"
_META_KEY = "imle_mpc"
_KIND = "imle_generator"
_RETRAIN = "Retrain it with train_generator(...) or re-download it."


class CheckpointError(InputError):
    """A checkpoint is missing, unreadable, truncated or does not fit this library."""


def _library_version() -> str:
    return str(imle_mpc.__version__)


def save_generator(generator: IMLEGenerator, path: str | Path) -> Path:
    """Write ``generator`` to ``path`` (a ``.safetensors`` file) atomically.

    Args:
        generator: the generator to save (its network's weights as they are).
        path: target file; a directory means ``path / "generator.safetensors"``.

    Returns:
        The file written.
    """
    target = Path(path)
    if target.is_dir():
        target = target / GENERATOR_FILE
    tensors = {
        k: v.detach().to("cpu", copy=True).contiguous()
        for k, v in generator.network.state_dict().items()
    }
    train = generator.train_config
    meta = {
        "kind": _KIND,
        "format_version": FORMAT_VERSION,
        "library_version": _library_version(),
        "obs_dim": generator.obs_dim,
        "nu": generator.nu,
        "generator_config": generator.config.to_dict(),
        "train_config": None if train is None else train.to_dict(),
        "obs_normalizer": generator.obs_normalizer.to_dict(),
        "action_normalizer": generator.action_normalizer.to_dict(),
        "trained_for": generator.trained_for.to_dict(),
    }
    payload = st_save(tensors, metadata={_META_KEY: json.dumps(meta, sort_keys=True)})
    return write_atomic(target, lambda fh: fh.write(payload))


def _read_header(path: Path, raw: bytes) -> dict[str, Any]:
    """The safetensors JSON header of ``raw``; CheckpointError if it is cut short."""
    if len(raw) < 8:
        raise CheckpointError(
            f"{path} is not a readable generator checkpoint: only {len(raw)} bytes, it is "
            f"truncated or empty. {_RETRAIN}"
        )
    (header_len,) = struct.unpack("<Q", raw[:8])
    if header_len > len(raw) - 8:
        raise CheckpointError(
            f"{path} is not a readable generator checkpoint: its header claims {header_len} "
            f"bytes but the file has {len(raw)}; it is truncated or not a safetensors "
            f"file. {_RETRAIN}"
        )
    try:
        header = json.loads(raw[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{path} is not a readable generator checkpoint (corrupt header: {exc}). {_RETRAIN}"
        ) from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} has a malformed safetensors header. {_RETRAIN}")
    return header


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> IMLEGenerator:
    """Load a generator saved by ``save_generator`` / ``train_generator``.

    Checks, in order: the file exists; it is a complete safetensors file; it
    is an imle_mpc generator of this format version; the configs are valid;
    every weight is present with the shape the configs imply; the weights and
    the normalisation statistics are finite. Each failure
    raises ``CheckpointError`` naming the file and what to do.

    Args:
        path: the ``.safetensors`` file, or a training ``out_dir`` holding
            ``generator.safetensors``.
        device: torch device to run the generator on.
    """
    p = Path(path)
    if p.is_dir():
        p = p / GENERATOR_FILE
    if not p.is_file():
        raise CheckpointError(
            f"no generator checkpoint at {p}. Train one with train_generator(..., out_dir=...) "
            "or pass the path of an existing .safetensors file."
        )
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read generator checkpoint {p}: {exc}.") from exc
    header = _read_header(p, raw)
    meta_json = (header.get("__metadata__") or {}).get(_META_KEY)
    if meta_json is None:
        raise CheckpointError(
            f"{p} is a safetensors file but not an imle_mpc generator checkpoint (no "
            f"'{_META_KEY}' metadata). {_RETRAIN}"
        )
    try:
        meta = json.loads(meta_json)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{p} has corrupt imle_mpc metadata ({exc}). {_RETRAIN}") from exc
    if meta.get("kind") != _KIND:
        raise CheckpointError(f"{p} holds a {meta.get('kind')!r}, not an IMLE generator.")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{p} has checkpoint format version {version!r} (written by imle_mpc "
            f"{meta.get('library_version')!r}); this imle_mpc {_library_version()} reads format "
            f"version {FORMAT_VERSION}. Retrain the generator with this version, or load it "
            "with the version that wrote it."
        )
    if meta.get("library_version") != _library_version():
        warnings.warn(
            f"{p} was written by imle_mpc {meta.get('library_version')!r}, this is "
            f"{_library_version()}; the format version matches, so it is loaded.",
            stacklevel=2,
        )
    try:
        config = GeneratorConfig.from_dict(meta["generator_config"])
        train = meta.get("train_config")
        train_config = None if train is None else TrainConfig.from_dict(train)
        obs_norm = _normalizer(p, meta, "obs_normalizer")
        act_norm = _normalizer(p, meta, "action_normalizer")
        obs_dim, nu = int(meta["obs_dim"]), int(meta["nu"])
        trained_for = TrainedFor.from_meta(meta.get("trained_for") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{p} has invalid metadata: {exc!r}. {_RETRAIN}") from exc
    if obs_norm.dim != obs_dim or act_norm.dim != nu:
        raise CheckpointError(
            f"{p}: normalisation statistics have dims obs={obs_norm.dim}, action={act_norm.dim} "
            f"but the model has obs_dim={obs_dim}, nu={nu}. {_RETRAIN}"
        )
    try:
        tensors = st_load(raw)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"{p} is not a readable generator checkpoint ({exc}); it may be truncated or "
            f"corrupt. {_RETRAIN}"
        ) from exc
    net = build_network(config, obs_dim, nu)
    _check_state_dict(p, net.state_dict(), tensors)
    _check_finite(p, tensors)
    net.load_state_dict(tensors)
    return IMLEGenerator(
        net, config, obs_norm, act_norm, device=device, train_config=train_config,
        trained_for=trained_for,
    )  # fmt: skip


def _normalizer(path: Path, meta: dict[str, Any], key: str) -> MinMaxNormalizer:
    """The normaliser ``meta[key]``; a CheckpointError naming the file and the key if bad."""
    try:
        return MinMaxNormalizer.from_dict(meta[key])
    except ValueError as exc:  # NaN/inf (or null) statistics, low > high, wrong shapes
        raise CheckpointError(
            f"{path}: the {key} statistics are invalid: {exc} {_RETRAIN}"
        ) from exc


def _non_finite(tensors: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors of ``tensors`` that hold a NaN or inf."""
    return sorted(
        name
        for name, t in tensors.items()
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(t.isfinite().all())
    )


def _check_finite(path: Path, tensors: dict[str, Any], what: str = "weights") -> None:
    """Refuse NaN/inf weights: such a network decodes NaN chunks, which become zero actions."""
    bad = _non_finite(tensors)
    if bad:
        raise CheckpointError(
            f"{path}: {what} {bad[:5]}{' ...' if len(bad) > 5 else ''} contain NaN/inf (a "
            f"diverged training run, or a corrupted file), so the network cannot be used. "
            f"{_RETRAIN}"
        )


def _check_state_dict(
    path: Path, expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]
) -> None:
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
            f"The file and its metadata disagree. {_RETRAIN}"
        )


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
            _check_finite(p, weights, f"the {key} weights")
    return state
