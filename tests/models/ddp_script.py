"""Run by test_ddp.py in a subprocess (Lightning's DDP launcher re-executes this script):
train on BreastMNIST with N CPU processes, and/or score the pool with N processes.

usage: ddp_script.py DEVICES OUT_DIR SHARED_DATA [--train] [--ckpt PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lightning as L
import numpy as np
import torch

from workbench.models import (
    ArrayDataModule,
    ClassificationModule,
    ScoreWriter,
    fit_and_checkpoint,
    gather_scores,
    small_cnn,
)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Predictive entropy.  # [B, T, C] -> [B]"""
    mean = probs.mean(1)
    return -(mean * mean.clamp_min(1e-12).log()).sum(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("devices", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("shared_data", type=Path)
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--ckpt", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with np.load(args.shared_data / "medmnist" / "breastmnist.npz") as data:
        images, labels = data["train_images"][:256], data["train_labels"][:256]
        pool = data["test_images"][:101]  # odd size: the padding sampler would repeat an item
    datamodule = ArrayDataModule(
        images,
        labels,
        pool_images=pool,
        pool_ids=np.arange(101) + 5000,
        val_fraction=0.25,
        batch_size=32,
        predict_batch_size=16,
        seed=0,
    )
    strategy = "ddp" if args.devices > 1 else "auto"
    common = {"accelerator": "cpu", "devices": args.devices, "strategy": strategy}
    L.seed_everything(0, verbose=False)
    if args.train:
        module = ClassificationModule(small_cnn(), lr=2e-3)
        result = fit_and_checkpoint(
            module, datamodule, max_epochs=2, root_dir=args.out / "fit", **common
        )
        trainer_rank = (
            int(torch.distributed.get_rank()) if torch.distributed.is_initialized() else 0
        )
        if trainer_rank == 0:
            (args.out / "fit.json").write_text(
                json.dumps(
                    {
                        "checkpoint": str(result.checkpoint_path),
                        "world_size": torch.distributed.get_world_size()
                        if torch.distributed.is_initialized()
                        else 1,
                        "metrics": result.metrics,
                    }
                )
            )
        ckpt = result.checkpoint_path
    else:
        ckpt = args.ckpt
    module = ClassificationModule.load_from_checkpoint(ckpt, net=small_cnn())
    scores_dir = args.out / f"scores_{args.devices}"
    trainer = L.Trainer(
        logger=False,
        enable_progress_bar=False,
        **common,
        callbacks=[ScoreWriter(scores_dir, entropy)],
    )
    trainer.predict(module, datamodule=datamodule, return_predictions=False)
    if trainer.global_rank == 0:
        trainer.strategy.barrier()
        merged = gather_scores(scores_dir)
        top = merged.ids[np.argsort(-merged.values, kind="stable")[:10]]
        (args.out / f"selection_{args.devices}.json").write_text(
            json.dumps(
                {
                    "ids": merged.ids.tolist(),
                    "scores": merged.values.tolist(),
                    "top10": top.tolist(),
                    "rank_files": len(list(scores_dir.glob("scores_rank*.npz"))),
                }
            )
        )
    else:
        trainer.strategy.barrier()


if __name__ == "__main__":
    main()
