"""Selection functions on small cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.strategies import (
    StrategyError,
    badge_embeddings,
    downsample,
    select_badge,
    select_class_balanced,
    select_cold_start,
    select_coreset,
    select_random,
    select_stochastic,
    select_top_k,
    select_typiclust,
    stochastic_distribution,
)


def test_top_k_order_and_mask() -> None:
    s = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
    r = select_top_k(s, 3)
    assert r.indices.tolist() == [1, 3, 2]
    np.testing.assert_allclose(r.scores, [0.9, 0.7, 0.5])
    mask = np.array([False, True, False, False, False])
    assert select_top_k(s, 2, labelled_mask=mask).indices.tolist() == [3, 2]


def test_top_k_breaks_ties_with_the_rng() -> None:
    s = np.zeros(50)
    picks = {tuple(select_top_k(s, 3, rng=seed).indices) for seed in range(10)}
    assert len(picks) > 1
    assert select_top_k(s, 3, rng=4).indices.tolist() == select_top_k(s, 3, rng=4).indices.tolist()


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("power", np.array([1.0, 2.0, 3.0, 4.0]) ** 2),
        ("softmax", np.exp(2 * np.array([1.0, 2.0, 3.0, 4.0]))),
        ("softrank", np.array([4.0, 3.0, 2.0, 1.0]) ** -2),
    ],
)
def test_stochastic_distribution_hand_values(mode: str, expected: np.ndarray) -> None:
    s = np.array([1.0, 2.0, 3.0, 4.0])
    p = stochastic_distribution(s, mode=mode, beta=2.0)  # type: ignore[arg-type]
    np.testing.assert_allclose(p, expected / expected.sum())


def test_stochastic_first_pick_follows_the_distribution() -> None:
    s = np.array([0.1, 0.2, 0.3, 0.4])
    expected = stochastic_distribution(s, mode="power", beta=1.0)
    gen = np.random.default_rng(0)
    firsts = [select_stochastic(s, 1, rng=gen).indices[0] for _ in range(4000)]
    freq = np.bincount(firsts, minlength=4) / 4000
    np.testing.assert_allclose(freq, expected, atol=0.03)


def test_stochastic_beta_limits() -> None:
    s = np.linspace(0.01, 1.0, 100)
    top = select_top_k(s, 10).indices
    assert sorted(select_stochastic(s, 10, beta=1e4, rng=0).indices) == sorted(top)
    picks = np.concatenate([select_stochastic(s, 10, beta=0.0, rng=i).indices for i in range(50)])
    assert np.mean(picks < 50) > 0.35  # beta = 0 is uniform: the low half is picked too


def test_stochastic_zero_weights_come_last_and_bad_inputs() -> None:
    s = np.array([0.0, 0.5, 0.0, 0.2])
    r = select_stochastic(s, 4, mode="power", rng=0)
    assert set(r.indices[:2]) == {1, 3} and set(r.indices[2:]) == {0, 2}
    with pytest.raises(StrategyError, match=">= 0"):
        select_stochastic(np.array([-0.1, 0.2]), 1, mode="power")
    with pytest.raises(StrategyError, match="mode"):
        select_stochastic(s, 1, mode="gibbs")  # type: ignore[arg-type]
    with pytest.raises(StrategyError, match="beta"):
        select_stochastic(s, 1, beta=-1.0)
    with pytest.raises(StrategyError, match="NaN"):
        select_top_k(np.array([0.1, np.nan]), 1)


def test_coreset_on_a_1d_set_picks_the_known_farthest_points() -> None:
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [5.0]])
    labelled = np.array([True, False, False, False, False, False])
    r = select_coreset(x, 3, labelled_mask=labelled)
    assert r.indices.tolist() == [4, 5, 2]  # 11 (dist 11), then 5 (dist 5), then 2 (dist 2)
    np.testing.assert_allclose(r.scores, [11.0, 5.0, 2.0])
    assert r.pool_scores is not None
    np.testing.assert_allclose(r.pool_scores[1:], [1.0, 2.0, 10.0, 11.0, 5.0])


def test_coreset_without_labels_starts_at_random_then_goes_far() -> None:
    x = np.array([[0.0], [1.0], [2.0], [10.0]])
    r = select_coreset(x, 2, rng=0)
    first = r.indices[0]
    farthest = int(np.argmax(np.abs(x[:, 0] - x[first, 0])))
    assert r.indices[1] == farthest and np.isinf(r.scores[0]) and r.pool_scores is None


def test_coreset_many_labelled_blocks() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(900, 3))
    labelled = np.zeros(900, dtype=bool)
    labelled[:600] = True  # more labelled centres than one block
    r = select_coreset(x, 1, labelled_mask=labelled)
    d = np.sqrt(((x[600:, None] - x[None, :600]) ** 2).sum(-1)).min(axis=1)
    assert r.indices[0] == 600 + int(np.argmax(d))
    assert r.scores[0] == pytest.approx(d.max())


def test_badge_embeddings_hand_value() -> None:
    g = badge_embeddings(np.array([[0.7, 0.3]]), np.array([[1.0, 2.0]]))
    np.testing.assert_allclose(g, [[-0.3, -0.6, 0.3, 0.6]])


def test_badge_embeddings_match_autograd() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(4, 3, bias=False)
    h = torch.randn(5, 4)
    probs = torch.softmax(layer(h), dim=1)
    g = badge_embeddings(probs, h)
    for i in range(5):
        layer.zero_grad()
        logits = layer(h[i : i + 1])
        loss = torch.nn.functional.cross_entropy(logits, logits.argmax(dim=1))
        loss.backward()
        assert layer.weight.grad is not None
        np.testing.assert_allclose(g[i], layer.weight.grad.reshape(-1).numpy(), atol=1e-6)


def test_badge_first_pick_is_the_largest_gradient_and_duplicates_are_fine() -> None:
    g = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 0.5], [3.0, 0.0], [3.0, 0.0]])
    r = select_badge(g, 5, rng=0)
    assert r.indices[0] == 1 and sorted(r.indices.tolist()) == [0, 1, 2, 3, 4]
    dup = np.ones((6, 3))
    assert sorted(select_badge(dup, 4, rng=1).indices.tolist()) == sorted(
        set(select_badge(dup, 4, rng=1).indices.tolist())
    )


def test_class_balanced_keeps_rare_classes() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.1, 0.05])
    predicted = np.array([0, 0, 0, 0, 0, 1, 2])
    r = select_class_balanced(scores, predicted, 3)
    assert r.indices.tolist() == [5, 6, 0]  # rarest first, then the common class
    assert select_top_k(scores, 3).indices.tolist() == [0, 1, 2]  # plain top-k drops them
    r = select_class_balanced(scores, predicted, 5)
    assert r.indices.tolist() == [5, 6, 0, 1, 2]


def test_class_balanced_floor_and_counts() -> None:
    scores = np.arange(10, dtype=float)[::-1] / 10
    predicted = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    r = select_class_balanced(
        scores, predicted, 6, min_per_class=2, class_counts=np.array([1, 50, 2])
    )
    # visits class 0 (1 labelled), then 2, then 1; floor of two each
    assert r.indices.tolist() == [0, 1, 7, 8, 4, 5]
    with pytest.raises(StrategyError):
        select_class_balanced(scores, predicted[:-1], 2)
    with pytest.raises(StrategyError):
        select_class_balanced(scores, predicted, 2, num_classes=2)


def test_class_balanced_power_keeps_the_quotas_and_samples_within_each_class() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.05, 0.15])
    predicted = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    gen = np.random.default_rng(0)
    firsts, seconds = [], []
    for _ in range(4000):
        r = select_class_balanced(scores, predicted, 4, mode="power", rng=gen)
        classes = predicted[r.indices]
        assert classes.tolist() == [1, 0, 1, 0]  # the round-robin quotas of top-k
        firsts.append(r.indices[0])
        seconds.append(r.indices[1])
    # within a class the first pick follows power sampling over that class alone
    rare = np.bincount(firsts, minlength=8)[6:] / 4000
    np.testing.assert_allclose(rare, [0.25, 0.75], atol=0.03)
    common = np.bincount(seconds, minlength=6) / 4000
    np.testing.assert_allclose(common, scores[:6] / scores[:6].sum(), atol=0.03)


def test_class_balanced_power_takes_zero_scores_last_and_checks_its_inputs() -> None:
    scores = np.array([0.0, 0.5, 0.0, 0.2])
    r = select_class_balanced(scores, np.zeros(4, np.int64), 4, mode="power", rng=0)
    assert set(r.indices[:2].tolist()) == {1, 3}
    with pytest.raises(StrategyError, match="beta"):
        select_class_balanced(scores, np.zeros(4, np.int64), 1, mode="power", beta=-1.0)
    with pytest.raises(StrategyError, match="mode"):
        select_class_balanced(scores, np.zeros(4, np.int64), 1, mode="gibbs")  # type: ignore[arg-type]


def test_downsample_and_cold_start() -> None:
    img = np.arange(16, dtype=float).reshape(1, 4, 4)
    np.testing.assert_allclose(downsample(img, 2), [[[2.5, 4.5], [10.5, 12.5]]])
    assert downsample(np.zeros((2, 5, 5, 5)), 2).shape == (2, 2, 2, 2)
    with pytest.raises(ValueError):
        downsample(img, 8)
    # four distinct "images" plus near-duplicates of the first: k-center picks spread out
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 8, 8)) * 5
    images = np.concatenate([base, base[:1] + rng.normal(size=(6, 8, 8)) * 0.01])
    r = select_cold_start(images, 4, method="kcenter", factor=2, rng=0)
    groups = {min(int(i), 4) if i < 4 else 0 for i in r.indices}
    assert groups == {0, 1, 2, 3}
    rr = select_cold_start(images, 4, method="random", rng=0)
    assert len(set(rr.indices.tolist())) == 4
    with pytest.raises(ValueError, match="random, kcenter, typical"):
        select_cold_start(images, 2, method="other")


def test_typical_cold_start_is_typiclust_on_the_features() -> None:
    rng = np.random.default_rng(3)
    feats = np.concatenate([rng.normal(size=(30, 4)), rng.normal(size=(12, 4)) + 8])
    labelled = np.zeros(42, bool)
    labelled[:2] = True
    r = select_cold_start(feats, 3, method="typical", labelled_mask=labelled, rng=4)
    by_hand = select_typiclust(feats, 3, labelled_mask=labelled, rng=4)
    assert r.indices.tolist() == by_hand.indices.tolist()
    assert not set(r.indices.tolist()) & {0, 1}


def test_select_random() -> None:
    mask = np.zeros(10, dtype=bool)
    mask[:5] = True
    r = select_random(10, 10, labelled_mask=mask, rng=3)
    assert sorted(r.indices.tolist()) == [5, 6, 7, 8, 9]
    assert (
        select_random(10, 3, rng=3).indices.tolist() == select_random(10, 3, rng=3).indices.tolist()
    )
