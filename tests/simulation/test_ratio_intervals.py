"""benchmarks/ratio_intervals.py: the labels-ratio interval of stored runs, checked by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests._benchmarks import load_benchmark, stored_runs

BUDGETS = (10, 20, 30)


def _runs(curves: dict[int, list[float]]) -> list[dict[str, Any]]:
    return stored_runs(curves, BUDGETS)


def _report() -> dict[str, Any]:
    # seeds 0-3: the arm reaches 0.99 at 10 labels, random at 20 (seeds 0, 1) or 30 (2, 3)
    smart = {s: [0.995, 1.0, 1.0] for s in range(4)}
    random = {0: [0.9, 0.995, 1.0], 1: [0.9, 0.995, 1.0], 2: [0.9, 0.9, 1.0], 3: [0.9, 0.9, 1.0]}
    return {
        "metric": "auc",
        "reference": {"metric": 1.0, "per_seed": [{"auc": 1.0}]},
        "strategies": {"random": {"runs": _runs(random)}, "smart": {"runs": _runs(smart)}},
    }


def test_a_setup_reads_the_ratio_its_interval_and_the_share_under_the_goal() -> None:
    script = load_benchmark("ratio_intervals")
    out = script.read_setup(_report(), "smart", resamples=4000)
    # the mean of random's curves (0.9, 0.9475, 1.0) reaches 0.99 at 30: 10 / 30
    assert out["ratio"] == pytest.approx(1 / 3)
    assert out["seeds"] == 4 and out["reference_trainings"] == 1
    # a resample reads 10 / 20 only when every one of its 4 draws is seed 0 or 1: (1/2)^4
    assert (out["lo"], out["hi"]) == (pytest.approx(1 / 3), 0.5)
    assert out["share_surely_at_most_goal"] == 1.0  # 1/3 and 1/2 are both under 60%
    assert script.read_setup(_report(), "smart", goal=0.4)[
        "share_surely_at_most_goal"
    ] == pytest.approx(1 - 1 / 16, abs=0.02)
    assert out["reference_fixed"]["ratio"] == out["ratio"]


def test_a_seed_range_reads_only_its_seeds() -> None:
    script = load_benchmark("ratio_intervals")
    out = script.read_setup(_report(), "smart", seeds=range(0, 2))
    assert out["seeds"] == 2 and out["seed_range"] == [0, 1]
    assert (out["ratio"], out["lo"], out["hi"]) == (0.5, 0.5, 0.5)


def test_the_script_writes_each_setup_and_names_a_bad_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = load_benchmark("ratio_intervals")
    report = tmp_path / "r.json"
    report.write_text(json.dumps(_report()))
    out = tmp_path / "out.json"
    argv = ["ratio_intervals.py", "--setup", f"toy=run={report}:smart", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", [*argv, "--no-plot", "--resamples", "100"])
    script.main()
    (row,) = json.loads(out.read_text())["setups"]
    assert row["label"] == "toy=run" and row["report"] == "r.json" and row["resamples"] == 100
    assert "toy=run (4 seeds, 1 references): 33% [33%, 50%]" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", [*argv[:2], f"toy={report}:missing", "--no-plot"])
    with pytest.raises(SystemExit):
        script.main()
    assert "no strategy 'missing'" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", [*argv[:2], f"toy={report}:smart", "--seeds", "0-0"])
    with pytest.raises(SystemExit):
        script.main()
    assert "needs 2 seeds or more" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["no-equals.json:arm", "label=report.json", "label=:arm"])
def test_a_setup_without_label_report_and_arm_is_refused(text: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="LABEL=REPORT.json:ARM"):
        load_benchmark("ratio_intervals")._setup(text)


def test_a_seed_range_is_read_from_its_text() -> None:
    import argparse

    script = load_benchmark("ratio_intervals")
    assert script._seed_range("30-59") == range(30, 60)
    assert script._seed_range("7") == range(7, 8)
    with pytest.raises(argparse.ArgumentTypeError, match="A-B"):
        script._seed_range("thirty")
