"""EPIG: hand-computed values, a brute-force reference, and what its targets are drawn from."""

from __future__ import annotations

import math

import numpy as np
import pytest
from strategy_helpers import make_pool, mc_probs

from workbench.strategies import InvalidProbabilitiesError, bald, epig, get_strategy
from workbench.strategies import _epig as epig_module


def _one_hot(classes: list[int], c: int = 2) -> np.ndarray:
    # one item's T samples, each a one-hot prediction: [T, C]
    return np.eye(c)[classes]


def _brute_force(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    # mean over targets of sum_{c,d} p(c,d) log(p(c,d) / (p(c) p(d))), by loops
    out = np.zeros(len(p))
    for n in range(len(p)):
        total = 0.0
        for m in range(len(q)):
            joint = np.einsum("tc,td->cd", p[n], q[m]) / p.shape[1]
            outer = np.outer(p[n].mean(axis=0), q[m].mean(axis=0))
            nz = joint > 0
            total += float((joint[nz] * np.log(joint[nz] / outer[nz])).sum())
        out[n] = total / len(q)
    return out


def test_an_item_that_moves_with_the_targets_scores_log_2_one_that_does_not_scores_0() -> None:
    # 4 MC samples. The target's label flips between samples 2 and 3; item 0 flips with it,
    # item 1 flips on another pattern. BALD cannot tell them apart (both log 2); EPIG can.
    target = _one_hot([0, 0, 1, 1])[None]
    pool = np.stack([_one_hot([0, 0, 1, 1]), _one_hot([0, 1, 0, 1])])
    np.testing.assert_allclose(bald(pool), [math.log(2), math.log(2)])
    np.testing.assert_allclose(epig(pool, target), [math.log(2), 0.0], atol=1e-12)


def test_a_certain_target_or_a_single_sample_gives_no_information() -> None:
    pool = np.stack([_one_hot([0, 1]), _one_hot([1, 1])])
    np.testing.assert_allclose(epig(pool, np.full((1, 2, 2), 0.5)), [0.0, 0.0], atol=1e-12)
    p = mc_probs(5, 1, 3, seed=1)
    np.testing.assert_allclose(epig(p, p), np.zeros(5), atol=1e-12)


def test_equals_the_mutual_information_computed_by_loops() -> None:
    p, q = mc_probs(12, 7, 3, seed=2), mc_probs(5, 7, 3, seed=3)
    np.testing.assert_allclose(epig(p, q), _brute_force(p, q), rtol=1e-9, atol=1e-12)


def test_never_exceeds_bald() -> None:
    # data processing: what y says about y* cannot exceed what it says about the parameters
    p = mc_probs(200, 10, 4, seed=4)
    assert (epig(p, p[:30]) <= bald(p) + 1e-9).all()


def test_chunks_give_the_same_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    p, q = mc_probs(50, 6, 3, seed=5), mc_probs(8, 6, 3, seed=6)
    whole = epig(p, q)
    monkeypatch.setattr(epig_module, "_CHUNK_ELEMENTS", 3 * 8 * 3 * 7)  # 7 items a chunk
    np.testing.assert_allclose(epig(p, q), whole, rtol=1e-12)


def test_targets_must_share_the_samples_and_classes() -> None:
    with pytest.raises(InvalidProbabilitiesError, match="target_probs"):
        epig(mc_probs(4, 5, 3), mc_probs(2, 6, 3))


def test_the_strategy_draws_its_targets_from_the_unlabelled_items_only() -> None:
    pool = make_pool(n=60, t=8, c=3, n_labelled=20, seed=7)
    strategy = get_strategy("epig", num_targets=10)
    first = strategy(k=5, probs=pool.probs, labelled_mask=pool.labelled_mask, rng=0)
    changed = pool.probs.copy()
    changed[pool.labelled_mask] = mc_probs(20, 8, 3, seed=99)
    second = strategy(k=5, probs=changed, labelled_mask=pool.labelled_mask, rng=0)
    assert first.pool_scores is not None and second.pool_scores is not None
    np.testing.assert_array_equal(first.pool_scores, second.pool_scores)
    np.testing.assert_array_equal(first.indices, second.indices)


def test_with_enough_targets_every_unlabelled_item_is_a_target() -> None:
    pool = make_pool(n=30, t=6, c=3, n_labelled=10, seed=8)
    result = get_strategy("epig", num_targets=1000)(
        k=3, probs=pool.probs, labelled_mask=pool.labelled_mask, rng=1
    )
    expected = epig(pool.probs, pool.probs[~pool.labelled_mask])
    assert result.pool_scores is not None
    free = ~pool.labelled_mask
    np.testing.assert_allclose(result.pool_scores[free], expected[free], rtol=1e-12)
    top = np.argsort(-np.where(free, expected, -np.inf))[:3]
    np.testing.assert_array_equal(np.sort(result.indices), np.sort(top))


def test_power_epig_samples_and_bad_parameters_are_refused() -> None:
    pool = make_pool(n=80, t=6, c=3, n_labelled=0, seed=9)
    picks = {
        tuple(get_strategy("power_epig")(k=5, probs=pool.probs, rng=seed).indices)
        for seed in range(5)
    }
    assert len(picks) > 1  # sampled, not top-k
    with pytest.raises(Exception, match="num_targets"):
        get_strategy("epig", num_targets=0)
