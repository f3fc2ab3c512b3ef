"""Selection from one score per item ``[N]``: top-k and stochastic batch acquisition."""

from __future__ import annotations

import numpy as np

from workbench.strategies._arrays import as_mask, as_scores, check_k, make_rng
from workbench.strategies._errors import StrategyError
from workbench.strategies._types import ArrayLike, RngLike, SelectionResult, StochasticMode

_MODES = ("power", "softmax", "softrank")


def empty_result(pool_scores: np.ndarray | None = None) -> SelectionResult:
    """A result with no picks."""
    return SelectionResult(np.zeros(0, np.int64), np.zeros(0, np.float64), pool_scores)


def with_nan(scores: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """``scores`` ``[N]`` as float64 with NaN at labelled positions."""
    out = np.array(scores, dtype=np.float64)
    out[labelled] = np.nan
    return out


def _top_by_key(key: np.ndarray, k: int, tiebreak: np.ndarray) -> np.ndarray:
    # positions (1 <= k) of the k largest keys, ties (and -inf) broken by the larger tiebreak
    if k >= key.shape[0]:
        return np.lexsort((-tiebreak, -key))
    part = np.argpartition(-key, k - 1)[:k]
    # ties at the boundary must be resolved by tiebreak too: take every tied candidate
    edge = key[part].min()
    pool = np.union1d(part, np.flatnonzero(key == edge))
    order = np.lexsort((-tiebreak[pool], -key[pool]))
    return pool[order[:k]]


def select_top_k(
    scores: ArrayLike,
    k: int,
    *,
    labelled_mask: ArrayLike | None = None,
    rng: RngLike = None,
) -> SelectionResult:
    """The ``k`` highest-scoring unlabelled items of ``scores`` ``[N]`` (ties broken by ``rng``)."""
    s = as_scores(scores)
    k = check_k(k)
    labelled = as_mask(labelled_mask, s.shape[0])
    cand = np.flatnonzero(~labelled)
    k = min(k, cand.size)
    pool = with_nan(s, labelled)
    if k == 0:
        return empty_result(pool)
    tiebreak = make_rng(rng).random(cand.size)
    picks = cand[_top_by_key(s[cand], k, tiebreak)]
    return SelectionResult(picks.astype(np.int64), s[picks], pool)


def select_random(
    n_items: int,
    k: int,
    *,
    labelled_mask: ArrayLike | None = None,
    rng: RngLike = None,
) -> SelectionResult:
    """``k`` unlabelled items of a pool of ``n_items``, uniformly without replacement.

    ``scores`` and ``pool_scores`` are the uniform draws that ordered the items.
    """
    if isinstance(n_items, bool) or not isinstance(n_items, int | np.integer) or n_items < 0:
        raise StrategyError(f"n_items must be an integer >= 0, got {n_items!r}", field="n_items")
    draws = make_rng(rng).random(int(n_items))
    return select_top_k(draws, k, labelled_mask=labelled_mask, rng=0)


def log_weights(s: np.ndarray, mode: StochasticMode, beta: float) -> np.ndarray:
    # [M] -> [M]: log of the unnormalised sampling weight of each candidate
    if mode == "power":
        if s.size and s.min() < 0:
            raise StrategyError("power sampling needs scores >= 0", field="scores")
        with np.errstate(divide="ignore"):
            return beta * np.log(s)
    if mode == "softmax":
        return beta * s
    if mode == "softrank":
        ranks = np.empty(s.size)
        ranks[np.argsort(-s, kind="stable")] = np.arange(1, s.size + 1)  # 1 = best
        return -beta * np.log(ranks)
    raise StrategyError(f"unknown mode {mode!r}; use one of {_MODES}", field="mode")


def check_beta(beta: float) -> float:
    """``beta`` as a float; refused unless a finite number >= 0."""
    if (
        isinstance(beta, bool)
        or not isinstance(beta, int | float | np.number)
        or not np.isfinite(beta)
        or beta < 0
    ):
        raise StrategyError(f"beta must be a finite number >= 0, got {beta!r}", field="beta")
    return float(beta)


def stochastic_distribution(
    scores: ArrayLike, *, mode: StochasticMode = "power", beta: float = 1.0
) -> np.ndarray:
    """``[N]`` probability of each item being the first pick of :func:`select_stochastic`.

    power: ``p ∝ s**beta``; softmax: ``p ∝ exp(beta * s)``; softrank: ``p ∝ rank**-beta``.
    """
    logw = log_weights(as_scores(scores), mode, check_beta(beta))
    if logw.size == 0:
        return logw
    top = logw.max()
    if not np.isfinite(top):  # every weight is zero: uniform
        return np.full(logw.size, 1.0 / logw.size)
    w = np.exp(logw - top)
    return w / w.sum()


def select_stochastic(
    scores: ArrayLike,
    k: int,
    *,
    mode: StochasticMode = "power",
    beta: float = 1.0,
    labelled_mask: ArrayLike | None = None,
    rng: RngLike = None,
) -> SelectionResult:
    """Stochastic batch acquisition (Kirsch et al. 2023) over ``scores`` ``[N]``.

    Samples ``k`` unlabelled items without replacement with the Gumbel-top-k trick from
    :func:`stochastic_distribution`. ``beta`` is the inverse temperature (baal's
    ``temperature = 1 / beta``): ``beta = 0`` is uniform, large ``beta`` approaches top-k.
    Items with zero weight (score 0 under ``"power"``) come last, in random order.
    """
    s = as_scores(scores)
    k = check_k(k)
    beta = check_beta(beta)
    labelled = as_mask(labelled_mask, s.shape[0])
    cand = np.flatnonzero(~labelled)
    k = min(k, cand.size)
    pool = with_nan(s, labelled)
    logw = log_weights(s[cand], mode, beta)  # validates mode even when k == 0
    if k == 0:
        return empty_result(pool)
    gen = make_rng(rng)
    gumbel = gen.gumbel(size=cand.size)
    key = logw + gumbel  # -inf stays -inf: zero-weight items are ordered by the noise alone
    picks = cand[_top_by_key(key, k, gumbel)]
    return SelectionResult(picks.astype(np.int64), s[picks], pool)
