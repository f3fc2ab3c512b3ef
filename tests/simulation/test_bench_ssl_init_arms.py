"""benchmarks/bench_ssl_init.py: extra arms named by strategy spec (the specs themselves:
tests/strategies/test_strategy_spec.py); benchmarks/_report.py: curves kept from earlier
reports."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests._benchmarks import load_benchmark, stored_runs


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_benchmark("bench_ssl_init")


def test_a_plain_name_and_a_spec_with_options_become_separate_arms(script: ModuleType) -> None:
    arms = script.arms_with(("batchbald", "power_bald:beta=4", "power_bald:beta=0.5"))
    assert list(arms) == [
        "random",
        "power_bald_typical",
        "batchbald_typical",
        "power_bald_beta4_typical",
        "power_bald_beta0.5_typical",
    ]
    assert arms["power_bald_beta4_typical"] == ("power_bald:beta=4", "typical")
    assert arms["batchbald_typical"] == ("batchbald", "typical")
    assert arms["random"] == ("random", "random")


def _report(curves: dict[str, dict[int, float]]) -> dict[str, Any]:
    return {
        "metric": "auc",
        "strategies": {
            arm: {
                "runs": [
                    {
                        "seed": seed,
                        "picks": [[0]],
                        "curve": [{"labels": 10, "metrics": {"auc": value}}],
                    }
                    for seed, value in by_seed.items()
                ]
            }
            for arm, by_seed in curves.items()
        },
    }


def test_kept_runs_take_each_arm_and_seed_from_the_first_report_that_holds_it() -> None:
    kept_runs = load_benchmark("_report").kept_runs
    first = _report({"a": {0: 0.1, 1: 0.2}, "other": {0: 0.9}})
    second = _report({"a": {1: 0.7, 2: 0.3}, "b": {0: 0.4, 5: 0.5}})
    runs = kept_runs([first, second], ["a", "b"], (0, 1, 2))
    got = {(r.strategy, r.seed): r.curve[0].metrics["auc"] for r in runs}
    assert got == {("a", 0): 0.1, ("a", 1): 0.2, ("a", 2): 0.3, ("b", 0): 0.4}


def test_fresh_weight_curves_are_compared_only_when_stored_for_every_seed(
    script: ModuleType,
) -> None:
    stored_random = _report({"random": {0: 0.6, 1: 0.7}})
    stored_default = _report({script.STORED_DEFAULT_ARM: {0: 0.65, 1: 0.72, 2: 0.8}})
    runs = script.stored_fresh_runs(stored_random, stored_default, (0, 1))
    assert sorted((r.strategy, r.seed) for r in runs) == [
        (script.STORED_DEFAULT_ARM, 0),
        (script.STORED_DEFAULT_ARM, 1),
        ("random", 0),
        ("random", 1),
    ]
    # held-out seeds (--first-seed): random has no stored curve for seed 2
    assert script.stored_fresh_runs(stored_random, stored_default, (1, 2)) is None
    assert script.stored_fresh_runs(stored_random, stored_default, (30, 31)) is None


def test_an_earlier_reference_is_kept_only_for_the_same_seeds(script: ModuleType) -> None:
    earlier = {
        "config": {"seeds": [0, 1, 2, 3]},
        "reference": {"per_seed": [{"auc": 0.80}, {"auc": 0.81}, {"auc": 0.82}]},
    }
    assert script.kept_reference(earlier, (0, 1)) == [{"auc": 0.80}, {"auc": 0.81}]
    # a 5-training reference: the 3 stored are kept, seeds 3 and 4 still to train
    assert len(script.kept_reference(earlier, (0, 1, 2, 3, 4))) == 3
    # held-out seeds (--first-seed 30 --extend of a seeds 0-29 report): nothing is kept
    assert script.kept_reference(earlier, (30, 31, 32)) == []


def _arm(curves: dict[int, list[float]], budgets: tuple[int, ...]) -> dict[str, Any]:
    means = [sum(c[j] for c in curves.values()) / len(curves) for j in range(len(budgets))]
    return {
        "runs": stored_runs(curves, budgets),
        "labels_to_reach": {"0.99": None},
        "aulc": {"mean": 0.0},
        "mean_curve": [{"labels": n, "mean": m} for n, m in zip(budgets, means, strict=True)],
    }


def test_the_comparison_gives_the_pretrained_starts_gain_at_each_budget(
    script: ModuleType,
) -> None:
    budgets = (4, 8)
    ssl = {
        "metric": "auc",
        "reference": {"metric": 1.0},
        "strategies": {
            "random": _arm({0: [0.70, 0.80], 1: [0.60, 0.80]}, budgets),
            "power_bald_typical": _arm({0: [0.70, 0.90], 1: [0.70, 0.90]}, budgets),
        },
    }
    fresh = {
        "metric": "auc",
        "reference": {"metric": 1.0},
        "strategies": {
            "random": _arm({0: [0.50, 0.80], 1: [0.50, 0.80]}, budgets),
            script.STORED_DEFAULT_ARM: _arm({0: [0.70, 0.90], 1: [0.70, 0.90]}, budgets),
        },
    }
    out = script.comparison(ssl, fresh)
    at_four, at_eight = out["random"]["gain_per_budget"]
    # seed 0 gains 0.2 at 4 labels, seed 1 0.1; nothing at 8
    assert at_four["labels"] == 4 and at_four["mean"] == pytest.approx(0.15)
    assert at_four["n"] == 2 and at_four["lo"] < 0.15 < at_four["hi"]
    assert at_eight["mean"] == pytest.approx(0.0)
    assert [b["mean"] for b in out["power_bald_typical"]["gain_per_budget"]] == [0.0, 0.0]
