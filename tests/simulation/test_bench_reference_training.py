"""benchmarks/bench_reference_training.py: its settings and how it re-reads stored curves."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from tests._benchmarks import load_benchmark


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_benchmark("bench_reference_training")


def test_settings_are_max_epochs_and_patience_pairs(script: ModuleType) -> None:
    assert script.parse_settings("20:4,100:20") == [(20, 4), (100, 20)]
    with pytest.raises(ValueError, match="'20' is not max_epochs:patience"):
        script.parse_settings("20")
    with pytest.raises(ValueError, match="'0:4': max_epochs and patience must be at least 1"):
        script.parse_settings("0:4")


def _curve(values: dict[int, float]) -> dict[str, Any]:
    return {"mean_curve": [{"labels": n, "mean": v} for n, v in values.items()]}


def test_a_stronger_reference_is_read_further_along_each_mean_curve(script: ModuleType) -> None:
    report = {
        "strategies": {
            "random": _curve({20: 0.70, 40: 0.80, 60: 0.85, 80: 0.86}),
            "power_bald_typical": _curve({20: 0.70, 40: 0.83, 60: 0.86, 80: 0.87}),
        }
    }
    # 99% lines: 0.7920 (weak reference 0.80) and 0.8613 (strong reference 0.87)
    got = script.reread(report, {"weak": 0.80, "strong": 0.87})
    assert got["weak"]["labels_to_99"] == {"random": 40, "power_bald_typical": 40}
    assert got["weak"]["share"] == pytest.approx(1.0)
    assert got["strong"]["labels_to_99"] == {"random": None, "power_bald_typical": 80}
    assert got["strong"]["share"] is None  # random never reaches it: no share
    assert got["strong"]["reference"] == 0.87
