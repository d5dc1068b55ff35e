"""Demonstration quality: rank a dataset's episodes by the flow's density of their chunks.

Each episode is scored by the log-densities of its chunks (one per step: the
observation there and the next H actions, as the flow is trained on), under a flow
that did not see the episode:

* ``cross_fit(dataset)``: the episodes are split into ``folds`` (per route, where
  the data names routes); for each fold a flow is trained on the other folds
  (``train_flow``, which holds a share of those out to calibrate its threshold) and
  scores the fold. Every episode is judged by a flow it was not trained on, so a bad
  episode cannot vouch for itself; the cost is ``folds`` trainings.
* ``score_dataset(flow, dataset)``: one given flow scores every episode; fair when the
  flow was trained on other (trusted) demonstrations of the same task. Episodes the
  flow was trained on score optimistically.

The rule (``QualityRule``), relative to the dataset's own episodes: an episode's
*score* is the ``tail``-quantile of its chunks' log-densities (its least likely
stretch; each chunk is scored clipped into the flow's action range:
``chunk_log_probs``), and an episode is *flagged* when its score lies more than
``spread`` robust standard deviations (1.4826 x the median absolute deviation, at
least ``min_sigma`` nats) below the median episode's. Median
and MAD stay put while fewer than half the episodes are bad, which the scoring
flow's calibrated threshold does not: under cross-fitting its held-out calibration
episodes are the dataset's own, bad ones included, and one noisy episode among them
drags a low quantile down past every other bad one. The share of each episode's
chunks below the scoring flow's ``threshold(quantile)`` is reported beside it.
A clean dataset's flagged share is the rule's false-alarm rate (at ``spread = 3`` on
Gaussian scores 0.1 %; measured on the shipped demonstrations: ``bench/data_check.py``).
The ranking is by the score, least likely first.

NumPy and the flow (torch, zuko): this module sits in the flow's subpackage.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from imle_mpc.core.errors import InputError
from imle_mpc.core.validation import FloatArray
from imle_mpc.learn.config import FlowConfig, TrainConfig
from imle_mpc.learn.demos import DemoDataset
from imle_mpc.learn.flow.chunk_flow import ChunkFlow
from imle_mpc.learn.flow.train import train_flow
from imle_mpc.learn.pairs import build_training_pairs
from imle_mpc.learn.trained_for import TrainedFor


@dataclass(frozen=True)
class QualityRule:
    """How an episode is scored and when it is flagged (module docstring).

    Attributes:
        tail: an episode's score is this quantile of its chunks' log-densities, in [0, 1).
        spread: flagged below the median score minus this many robust standard
            deviations (> 0).
        min_sigma: the robust standard deviation is at least this (nats, > 0), so that
            near-identical episodes are not flagged for a fraction of a nat.
        quantile: the calibrated threshold ``flow.threshold(quantile)`` the reported
            unlikely share is counted against, in (0, 1).
        floor: log-density (nats) a chunk of density 0 counts as.
    """

    tail: float = 0.05
    spread: float = 3.0
    min_sigma: float = 3.0
    quantile: float = 0.05
    floor: float = -1000.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.tail < 1.0):
            raise ValueError(f"QualityRule.tail must be in [0, 1), got {self.tail!r}.")
        if not (0.0 < self.quantile < 1.0):
            raise ValueError(f"QualityRule.quantile must be in (0, 1), got {self.quantile!r}.")
        for name in ("spread", "min_sigma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"QualityRule.{name} must be finite and > 0, got {value!r}.")
        if not math.isfinite(self.floor):
            raise ValueError(f"QualityRule.floor must be finite, got {self.floor!r}.")

    def score(self, log_probs: FloatArray) -> float:
        """An episode's score from its chunks' log-densities Shape=(T,)."""
        values = np.maximum(np.asarray(log_probs, dtype=np.float64), self.floor)
        return float(np.quantile(values, self.tail, method="lower"))

    def cutoff(self, scores: FloatArray) -> float:
        """The score below which an episode is flagged, from all episodes' scores."""
        s = np.asarray(scores, dtype=np.float64)
        median = float(np.median(s))
        sigma = max(1.4826 * float(np.median(np.abs(s - median))), self.min_sigma)
        return median - self.spread * sigma


@dataclass(frozen=True)
class EpisodeQuality:
    """One episode's score.

    Attributes:
        index: the episode's index in the dataset.
        score: the rule's score (the ``tail``-quantile of its chunks' log-densities).
        mean_log_prob: mean log-density of its chunks (nats; density 0 at the rule's floor).
        min_log_prob: its least likely chunk's log-density (-inf: one at density 0).
        unlikely_share: share of its chunks below the scoring flow's calibrated threshold.
        outside_share: share of its chunks with an action outside the scoring flow's
            range (scored clipped into it: ``chunk_log_probs``).
        threshold: that threshold (``flow.threshold(rule.quantile)``).
        flagged: its score is below the report's cutoff.
        fold: the cross-fitting fold it was scored in (None: one given flow).
    """

    index: int
    score: float
    mean_log_prob: float
    min_log_prob: float
    unlikely_share: float
    outside_share: float
    threshold: float
    flagged: bool
    fold: int | None = None

    def to_dict(self) -> dict[str, Any]:
        low = self.min_log_prob
        return {
            "index": self.index,
            "score": self.score,
            "mean_log_prob": self.mean_log_prob,
            "min_log_prob": low if math.isfinite(low) else None,  # None: density 0
            "unlikely_share": self.unlikely_share,
            "outside_share": self.outside_share,
            "threshold": self.threshold,
            "flagged": self.flagged,
            "fold": self.fold,
        }


@dataclass(frozen=True)
class QualityReport:
    """Every episode's score, in dataset order, and how they were scored.

    Attributes:
        episodes: one ``EpisodeQuality`` per episode, in dataset order.
        rule: the rule they were judged by.
        cutoff: the score below which an episode is flagged (``rule.cutoff``).
        method: ``"cross_fit"`` or ``"flow"`` (one given flow).
        folds: cross-fitting folds (1 for one given flow).
        train_seconds: time spent training the cross-fitting flows.
    """

    episodes: tuple[EpisodeQuality, ...]
    rule: QualityRule
    cutoff: float
    method: str
    folds: int = 1
    train_seconds: float = 0.0

    @property
    def ranking(self) -> tuple[int, ...]:
        """Episode indices, least likely first (ascending score)."""
        order = sorted(self.episodes, key=lambda e: (e.score, e.index))
        return tuple(e.index for e in order)

    @property
    def flagged(self) -> tuple[int, ...]:
        """Indices of the flagged episodes, in dataset order."""
        return tuple(e.index for e in self.episodes if e.flagged)

    def cleaned(self, dataset: DemoDataset) -> DemoDataset:
        """``dataset`` without the flagged episodes (per-episode meta lists filtered too)."""
        keep = [e.index for e in self.episodes if not e.flagged]
        return subset(dataset, keep)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "folds": self.folds,
            "rule": asdict(self.rule),
            "cutoff": self.cutoff,
            "episodes": [e.to_dict() for e in self.episodes],
            "ranking": list(self.ranking),
            "flagged": list(self.flagged),
            "train_seconds": self.train_seconds,
        }


def subset(dataset: DemoDataset, keep: Sequence[int]) -> DemoDataset:
    """The episodes ``keep`` of ``dataset``; meta lists with one entry per episode follow.

    Raises:
        DatasetError: ``keep`` is empty.
    """
    E = len(dataset.episodes)
    meta = {
        k: [v[i] for i in keep] if isinstance(v, list) and len(v) == E else v
        for k, v in dataset.meta.items()
    }
    if "num_demos" in meta:
        meta["num_demos"] = len(keep)
    return DemoDataset(tuple(dataset.episodes[i] for i in keep), meta)


def check_flow_fits(flow: ChunkFlow, dataset: DemoDataset, where: str = "the flow") -> None:
    """Refuse a flow trained for another task, observation, control period or action box.

    Raises:
        InputError: the observation or action size differs, or what the flow was trained
            for (``TrainedFor``) differs from the dataset's ``meta``; the message names both.
    """
    fix = "train a flow on demonstrations of this task (imle-mpc train --model flow --data DATA)"
    if flow.obs_dim != dataset.obs_dim or flow.nu != dataset.nu:
        raise InputError(
            f"{where} has obs_dim={flow.obs_dim}, nu={flow.nu} but the dataset has "
            f"obs_dim={dataset.obs_dim}, nu={dataset.nu}; {fix}."
        )
    mine, theirs = flow.trained_for, TrainedFor.from_meta(dataset.meta)
    for name in ("task", "observation", "dt", "action_low", "action_high"):
        a, b = getattr(mine, name), getattr(theirs, name)
        if a is None or b is None:
            continue
        textual = name in ("task", "observation")
        if (a != b) if textual else not np.allclose(a, b, rtol=1e-9):
            raise InputError(
                f"{where} was trained for {name}={a!r} but the dataset has {name}={b!r}; {fix}."
            )


def chunk_log_probs(
    flow: ChunkFlow, dataset: DemoDataset, clip: bool = True
) -> tuple[list[FloatArray], list[FloatArray]]:
    """The flow's log-density of every chunk of every episode (one chunk per step).

    Args:
        flow: the scoring flow.
        dataset: the episodes.
        clip: score each chunk clipped into the flow's action range (the range of the
            demonstrations it was trained on). A flow's density is 0 outside that range,
            and a good episode that goes a few millinewtons past the others' extremes
            would otherwise score like noise; whether a chunk's shape is typical is the
            question. False: such chunks score -inf.

    Returns:
        ``(log_probs, outside)``: per episode Shape=(T_e,) each, the log-densities and
        whether the chunk had an entry outside the flow's action range.
    """
    pairs = build_training_pairs(dataset, flow.obs_horizon, flow.horizon)
    norm = flow.action_normalizer
    actions = pairs.actions
    outside = np.any((actions < norm.low) | (actions > norm.high), axis=(1, 2))
    if clip:
        actions = np.clip(actions, norm.low, norm.high)
    out = np.empty(len(pairs))
    for start in range(0, len(pairs), 1024):  # bounded torch batches
        stop = start + 1024
        out[start:stop] = flow.log_prob(pairs.obs[start:stop], actions[start:stop])
    ends = np.cumsum([len(ep) for ep in dataset.episodes])[:-1]
    return list(np.split(out, ends)), list(np.split(outside.astype(np.float64), ends))


def _report(
    log_probs: Sequence[FloatArray],
    outside: Sequence[FloatArray],
    thresholds: Sequence[float],
    folds: Sequence[int | None],
    rule: QualityRule,
    method: str,
    num_folds: int = 1,
    train_seconds: float = 0.0,
) -> QualityReport:
    scores = np.array([rule.score(lp) for lp in log_probs])
    cutoff = rule.cutoff(scores)
    episodes = tuple(
        EpisodeQuality(
            index=i,
            score=float(scores[i]),
            mean_log_prob=float(np.mean(np.maximum(lp, rule.floor))),
            min_log_prob=float(np.min(lp)),
            unlikely_share=float(np.mean(lp < thresholds[i])),
            outside_share=float(np.mean(outside[i])),
            threshold=float(thresholds[i]),
            flagged=bool(scores[i] < cutoff),
            fold=folds[i],
        )
        for i, lp in enumerate(log_probs)
    )
    return QualityReport(episodes, rule, cutoff, method, num_folds, train_seconds)


def score_dataset(
    flow: ChunkFlow, dataset: DemoDataset, rule: QualityRule | None = None
) -> QualityReport:
    """Score every episode of ``dataset`` with one calibrated ``flow`` (module docstring).

    Raises:
        InputError: the flow does not fit the dataset (``check_flow_fits``).
        ValueError: the flow has no calibration.
    """
    rule = QualityRule() if rule is None else rule
    check_flow_fits(flow, dataset)
    threshold = flow.threshold(rule.quantile)
    log_probs, outside = chunk_log_probs(flow, dataset)
    E = len(log_probs)
    return _report(log_probs, outside, [threshold] * E, [None] * E, rule, "flow")


def fold_assignment(dataset: DemoDataset, folds: int, seed: int) -> NDArray[np.int64]:
    """A fold per episode, Shape=(E,) int64: each route's episodes dealt round the folds
    in a seeded order, so every fold holds every route (where it has enough episodes).

    Raises:
        ValueError: fewer than 2 folds, or fewer than ``2 * folds`` episodes (each
            fold's flow needs episodes to train and calibrate on).
    """
    E = len(dataset.episodes)
    if folds < 2 or 2 * folds > E:
        raise ValueError(
            f"cross-fitting needs at least 2 folds and 2 episodes a fold; got folds={folds} "
            f"for {E} episodes (use fewer folds, or pass a flow trained on other data)."
        )
    modes = dataset.meta.get("modes")
    labels = [str(m) for m in modes] if isinstance(modes, list) and len(modes) == E else [""] * E
    rng = np.random.default_rng(seed)
    fold = np.empty(E, dtype=np.int64)
    offset = 0
    for label in sorted(set(labels)):
        members = [i for i in range(E) if labels[i] == label]
        for k, i in enumerate(rng.permutation(members)):
            fold[i] = (offset + k) % folds
        offset += len(members)
    return fold


def cross_fit(
    dataset: DemoDataset,
    folds: int = 4,
    flow_config: FlowConfig | None = None,
    train_config: TrainConfig | None = None,
    rule: QualityRule | None = None,
    progress: bool = True,
) -> QualityReport:
    """Score every episode with a flow trained on the other folds (module docstring).

    Args:
        dataset: the demonstrations to check (at least ``2 * folds`` episodes).
        folds: how many flows to train; each scores the episodes it did not see.
        flow_config: the flows' shape (default ``FlowConfig()``).
        train_config: their training (default ``CROSS_FIT_TRAIN``).
        rule: how episodes are scored and flagged.
        progress: each flow's tqdm bar.
    """
    rule = QualityRule() if rule is None else rule
    train_config = CROSS_FIT_TRAIN if train_config is None else train_config
    fold = fold_assignment(dataset, folds, train_config.seed)
    E = len(dataset.episodes)
    log_probs: list[FloatArray] = [np.empty(0)] * E
    outside: list[FloatArray] = [np.empty(0)] * E
    thresholds = [0.0] * E
    t0 = time.perf_counter()
    for f in range(folds):
        test = [int(i) for i in np.flatnonzero(fold == f)]
        train = [int(i) for i in np.flatnonzero(fold != f)]
        flow, _ = train_flow(subset(dataset, train), flow_config, train_config, progress=progress)
        threshold = flow.threshold(rule.quantile)
        lps, outs = chunk_log_probs(flow, subset(dataset, test))
        for i, lp, out in zip(test, lps, outs, strict=True):
            log_probs[i], outside[i], thresholds[i] = lp, out, threshold
    seconds = time.perf_counter() - t0
    return _report(
        log_probs, outside, thresholds, [int(f) for f in fold], rule, "cross_fit", folds, seconds
    )


CROSS_FIT_TRAIN = TrainConfig(epochs=40, warmup_steps=20)
"""The cross-fitting flows' training: a flow that only scores needs less than one that
plans (40 epochs: 8 s a fold on 10 of nav_one_obstacle's demonstrations on an idle
core, 17-43 s on the 22 of ``bench/data_check.py``'s folds beside other jobs)."""
