"""benchmarks/bench_ssl_init.py: extra arms named by strategy and keyword arguments (the
specs themselves: tests/strategies/test_strategy_spec.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its sibling modules
    try:
        spec = importlib.util.spec_from_file_location("bench_ssl_init",
                                                      BENCHMARKS / "bench_ssl_init.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_a_plain_name_and_keyword_arguments_become_separate_arms(script: ModuleType) -> None:
    arms = script.arms_with(("batchbald", "power_bald:beta=4", "power_bald:beta=0.5"))
    assert list(arms) == ["random", "power_bald_typical", "batchbald_typical",
                          "power_bald_beta4_typical", "power_bald_beta0.5_typical"]
    assert arms["power_bald_beta4_typical"] == ("power_bald", "typical", {"beta": 4.0})
    assert arms["batchbald_typical"] == ("batchbald", "typical", {})
    assert arms["random"] == ("random", "random", {})
