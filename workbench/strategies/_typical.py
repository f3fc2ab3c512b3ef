"""TypiClust (Hacohen et al. 2022): typical items of uncovered clusters, for small budgets.

With few labels, the most uncertain items tend to be outliers a weak model cannot use; picking
the *typical* item of each dense region the labels do not cover yet works better there
("Active learning on a budget: opposite strategies suit high and low budgets", ICML 2022).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.spatial import cKDTree

from workbench.strategies._arrays import (
    as_embeddings,
    as_mask,
    as_scores,
    check_k,
    check_positive,
    make_rng,
)
from workbench.strategies._errors import StrategyError
from workbench.strategies._select import empty_result, with_nan
from workbench.strategies._types import ArrayLike, RngLike, SelectionResult


def kmeans_pp_seeds(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``[k, D]`` k-means++ seeds (Arthur & Vassilvitskii 2007) from the rows of ``x`` ``[N, D]``:
    the first uniformly, each next with probability proportional to its squared distance to
    the nearest seed so far. Keeps that distance, so it costs O(k N D) (scipy's ``minit="++"``
    recomputes it from every seed: O(k^2 N D), minutes for 500 seeds in 50k rows)."""
    row_sq = np.einsum("nd,nd->n", x, x)

    def sq_dist(i: int) -> np.ndarray:  # [N] to row i, one matrix-vector product
        return np.maximum(row_sq - 2.0 * (x @ x[i]) + row_sq[i], 0.0)

    seeds = [int(rng.integers(x.shape[0]))]
    nearest = sq_dist(seeds[0])
    nearest[seeds[0]] = 0.0
    for _ in range(1, k):
        cumulative = np.cumsum(nearest)
        if cumulative[-1] > 0:
            i = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        else:
            i = int(rng.integers(x.shape[0]))
        seeds.append(min(i, x.shape[0] - 1))
        np.minimum(nearest, sq_dist(seeds[-1]), out=nearest)
        nearest[seeds[-1]] = 0.0
    return x[seeds]


def cluster_embeddings(
    embeddings: np.ndarray, num_clusters: int, rng: np.random.Generator
) -> np.ndarray:
    """``[N]`` k-means cluster of each row of ``embeddings`` ``[N, D]``: `kmeans_pp_seeds`, then
    scipy's ``kmeans2`` (10 Lloyd iterations); at most as many clusters as distinct rows."""
    x = np.ascontiguousarray(embeddings, np.float64)
    distinct = np.unique(x, axis=0).shape[0]
    num_clusters = min(num_clusters, distinct)
    if num_clusters <= 1:
        return np.zeros(x.shape[0], np.int64)
    seeds = kmeans_pp_seeds(x, num_clusters, rng)
    with warnings.catch_warnings():  # an emptied cluster is dropped below, not an error
        warnings.simplefilter("ignore")
        _, labels = kmeans2(x, seeds, minit="matrix", check_finite=False)
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


def typicality(embeddings: np.ndarray, clusters: np.ndarray, neighbours: int) -> np.ndarray:
    """``[N]`` inverse mean Euclidean distance of each row of ``embeddings`` ``[N, D]`` to its
    ``neighbours`` nearest rows of the same cluster (fewer in clusters smaller than
    ``neighbours + 1``; 0 for a cluster of one)."""
    out = np.zeros(embeddings.shape[0])
    for c in np.unique(clusters):
        members = np.flatnonzero(clusters == c)
        k = min(neighbours, members.size - 1)
        if k == 0:
            continue
        x = embeddings[members]
        dist, _ = cKDTree(x).query(x, k=k + 1)  # the first neighbour is the row itself
        out[members] = 1.0 / (dist[:, 1:].mean(axis=1) + 1e-12)
    return out


def select_typiclust(
    embeddings: ArrayLike,
    k: int,
    *,
    labelled_mask: ArrayLike | None = None,
    max_clusters: int = 500,
    neighbours: int = 20,
    min_cluster_size: int = 5,
    priority: ArrayLike | None = None,
    rng: RngLike = None,
) -> SelectionResult:
    """TypiClust on ``embeddings`` ``[N, D]`` of the pool *and* the labelled items.

    Clusters every row into ``min(labelled + k, max_clusters)`` k-means clusters, then takes
    clusters in order of fewest labelled members, clusters of at least ``min_cluster_size``
    first, largest first, and picks from each the unlabelled item of highest `typicality`;
    when every cluster has had a pick it goes round again. ``scores``: typicality of each
    pick; ``pool_scores``: typicality of every item (NaN for labelled ones).

    ``priority`` ``[N]`` (e.g. BALD): pick from each cluster the unlabelled item of highest
    priority instead, so the clusters spread the batch and the priority chooses within them;
    ``scores`` and ``pool_scores`` are then the priority's.
    """
    x = as_embeddings(embeddings)
    k = check_k(k)
    max_clusters = check_positive(max_clusters, "max_clusters")
    neighbours = check_positive(neighbours, "neighbours")
    min_cluster_size = check_positive(min_cluster_size, "min_cluster_size")
    n = x.shape[0]
    labelled = as_mask(labelled_mask, n)
    k = min(k, int((~labelled).sum()))
    if n == 0:
        return empty_result(np.zeros(0))
    chosen_by = None if priority is None else as_scores(priority, field="priority")
    if chosen_by is not None and chosen_by.shape[0] != n:
        raise StrategyError(
            f"priority has {chosen_by.shape[0]} values for {n} items", field="priority"
        )
    clusters = cluster_embeddings(
        x, min(int(labelled.sum()) + max(k, 1), max_clusters), make_rng(rng)
    )
    within = typicality(x, clusters, neighbours) if chosen_by is None else chosen_by  # [N]
    pool = with_nan(within, labelled)
    if k == 0:
        return empty_result(pool)
    sizes = np.bincount(clusters)
    covered = np.bincount(clusters, weights=labelled, minlength=sizes.size)
    ids = np.arange(sizes.size)
    order = np.lexsort((ids, -sizes, sizes < min_cluster_size, covered))
    open_ = ~labelled
    picks: list[int] = []
    while len(picks) < k:
        for c in order:
            members = np.flatnonzero((clusters == c) & open_)
            if members.size == 0:
                continue
            i = int(members[np.argmax(within[members])])
            picks.append(i)
            open_[i] = False
            if len(picks) == k:
                break
    return SelectionResult(np.asarray(picks, np.int64), within[picks].astype(np.float64), pool)
