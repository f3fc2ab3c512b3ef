"""Run by test_ddp.py in a subprocess (Lightning's DDP launcher re-executes this script): train
the segmentation recipe on hippocampus MRI with N CPU processes, on whole volumes and on patches,
and score a pool with N processes.

usage: ddp_segmentation_script.py DEVICES OUT_DIR SHARED_DATA
writes OUT_DIR/segmentation_<DEVICES>_rank<R>.json: per variant ids, scores, weights, world size.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from workbench.recipes import SegmentationRecipe, UNetFactory, predict_scores, train_segmenter
from workbench.simulation import load_simulation_data
from workbench.strategies import bald


def mean_bald(probs: torch.Tensor) -> torch.Tensor:
    """The engine's per-voxel BALD, averaged over the volume.  # [B, T, C, *S] -> [B]"""
    return torch.from_numpy(bald(probs.numpy(), spatial_dims=3, reduction="mean"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("devices", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("shared_data", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_simulation_data(
        args.shared_data / "hippocampus-msd",
        seed=0,
        max_pool=10,
        max_val=3,
        max_test=9,
        shape=(24, 32, 24),
    )
    parallel = {
        "accelerator": "cpu",
        "devices": args.devices,
        "strategy": "ddp" if args.devices > 1 else "auto",
    }
    # a global batch of 3: shares of 2 and 1 items, so the loss must be scaled to the global mean
    base = SegmentationRecipe(
        network=UNetFactory((4, 8, 16)),
        divisible_by=4,
        max_epochs=2,
        patience=2,
        min_steps_per_epoch=3,
        batch_size=3,
        mc_samples=4,
        predict_batch_size=2,
        **parallel,
    )
    variants = {
        "whole": base,
        "patches": SegmentationRecipe(**{**vars(base), "patch_size": (16, 16, 16)}),
    }
    ids = torch.arange(len(data.test_x)).numpy() + 700
    result: dict[str, object] = {}
    for name, recipe in variants.items():
        trained = train_segmenter(
            recipe,
            data.pool_x,
            data.pool_y,
            data.val_x,
            data.val_y,
            num_classes=data.num_classes,
            seed=0,
            root_dir=args.out / f"fit_{name}_{args.devices}",
        )
        scores = predict_scores(
            trained,
            data.test_x,
            mean_bald,
            ids=ids,
            root_dir=args.out / f"scores_{name}",
            **parallel,
        )
        weights = torch.cat([v.flatten().float() for v in trained.state_dict.values()])
        result[name] = {
            "ids": scores.ids.tolist(),
            "scores": scores.values.astype(float).tolist(),
            "weights": weights.tolist(),
            "metrics": trained.metrics,
        }
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    result["world_size"] = world
    (args.out / f"segmentation_{args.devices}_rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
