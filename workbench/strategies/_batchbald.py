"""Greedy BatchBALD (Kirsch et al. 2019) with exact or sampled joint entropies.

The marginal gain of candidate ``x`` given the batch ``B`` picked so far is
``I(y_B, y_x; w) - I(y_B; w) = E_{y_B}[H(y_x | y_B)] - E_w[H(y_x | w)]``. Each joint label
configuration ``y_B`` is carried as its posterior over the ``T`` MC samples (``Q`` ``[M, T]``)
and its probability (``w`` ``[M]``): every configuration while there are at most
``max_exact_configs`` of them (exact), else ``num_samples`` configurations drawn from the joint
by ancestral sampling (the sampled estimator of the paper). The gain is submodular, so
candidates are re-scored lazily (Minoux): only those whose previous gain (initially BALD)
could still beat the best gain found in this round.
"""

from __future__ import annotations

import numpy as np

from workbench.strategies._arrays import (
    as_mask,
    as_probs,
    check_k,
    check_positive,
    make_rng,
    xlogx,
)
from workbench.strategies._select import empty_result, with_nan
from workbench.strategies._types import ArrayLike, RngLike, SelectionResult


class _Joint:
    """Joint label configurations of the batch: posteriors ``Q`` ``[M, T]``, weights ``[M]``."""

    def __init__(self, n_mc: int, dtype: np.dtype, max_exact: int, num_samples: int):
        self.q = np.full((1, n_mc), 1.0 / n_mc, dtype=dtype)  # [M, T]
        self.w = np.ones(1, dtype=np.float64)  # [M], sums to 1
        self.exact = True
        self.max_exact = max_exact
        self.num_samples = num_samples

    def expected_entropy(self, px_t: np.ndarray) -> np.ndarray:
        """``E_{y_B}[H(y_x | y_B)]`` for candidates ``px_t`` ``[T, B, C]`` -> ``[B]``."""
        n_mc, b, c = px_t.shape
        pred = self.q @ px_t.reshape(n_mc, b * c)  # [M, B * C]: p(y_x | y_B)
        plogp = xlogx(pred)  # [M, B * C]
        # weight over configurations first (a BLAS mat-vec), then sum the C classes
        return -(self.w.astype(plogp.dtype) @ plogp).reshape(b, c).sum(axis=1)

    def add(self, px: np.ndarray, rng: np.random.Generator) -> None:
        """Condition on a new batch member with probabilities ``px`` ``[T, C]``."""
        m, c = self.q.shape[0], px.shape[1]
        pred = self.q @ px  # [M, C]: p(y_x | y_B)
        if self.exact and m * c <= self.max_exact:
            w = (self.w[:, None] * pred).reshape(-1)  # [M * C]
            q = (self.q[:, None, :] * px.T[None]).reshape(m * c, -1)  # [M * C, T]
            keep = w > 0
            self.w, self.q = w[keep] / w[keep].sum(), q[keep]
        else:
            if self.exact:  # switch to sampling: draw configurations from the exact joint
                rows = rng.choice(m, size=self.num_samples, p=self.w / self.w.sum())
                self.q, pred = self.q[rows], pred[rows]
                self.w = np.full(self.num_samples, 1.0 / self.num_samples)
                self.exact = False
            cdf = np.cumsum(pred, axis=1)
            u = rng.random(pred.shape[0])[:, None] * cdf[:, -1:]
            y = np.minimum((u > cdf).sum(axis=1), c - 1)  # [M] sampled labels
            self.q = self.q * px[:, y].T  # [M, T]
        self.q /= self.q.sum(axis=1, keepdims=True)


def select_batchbald(
    probs: ArrayLike,
    k: int,
    *,
    labelled_mask: ArrayLike | None = None,
    num_samples: int = 1000,
    max_exact_configs: int = 1024,
    chunk_size: int = 64,
    rng: RngLike = None,
) -> SelectionResult:
    """Greedy BatchBALD batch of ``k`` items from MC probabilities ``probs`` ``[N, T, C]``.

    Exact while the batch has at most ``max_exact_configs`` joint label configurations, then
    a ``num_samples``-configuration Monte-Carlo estimate. ``scores`` are the marginal gains
    (nats) at pick time; ``pool_scores`` is BALD. Classification only (no spatial axes).
    """
    p = as_probs(probs, require_mc=True)  # [N, T, C]
    k = check_k(k)
    num_samples = check_positive(num_samples, "num_samples")
    max_exact = check_positive(max_exact_configs, "max_exact_configs")
    chunk_size = check_positive(chunk_size, "chunk_size")
    n, n_mc, _ = p.shape
    labelled = as_mask(labelled_mask, n)
    cond_entropy = -xlogx(p).sum(axis=2).mean(axis=1)  # [N]: E_w H(y | w)
    bald_scores = np.maximum(-xlogx(p.mean(axis=1)).sum(axis=1) - cond_entropy, 0.0)  # [N]
    pool = with_nan(bald_scores, labelled)
    k = min(k, int((~labelled).sum()))
    if k == 0:
        return empty_result(pool)
    gen = make_rng(rng)
    p_t = np.ascontiguousarray(p.transpose(1, 0, 2))  # [T, N, C]
    joint = _Joint(n_mc, p.dtype, max_exact, num_samples)
    bound = np.where(labelled, -np.inf, bald_scores + 1e-12)  # [N] upper bound on the gain
    picks: list[int] = []
    gains: list[float] = []
    for _ in range(k):
        fresh = np.zeros(n, dtype=bool)  # re-scored in this round
        best, best_gain, size = -1, -np.inf, chunk_size
        while True:
            open_bound = np.where(fresh, -np.inf, bound)
            m = min(size, n)
            top = np.argpartition(-open_bound, m - 1)[:m] if m < n else np.arange(n)
            top = top[np.isfinite(open_bound[top])]
            if top.size == 0:
                break
            gain = joint.expected_entropy(p_t[:, top]) - cond_entropy[top]  # [B]
            bound[top] = gain
            fresh[top] = True
            i = int(np.argmax(gain))
            if gain[i] > best_gain or best < 0:
                best, best_gain = int(top[i]), float(gain[i])
            open_bound[top] = -np.inf
            if best_gain >= open_bound.max():
                break
            size *= 2
        picks.append(best)
        gains.append(best_gain)
        bound[best] = -np.inf
        joint.add(p_t[:, best], gen)
    return SelectionResult(np.asarray(picks, np.int64), np.asarray(gains, np.float64), pool)
