"""The paired bootstrap of "labels to reach" ratios (`labels_ratio`), checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.simulation import CurvePoint, SeedRun, labels_ratio, reach_vs_random

LABELS = [10, 20, 30, 40]


def test_identical_seeds_give_a_point_interval_read_by_hand() -> None:
    # every seed alike: each resample reads the same curves, 20 labels vs 40 labels
    ours = np.tile([0.90, 0.995, 1.0, 1.0], (5, 1))
    theirs = np.tile([0.80, 0.90, 0.95, 0.995], (5, 1))
    out = labels_ratio(LABELS, ours, theirs, [1.0, 1.0], 0.99, resamples=200)
    assert out.ratio == 0.5
    assert out.interval() == (0.5, 0.5)
    assert out.share_at_most(0.6) == (1.0, 1.0)
    summary = out.summary()
    assert summary["censored"] == 0.0 and summary["resamples"] == 200


def test_the_interval_spans_what_single_seeds_read() -> None:
    # seed 0 reaches 0.99 at 10 labels, seed 1 at 30; the baseline always at 20. Resamples of
    # two seeds: both seed 0 (mean reaches at 10: ratio 0.5), both seed 1 (30: 1.5), or one of
    # each (mean 0.9475, 0.9475, 1.0, 1.0: reaches at 30: 1.5)
    ours = np.array([[0.995, 0.995, 1.0, 1.0], [0.90, 0.90, 1.0, 1.0]])
    theirs = np.array([[0.90, 0.995, 1.0, 1.0], [0.90, 0.995, 1.0, 1.0]])
    out = labels_ratio(LABELS, ours, theirs, [1.0], 0.99, resamples=4000, seed=3)
    assert out.ratio == 1.5  # the mean curve of both seeds
    assert set(np.unique(out.low)) == {0.5, 1.5}
    # P(both seed 0) = 1/4: the share at most 60% sits near it
    surely, possibly = out.share_at_most(0.6)
    assert surely == possibly == pytest.approx(0.25, abs=0.03)
    assert out.interval() == (0.5, 1.5)
    assert out.interval(level=0.2) == (1.5, 1.5)


def test_a_baseline_that_never_reaches_the_line_bounds_the_ratio_from_above_only() -> None:
    ours = np.tile([0.995, 1.0, 1.0, 1.0], (3, 1))
    theirs = np.tile([0.5, 0.6, 0.7, 0.8], (3, 1))
    out = labels_ratio(LABELS, ours, theirs, [1.0], 0.99, resamples=50)
    assert out.ratio is None
    # 10 labels against more than 40: below 10 / 40, no lower bound
    assert out.interval() == (None, 0.25)
    assert out.share_at_most(0.6) == (1.0, 1.0)
    assert out.summary()["censored"] == 1.0


def test_an_arm_that_never_reaches_the_line_bounds_the_ratio_from_below_only() -> None:
    ours = np.tile([0.5, 0.6, 0.7, 0.8], (3, 1))
    theirs = np.tile([0.5, 0.995, 1.0, 1.0], (3, 1))
    out = labels_ratio(LABELS, ours, theirs, [1.0], 0.99, resamples=50)
    assert out.interval() == (2.0, None)  # more than 40 against 20
    assert out.share_at_most(0.6) == (0.0, 0.0)


def test_resampling_the_reference_moves_the_line() -> None:
    # the mean reference 0.95 puts the line at 0.9405: the arm reaches it at 10, the baseline
    # at 20. Resampling the two trainings: (1.0, 1.0) lines at 0.99, the same reading; (0.9,
    # 0.9) at 0.891, which the baseline reaches at 10 too (ratio 1), a quarter of the draws
    ours = np.tile([0.995, 0.995, 1.0, 1.0], (4, 1))
    theirs = np.tile([0.93, 0.995, 1.0, 1.0], (4, 1))
    fixed = labels_ratio(LABELS, ours, theirs, [1.0, 0.9], 0.99, resample_reference=False)
    assert not fixed.reference_resampled
    assert fixed.ratio == 0.5 and fixed.interval() == (0.5, 0.5)
    moving = labels_ratio(LABELS, ours, theirs, [1.0, 0.9], 0.99)
    assert moving.reference_resampled
    assert moving.interval() == (0.5, 1.0)
    assert moving.share_at_most(0.6)[0] == pytest.approx(0.75, abs=0.03)


def test_repeats_under_a_seed() -> None:
    rng = np.random.default_rng(0)
    ours = 0.9 + 0.1 * rng.random((8, 4))
    theirs = 0.9 + 0.1 * rng.random((8, 4))
    a = labels_ratio(LABELS, ours, theirs, [1.0], 0.95, seed=7)
    b = labels_ratio(LABELS, ours, theirs, [1.0], 0.95, seed=7)
    assert np.array_equal(a.low, b.low) and np.array_equal(a.high, b.high)


@pytest.mark.parametrize(
    ("ours", "theirs", "reference", "fraction", "message"),
    [
        (np.zeros((1, 4)), np.zeros((1, 4)), [1.0], 0.99, "needs 2 seeds"),
        (np.zeros((2, 4)), np.zeros((3, 4)), [1.0], 0.99, "alike"),
        (np.zeros((2, 3)), np.zeros((2, 3)), [1.0], 0.99, "4 budgets"),
        (np.zeros((2, 4)), np.zeros((2, 4)), [], 0.99, "reference"),
        (np.zeros((2, 4)), np.zeros((2, 4)), [float("nan")], 0.99, "reference"),
        (np.zeros((2, 4)), np.zeros((2, 4)), [1.0], 1.5, "fraction"),
    ],
)
def test_refuses_what_it_cannot_read(
    ours: np.ndarray, theirs: np.ndarray, reference: list[float], fraction: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        labels_ratio(LABELS, ours, theirs, reference, fraction)


def _run(strategy: str, seed: int, labels: list[int], values: list[float]) -> SeedRun:
    curve = [CurvePoint(n, {"auc": v}) for n, v in zip(labels, values, strict=True)]
    return SeedRun(strategy, seed, curve, [])


def test_the_report_pairs_seeds_both_arms_ran() -> None:
    ours = [_run("smart", s, [10, 20], [0.995, 1.0]) for s in (0, 1, 2)]
    base = [_run("random", s, [10, 20], [0.96, 0.995]) for s in (1, 2, 3)]
    out = reach_vs_random(ours, base, "auc", [1.0])
    assert out is not None and set(out) == {"0.95", "0.98", "0.99"}
    assert out["0.99"]["ratio"] == 0.5 and (out["0.99"]["lo"], out["0.99"]["hi"]) == (0.5, 0.5)
    assert out["0.95"]["ratio"] == 1.0  # random reaches 0.95 at 10 labels too
    # one paired seed, or no reference: nothing to resample
    assert reach_vs_random(ours[:2], base[:2], "auc", [1.0]) is None
    assert reach_vs_random(ours, base, "auc", []) is None


def test_the_report_refuses_curves_read_at_other_budgets() -> None:
    ours = [_run("smart", s, [10, 20], [0.9, 1.0]) for s in (0, 1)]
    base = [_run("random", s, [10, 30], [0.9, 1.0]) for s in (0, 1)]
    with pytest.raises(ValueError, match="seed 0: the baseline's curve was read at other"):
        reach_vs_random(ours, base, "auc", [1.0])
