"""Test-time augmentation for segmentation scoring: what `workbench train --tta` costs and what
it buys, against plain MC dropout with the same T and with the same number of forward passes.

Hippocampus (MSD, ../shared/data), scans z-scored and centre padded to 40x56x40 as in
`bench_label_efficiency.py`; a residual U-Net 8-16-32-64 (dropout 0.1) trained from scratch (at
most 40 epochs, patience 8) on 8 and on 24 labelled scans, 3 seeds each (an active-learning
loop's early rounds). Each model scores the 24
test scans three ways (on CUDA when there is one, in the recipe's mixed precision):

- ``mc_T4``: MC dropout, T = 4 (the benchmarks' setting), 4 passes per scan;
- ``tta_T4``: the same 4 dropout samples under the identity and one flip per axis, 16 passes;
- ``mc_T16``: MC dropout, T = 16, the same 16 passes as ``tta_T4`` without the flips.

Per way: seconds per scan, test Dice of the mean prediction, and how well each image score
(mean voxel BALD, mean voxel entropy) ranks the scans by their error: the Spearman correlation
between the score and 1 - Dice over the 24 scans (higher: the score points the annotator at the
scans the model gets wrong). Writes ``benchmarks/results/segmentation_tta.json``.

    .venv/bin/python benchmarks/bench_segmentation_tta.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _machine import SHARED_DATA, machine_info, require_shared
from scipy.stats import spearmanr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.recipes import (  # noqa: E402
    SegmentationRecipe,
    TrainedSegmenter,
    UNetFactory,
    dice_scores,
    iter_segmentation_moments,
    train_segmenter,
)
from workbench.simulation import SimulationData, load_simulation_data  # noqa: E402
from workbench.strategies import moment_scores  # noqa: E402

DATA = SHARED_DATA
RESULTS = REPO / "benchmarks" / "results" / "segmentation_tta.json"
WAYS = {"mc_T4": (4, False), "tta_T4": (4, True), "mc_T16": (16, False)}


def score(
    trained: TrainedSegmenter, data: SimulationData, samples: int, tta: bool
) -> dict[str, Any]:
    """Score the test scans one way, timed as the loop scores a pool (MC moments, the mean
    per-voxel BALD and entropy, the mean segmentation); its Dice and how well each score ranks
    the scans by error."""
    model = dataclasses.replace(trained, tta=tta)
    bald: list[np.ndarray] = []
    entropy: list[np.ndarray] = []
    segmentation = []
    start = time.perf_counter()
    for _, moments in iter_segmentation_moments(model, data.test_x, samples):  # [B, C+1, *S]
        bald.append(moment_scores(moments, "bald", spatial_dims=3))
        entropy.append(moment_scores(moments, "entropy", spatial_dims=3))
        segmentation.append(moments[:, :-1].argmax(1))
    seconds = time.perf_counter() - start
    dice = dice_scores(np.concatenate(segmentation), data.test_y, data.num_classes)
    error = 1.0 - dice
    return {
        "seconds_per_scan": seconds / len(data.test_x),
        "test_dice": float(dice.mean()),
        "spearman_bald_vs_error": float(spearmanr(np.concatenate(bald), error).statistic),
        "spearman_entropy_vs_error": float(spearmanr(np.concatenate(entropy), error).statistic),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", type=int, nargs="+", default=[8, 24])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    path = DATA / "hippocampus-msd"
    require_shared(path)
    data = load_simulation_data(path, max_pool=60, max_val=8, max_test=24, shape=(40, 56, 40))
    recipe = SegmentationRecipe(
        network=UNetFactory((8, 16, 32, 64), dropout=0.1),
        max_epochs=40,
        patience=8,
        min_steps_per_epoch=8,
        batch_size=2,
    )
    runs = []
    for labelled in args.labelled:
        for seed in range(args.seeds):
            pick = np.random.default_rng(seed).permutation(len(data.pool_x))[:labelled]
            trained = train_segmenter(
                recipe,
                data.pool_x[pick],
                data.pool_y[pick],
                data.val_x,
                data.val_y,
                num_classes=data.num_classes,
                seed=seed,
            )
            row = {
                "labelled": labelled,
                "seed": seed,
                **{way: score(trained, data, t, tta) for way, (t, tta) in WAYS.items()},
            }
            runs.append(row)
            print(json.dumps(row))
    summary = {}
    for way in WAYS:
        cells = [r[way] for r in runs]
        summary[way] = {key: round(float(np.mean([c[key] for c in cells])), 4) for key in cells[0]}
    base = summary["mc_T4"]["seconds_per_scan"]
    for way in WAYS:
        summary[way]["time_over_mc_T4"] = round(summary[way]["seconds_per_scan"] / base, 2)
    result = {
        "what": "segmentation scoring: MC dropout with and without test-time flips",
        "data": data.describe(),
        "network": "residual U-Net 8-16-32-64, dropout 0.1",
        "recipe": {
            "max_epochs": recipe.max_epochs,
            "patience": recipe.patience,
            "min_steps_per_epoch": recipe.min_steps_per_epoch,
            "batch_size": 2,
        },
        "ways": {
            way: {"mc_samples": t, "flips": tta, "passes_per_scan": t * (4 if tta else 1)}
            for way, (t, tta) in WAYS.items()
        },
        "mean_over_models": summary,
        "runs": runs,
        "torch_threads": args.threads,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "machine": machine_info(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(summary, indent=2))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
