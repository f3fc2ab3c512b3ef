"""AULC, t-intervals and labels-to-reach against hand-computed values."""

from __future__ import annotations

import math

import pytest

from workbench.simulation import (
    CurvePoint,
    SeedRun,
    aulc,
    labels_to_reach,
    labels_to_reach_range,
    paired_per_budget,
    t_interval,
)


def test_aulc_is_the_trapezoid_mean_over_the_label_range() -> None:
    # (10, 0.5) -> (20, 0.7) -> (40, 0.8): areas 10*0.6 + 20*0.75 = 21 over 30 labels
    assert aulc([10, 20, 40], [0.5, 0.7, 0.8]) == pytest.approx(0.7)
    assert aulc([5, 15], [0.6, 0.6]) == pytest.approx(0.6)
    assert aulc([7], [0.9]) == pytest.approx(0.9)


def test_aulc_rejects_bad_curves() -> None:
    with pytest.raises(ValueError):
        aulc([1, 2], [0.5])
    with pytest.raises(ValueError):
        aulc([3, 2], [0.5, 0.6])


def test_t_interval_matches_hand_computation() -> None:
    # values 1, 2, 3: mean 2, sd 1, t_{0.975, 2} = 4.302653, half width 4.302653 / sqrt(3)
    i = t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert (i.mean, i.lo, i.hi, i.n) == pytest.approx((2.0, 2.0 - half, 2.0 + half, 3))


def test_t_interval_of_one_value_has_no_bounds() -> None:
    i = t_interval([0.4])
    assert (i.mean, i.lo, i.hi, i.n) == (0.4, None, None, 1)


def test_labels_to_reach_on_a_hand_made_curve() -> None:
    labels = [20, 40, 60, 80]
    metric = [0.80, 0.93, 0.92, 0.95]
    ref = 0.95
    assert labels_to_reach(labels, metric, 0.95 * ref) == 40  # 0.9025: first at 40
    assert labels_to_reach(labels, metric, 0.98 * ref) == 80  # 0.931: 0.93 falls short
    assert labels_to_reach(labels, metric, 0.99 * ref) == 80
    assert labels_to_reach(labels, metric, 1.01 * ref) is None
    assert labels_to_reach([10, 20], [float("nan"), 0.9], 0.5) == 20


def test_labels_to_reach_range_reads_the_interval_ends() -> None:
    labels = [20, 40, 60, 80, 100]
    lo = [0.70, 0.85, 0.88, 0.90, 0.92]
    hi = [0.80, 0.92, 0.93, 0.95, 0.96]
    # target 0.91: the upper end first reaches it at 40, the lower end at 100
    assert labels_to_reach_range(labels, lo, hi, 0.91) == (40, 100)
    # 0.95: only the upper end reaches it (at 80); the lower end never does
    assert labels_to_reach_range(labels, lo, hi, 0.95) == (80, None)
    assert labels_to_reach_range(labels, lo, hi, 0.97) == (None, None)
    assert labels_to_reach_range(labels, lo, hi, 0.5) == (20, 20)


def _run(seed: int, values: list[float], labels: tuple[int, ...] = (10, 20)) -> SeedRun:
    return SeedRun(
        "s", seed, [CurvePoint(n, {"auc": v}) for n, v in zip(labels, values, strict=True)], []
    )


def test_paired_per_budget_pairs_by_seed_not_by_position() -> None:
    ours = [_run(0, [0.8, 0.9]), _run(1, [0.7, 0.95]), _run(5, [0.1, 0.1])]
    theirs = [_run(1, [0.6, 0.9]), _run(0, [0.75, 0.9])]  # another order; no seed 5
    first, second = paired_per_budget(ours, theirs, "auc")
    assert first["labels"] == 10 and first["n"] == 2
    assert first["mean"] == pytest.approx((0.05 + 0.1) / 2)  # seed 0: 0.05, seed 1: 0.1
    half = 12.7062 * 0.05 / math.sqrt(2) / math.sqrt(2)  # t(0.975, 1) * sd / sqrt(n)
    assert first["hi"] - first["mean"] == pytest.approx(half, rel=1e-4)
    assert second["mean"] == pytest.approx((0.0 + 0.05) / 2)
    assert paired_per_budget(ours, [_run(9, [0.5, 0.5])], "auc") == []
    with pytest.raises(ValueError, match="baseline's curve has no point at 20 labels"):
        paired_per_budget(ours, [_run(0, [0.5], labels=(10,))], "auc")
    with pytest.raises(ValueError, match="seed 1: curve has no point at 20 labels"):
        paired_per_budget([ours[0], _run(1, [0.5], labels=(10,))], theirs, "auc")
