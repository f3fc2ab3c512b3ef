"""BatchBALD against brute-force joint mutual information."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from strategy_helpers import mc_probs

from workbench.strategies import bald, select_batchbald, select_top_k


def joint_mi(p: np.ndarray, items: list[int]) -> float:
    """I(y_S; w) by enumerating every label configuration; ``p`` is [N, T, C]."""
    if not items:
        return 0.0
    _, t, c = p.shape
    h_joint = 0.0
    for config in itertools.product(range(c), repeat=len(items)):
        per_sample = np.ones(t)
        for i, y in zip(items, config, strict=True):
            per_sample *= p[i, :, y]
        pj = per_sample.mean()
        if pj > 0:
            h_joint -= pj * np.log(pj)
    cond = sum(-(p[i] * np.log(np.where(p[i] > 0, p[i], 1))).sum(axis=1).mean() for i in items)
    return h_joint - cond


def brute_greedy(p: np.ndarray, k: int, exclude: set[int]) -> tuple[list[int], list[float]]:
    picks: list[int] = []
    gains: list[float] = []
    for _ in range(k):
        base = joint_mi(p, picks)
        cands = [i for i in range(p.shape[0]) if i not in exclude and i not in picks]
        values = [joint_mi(p, [*picks, i]) for i in cands]
        best = int(np.argmax(values))
        picks.append(cands[best])
        gains.append(values[best] - base)
    return picks, gains


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_greedy_equals_brute_force(seed: int) -> None:
    p = mc_probs(9, 5, 3, seed=seed)
    mask = np.zeros(9, dtype=bool)
    mask[seed] = True
    r = select_batchbald(p, 4, labelled_mask=mask, rng=0)
    picks, gains = brute_greedy(p, 4, {seed})
    assert r.indices.tolist() == picks
    np.testing.assert_allclose(r.scores, gains, atol=1e-10)
    assert r.scores.sum() == pytest.approx(joint_mi(p, picks))
    assert r.indices[0] == int(np.argmax(np.where(mask, -1, bald(p))))


def test_lazy_evaluation_does_not_change_the_exact_answer() -> None:
    p = mc_probs(80, 6, 2, seed=5)
    a = select_batchbald(p, 8, chunk_size=1, rng=0)
    b = select_batchbald(p, 8, chunk_size=1000, rng=0)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.scores, b.scores)


def test_sampled_joint_is_close_to_exact() -> None:
    p = mc_probs(12, 6, 3, seed=3)
    exact = select_batchbald(p, 4, rng=0)
    sampled = select_batchbald(p, 4, max_exact_configs=1, num_samples=20_000, rng=0)
    assert sampled.indices[:2].tolist() == exact.indices[:2].tolist()
    assert len(set(sampled.indices) & set(exact.indices)) >= 3
    truth = [joint_mi(p, sampled.indices[: i + 1].tolist()) for i in range(4)]
    np.testing.assert_allclose(sampled.scores, np.diff(truth, prepend=0.0), atol=0.02)


def test_batchbald_skips_duplicates_that_bald_top_k_takes() -> None:
    p = mc_probs(20, 8, 3, seed=4)
    top = int(np.argmax(bald(p)))
    p = np.concatenate([p, np.repeat(p[top : top + 1], 3, axis=0)])  # three copies of the best
    copies = {top, 20, 21, 22}
    assert len(copies & set(select_top_k(bald(p), 4, rng=0).indices.tolist())) == 4
    assert len(copies & set(select_batchbald(p, 4, rng=0).indices.tolist())) == 1


def test_switches_to_sampling_for_large_batches() -> None:
    p = mc_probs(300, 10, 4, seed=6)
    r = select_batchbald(p, 12, num_samples=300, max_exact_configs=64, rng=0)
    assert r.indices.size == 12 and np.unique(r.indices).size == 12
    assert (r.scores[1:] <= bald(p)[r.indices[1:]] + 0.02).all()  # gain <= BALD, up to noise
