"""Loading a script under benchmarks/ as a module, so its pure functions can be tested, and
building the stored curves such scripts read."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module (its sibling modules importable while it loads)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def stored_runs(curves: dict[int, list[float]], budgets: tuple[int, ...]) -> list[dict[str, Any]]:
    """A report's ``runs`` of one strategy as `simulate` stores them: per seed, its test AUC at
    each of ``budgets``, no picks."""
    return [
        {
            "seed": seed,
            "picks": [],
            "curve": [
                {"labels": n, "metrics": {"auc": v}} for n, v in zip(budgets, values, strict=True)
            ],
        }
        for seed, values in curves.items()
    ]
