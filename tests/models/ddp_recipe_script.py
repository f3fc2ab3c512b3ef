"""Run by test_ddp.py in a subprocess (Lightning's DDP launcher re-executes this script): train
the classification recipe on BreastMNIST with N CPU processes and score a pool with N processes.

usage: ddp_recipe_script.py DEVICES OUT_DIR SHARED_DATA
writes OUT_DIR/recipe_<DEVICES>.json: ids, BALD scores, val metrics, world size, weight digest.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from workbench.recipes import ClassificationRecipe, predict_scores, train_classifier
from workbench.strategies import bald


def bald_scores(probs: torch.Tensor) -> torch.Tensor:
    """The engine's BALD of one scored batch.  # [B, T, C] -> [B]"""
    return torch.from_numpy(bald(probs.numpy()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("devices", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("shared_data", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with np.load(args.shared_data / "medmnist" / "breastmnist.npz") as data:
        x, y = data["train_images"][:300], data["train_labels"][:300]
        xv, yv = data["val_images"][:78], data["val_labels"][:78]
        pool = data["test_images"][:101]
    parallel = {"accelerator": "cpu", "devices": args.devices}
    parallel["strategy"] = "ddp" if args.devices > 1 else "auto"
    # 300 items, batch 31: 9 global batches an epoch (21 items left out), shares of 16 and 15
    recipe = ClassificationRecipe(
        max_epochs=3, patience=3, batch_size=31, mc_samples=10, **parallel
    )
    trained = train_classifier(
        recipe, x, y, xv, yv, seed=0, num_classes=2, root_dir=args.out / f"fit_{args.devices}"
    )
    ids = np.arange(101) + 5000
    scores = predict_scores(
        trained, pool, bald_scores, ids=ids, root_dir=args.out / "scores", **parallel
    )
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    weights = torch.cat([v.flatten().float() for v in trained.state_dict.values()])
    result = {
        "world_size": world,
        "ids": scores.ids.tolist(),
        "scores": scores.values.astype(float).tolist(),
        "metrics": trained.metrics,
        "weights": weights.tolist(),
    }
    (args.out / f"recipe_{args.devices}_rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
