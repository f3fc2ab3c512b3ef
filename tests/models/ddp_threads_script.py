"""Run by test_ddp.py in a subprocess with OMP_NUM_THREADS unset, as in a notebook kernel:
train and score with 2 CPU processes (Lightning re-executes this script for the second), and
record the torch threads and OMP_NUM_THREADS of each process before and after, and every
thread count set in between.

usage: ddp_threads_script.py OUT_DIR
writes OUT_DIR/threads_rank<r>.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from workbench.recipes import ClassificationRecipe, predict_scores, train_classifier
from workbench.strategies import bald


def main() -> None:
    out = Path(sys.argv[1])
    if "LOCAL_RANK" not in os.environ:  # the launching process: more threads than its share
        torch.set_num_threads((os.cpu_count() or 1) + 1)
    before = (torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS"))
    calls: list[int] = []  # every thread count set from here on (Lightning's, then ours)
    set_threads = torch.set_num_threads

    def recorded(n: int) -> None:
        calls.append(n)
        set_threads(n)

    torch.set_num_threads = recorded  # type: ignore[assignment]
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    y = np.arange(64) % 2
    recipe = ClassificationRecipe(
        max_epochs=1,
        min_steps_per_epoch=1,
        batch_size=16,
        mc_samples=2,
        restarts=0,
        accelerator="cpu",
        devices=2,
        strategy="ddp",
    )
    trained = train_classifier(
        recipe, x, y, x[:16], y[:16], seed=0, num_classes=2, root_dir=out / "fit"
    )
    after_training = torch.get_num_threads()
    predict_scores(
        trained,
        x[:20],
        lambda p: torch.from_numpy(bald(p.numpy())),
        ids=np.arange(20),
        root_dir=out / "scores",
        accelerator="cpu",
        devices=2,
        strategy="ddp",
    )
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    (out / f"threads_rank{rank}.json").write_text(
        json.dumps(
            {
                "before": before[0],
                "omp_before": before[1],
                "after_training": after_training,
                "after_scoring": torch.get_num_threads(),
                "omp_after": os.environ.get("OMP_NUM_THREADS"),
                "world_size": torch.distributed.get_world_size(),
                "set": calls,
            }
        )
    )


if __name__ == "__main__":
    main()
