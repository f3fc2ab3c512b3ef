"""Lightning DDP with two CPU processes (gloo) trains and scores for real, and its top-k
selection equals a one-process scoring of the same checkpoint.

Why the same checkpoint: DDP training is not bit-identical to one process (each rank draws its
own dropout masks and BatchNorm sees half a batch), so the test compares scoring, the step
whose result must not depend on the number of processes. Scoring is made independent of it by
(1) dropout masks keyed by (seed, item id, sample), not drawn from a per-rank RNG, and
(2) merging the per-rank score files, dropping ids that a padding DistributedSampler repeats
and ordering by id (`gather_scores`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("ddp_script.py")
ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.mark.shared_data
@pytest.mark.slow
def test_ddp_two_processes_select_the_same_items_as_one(shared_data: Path, tmp_path: Path) -> None:
    _run("2", str(tmp_path), str(shared_data), "--train")
    fit = json.loads((tmp_path / "fit.json").read_text())
    assert fit["world_size"] == 2
    _run("1", str(tmp_path), str(shared_data), "--ckpt", fit["checkpoint"])
    two = json.loads((tmp_path / "selection_2.json").read_text())
    one = json.loads((tmp_path / "selection_1.json").read_text())
    assert two["rank_files"] == 2 and one["rank_files"] == 1
    assert two["ids"] == one["ids"] == list(range(5000, 5101))  # every item once
    assert two["scores"] == pytest.approx(one["scores"], abs=1e-5)
    assert two["top10"] == one["top10"]
