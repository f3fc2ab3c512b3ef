"""The shared template: every registered strategy passes the same checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from strategy_helpers import Pool, make_pool

from workbench.strategies import (
    SelectionResult,
    Strategy,
    StrategyError,
    available_strategies,
    get_strategy,
)

NAMES = available_strategies()
# strategies that read arrays / probabilities (the others, e.g. random, get no such checks)
ARRAY_NAMES = [n for n in NAMES if get_strategy(n).needs]
PROB_NAMES = [n for n in NAMES if get_strategy(n).needs & {"probs", "mc_probs"}]


@pytest.fixture(params=NAMES)
def strategy(request: pytest.FixtureRequest) -> Strategy:
    return get_strategy(request.param)


@pytest.fixture(scope="module")
def pool() -> Pool:
    return make_pool()


def _call(
    s: Strategy, pool: Pool, k: int, mask: np.ndarray | None = None, rng: object = 0
) -> SelectionResult:
    return s(
        k=k,
        probs=pool.probs,
        embeddings=pool.embeddings,
        labelled_mask=pool.labelled_mask if mask is None else mask,
        rng=rng,  # type: ignore[arg-type]
    )


def test_every_name_builds_a_strategy() -> None:
    assert len(NAMES) >= 20
    for name in NAMES:
        s = get_strategy(name)
        assert isinstance(s, Strategy)
        assert s.name == name
        assert s.needs <= {"probs", "mc_probs", "embeddings", "labelled_items"}
        assert s.needs != {"labelled_items"}  # it qualifies an input, it is not one


@pytest.mark.parametrize("k", [1, 5, 17])
def test_result_shapes_and_dtypes(strategy: Strategy, pool: Pool, k: int) -> None:
    r = _call(strategy, pool, k)
    assert r.indices.shape == (k,) and r.indices.dtype == np.int64
    assert r.scores.shape == (k,) and r.scores.dtype == np.float64
    assert len(r) == k
    if r.pool_scores is not None:
        assert r.pool_scores.shape == (pool.n,)
        assert np.isnan(r.pool_scores[pool.labelled_mask]).all()
        assert np.isfinite(r.pool_scores[~pool.labelled_mask]).all()


def test_never_labelled_never_twice(strategy: Strategy, pool: Pool) -> None:
    r = _call(strategy, pool, 20)
    assert not pool.labelled_mask[r.indices].any()
    assert np.unique(r.indices).size == r.indices.size
    assert ((r.indices >= 0) & (r.indices < pool.n)).all()


def test_deterministic_under_a_seed(strategy: Strategy, pool: Pool) -> None:
    a = _call(strategy, pool, 10, rng=123)
    b = _call(strategy, pool, 10, rng=np.random.default_rng(123))
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_takes_torch_tensors(strategy: Strategy, pool: Pool) -> None:
    a = _call(strategy, pool, 6)
    b = strategy(
        k=6,
        probs=torch.from_numpy(pool.probs),
        embeddings=torch.from_numpy(pool.embeddings),
        labelled_mask=torch.from_numpy(pool.labelled_mask),
        rng=0,
    )
    np.testing.assert_array_equal(a.indices, b.indices)


def test_k_larger_than_available(strategy: Strategy, pool: Pool) -> None:
    available = int((~pool.labelled_mask).sum())
    r = _call(strategy, pool, available + 50)
    assert sorted(r.indices.tolist()) == np.flatnonzero(~pool.labelled_mask).tolist()


def test_k_zero(strategy: Strategy, pool: Pool) -> None:
    r = _call(strategy, pool, 0)
    assert r.indices.shape == (0,) and r.scores.shape == (0,)


def test_all_labelled(strategy: Strategy, pool: Pool) -> None:
    r = _call(strategy, pool, 5, mask=np.ones(pool.n, dtype=bool))
    assert r.indices.shape == (0,)


def test_one_left(strategy: Strategy, pool: Pool) -> None:
    mask = np.ones(pool.n, dtype=bool)
    mask[7] = False
    assert _call(strategy, pool, 3, mask=mask).indices.tolist() == [7]


def test_no_mask_means_nothing_labelled(strategy: Strategy, pool: Pool) -> None:
    r = strategy(k=pool.n, probs=pool.probs, embeddings=pool.embeddings, rng=0)
    assert sorted(r.indices.tolist()) == list(range(pool.n))


@pytest.mark.parametrize("k", [-1, 2.5, True])
def test_rejects_bad_k(strategy: Strategy, pool: Pool, k: object) -> None:
    with pytest.raises(StrategyError):
        _call(strategy, pool, k)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["probs", "embeddings"])
def test_rejects_nan(strategy: Strategy, pool: Pool, field: str) -> None:
    bad = getattr(pool, field).copy()
    bad[3, 0] = np.nan
    inputs = {"probs": pool.probs, "embeddings": pool.embeddings, field: bad}
    with pytest.raises(ValueError, match="NaN"):
        strategy(k=3, labelled_mask=pool.labelled_mask, rng=0, **inputs)


def test_rejects_pool_size_mismatch(strategy: Strategy, pool: Pool) -> None:
    with pytest.raises(ValueError):
        strategy(
            k=3, probs=pool.probs[:-1], embeddings=pool.embeddings, labelled_mask=pool.labelled_mask
        )
    with pytest.raises(ValueError):
        strategy(
            k=3, probs=pool.probs, embeddings=pool.embeddings, labelled_mask=pool.labelled_mask[:-1]
        )


@pytest.mark.parametrize("name", ARRAY_NAMES)
def test_rejects_wrong_shape_of_what_it_needs(name: str, pool: Pool) -> None:
    strategy = get_strategy(name)
    inputs = {"probs": pool.probs, "embeddings": pool.embeddings}
    if strategy.needs & {"probs", "mc_probs"}:
        inputs["probs"] = pool.probs[:, 0, 0]  # [N]
    else:
        inputs["embeddings"] = pool.embeddings[:, 0]  # [N]
    with pytest.raises(ValueError, match="shape"):
        strategy(k=3, labelled_mask=pool.labelled_mask, **inputs)


@pytest.mark.parametrize("name", PROB_NAMES)
def test_rejects_probs_not_summing_to_one(name: str, pool: Pool) -> None:
    strategy = get_strategy(name)
    with pytest.raises(ValueError, match="sum to 1"):
        strategy(k=3, probs=pool.probs * 0.5, embeddings=pool.embeddings)


def test_missing_input_is_a_clear_error(strategy: Strategy, pool: Pool) -> None:
    for need in strategy.needs - {"labelled_items"}:
        key = "embeddings" if need == "embeddings" else "probs"
        inputs = {
            "probs": pool.probs,
            "embeddings": pool.embeddings,
            "labelled_mask": pool.labelled_mask,
        }
        del inputs[key]
        with pytest.raises(StrategyError, match=f"needs {key}"):
            strategy(k=3, **inputs)


def test_unknown_strategy_and_bad_params() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        get_strategy("nope")
    with pytest.raises(ValueError, match="bad parameters"):
        get_strategy("entropy", no_such_param=1)
    with pytest.raises(ValueError):
        get_strategy("entropy", mode="weird")


def _spatial_strategies() -> list[tuple[str, str]]:
    """(name, reduction) of every strategy that takes a spatial reduction (segmentation)."""
    out = []
    for name in NAMES:
        try:
            get_strategy(name, spatial_dims=2)
        except StrategyError:
            continue
        out += [(name, r) for r in ("mean", "foreground_weighted", "top_percentile")]
    return out


SPATIAL = _spatial_strategies()


@pytest.fixture(scope="module")
def spatial_pool() -> tuple[np.ndarray, np.ndarray]:
    """``[N, T, C, H, W]`` MC probabilities of 30 maps, 6 of them labelled."""
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(30, 1, 3, 6, 5)) * 2 + rng.normal(size=(30, 4, 3, 6, 5))
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    mask = np.zeros(30, bool)
    mask[rng.choice(30, 6, replace=False)] = True
    return probs, mask


def test_every_score_strategy_takes_a_spatial_reduction() -> None:
    names = {name for name, _ in SPATIAL}
    assert {
        "entropy",
        "bald",
        "margin",
        "least_confidence",
        "power_bald",
        "softrank_entropy",
    } <= names


@pytest.mark.parametrize(("name", "reduction"), SPATIAL)
def test_the_template_holds_for_spatial_maps(
    name: str, reduction: str, spatial_pool: tuple[np.ndarray, np.ndarray]
) -> None:
    probs, mask = spatial_pool
    strategy = get_strategy(name, spatial_dims=2, reduction=reduction)
    a = strategy(k=8, probs=probs, labelled_mask=mask, rng=11)
    b = strategy(
        k=8, probs=torch.from_numpy(probs), labelled_mask=mask, rng=np.random.default_rng(11)
    )
    assert a.indices.shape == (8,) and a.indices.dtype == np.int64
    assert not mask[a.indices].any() and np.unique(a.indices).size == 8
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.pool_scores is not None and a.pool_scores.shape == (30,)
    assert np.isnan(a.pool_scores[mask]).all() and np.isfinite(a.pool_scores[~mask]).all()
    rest = strategy(k=100, probs=probs, labelled_mask=mask, rng=0)
    assert sorted(rest.indices.tolist()) == np.flatnonzero(~mask).tolist()
    with pytest.raises(ValueError, match="shape"):
        strategy(k=3, probs=probs[..., 0, 0], labelled_mask=mask)  # [N, T, C]: no spatial axes
