"""Is patch training data-bound? Time the segmentation recipe's own training loop, split into the
time spent waiting for the next batch of patches (cut on the CPU by `PatchDraws`, in the main
process, or in worker processes) and the time of the training step on the device (forward,
backward, optimiser; AMP on CUDA). A data fraction near 1 means the device waits for patches.
Each worker setting in ``--workers`` trains the same model in the same run (``-1``: the recipe's
default), so their figures compare side by side.

    python benchmarks/bench_patch_throughput.py                      # small scans
    python benchmarks/bench_patch_throughput.py --shape 192 192 128 --patch 96 96 96

It trains where the recipe does: on CUDA when there is a GPU (16-mixed), else on the CPU.

Scans are synthetic (uint8 noise with a bright ellipsoid as foreground) so that any size can be
asked for; the cost of cutting a patch depends on sizes, not on content.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from workbench.recipes import SegmentationRecipe, train_segmenter
from workbench.recipes._segmentation import patch_workers

ROOT = Path(__file__).resolve().parents[1]


def synthetic_scans(
    n: int, shape: tuple[int, ...], seed: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` uint8 scans of ``shape`` with an ellipsoid of class 1 at a random place."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32)
    images, masks = [], []
    for _ in range(n):
        centre = [rng.uniform(0.3, 0.7) * s for s in shape]
        radius = [rng.uniform(0.1, 0.2) * s for s in shape]
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radius, strict=True)) <= 1
        image = rng.integers(0, 120, shape, dtype=np.uint8)
        image[inside] += 100
        images.append(image)
        masks.append(inside.astype(np.uint8))
    return images, masks


class StepTimer(Callback):
    """Per training batch: seconds waiting for it (since the last step ended) and in the step."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.wait: list[float] = []
        self.step: list[float] = []
        self.last_end: float | None = None

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.last_end = self._now()  # the first wait of an epoch includes building its loader

    def on_train_batch_start(
        self, trainer: L.Trainer, module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.start = self._now()
        if self.last_end is not None:
            self.wait.append(self.start - self.last_end)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self.last_end = self._now()
        self.step.append(self.last_end - self.start)


def time_training(
    args: argparse.Namespace,
    images: list[np.ndarray],
    masks: list[np.ndarray],
    workers: int | None,
    cuda: bool,
) -> dict[str, Any]:
    """Train once with ``workers`` patch-cutting processes; the wait and step per batch."""
    recipe = SegmentationRecipe(
        patch_size=tuple(args.patch),
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        patience=args.epochs,
        loader_workers=workers,
    )
    timer = StepTimer(cuda)
    start = time.perf_counter()
    train_segmenter(
        recipe,
        images[:-2],
        masks[:-2],
        images[-2:],
        masks[-2:],
        num_classes=2,
        seed=0,
        callbacks=[timer],
    )
    total = time.perf_counter() - start
    # the first step of each fit waits for its loader (and workers) and compiles kernels
    waits, steps = np.array(timer.wait[1:]), np.array(timer.step[1:])
    return {
        "loader_workers": patch_workers(recipe),
        "steps": len(timer.step),
        "median_wait_seconds": round(float(np.median(waits)), 4),
        "median_step_seconds": round(float(np.median(steps)), 4),
        "seconds_per_step_incl_wait": round(float((waits.sum() + steps.sum()) / len(steps)), 4),
        "data_fraction_of_training_time": round(
            float(waits.sum() / (waits.sum() + steps.sum())), 3
        ),
        "fit_seconds_incl_validation": round(total, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=6, help="labelled training scans")
    parser.add_argument("--shape", type=int, nargs=3, default=[64, 64, 48])
    parser.add_argument("--patch", type=int, nargs=3, default=[32, 32, 32])
    parser.add_argument("--batch-size", type=int, default=SegmentationRecipe.batch_size)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[0, -1],
        help="patch-cutting worker processes per run (-1: the recipe default)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "patch_throughput.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape, patch = tuple(args.shape), tuple(args.patch)
    images, masks = synthetic_scans(args.scans + 2, shape, seed=0)
    cuda = torch.cuda.is_available()
    runs = [time_training(args, images, masks, None if w < 0 else w, cuda) for w in args.workers]
    base = runs[0]["seconds_per_step_incl_wait"]
    for run in runs:
        run["speedup_over_first"] = round(base / run["seconds_per_step_incl_wait"], 2)
    report = {
        "what": "segmentation recipe training on patches: wait for the next batch vs the step",
        "scans": args.scans,
        "scan_shape": list(shape),
        "patch_size": list(patch),
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "runs": runs,
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": torch.cuda.get_device_name()
            if cuda
            else platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": args.threads,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
