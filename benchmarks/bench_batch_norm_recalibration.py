"""BatchNorm statistics recomputed after training, against the running averages training left.

The classification recipe trains, restores the best checkpoint, then (since `17e1aec`)
recomputes the BatchNorm statistics on the un-augmented training images. This benchmark trains
the default recipe once per (labels, seed) with ``recalibrate_batch_norm=False``, measures the
test split, recomputes the statistics with `workbench.models.recalibrate_batch_norm` exactly as
the recipe does, and measures again: the same weights, only the statistics differ. Reads
../shared/data (fails when missing); writes ``benchmarks/results/batch_norm_recalibration.json``.

    .venv/bin/python benchmarks/bench_batch_norm_recalibration.py
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
from _machine import SHARED_DATA, require_shared

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.models import recalibrate_batch_norm  # noqa: E402
from workbench.recipes import (  # noqa: E402
    ClassificationRecipe,
    classification_metrics,
    predict_mean,
    train_classifier,
)
from workbench.recipes._data import TensorItems, as_images, loader  # noqa: E402
from workbench.simulation import load_simulation_data  # noqa: E402

DATA = SHARED_DATA
OUT = REPO / "benchmarks" / "results" / "batch_norm_recalibration.json"


def test_metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUC, accuracy, balanced accuracy, NLL and the share predicted as class 0."""
    pred = probs.argmax(1)
    nll = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)).mean()
    return {
        **classification_metrics(probs, labels),
        "balanced_accuracy": float(np.mean([(pred[labels == c] == c).mean() for c in (0, 1)])),
        "nll": float(nll),
        "predicted_class0_share": float((pred == 0).mean()),
    }


def run(dataset: str, budgets: list[int], seeds: int) -> dict[str, Any]:
    path = DATA / "medmnist" / f"{dataset}.npz"
    require_shared(path)
    data = load_simulation_data(path, seed=0, max_val=150)
    recipe = dataclasses.replace(
        ClassificationRecipe(max_epochs=20, patience=4, min_steps_per_epoch=5),
        recalibrate_batch_norm=False,
    )
    rows: list[dict[str, Any]] = []
    for n in budgets:
        for seed in range(seeds):
            rng = np.random.default_rng([seed, n])
            idx = rng.choice(len(data.pool_x), min(n, len(data.pool_x)), replace=False)
            trained = train_classifier(
                recipe,
                data.pool_x[idx],
                data.pool_y[idx],
                data.val_x,
                data.val_y,
                seed=seed,
                num_classes=2,
            )
            before = test_metrics(predict_mean(trained, data.test_x), data.test_y)
            images = TensorItems(as_images(data.pool_x[idx], 2))
            batches = (b["image"] for b in loader(images, recipe.predict_batch_size))
            start = time.perf_counter()
            net = trained.module.net
            assert isinstance(net, torch.nn.Module)
            recalibrate_batch_norm(net, batches)
            seconds = time.perf_counter() - start
            after = test_metrics(predict_mean(trained, data.test_x), data.test_y)
            rows.append(
                {
                    "labels": n,
                    "seed": seed,
                    "running_averages": before,
                    "recomputed": after,
                    "recompute_seconds": seconds,
                }
            )
            print(
                f"{dataset} {n} labels seed {seed}: accuracy {before['accuracy']:.3f} -> "
                f"{after['accuracy']:.3f}, auc {before['auc']:.4f} -> {after['auc']:.4f}",
                flush=True,
            )
    summary = {}
    for n in budgets:
        at = [r for r in rows if r["labels"] == n]
        summary[str(n)] = {
            key: {
                "running_averages": float(np.mean([r["running_averages"][key] for r in at])),
                "recomputed": float(np.mean([r["recomputed"][key] for r in at])),
            }
            for key in at[0]["recomputed"]
        }
    return {
        "dataset": dataset,
        "test_class0_share": float((data.test_y == 0).mean()),
        "budgets": budgets,
        "seeds": seeds,
        "mean": summary,
        "runs": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 200, 450, 1000])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from workbench.simulation._run import quiet

    quiet()
    report = {
        name: run(name, args.budgets, args.seeds) for name in ("pneumoniamnist", "breastmnist")
    }
    OUT.write_text(json.dumps(report, indent=1))
    for name, r in report.items():
        print(name)
        for n, m in r["mean"].items():
            print(
                f"  {n:>5} labels: "
                + ", ".join(
                    f"{k} {v['running_averages']:.3f} -> {v['recomputed']:.3f}"
                    for k, v in m.items()
                )
            )


if __name__ == "__main__":
    main()
