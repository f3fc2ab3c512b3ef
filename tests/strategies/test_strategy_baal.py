"""Scores agree with baal's heuristics (baal's shapes: [n_sample, n_class, ..., n_iterations])."""

from __future__ import annotations

import warnings

import baal.active.heuristics as heuristics  # noqa: E402  (a dev dependency: fail if missing)
import baal.active.heuristics.stochastics as stochastics  # noqa: E402
import numpy as np
import pytest
import torch
from strategy_helpers import mc_probs

from workbench.strategies import (
    bald,
    entropy,
    least_confidence,
    margin,
    select_batchbald,
    stochastic_distribution,
)
from workbench.strategies._types import StochasticMode


def to_baal(p: np.ndarray) -> np.ndarray:
    """Ours [N, T, C, *spatial] -> baal's [N, C, *spatial, T]."""
    return np.moveaxis(p, 1, -1)


def baal_scores(heuristic: object, p: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return heuristic.get_uncertainties(to_baal(p))  # type: ignore[attr-defined]


@pytest.mark.parametrize("spatial", [(), (5, 4)])
def test_scores_match_baal(spatial: tuple[int, ...]) -> None:
    p = mc_probs(30, 8, 4, *spatial, seed=11)
    sd = len(spatial)
    red = "mean" if sd else "none"
    np.testing.assert_allclose(
        entropy(p, spatial_dims=sd), baal_scores(heuristics.Entropy(reduction=red), p), atol=1e-10
    )
    np.testing.assert_allclose(
        bald(p, spatial_dims=sd), baal_scores(heuristics.BALD(reduction=red), p), atol=1e-10
    )
    np.testing.assert_allclose(
        margin(p, spatial_dims=sd), 1 - baal_scores(heuristics.Margin(reduction=red), p), atol=1e-10
    )
    np.testing.assert_allclose(
        least_confidence(p, spatial_dims=sd),
        1 - baal_scores(heuristics.Certainty(reduction=red), p),
        atol=1e-10,
    )


def test_top_k_order_matches_baal_ranking() -> None:
    p = mc_probs(50, 10, 3, seed=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranks = heuristics.BALD()(to_baal(p))
    np.testing.assert_array_equal(np.argsort(-bald(p), kind="stable")[:10], ranks[:10])


@pytest.mark.parametrize(
    "name, mode",
    [("PowerSampling", "power"), ("GibbsSampling", "softmax"), ("RankBasedSampling", "softrank")],
)
@pytest.mark.parametrize("beta", [0.5, 1.0, 4.0])
def test_stochastic_distributions_match_baal(name: str, mode: StochasticMode, beta: float) -> None:
    scores = bald(mc_probs(40, 10, 3, seed=13))
    theirs = getattr(stochastics, name)(heuristics.BALD(), query_size=5, temperature=1 / beta)
    expected = theirs._make_distribution(scores.copy())
    np.testing.assert_allclose(
        stochastic_distribution(scores, mode=mode, beta=beta), expected, rtol=1e-9
    )


def test_batchbald_picks_match_baal() -> None:
    p = mc_probs(40, 10, 3, seed=14)
    k = 5
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = heuristics.BatchBALD(num_samples=k - 1, num_draw=2000)
        baal_set = set(theirs(to_baal(p))[:k].tolist())
    ours = select_batchbald(p, k, rng=0).indices.tolist()
    assert ours[0] in baal_set  # both start from the BALD maximum
    assert len(baal_set & set(ours)) >= k - 1
