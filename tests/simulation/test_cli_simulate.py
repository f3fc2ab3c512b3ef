"""``workbench simulate`` end to end on a tiny BreastMNIST subset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
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
            "random,entropy,power_bald:beta=4",
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
    assert set(report["strategies"]) == {"random", "entropy", "power_bald:beta=4"}
    assert [p["labels"] for p in report["strategies"]["entropy"]["mean_curve"]] == [6, 11, 16]
    assert [p["labels"] for p in report["strategies"]["power_bald:beta=4"]["mean_curve"]] == [
        6,
        11,
        16,
    ]  # an arm with options
    assert png.stat().st_size > 0


def test_cli_simulate_rejects_unknown_strategy(tmp_path: Path) -> None:
    data = tmp_path / "none.npz"
    code = main(["simulate", str(data), "--strategies", "nope", "--out", str(tmp_path / "r.json")])
    assert code == 1
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("power_bald:beta=-1", "beta must be a finite number >= 0"),
        ("power_bald:gamma=2", "unexpected keyword argument 'gamma'"),
        ("power_bald:beta", "option 'beta' is not key=value"),
    ],
)
def test_cli_simulate_refuses_a_bad_strategy_option_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, reason: str
) -> None:
    code = main(
        [
            "simulate",
            str(tmp_path / "none.npz"),
            "--strategies",
            f"random,{spec}",
            "--out",
            str(tmp_path / "r.json"),
        ]
    )
    assert code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert reason in err and spec in err  # before any data is read
    assert not (tmp_path / "r.json").exists()


def test_cli_simulate_reports_missing_data(tmp_path: Path) -> None:
    code = main(["simulate", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "r.json")])
    assert code == 1


@pytest.mark.parametrize(
    "flag", ["--workers", "--contrastive-steps", "--epochs", "--patience", "--mc-samples"]
)
def test_cli_simulate_rejects_zero(
    tmp_path: Path, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["simulate", str(tmp_path / "any.npz"), flag, "0", "--out", str(tmp_path / "r.json")]
    )
    assert code == 1
    assert f"{flag} must be >= 1" in " ".join(capsys.readouterr().err.split())  # rich wraps
    assert not (tmp_path / "r.json").exists()


def test_cli_simulate_rejects_a_negative_first_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "simulate",
            str(tmp_path / "any.npz"),
            "--first-seed",
            "-1",
            "--out",
            str(tmp_path / "r.json"),
        ]
    )
    assert code == 1
    assert "--first-seed must be >= 0" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "r.json").exists()


def test_cli_simulate_on_a_project_with_hidden_ground_truth(tmp_path: Path) -> None:
    """A project whose labels are hidden ground truth: its splits, images as the loop feeds
    them (windowed uint8, channels first), the oracle reveals the ground truth."""
    demo = Path(__file__).resolve().parents[2] / "workbench/demo_data/breastmnist/breastmnist.npz"
    project = tmp_path / "breast"
    assert (
        main(["init", str(project), "--task", "classification", "--classes", "malignant", "benign"])
        == 0
    )
    assert main(["import", str(project), str(demo), "--labels-as-ground-truth"]) == 0
    out = tmp_path / "results.json"
    code = main(
        [
            "simulate",
            str(project),
            "--strategies",
            "random,power_bald",
            "--seeds",
            "1",
            "--first-seed",
            "7",
            "--initial",
            "10",
            "--batch",
            "10",
            "--rounds",
            "1",
            "--epochs",
            "1",
            "--patience",
            "3",
            "--mc-samples",
            "2",
            "--max-pool",
            "120",
            "--max-val",
            "40",
            "--max-test",
            "60",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["config"]["seeds"] == [7]  # a held-out seed, for the reference too
    assert (report["recipe"]["max_epochs"], report["recipe"]["patience"]) == (1, 3)
    assert [r["seed"] for r in report["strategies"]["random"]["runs"]] == [7]
    assert report["dataset"]["notes"] == "project splits"
    assert report["dataset"]["image_shape"] == [1, 28, 28]  # channels first, as the loop
    assert report["dataset"]["num_classes"] == 2 and report["dataset"]["pool"] == 120
    curve = report["strategies"]["power_bald"]["mean_curve"]
    assert [p["labels"] for p in curve] == [10, 20]
    assert all(0.0 <= p["mean"] <= 1.0 for p in curve)


def test_cli_simulate_on_a_segmentation_project_sees_what_the_loop_sees(tmp_path: Path) -> None:
    """A segmentation project with hidden ground truth is simulated on the scans as the loop
    feeds its U-Net (windowed uint8, channels first), not on separately z-scored raw scans."""
    from workbench.loop import item_arrays
    from workbench.simulation import load_simulation_data
    from workbench.store import open_project

    demo = Path(__file__).resolve().parents[2] / "workbench/demo_data/hippocampus"
    project = tmp_path / "hippo"
    assert (
        main(["init", str(project), "--task", "segmentation", "--classes", "anterior", "posterior"])
        == 0
    )
    assert main(["import", str(project), str(demo), "--labels-as-ground-truth"]) == 0
    data = load_simulation_data(project, shape=(40, 56, 40))
    assert data.spatial_dims == 3 and data.num_classes == 3
    assert data.pool_x.dtype == np.uint8 and data.pool_x.shape[1:] == (1, 40, 56, 40)
    with open_project(project) as store:
        loop_view = item_arrays(store.list_items())
    assert all(a.dtype == np.uint8 and a.shape[0] == 1 for a in loop_view)
    every = np.concatenate([data.pool_x, data.val_x, data.test_x])
    for array in loop_view:  # each scan's voxels are the loop's, centred in the common shape
        assert any(np.array_equal(_centre(x, array.shape), array) for x in every)

    out = tmp_path / "results.json"
    assert (
        main(
            [
                "simulate",
                str(project),
                "--strategies",
                "random,power_bald",
                "--seeds",
                "1",
                "--initial",
                "2",
                "--batch",
                "1",
                "--rounds",
                "1",
                "--epochs",
                "1",
                "--mc-samples",
                "2",
                "--reference-seeds",
                "0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert "windowed uint8" in report["dataset"]["notes"]
    curve = report["strategies"]["power_bald"]["mean_curve"]
    assert [p["labels"] for p in curve] == [2, 3]
    assert all(0.0 <= p["mean"] <= 1.0 for p in curve)


def _centre(padded: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The centred ``shape`` box of ``padded`` (a scan that fits in it, as `_pad_crop` put it)."""
    box = tuple(
        slice((p - s) // 2, (p - s) // 2 + s) for p, s in zip(padded.shape, shape, strict=True)
    )
    return padded[box]


def test_cli_simulate_prints_labels_to_reach_with_the_interval_range() -> None:
    from workbench._cli_simulate import _reach_text

    strategy = {
        "labels_to_reach": {"0.95": 120, "0.98": 200, "0.99": None},
        "labels_to_reach_range": {"0.95": [100, 140], "0.98": [160, None], "0.99": [None, None]},
    }
    assert _reach_text(strategy) == "120 (100-140) / 200 (160-never) / never"
    one_seed = {"labels_to_reach": {"0.95": 20}, "labels_to_reach_range": {"0.95": None}}
    assert _reach_text(one_seed) == "20"


def test_cli_simulate_prints_the_area_difference_with_its_interval() -> None:
    from workbench._cli_simulate import _vs_random_text

    seeds = {"mean": 0.0033, "lo": 0.0001, "hi": 0.0065, "n": 60}
    assert _vs_random_text(seeds) == ", vs random +0.33 [+0.01, +0.65] points"
    one_seed = {"mean": -0.012, "lo": None, "hi": None, "n": 1}
    assert _vs_random_text(one_seed) == ", vs random -1.20 points"
    assert _vs_random_text(None) == ""


def test_cli_simulate_prints_labels_to_99_percent_as_a_share_of_randoms() -> None:
    from workbench._cli_simulate import _ratio_text

    reading = {"ratio": 0.85, "lo": 0.7, "hi": 1.05}
    assert _ratio_text({"0.99": reading}) == "; labels to 99% 85% of random's [70%, 105%]"
    open_ended = {"ratio": 0.5, "lo": None, "hi": 0.75}
    assert _ratio_text({"0.99": open_ended}) == "; labels to 99% 50% of random's [?, 75%]"
    unread = {"ratio": None, "lo": None, "hi": None}
    assert "not read" in _ratio_text({"0.99": unread})
    assert _ratio_text(None) == "" and _ratio_text({"0.95": reading}) == ""


def test_cli_simulate_names_the_budgets_where_a_strategy_differs_from_random() -> None:
    from workbench._cli_simulate import _budgets_text

    per_budget = [
        {"labels": 20, "mean": -0.02, "lo": -0.03, "hi": -0.01, "n": 5},
        {"labels": 30, "mean": 0.01, "lo": -0.01, "hi": 0.03, "n": 5},
        {"labels": 40, "mean": 0.02, "lo": 0.01, "hi": 0.03, "n": 5},
        {"labels": 50, "mean": 0.03, "lo": 0.02, "hi": 0.04, "n": 5},
    ]
    assert _budgets_text(per_budget) == "; above random at 40, 50 labels; below random at 20 labels"
    one_seed = [{"labels": 20, "mean": 0.5, "lo": None, "hi": None, "n": 1}]
    assert _budgets_text(one_seed) == ""
    assert _budgets_text(None) == ""


def test_cli_simulate_refuses_restoration_steps_below_one_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from workbench._cli_simulate import register_simulate_command
    from workbench.recipes import DEFAULT_RESTORATION_STEPS

    demo = Path(__file__).resolve().parents[2] / "workbench/demo_data/hippocampus"
    out = tmp_path / "r.json"
    argv = ["simulate", str(demo), "--ssl-init", "--restoration-steps", "0", "--out", str(out)]
    assert main(argv) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "--restoration-steps must be at least 1, got 0" in err and "restoration_steps" in err
    assert not out.exists()
    parser = argparse.ArgumentParser()
    register_simulate_command(parser.add_subparsers())
    defaults = parser.parse_args(["simulate", "data", "--out", "r.json"])
    assert defaults.restoration_steps == DEFAULT_RESTORATION_STEPS


def test_cli_simulate_refuses_an_encoder_cache_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = Path(__file__).resolve().parents[2] / "workbench/demo_data/breastmnist/breastmnist.npz"
    a_file = tmp_path / "cache"
    a_file.write_text("mine")
    out = tmp_path / "r.json"
    code = main(
        ["simulate", str(demo), "--encoder-cache", str(a_file), "--seeds", "1", "--out", str(out)]
    )
    assert code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "is a file, not a folder" in err and "encoder_cache" in err and not out.exists()


@pytest.mark.shared_data
def test_ctrl_c_stops_a_two_process_simulation_and_leaves_nothing(
    shared_data: Path, tmp_path: Path
) -> None:
    """Ctrl-C in a terminal (SIGINT to the whole process group) ends the command and its
    workers, says so, writes no report and removes the work folder (checkpoints trained from
    the images)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    temporary = tmp_path / "system-tmp"
    temporary.mkdir()
    out = tmp_path / "results.json"
    command = [
        str(Path(sys.executable).with_name("workbench")),
        "simulate",
        str(shared_data / "medmnist" / "breastmnist.npz"),
        "--strategies",
        "random",
        "--seeds",
        "2",
        "--initial",
        "20",
        "--batch",
        "20",
        "--rounds",
        "8",
        "--epochs",
        "50",
        "--max-pool",
        "200",
        "--max-val",
        "20",
        "--max-test",
        "40",
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(
        command,
        env={**os.environ, "TMPDIR": str(temporary)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # its own group, as a terminal's job
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(temporary.glob("wb-simulate-*/*")):
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.5)  # until a curve is training in the work folder
        assert any(temporary.glob("wb-simulate-*/*")), "no curve started training"
        workers = [
            c
            for c in psutil.Process(proc.pid).children(recursive=True)
            if "spawn_main" in " ".join(c.cmdline())
        ]
        assert len(workers) == 2
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, output
    assert "interrupted" in output
    assert not out.exists()
    assert list(temporary.iterdir()) == []
    gone, alive = psutil.wait_procs(workers, timeout=60)
    assert not alive, f"workers still running after Ctrl-C: {alive}"
