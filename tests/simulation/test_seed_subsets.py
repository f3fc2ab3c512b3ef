"""benchmarks/seed_subsets.py: the targets as runs of fewer seeds read them, checked by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests._benchmarks import load_benchmark, stored_runs

BUDGETS = (10, 20, 30)


def _runs(curves: dict[int, list[float]]) -> list[dict[str, Any]]:
    return stored_runs(curves, BUDGETS)


def _report(smart: dict[int, list[float]], random: dict[int, list[float]]) -> dict[str, Any]:
    return {
        "metric": "auc",
        "reference": {"metric": 1.0},
        "strategies": {"random": {"runs": _runs(random)}, "smart": {"runs": _runs(smart)}},
    }


def test_one_set_reads_labels_ratio_area_and_deficit_by_hand() -> None:
    ours = np.array([[0.99, 0.99, 1.0], [0.99, 0.97, 1.0]])
    theirs = np.array([[0.90, 0.98, 1.0], [0.94, 1.0, 1.0]])
    out = load_benchmark("seed_subsets").read_subset(list(BUDGETS), ours, theirs, 0.99)
    # mean curves: ours 0.99, 0.98, 1.0 -> reaches 0.99 at 10; theirs 0.92, 0.99 -> at 20
    assert out["labels"] == [10, 20]
    assert out["ratio"] == 0.5
    # AULC difference (trapezoids over 10..30 divided by 20): differences 0.09, 0.01, 0 on
    # seed 0 and 0.05, -0.03, 0 on seed 1
    seed0 = ((0.09 + 0.01) / 2 + (0.01 + 0.0) / 2) / 2
    seed1 = ((0.05 - 0.03) / 2 + (-0.03 + 0.0) / 2) / 2
    assert out["aulc_points"]["mean"] == pytest.approx(100 * (seed0 + seed1) / 2)
    # the arm's mean curve is 1 point below at 20 labels (0.98 vs 0.99)
    assert out["largest_deficit_points"] == pytest.approx(1.0)


def test_an_arm_that_never_reaches_the_line_has_no_ratio() -> None:
    ours = np.array([[0.5, 0.6, 0.7], [0.5, 0.6, 0.7]])
    theirs = np.array([[0.5, 0.99, 1.0], [0.5, 0.99, 1.0]])
    out = load_benchmark("seed_subsets").read_subset(list(BUDGETS), ours, theirs, 0.99)
    assert out["labels"] == [None, 20] and out["ratio"] is None


def test_sets_of_every_seed_read_as_the_whole_run_and_repeat_under_a_seed() -> None:
    rng = np.random.default_rng(1)
    smart = {s: list(np.clip(0.95 + 0.04 * rng.random(3), 0, 1)) for s in range(6)}
    random = {s: list(np.clip(0.90 + 0.09 * rng.random(3), 0, 1)) for s in range(6)}
    module = load_benchmark("seed_subsets")
    whole = module.seed_subsets(_report(smart, random), "smart", size=6, draws=5)
    # every set of 6 from 6 seeds is the whole run: each reading equals the all-seeds one
    assert whole["ratios"] == [whole["all_seeds"]["ratio"]] * 5
    a = module.seed_subsets(_report(smart, random), "smart", size=3, draws=50, seed=7)
    b = module.seed_subsets(_report(smart, random), "smart", size=3, draws=50, seed=7)
    assert a["ratios"] == b["ratios"]
    assert 0.0 <= a["share_ratio_at_most_goal"] <= 1.0


def test_the_shares_count_the_sets_that_meet_the_goal() -> None:
    # seeds 0-1: smart reaches the line at 10, random at 30 (ratio 1/3); seeds 2-3: both at 10
    smart = {0: [1.0, 1.0, 1.0], 1: [1.0, 1.0, 1.0], 2: [1.0, 1.0, 1.0], 3: [1.0, 1.0, 1.0]}
    random = {0: [0.5, 0.5, 1.0], 1: [0.5, 0.5, 1.0], 2: [1.0, 1.0, 1.0], 3: [1.0, 1.0, 1.0]}
    out = load_benchmark("seed_subsets").seed_subsets(
        _report(smart, random), "smart", size=2, draws=600, seed=0
    )
    # a set's ratio: 1/3 for {0,1}; {2,3} 1.0; a mixed pair's random mean is 0.75, 0.75, 1.0 -> 1/3
    ratios = np.array(out["ratios"])
    assert set(np.round(ratios, 4)) <= {0.3333, 1.0}
    # 5 of the 6 pairs include seed 0 or 1, so about 5/6 of the sets meet the 60% goal
    assert out["share_ratio_at_most_goal"] == pytest.approx(np.mean(ratios <= 0.6))
    assert out["share_ratio_at_most_goal"] == pytest.approx(5 / 6, abs=0.06)
    assert out["share_ratio_unread"] == 0.0


def test_the_stored_form_counts_each_ratio() -> None:
    script = load_benchmark("seed_subsets")
    counts = script.ratio_counts({"ratios": [0.5, None, 1 / 3, 0.5]})["ratio_counts"]
    assert counts == {"0.3333": 1, "0.5000": 2, "unread": 1}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 1}, "at least 2"),
        ({"size": 9}, "share 4 seeds"),
        ({"draws": 0}, "draws"),
        ({"target": 99.0}, "target is a share"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs: dict[str, int], message: str) -> None:
    report = _report({s: [1.0] * 3 for s in range(4)}, {s: [1.0] * 3 for s in range(4)})
    with pytest.raises(ValueError, match=message):
        load_benchmark("seed_subsets").seed_subsets(report, "smart", **kwargs)
