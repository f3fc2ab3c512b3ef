"""The oracle reveals only selected positions; the loop trains only on revealed labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import workbench.simulation._run as run_module
from workbench.recipes import ClassificationRecipe
from workbench.simulation import Oracle, OracleError, SimulationConfig, SimulationData, run_strategy


def test_oracle_reveals_only_what_is_asked() -> None:
    oracle = Oracle(np.array([5, 6, 7, 8]))
    assert oracle.reveal([2, 0]).tolist() == [7, 5]
    assert oracle.labelled_mask.tolist() == [True, False, True, False]
    assert oracle.revealed == [2, 0]
    with pytest.raises(OracleError):
        oracle.reveal([2])
    with pytest.raises(OracleError):
        oracle.reveal([4])
    with pytest.raises(OracleError):
        oracle.reveal([1, 1])


def _data(n: int = 30) -> SimulationData:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (n, 8, 8), dtype=np.uint8)
    y = np.arange(n) % 2
    return SimulationData("toy", "classification", 2, 2, x, y, x[:4], y[:4], x[:6], y[:6])


def test_loop_reveals_exactly_the_selections(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = _data()
    reveals: list[list[int]] = []
    trained_on: list[tuple[list[int], list[int]]] = []
    original = Oracle.reveal

    def spy_reveal(self: Oracle, positions: Any) -> np.ndarray:
        reveals.append([int(i) for i in positions])
        return original(self, positions)

    def fake_train(recipe: Any, d: SimulationData, x: np.ndarray, y: np.ndarray, *a: Any) -> Any:
        rows = [int(np.flatnonzero((d.pool_x == xi).all(axis=(1, 2)))[0]) for xi in x]
        trained_on.append((rows, [int(v) for v in y]))
        return type("T", (), {"state_dict": {}, "metrics": {"val_auc": 0.5}})()

    monkeypatch.setattr(Oracle, "reveal", spy_reveal)
    monkeypatch.setattr(run_module, "_train", fake_train)
    monkeypatch.setattr(run_module, "evaluate", lambda t, d: {"auc": 0.5})
    config = SimulationConfig(strategies=("random",), seeds=(3,), initial=4, batch=3, rounds=3)
    run = run_strategy("random", 3, data, ClassificationRecipe(), config, tmp_path)

    assert reveals == run.picks
    assert [len(p) for p in run.picks] == [4, 3, 3, 3]
    flat = [i for p in run.picks for i in p]
    assert len(set(flat)) == len(flat)
    assert [p.labels for p in run.curve] == [4, 7, 10, 13]
    for r, (rows, labels) in enumerate(trained_on):
        revealed = [i for p in run.picks[: r + 1] for i in p]
        assert sorted(rows) == sorted(revealed)
        assert labels == [int(data.pool_y[i]) for i in rows]
