"""benchmarks/paired_budgets.py: paired per-budget differences, checked by hand."""

from __future__ import annotations

from typing import Any

import pytest

from tests._benchmarks import load_benchmark, stored_runs


def _runs(curves: dict[int, list[float]]) -> list[dict[str, Any]]:
    return stored_runs(curves, (10, 20))


def test_differences_shares_and_the_budgets_where_the_means_reach_the_line() -> None:
    report = {
        "metric": "auc",
        "reference": {"metric": 1.0},
        "strategies": {
            "random": {
                "runs": _runs({0: [0.90, 0.99], 1: [0.94, 0.99]}),
                "labels_to_reach": {"0.99": 20},
            },
            "smart": {
                "runs": _runs({0: [0.99, 0.995], 1: [0.99, 0.985]}),
                "labels_to_reach": {"0.99": 10},
            },
        },
    }
    out = load_benchmark("paired_budgets").paired_budgets(report, "smart")
    first, second = out["per_budget"]
    assert first["difference_points"]["mean"] == pytest.approx((9 + 5) / 2)
    assert second["difference_points"]["mean"] == pytest.approx((0.5 - 0.5) / 2)
    # differences 9 and 5 points: sd 2 sqrt 2, t(0.975, 1) = 12.706, half-width 12.706 * 2
    assert first["difference_points"]["lo"] == pytest.approx(7 - 12.7062 * 2, abs=1e-3)
    assert first["share_of_seeds_at_0.99"] == {"smart": 1.0, "random": 0.0}
    assert second["share_of_seeds_at_0.99"] == {"smart": 0.5, "random": 1.0}
    assert out["at_reach"]["ratio"] == 0.5
    # smart at 10 labels against random at 20: 0.99 - 0.99 and 0.99 - 0.99
    assert out["at_reach"]["difference_points"]["mean"] == pytest.approx(0.0, abs=1e-9)


def test_a_report_without_a_shared_seed_is_refused() -> None:
    report = {
        "metric": "auc",
        "reference": {"metric": 1.0},
        "strategies": {
            "random": {"runs": _runs({0: [0.9, 0.9]}), "labels_to_reach": {"0.99": None}},
            "smart": {"runs": _runs({1: [0.9, 0.9]}), "labels_to_reach": {"0.99": None}},
        },
    }
    with pytest.raises(ValueError, match="share 0 seeds"):
        load_benchmark("paired_budgets").paired_budgets(report, "smart")


def test_a_target_the_report_has_no_figures_for_is_refused() -> None:
    report = {
        "metric": "auc",
        "reference": {"metric": 1.0},
        "strategies": {
            "random": {"runs": _runs({0: [0.9, 0.9], 1: [0.9, 0.9]}), "labels_to_reach": {}},
            "smart": {"runs": _runs({0: [0.9, 0.9], 1: [0.9, 0.9]}), "labels_to_reach": {}},
        },
    }
    with pytest.raises(ValueError, match="target 0.9 is not one of the report's"):
        load_benchmark("paired_budgets").paired_budgets(report, "smart", target=0.9)
