"""benchmarks/pool_reports.py: reports of one setup on different seeds, pooled by seed."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests._benchmarks import load_benchmark


def _run(seed: int, budgets: tuple[int, ...], base: float = 0.5) -> dict[str, Any]:
    """One seed's curve: the metric ``base + seed / 100`` at each budget."""
    return {
        "seed": seed,
        "picks": [],
        "curve": [{"labels": n, "metrics": {"dice": base + seed / 100}} for n in budgets],
    }


def _report(seeds: list[int], reference: list[float], arms: dict[str, float]) -> dict[str, Any]:
    """A report whose arm ``a`` has the metric ``arms[a] + seed / 100`` at 10 and 20 labels."""
    return {
        "config": {"seeds": seeds},
        "reference": {"per_seed": [{"dice": v} for v in reference]},
        "strategies": {
            arm: {"runs": [_run(s, (10, 20), base) for s in seeds]} for arm, base in arms.items()
        },
    }


def test_runs_and_reference_trainings_are_pooled_by_seed() -> None:
    first = _report([0, 1], [0.80], {"random": 0.5, "smart": 0.6, "other": 0.1})
    held_out = _report([5, 6], [0.82], {"random": 0.5, "smart": 0.6})
    runs, reference = load_benchmark("pool_reports").pooled_runs(
        {"a.json": first, "b.json": held_out}, ("random", "smart")
    )
    assert [(r.strategy, r.seed) for r in runs] == [
        ("random", 0), ("random", 1), ("random", 5), ("random", 6),
        ("smart", 0), ("smart", 1), ("smart", 5), ("smart", 6),
    ]  # fmt: skip
    assert runs[2].curve[0].metrics["dice"] == pytest.approx(0.55)
    # one reference training per report, on its first seed
    assert reference == {0: {"dice": 0.80}, 5: {"dice": 0.82}}


def test_the_same_reference_training_in_two_reports_counts_once() -> None:
    # a cold-start report copies random's curves and reference from the run it read them from
    label_efficiency = _report([0, 1], [0.80], {"random": 0.5})
    cold_starts = _report([0, 1], [0.80], {"smart": 0.6})
    _, reference = load_benchmark("pool_reports").pooled_runs(
        {"a.json": label_efficiency, "b.json": cold_starts}, ("random", "smart")
    )
    assert reference == {0: {"dice": 0.80}}


BOTH = {"random": 0.5, "smart": 0.6}


@pytest.mark.parametrize(
    ("first", "second", "arms", "message"),
    [
        (
            _report([0, 1], [0.8], BOTH),
            _report([1, 2], [0.8], BOTH),
            ("random", "smart"),
            "in both",
        ),
        (_report([5], [0.8], BOTH), _report([5], [0.9], BOTH), ("random", "smart"), "differs"),
        (
            _report([0], [0.8], BOTH),
            _report([1], [0.8], BOTH),
            ("random", "nope"),
            "no report holds",
        ),
        (
            _report([0], [0.8], BOTH),
            {**_report([5], [0.8], BOTH), "strategies": {"random": {"runs": [_run(5, (10, 30))]}}},
            ("random",),
            "another setup",
        ),
        (
            _report([0, 1], [0.8], BOTH),
            _report([5, 6], [0.8], {"random": 0.5}),
            ("random", "smart"),
            "lacks seeds [5, 6]",
        ),
    ],
)
def test_reports_that_cannot_be_pooled_are_refused_with_the_reason(
    first: dict[str, Any], second: dict[str, Any], arms: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        load_benchmark("pool_reports").pooled_runs({"a.json": first, "b.json": second}, arms)
