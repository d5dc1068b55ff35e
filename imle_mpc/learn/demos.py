"""Demonstration datasets: episodes of observations, states and actions.

On disk a dataset is one ``.npz`` file holding the concatenated episodes and
their end indices (the layout of a replay buffer, cheap to load and slice):

* ``observations`` Shape=(N, obs_dim), ``states`` Shape=(N, nx),
  ``actions`` Shape=(N, nu), float64, step i's action taken in step i's state;
* ``episode_ends`` Shape=(E,), int64, exclusive end index of each episode;
* ``meta`` a JSON string (task name, dt, seed, free-form notes).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imle_mpc.core.errors import InputError
from imle_mpc.core.io import write_atomic
from imle_mpc.core.validation import FloatArray

FORMAT_VERSION = 1


class DatasetError(InputError):
    """A demonstration dataset is missing, empty or malformed."""


@dataclass(frozen=True)
class Episode:
    """One demonstration. ``actions[i]`` was applied in ``states[i]``/``observations[i]``."""

    observations: FloatArray
    states: FloatArray
    actions: FloatArray

    def __post_init__(self) -> None:
        n = self.actions.shape[0]
        if n == 0:
            raise DatasetError("an episode needs at least one step.")
        for name in ("observations", "states", "actions"):
            arr = getattr(self, name)
            if arr.ndim != 2 or arr.shape[0] != n:
                raise DatasetError(
                    f"episode {name} must have Shape=({n}, dim) like the actions, got {arr.shape}."
                )
            if not np.all(np.isfinite(arr)):
                raise DatasetError(f"episode {name} contains NaN/inf.")

    def __len__(self) -> int:
        return int(self.actions.shape[0])


@dataclass(frozen=True)
class DemoDataset:
    """A list of episodes plus metadata, with one ``.npz`` file format."""

    episodes: tuple[Episode, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.episodes:
            raise DatasetError("a demonstration dataset needs at least one episode.")
        first = self.episodes[0]
        for i, ep in enumerate(self.episodes):
            for name in ("observations", "states", "actions"):
                if getattr(ep, name).shape[1] != getattr(first, name).shape[1]:
                    raise DatasetError(
                        f"episode {i} has {name} of width {getattr(ep, name).shape[1]}, "
                        f"episode 0 has {getattr(first, name).shape[1]}; all must match."
                    )

    @property
    def obs_dim(self) -> int:
        return int(self.episodes[0].observations.shape[1])

    @property
    def nx(self) -> int:
        return int(self.episodes[0].states.shape[1])

    @property
    def nu(self) -> int:
        return int(self.episodes[0].actions.shape[1])

    @property
    def num_steps(self) -> int:
        return sum(len(ep) for ep in self.episodes)

    def save(self, path: str | Path, compress: bool = False) -> Path:
        """Write the dataset atomically as ``.npz`` (``compress``: zip-deflated, same format)."""
        ends = np.cumsum([len(ep) for ep in self.episodes]).astype(np.int64)
        arrays = {
            "observations": np.concatenate([ep.observations for ep in self.episodes]),
            "states": np.concatenate([ep.states for ep in self.episodes]),
            "actions": np.concatenate([ep.actions for ep in self.episodes]),
            "episode_ends": ends,
            "meta": np.array(json.dumps({"format_version": FORMAT_VERSION, **self.meta})),
        }
        savez = np.savez_compressed if compress else np.savez
        return write_atomic(path, lambda fh: savez(fh, **arrays))  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: str | Path) -> DemoDataset:
        """Read a dataset written by ``save``; errors say what is wrong with the file."""
        path = Path(path)
        if not path.is_file():
            raise DatasetError(
                f"no demonstration file at {path}. Pass the path of an existing .npz "
                "(write one with DemoDataset.save), or train on the shipped demonstrations "
                "with imle-mpc train --task NAME."
            )
        try:
            raw = path.read_bytes()
            with np.load(io.BytesIO(raw), allow_pickle=False) as data:
                missing = {"observations", "states", "actions", "episode_ends"} - set(data.files)
                if missing:
                    raise DatasetError(f"{path} lacks the arrays {sorted(missing)}.")
                obs = np.asarray(data["observations"], dtype=np.float64)
                states = np.asarray(data["states"], dtype=np.float64)
                actions = np.asarray(data["actions"], dtype=np.float64)
                ends = np.asarray(data["episode_ends"], dtype=np.int64)
                meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            if isinstance(exc, DatasetError):
                raise
            raise DatasetError(
                f"{path} is not a readable demonstration .npz ({exc}); it may be truncated. "
                "Regenerate it."
            ) from exc
        if ends.size == 0 or np.any(np.diff(ends) <= 0) or ends[0] <= 0 or ends[-1] != len(actions):
            raise DatasetError(
                f"{path}: episode_ends {ends.tolist()[:10]} must be increasing, positive and end "
                f"at the number of steps ({len(actions)})."
            )
        starts = np.concatenate([[0], ends[:-1]])
        episodes = tuple(
            Episode(obs[s:e], states[s:e], actions[s:e]) for s, e in zip(starts, ends, strict=True)
        )
        meta.pop("format_version", None)
        return cls(episodes, meta)
