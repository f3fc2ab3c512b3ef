"""`workbench train --devices 2` (Lightning DDP, two CPU processes with gloo) through the
store-backed loop: one model version is recorded, by process 0, and the pool it scores gives
the selection that one process gives."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.loop.test_loop import DEMO_NPZ, label_served
from workbench.ingest import LabelPolicy, import_sources
from workbench.store import ModelStatus, ProjectConfig, Task, create_project, open_project

ROOT = Path(__file__).resolve().parents[2]
WORKBENCH = Path(sys.executable).with_name("workbench")


def _train(project: Path, devices: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "WORLD_SIZE"):
        env.pop(name, None)
    return subprocess.run(
        [
            str(WORKBENCH),
            "train",
            str(project),
            "--devices",
            str(devices),
            "--accelerator",
            "cpu",
            "--epochs",
            "3",
            "--mc-samples",
            "4",
            "--fresh",
        ],
        cwd=project.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_train_on_two_processes_records_one_model_and_selects_as_one_process(
    tmp_path: Path,
) -> None:
    one = tmp_path / "one"
    with create_project(
        one, ProjectConfig("breast", Task.CLASSIFICATION, ("malignant", "normal or benign"))
    ) as store:
        import_sources(store, [DEMO_NPZ], labels=LabelPolicy.GROUND_TRUTH)
        label_served(store, "ann", 40)
    two = tmp_path / "two"
    shutil.copytree(one, two)

    done = _train(two, 2)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "model version 1 ready" in done.stderr
    assert done.stderr.count("training on") == 1  # the second process stays quiet
    assert _train(one, 1).returncode == 0

    scores = []
    for project in (one, two):
        with open_project(project) as store:
            versions = store.list_model_versions()
            assert [(v.id, v.status) for v in versions] == [(1, ModelStatus.READY)]
            pool = {item.id for item in store.list_items(split="train")} - {
                label.item_id for label in store.current_labels()
            }
            bald = store.get_scores(1, "bald")
            assert set(bald) == pool  # every pool item scored, once
            scores.append(np.array([bald[i] for i in sorted(pool)]))
    assert np.ptp(scores[0]) > 1e-3  # the scores spread far beyond the tolerance below
    assert np.abs(scores[0] - scores[1]).max() < 1e-4, np.abs(scores[0] - scores[1]).max()
    top_one, top_two = (set(np.argsort(-s, kind="stable")[:10]) for s in scores)
    assert top_one == top_two


@pytest.mark.parametrize(
    ("variables", "records"),
    [
        ({}, True),
        ({"RANK": "0", "LOCAL_RANK": "0"}, True),
        ({"LOCAL_RANK": "1"}, False),  # Lightning's launcher: the second process of this node
        ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, False),  # the first process of the second node
        ({"RANK": "3"}, False),  # torchrun
        ({"SLURM_PROCID": "2"}, False),
    ],
)
def test_only_the_first_process_records(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], records: bool
) -> None:
    from workbench.loop import records_to_store

    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert records_to_store() is records
