"""The store loop on a GPU: the bundled demo projects labelled from their hidden ground truth,
then one round of train, score and query each, with the default recipes (BreastMNIST
classification, also queried with strategies that run the model over the pool; hippocampus 3D
segmentation on whole scans, with test-time flips, and on patches), and each again after a
typical cold start (its encoder trains on the GPU; BreastMNIST's first model starts from it).
Checks that training and scoring ran on CUDA with mixed precision and that the model version
records it; writes the times, metrics and peak GPU memory as JSON. CI has no GPU: run this
where one is lent.

    python benchmarks/gpu_loop_check.py --out benchmarks/results/gpu_loop.json

On a machine without CUDA it runs the same rounds on the CPU and says so (no device checks).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from workbench.demo import create_demo_projects
from workbench.loop import ActiveLearningLoop
from workbench.store import LabelSource, LabelSubmission, ModelStatus, SQLiteStore, open_project


def label_from_truth(store: SQLiteStore, count: int) -> None:
    """Play an annotator who labels ``count`` served train items exactly as the hidden truth."""
    for _ in range(count):
        item = store.next_item("gpu-check", split="train")
        assert item is not None, "the demo project ran out of items to serve"
        truth = store.current_label(item.id, include_ground_truth=True)
        assert truth is not None
        mask = store.get_mask(truth.mask_hash) if truth.mask_hash else None
        store.submit_label(
            LabelSubmission(
                item_id=item.id,
                annotator="gpu-check",
                source=LabelSource.HUMAN,
                class_index=truth.class_index,
                mask=mask,
            )
        )


def one_round(
    store: SQLiteStore,
    labels: int,
    strategy: str,
    through_model: tuple[str, ...] = (),
    **recipe_changes: Any,
) -> dict[str, Any]:
    loop = ActiveLearningLoop(store)
    if recipe_changes:
        loop = ActiveLearningLoop(store, recipe=dataclasses.replace(loop.recipe, **recipe_changes))
    label_from_truth(store, labels)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    model = loop.train(seed=0)
    trained = time.perf_counter()
    scored = loop.score(model)
    done_scoring = time.perf_counter()
    k = min(4, len(loop.pool()))
    chosen = loop.query(strategy, k, seed=0)
    assert model.status is ModelStatus.READY, model.error
    assert scored == len(loop.pool()) > 0
    assert len(set(chosen.selected)) == k > 0
    through_model_seconds = {}
    for name in through_model:  # strategies that run the model over the pool as they select
        begin = time.perf_counter()
        picked = loop.query(name, k, seed=0)
        through_model_seconds[name] = round(time.perf_counter() - begin, 2)
        assert len(set(picked.selected)) == k, name
    if cuda:  # what the model version records is where it really ran
        assert model.params["device"] == "cuda" and model.params["precision"] == "16-mixed"
    return {
        "labels": labels,
        "model_params": {
            k: model.params[k]
            for k in ("network", "device", "precision", "patch_size", "tta", "trunk_from_round")
            if k in model.params
        },
        "val_metrics": model.metrics,
        "train_seconds": round(trained - start, 2),
        "score_seconds": round(done_scoring - trained, 2),
        "scored_items": scored,
        "query": {"strategy": chosen.strategy, "selected": len(chosen.selected)},
        "through_model_query_seconds": through_model_seconds,
        "peak_gpu_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if cuda
        else None,
    }


def cold_start_round(store: SQLiteStore, labels: int) -> dict[str, Any]:
    """A typical cold start first (its self-supervised encoder trains on the GPU), then a
    round on its picks; a classifier's first model starts its trunk from that encoder."""
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    first = ActiveLearningLoop(store).query("power_bald", labels, seed=0)
    if cuda:
        torch.cuda.synchronize()
    seconds = round(time.perf_counter() - start, 2)
    assert first.strategy == "cold_start_typical", first.strategy
    encoders = list((store.root / "checkpoints").glob("encoder-round-*.pt"))
    report = one_round(store, labels, "power_bald")
    if report["model_params"]["network"] == "small_cnn":
        assert report["model_params"].get("trunk_from_round") == first.id, report
        assert len(encoders) == 1, encoders
    return {"cold_start_seconds": seconds, "encoder_kept": bool(encoders), **report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent / "results" / "gpu_loop.json"
    )
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    report: dict[str, Any] = {
        "what": "one loop round per demo project with the default recipes",
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": torch.cuda.get_device_name() if cuda else "cpu",
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        breast, hippo = create_demo_projects(tmp)
        with open_project(breast) as store:
            report["breastmnist_classification"] = one_round(
                store, 60, "power_bald", through_model=("badge", "power_epig", "batchbald")
            )
        with open_project(hippo) as store:
            report["hippocampus_whole_scans"] = one_round(store, 3, "power_bald")
        typical = Path(tmp) / "typical-cold-start"
        typical.mkdir()
        for name, path in zip(
            ("breastmnist", "hippocampus"), create_demo_projects(typical), strict=True
        ):
            with open_project(path) as store:
                report[f"{name}_typical_cold_start"] = cold_start_round(
                    store, 20 if name == "breastmnist" else 3
                )
        flips = Path(tmp) / "hippocampus-flips"
        flips.mkdir()
        _, hippo_flips = create_demo_projects(flips)
        with open_project(hippo_flips) as store:  # MC samples under flips too (--tta)
            report["hippocampus_whole_scans_tta"] = one_round(store, 3, "power_bald", tta=True)
        patches = Path(tmp) / "hippocampus-patches"
        patches.mkdir()
        _, hippo_again = create_demo_projects(patches)
        with open_project(hippo_again) as store:
            report["hippocampus_patches"] = one_round(
                store, 3, "power_bald", patch_size=(16, 24, 16)
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
