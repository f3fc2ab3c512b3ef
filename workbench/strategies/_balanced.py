"""Class-balanced selection: spread a batch across predicted classes, rare classes first."""

from __future__ import annotations

import numpy as np

from workbench.strategies._arrays import as_mask, as_scores, check_k, make_rng, to_numpy
from workbench.strategies._errors import StrategyError
from workbench.strategies._select import check_beta, empty_result, log_weights, with_nan
from workbench.strategies._types import ArrayLike, RngLike, SelectionResult, StochasticMode


def select_class_balanced(
    scores: ArrayLike,
    predicted: ArrayLike,
    k: int,
    *,
    num_classes: int | None = None,
    min_per_class: int = 1,
    class_counts: ArrayLike | None = None,
    labelled_mask: ArrayLike | None = None,
    mode: StochasticMode | None = None,
    beta: float = 1.0,
    rng: RngLike = None,
) -> SelectionResult:
    """Pick ``k`` unlabelled items by ``scores`` ``[N]`` spread over ``predicted`` classes ``[N]``.

    Classes are visited from rarest to most common (by ``class_counts`` ``[num_classes]``,
    e.g. labelled counts, else by how often each class is predicted over the whole pool).
    First every class gets its ``min_per_class`` best-scored items (the floor), then picks
    go round-robin, one per class per round, each the class's best remaining item, so rare
    classes are never crowded out by a common class with higher scores.

    With a stochastic ``mode`` ("power", "softmax", "softrank", as `select_stochastic`) each
    class's items are not taken best first but sampled without replacement, with weights
    from their scores (Gumbel-top-k within the class): stochastic batch acquisition that
    keeps the class quotas.
    """
    s = as_scores(scores)
    k = check_k(k)
    n = s.shape[0]
    y = to_numpy(predicted, field="predicted")
    if y.shape != (n,) or (n and (y.dtype.kind not in "iu" or y.min() < 0)):
        raise StrategyError(f"expected [{n}] non-negative class ids", field="predicted")
    y = y.astype(np.int64)
    n_cls = int(num_classes) if num_classes is not None else int(y.max(initial=-1)) + 1
    if n and y.max() >= n_cls:
        raise StrategyError(f"class id {y.max()} >= num_classes {n_cls}", field="predicted")
    if isinstance(min_per_class, bool) or min_per_class < 0:
        raise StrategyError(f"min_per_class must be >= 0, got {min_per_class}")
    if class_counts is None:
        counts = np.bincount(y, minlength=n_cls).astype(np.float64)
    else:
        counts = to_numpy(class_counts, field="class_counts").astype(np.float64)
        if counts.shape != (n_cls,):
            raise StrategyError(f"expected shape [{n_cls}]", field="class_counts")
    labelled = as_mask(labelled_mask, n)
    pool = with_nan(s, labelled)
    k = min(k, int((~labelled).sum()))
    if k == 0:
        return empty_result(pool)
    gen = make_rng(rng)
    cand = np.flatnonzero(~labelled)
    if mode is None:
        tiebreak, key = gen.random(n), s
    else:  # Gumbel-top-k: -inf (zero weight) keys last, in the noise's order
        tiebreak = np.zeros(n)
        tiebreak[cand] = gen.gumbel(size=cand.size)
        key = np.full(n, -np.inf)
        key[cand] = log_weights(s[cand], mode, check_beta(beta)) + tiebreak[cand]
    cand = cand[np.lexsort((-tiebreak[cand], -key[cand]))]  # first to take first
    queues = [cand[y[cand] == c] for c in range(n_cls)]
    order = [c for c in np.argsort(counts, kind="stable") if queues[c].size]
    taken = dict.fromkeys(order, 0)
    picks: list[int] = []

    def take(c: int) -> None:
        picks.append(int(queues[c][taken[c]]))
        taken[c] += 1

    for c in order:  # the floor
        while taken[c] < min(min_per_class, queues[c].size) and len(picks) < k:
            take(c)
    while len(picks) < k:  # round-robin
        for c in order:
            if taken[c] < queues[c].size and len(picks) < k:
                take(c)
    idx = np.asarray(picks, np.int64)
    return SelectionResult(idx, s[idx], pool)
