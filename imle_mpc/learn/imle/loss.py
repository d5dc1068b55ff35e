"""The rejection-sampling IMLE objective of IMLE Policy, one batch at a time."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class RSIMLEStats:
    """What one RS-IMLE evaluation did.

    Attributes:
        loss: mean L2 distance from each kept data point to its nearest
            remaining candidate (0-dim tensor with grad; exactly 0 and without
            grad when every point was skipped).
        loss_sum: sum of those distances (float), for exact epoch averages.
        num_points: data points in the batch.
        num_used: points that kept at least one candidate (averaged in).
        num_skipped: points whose every candidate was within epsilon (not averaged in).
        num_rejected: candidates discarded for lying within epsilon.
        num_candidates: all candidates (points * m).
    """

    loss: Tensor
    loss_sum: float
    num_points: int
    num_used: int
    num_skipped: int
    num_rejected: int
    num_candidates: int


def rs_imle_loss(candidates: Tensor, targets: Tensor, epsilon: float) -> RSIMLEStats:
    """Rejection-sampling IMLE loss.

    For each data point, candidates within ``epsilon`` (L2 over the flattened,
    normalised chunk) are rejected; the nearest of the remaining ones is pulled
    onto the data point by its L2 distance. A point with no remaining candidate
    is skipped: it is counted, and neither averaged in nor given a gradient.

    Args:
        candidates: generated chunks, Shape=(B, m, D) (D = H*nu, normalised).
        targets: demonstrated chunks, Shape=(B, D) (normalised).
        epsilon: rejection radius (>= 0).

    Returns:
        ``RSIMLEStats`` with the loss and the counts.
    """
    if candidates.ndim != 3 or targets.shape != (candidates.shape[0], candidates.shape[2]):
        raise ValueError(
            f"rs_imle_loss needs candidates Shape=(B, m, D) and targets Shape=(B, D), got "
            f"{tuple(candidates.shape)} and {tuple(targets.shape)}."
        )
    B, m, _ = candidates.shape
    dist = torch.linalg.vector_norm(candidates - targets[:, None, :], dim=-1)  # (B, m)
    rejected = dist.detach() <= epsilon
    masked = dist.detach().masked_fill(rejected, torch.inf)
    nearest = masked.argmin(dim=1)  # (B,)
    used = ~rejected.all(dim=1)  # (B,)
    num_used = int(used.sum())
    if num_used:
        chosen = dist.gather(1, nearest[:, None])[:, 0][used]
        loss = chosen.mean()
        loss_sum = float(chosen.detach().sum())
    else:
        loss = torch.zeros((), device=candidates.device)
        loss_sum = 0.0
    return RSIMLEStats(
        loss=loss,
        loss_sum=loss_sum,
        num_points=B,
        num_used=num_used,
        num_skipped=B - num_used,
        num_rejected=int(rejected.sum()),
        num_candidates=B * m,
    )
