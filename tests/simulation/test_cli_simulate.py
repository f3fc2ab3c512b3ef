"""``workbench simulate`` end to end on a tiny BreastMNIST subset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main


@pytest.mark.shared_data
def test_cli_simulate_writes_report_and_plot(shared_data: Path, tmp_path: Path) -> None:
    out, png = tmp_path / "results.json", tmp_path / "curves.png"
    code = main(
        [
            "simulate",
            str(shared_data / "medmnist" / "breastmnist.npz"),
            "--strategies",
            "random,entropy",
            "--seeds",
            "1",
            "--initial",
            "6",
            "--batch",
            "5",
            "--rounds",
            "2",
            "--epochs",
            "1",
            "--mc-samples",
            "2",
            "--max-pool",
            "50",
            "--max-val",
            "20",
            "--max-test",
            "40",
            "--out",
            str(out),
            "--plot",
            str(png),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["strategies"]) == {"random", "entropy"}
    assert [p["labels"] for p in report["strategies"]["entropy"]["mean_curve"]] == [6, 11, 16]
    assert png.stat().st_size > 0


def test_cli_simulate_rejects_unknown_strategy(tmp_path: Path) -> None:
    data = tmp_path / "none.npz"
    code = main(["simulate", str(data), "--strategies", "nope", "--out", str(tmp_path / "r.json")])
    assert code == 1
    assert not (tmp_path / "r.json").exists()


def test_cli_simulate_reports_missing_data(tmp_path: Path) -> None:
    code = main(["simulate", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "r.json")])
    assert code == 1


def test_cli_simulate_rejects_zero_workers(tmp_path: Path) -> None:
    code = main(
        ["simulate", str(tmp_path / "any.npz"), "--workers", "0", "--out", str(tmp_path / "r.json")]
    )
    assert code == 1
    assert not (tmp_path / "r.json").exists()
