"""TypiClust against hand-computed typicality, cluster order and coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.vq import kmeans2

from workbench.strategies import (
    StrategyError,
    get_strategy,
    select_typiclust,
    typicality,
)
from workbench.strategies._typical import kmeans_pp_seeds


def blob(centre: tuple[float, float], n: int, seed: int, spread: float = 0.3) -> np.ndarray:
    return np.asarray(centre) + np.random.default_rng(seed).normal(size=(n, 2)) * spread


def most_central(points: np.ndarray) -> int:
    """Brute force: the row with the smallest mean distance to every other row."""
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    return int(np.argmin(d.sum(axis=1) / (len(points) - 1)))


def test_typicality_by_hand() -> None:
    x = np.array([[0.0], [1.0], [3.0], [10.0], [20.0]])
    clusters = np.array([0, 0, 0, 1, 2])
    # nearest neighbour in the cluster: 0 -> 1 (1), 1 -> 0 (1), 3 -> 1 (2); 10 and 20 alone
    np.testing.assert_allclose(typicality(x, clusters, neighbours=1), [1, 1, 0.5, 0, 0])
    # both others: 0 -> (1 + 3) / 2, 1 -> (1 + 2) / 2, 3 -> (3 + 2) / 2
    np.testing.assert_allclose(
        typicality(x, clusters, neighbours=5), [1 / 2, 1 / 1.5, 1 / 2.5, 0, 0]
    )


def test_one_typical_pick_per_blob_largest_first() -> None:
    sizes = (10, 25, 15)
    blobs = [blob((0, 0), 10, 1), blob((20, 0), 25, 2), blob((0, 20), 15, 3)]
    x = np.concatenate(blobs)
    starts = np.cumsum((0, *sizes))
    r = select_typiclust(x, 3, neighbours=50, rng=0)
    expected = [starts[b] + most_central(blobs[b]) for b in (1, 2, 0)]  # by size, descending
    assert r.indices.tolist() == expected
    assert r.pool_scores is not None
    np.testing.assert_allclose(r.scores, r.pool_scores[r.indices])


def test_the_blob_the_labels_cover_comes_last() -> None:
    big, small = blob((0, 0), 30, 4), blob((20, 20), 10, 5)
    x = np.concatenate([big, small])
    labelled = np.zeros(40, bool)
    labelled[0] = True  # one label in the big blob: only the small one is uncovered
    r = select_typiclust(x, 1, labelled_mask=labelled, neighbours=50, rng=0)
    assert r.indices.tolist() == [30 + most_central(small)]
    assert r.pool_scores is not None and np.isnan(r.pool_scores[0])
    # without that label the big blob would come first
    assert select_typiclust(x, 1, max_clusters=2, neighbours=50, rng=0).indices[0] < 30


def test_small_clusters_after_large_ones_and_round_again() -> None:
    a, b, outliers = blob((0, 0), 20, 6), blob((30, 0), 12, 7), np.array([[100.0, 100.0]] * 2)
    x = np.concatenate([a, b, outliers])
    r = select_typiclust(x, 5, max_clusters=3, min_cluster_size=5, neighbours=50, rng=0)
    in_a, in_b = r.indices < 20, (r.indices >= 20) & (r.indices < 32)
    # a, b, then the 2-item outlier cluster, then round again: a, b
    assert in_a.tolist() == [True, False, False, True, False]
    assert in_b.tolist() == [False, True, False, False, True]
    assert r.indices[2] >= 32
    # second picks are the next most typical of their blobs
    assert r.scores[3] <= r.scores[0] and r.scores[4] <= r.scores[1]


def test_identical_rows_and_tiny_pools() -> None:
    r = select_typiclust(np.ones((6, 3)), 4, rng=0)
    assert sorted(r.indices.tolist()) == sorted(set(r.indices.tolist()))
    assert len(r) == 4
    assert len(select_typiclust(np.zeros((1, 2)), 3, rng=0)) == 1


def test_deterministic_under_a_seed_and_registered() -> None:
    x = np.random.default_rng(0).normal(size=(200, 8))
    mask = np.zeros(200, bool)
    mask[:30] = True
    s = get_strategy("typiclust", max_clusters=20)
    first = s(k=10, embeddings=x, labelled_mask=mask, rng=3)
    again = s(k=10, embeddings=x, labelled_mask=mask, rng=3)
    assert first.indices.tolist() == again.indices.tolist()
    assert not mask[first.indices].any()
    assert {"embeddings", "labelled_items"} == s.needs


@pytest.mark.parametrize("field", ["max_clusters", "neighbours", "min_cluster_size"])
def test_bad_parameters_name_the_field(field: str) -> None:
    with pytest.raises(StrategyError, match=field):
        select_typiclust(np.zeros((4, 2)), 1, **{field: 0})  # type: ignore[arg-type]
    with pytest.raises(StrategyError, match=field):
        get_strategy("typiclust", **{field: 2.5})


def test_kmeans_pp_seeds_are_distinct_rows_spread_over_the_blobs() -> None:
    blobs = [blob((0, 0), 40, 8), blob((50, 0), 5, 9), blob((0, 50), 5, 10)]
    x = np.concatenate(blobs)
    seeds = kmeans_pp_seeds(x, 3, np.random.default_rng(0))
    rows = [int(np.flatnonzero((x == s).all(axis=1))[0]) for s in seeds]
    assert len(set(rows)) == 3
    # squared-distance sampling reaches the two small far blobs despite their 10 of 50 rows
    assert sorted(0 if r < 40 else 1 if r < 45 else 2 for r in rows) == [0, 1, 2]
    again = kmeans_pp_seeds(x, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(seeds, again)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_pp_seeds_draw_as_scipys_kmeans_plus_plus(seed: int) -> None:
    # the same algorithm and random draws as scipy's kmeans2(minit="++"), at O(k N D)
    x = np.random.default_rng(seed).normal(size=(300, 6))
    centres, labels = kmeans2(x, 12, minit="++", seed=np.random.default_rng(seed))
    ours = kmeans_pp_seeds(x, 12, np.random.default_rng(seed))
    again, labels_again = kmeans2(x, ours, minit="matrix")
    np.testing.assert_array_equal(labels, labels_again)
    np.testing.assert_allclose(centres, again)


def test_priority_picks_within_the_clusters_typicality_would_take() -> None:
    sizes = (10, 25, 15)
    blobs = [blob((0, 0), 10, 1), blob((20, 0), 25, 2), blob((0, 20), 15, 3)]
    x = np.concatenate(blobs)
    starts = np.cumsum((0, *sizes))
    priority = np.random.default_rng(9).random(50)
    r = select_typiclust(x, 3, neighbours=50, priority=priority, rng=0)
    # the clusters' order is TypiClust's (by size); within each, the highest priority
    expected = [starts[b] + int(np.argmax(priority[starts[b] : starts[b + 1]])) for b in (1, 2, 0)]
    assert r.indices.tolist() == expected
    np.testing.assert_allclose(r.scores, priority[expected])
    assert r.pool_scores is not None
    np.testing.assert_allclose(r.pool_scores, priority)


def test_typiclust_bald_takes_the_most_uncertain_of_each_uncovered_cluster() -> None:
    big, small = blob((0, 0), 30, 4), blob((20, 20), 10, 5)
    x = np.concatenate([big, small])
    labelled = np.zeros(40, bool)
    labelled[0] = True  # the big blob is covered: the small one first
    # [N, T=2, C=2]: item 35 disagrees across samples (BALD log 2), every other item agrees
    probs = np.tile(np.array([[0.9, 0.1], [0.9, 0.1]]), (40, 1, 1))
    probs[35] = [[1.0, 0.0], [0.0, 1.0]]
    probs[12] = [[0.99, 0.01], [0.01, 0.99]]  # the big blob's most uncertain
    s = get_strategy("typiclust_bald", max_clusters=2, neighbours=50)
    assert s.needs == {"embeddings", "labelled_items", "mc_probs"}
    r = s(k=2, probs=probs, embeddings=x, labelled_mask=labelled, rng=0)
    assert r.indices.tolist() == [35, 12]
    np.testing.assert_allclose(r.scores[0], np.log(2), rtol=1e-6)


def test_bad_priority_names_the_field() -> None:
    with pytest.raises(StrategyError, match="priority"):
        select_typiclust(np.zeros((4, 2)), 1, priority=np.zeros(3))
    with pytest.raises(StrategyError, match="priority"):
        select_typiclust(np.zeros((4, 2)), 1, priority=np.array([0.0, np.nan, 0.0, 0.0]))
    with pytest.raises(StrategyError, match="kind"):
        get_strategy("typiclust", kind="variance")
