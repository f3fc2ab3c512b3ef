"""Random pools shared by the strategy tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def softmax(logits: np.ndarray, axis: int) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def mc_probs(
    n: int, t: int, c: int, *spatial: int, seed: int = 0, scale: float = 2.0
) -> np.ndarray:
    """``[N, T, C, *spatial]`` MC probabilities: an item logit plus per-sample noise."""
    rng = np.random.default_rng(seed)
    item = rng.normal(size=(n, 1, c, *spatial)) * scale
    noise = rng.normal(size=(n, t, c, *spatial)) * rng.uniform(
        0.1, 2.0, size=(n, 1, 1, *([1] * len(spatial)))
    )
    return softmax(item + noise, axis=2)


@dataclass(frozen=True)
class Pool:
    probs: np.ndarray  # [N, T, C]
    embeddings: np.ndarray  # [N, D]
    labelled_mask: np.ndarray  # [N] bool

    @property
    def n(self) -> int:
        return int(self.probs.shape[0])


def make_pool(
    n: int = 40, t: int = 6, c: int = 3, d: int = 5, n_labelled: int = 8, seed: int = 0
) -> Pool:
    rng = np.random.default_rng(seed)
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=n_labelled, replace=False)] = True
    return Pool(mc_probs(n, t, c, seed=seed), rng.normal(size=(n, d)), mask)
