"""Scores on hand-computed cases, segmentation maps and reductions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from strategy_helpers import mc_probs

from workbench.strategies import (
    InvalidProbabilitiesError,
    StrategyError,
    bald,
    entropy,
    get_strategy,
    least_confidence,
    margin,
    moment_scores,
    moment_uncertainty_map,
    random_scores,
    reduce_map,
    uncertainty_map,
)


def test_entropy_hand_values() -> None:
    probs = np.array([[0.5, 0.5], [1.0, 0.0], [0.25, 0.75]])  # [N=3, C=2]
    expected = [math.log(2), 0.0, -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))]
    np.testing.assert_allclose(entropy(probs), expected, atol=1e-12)
    np.testing.assert_allclose(entropy(np.full((1, 4), 0.25)), [math.log(4)])


def test_entropy_is_of_the_mean_prediction() -> None:
    probs = np.array([[[1.0, 0.0], [0.0, 1.0]]])  # [N=1, T=2, C=2]: confident, disagreeing
    np.testing.assert_allclose(entropy(probs), [math.log(2)])
    np.testing.assert_allclose(bald(probs), [math.log(2)])  # all of it epistemic


def test_bald_of_identical_samples_is_zero() -> None:
    one = np.array([0.2, 0.3, 0.5])
    probs = np.tile(one, (4, 7, 1))  # [N=4, T=7, C=3]
    np.testing.assert_allclose(bald(probs), 0.0, atol=1e-12)
    assert entropy(probs)[0] == pytest.approx(-(one * np.log(one)).sum())


def test_bald_hand_value() -> None:
    probs = np.array([[[0.9, 0.1], [0.5, 0.5]]])  # mean [0.7, 0.3]
    h_mean = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))
    h_each = (-(0.9 * math.log(0.9) + 0.1 * math.log(0.1)) + math.log(2)) / 2
    np.testing.assert_allclose(bald(probs), [h_mean - h_each])


def test_margin_and_least_confidence_hand_values() -> None:
    probs = np.array([[0.6, 0.3, 0.1], [0.34, 0.33, 0.33], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(margin(probs), [1 - 0.3, 1 - 0.01, 0.0])
    np.testing.assert_allclose(least_confidence(probs), [0.4, 0.66, 0.0])


def test_higher_is_more_uncertain() -> None:
    sure, unsure = [0.98, 0.01, 0.01], [0.4, 0.35, 0.25]
    probs = np.array([sure, unsure])
    for fn in (entropy, margin, least_confidence):
        s = fn(probs)
        assert s[1] > s[0]


def test_margin_needs_two_classes() -> None:
    with pytest.raises(InvalidProbabilitiesError, match="two classes"):
        margin(np.ones((3, 1)))


def test_bald_needs_mc_axis() -> None:
    with pytest.raises(InvalidProbabilitiesError, match="Monte-Carlo"):
        bald(np.full((3, 2), 0.5))


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.array([[0.5, np.nan]]), "NaN"),
        (np.array([[1.5, -0.5]]), r"\[0, 1\]"),
        (np.array([[0.2, 0.2]]), "sum to 1"),
        (np.full((2, 2, 2, 2), 0.5), "shape"),
        (np.array([0.5, 0.5]), "shape"),
        (np.array([["a", "b"]]), "numeric"),
    ],
)
def test_rejects_invalid_probs(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        entropy(bad)


def test_torch_and_float32_inputs() -> None:
    p = mc_probs(10, 4, 3).astype(np.float32)
    np.testing.assert_allclose(
        bald(torch.from_numpy(p)), bald(p.astype(np.float64)), rtol=1e-4, atol=1e-6
    )
    assert entropy(p).dtype == np.float32  # a large float32 map stays float32


def test_segmentation_maps_and_reductions() -> None:
    p = mc_probs(3, 5, 2, 4, 6, seed=1)  # [N, T, C, H, W]
    for kind in ("entropy", "bald", "margin", "least_confidence"):
        umap = uncertainty_map(p, kind, spatial_dims=2)
        assert umap.shape == (3, 4, 6)
        fn = {
            "entropy": entropy,
            "bald": bald,
            "margin": margin,
            "least_confidence": least_confidence,
        }[kind]
        np.testing.assert_allclose(fn(p, spatial_dims=2, reduction="none"), umap)
        np.testing.assert_allclose(fn(p, spatial_dims=2), umap.mean(axis=(1, 2)))
    # deterministic segmentation [N, C, H, W]
    assert entropy(p[:, 0], spatial_dims=2).shape == (3,)
    # 2D MC and 3D deterministic arrays have the same ndim: spatial_dims disambiguates
    vol = mc_probs(3, 1, 2, 3, 4, 6)[:, 0]  # [N, C, D, H, W]
    assert uncertainty_map(vol, "entropy", spatial_dims=3).shape == (3, 3, 4, 6)
    with pytest.raises(InvalidProbabilitiesError, match="sum to 1"):
        uncertainty_map(vol, "entropy", spatial_dims=2)


def test_reduce_map_hand_values() -> None:
    umap = np.array([[[0.0, 1.0], [2.0, 3.0]], [[4.0, 4.0], [4.0, 4.0]]])  # [N=2, 2, 2]
    np.testing.assert_allclose(reduce_map(umap, "mean"), [1.5, 4.0])
    np.testing.assert_allclose(reduce_map(umap, "top_percentile", q=50), [2.5, 4.0])
    np.testing.assert_allclose(reduce_map(umap, "top_percentile", q=1), [3.0, 4.0])  # >= 1 voxel
    np.testing.assert_allclose(reduce_map(umap, "top_percentile", q=100), [1.5, 4.0])
    fg = np.array([[[0.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    np.testing.assert_allclose(reduce_map(umap, "foreground_weighted", foreground=fg), [2.5, 0.0])
    with pytest.raises(StrategyError):
        reduce_map(umap, "foreground_weighted")
    with pytest.raises(StrategyError):
        reduce_map(umap, "none")
    with pytest.raises(StrategyError):
        reduce_map(umap, "top_percentile", q=0)


def test_foreground_weighted_uses_predicted_foreground() -> None:
    # background (class 0) is certain on the left column, foreground uncertain on the right
    p = np.zeros((1, 2, 2, 2))  # [N, C, H, W]
    p[0, 0, :, 0], p[0, 1, :, 0] = 1.0, 0.0
    p[0, 0, :, 1], p[0, 1, :, 1] = 0.4, 0.6
    h = -(0.4 * math.log(0.4) + 0.6 * math.log(0.6))
    assert entropy(p, spatial_dims=2, reduction="foreground_weighted")[0] == pytest.approx(h)
    assert entropy(p, spatial_dims=2, reduction="mean")[0] == pytest.approx(h / 2)


def test_segmentation_strategy_ranks_by_reduced_map() -> None:
    p = mc_probs(12, 4, 3, 5, 5, seed=2)
    s = get_strategy("bald", spatial_dims=2, reduction="top_percentile", q=10.0)
    r = s(k=4, probs=p, rng=0)
    expected = np.argsort(-bald(p, spatial_dims=2, reduction="top_percentile", q=10.0))[:4]
    np.testing.assert_array_equal(r.indices, expected)
    with pytest.raises(StrategyError, match="none"):
        get_strategy("entropy", spatial_dims=2, reduction="none")(k=2, probs=p)


def moments_of(p: np.ndarray) -> np.ndarray:
    """Mean probabilities and mean per-sample entropy, computed here by hand.
    # [N, T, C, *S] -> [N, C + 1, *S]"""
    per_sample = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=2)  # [N, T, *S]
    return np.concatenate([p.mean(axis=1), per_sample.mean(axis=1)[:, None]], axis=1)


@pytest.mark.parametrize("kind", ["entropy", "bald", "margin", "least_confidence"])
@pytest.mark.parametrize("reduction", ["none", "mean", "foreground_weighted", "top_percentile"])
def test_scores_from_moments_equal_scores_from_the_samples(kind: str, reduction: str) -> None:
    p = mc_probs(4, 6, 3, 5, 7, seed=3)  # [N, T, C, H, W]
    m = moments_of(p)
    expected = {
        "entropy": entropy,
        "bald": bald,
        "margin": margin,
        "least_confidence": least_confidence,
    }[kind](p, spatial_dims=2, reduction=reduction, q=20.0, background_class=1)  # type: ignore[arg-type]
    got = moment_scores(
        m,
        kind,  # type: ignore[arg-type]
        spatial_dims=2,
        reduction=reduction,  # type: ignore[arg-type]
        q=20.0,
        background_class=1,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    strategy: Any = get_strategy(kind, spatial_dims=2, reduction="top_percentile", q=20.0)
    np.testing.assert_allclose(strategy.scores_from_moments(m), strategy.scores(p), rtol=1e-6)
    if kind == "bald":  # the samples disagree, so BALD is no entropy
        assert (
            np.abs(
                moment_uncertainty_map(m, "bald", spatial_dims=2)
                - uncertainty_map(p, "entropy", spatial_dims=2)
            ).max()
            > 1e-2
        )


def test_bad_moments_are_refused_by_field() -> None:
    m = moments_of(mc_probs(2, 3, 2, 4, 4))
    with pytest.raises(InvalidProbabilitiesError, match=r"moments \[N, C \+ 1, S0, S1\]"):
        moment_uncertainty_map(m[:, :, 0], "bald", spatial_dims=2)  # a spatial axis short
    with pytest.raises(InvalidProbabilitiesError, match="sum to 1") as error:
        moment_scores(m[:, 1:], "entropy", spatial_dims=2)  # the first class dropped
    assert error.value.field == "moments"
    with pytest.raises(StrategyError, match="unknown kind"):
        moment_uncertainty_map(m, "variance", spatial_dims=2)  # type: ignore[arg-type]


def test_random_scores() -> None:
    np.testing.assert_array_equal(random_scores(5, rng=1), random_scores(5, rng=1))
    assert random_scores(0).shape == (0,)
    with pytest.raises(StrategyError):
        random_scores(-1)
