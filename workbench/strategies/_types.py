"""Shared types: array inputs, random generators and the selection result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Union

import numpy as np

if TYPE_CHECKING:
    import torch

ArrayLike = Union[np.ndarray, "torch.Tensor"]
"""A numpy array or a torch tensor (moved to CPU and converted on entry)."""

RngLike = np.random.Generator | int | None
"""A numpy ``Generator``, a seed, or ``None`` for fresh OS entropy."""

Reduction = Literal["none", "mean", "foreground_weighted", "top_percentile"]
"""How a per-voxel map ``[N, *spatial]`` becomes one score per item ``[N]``."""

UncertaintyKind = Literal["entropy", "bald", "margin", "least_confidence"]

StochasticMode = Literal["power", "softmax", "softrank"]


@dataclass(frozen=True)
class SelectionResult:
    """What a selection returns.

    ``indices``: ``[k']`` int64 positions in the given pool arrays, in pick order
    (``k' = min(k, number of unlabelled items)``); the caller maps them to item ids.
    ``scores``: ``[k']`` float64 acquisition value of each pick when it was picked.
    ``pool_scores``: ``[N]`` float64 per-item score for the whole pool (NaN for labelled
    items) when the strategy has one, else ``None``; suitable for writing to a datastore.
    """

    indices: np.ndarray
    scores: np.ndarray
    pool_scores: np.ndarray | None = field(default=None)

    def __len__(self) -> int:
        return int(self.indices.shape[0])
