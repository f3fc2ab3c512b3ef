"""The typical cold start's self-supervised encoder on a GPU (CI has no GPU: run this where one
is lent). Trains `train_contrastive` on a MedMNIST pool on CUDA twice with one seed and once on
the CPU, and writes the times, whether the CUDA runs repeat (features and TypiClust picks), how
many picks CUDA and CPU share, whether two seeded CUDA trainings end bit-identical (a
classifier; a volume encoder and a 3D U-Net on synthetic volumes),
how `small_cnn`'s pooling compares with PyTorch's kernel there, and what the encoder's trunk
buys a classifier trained on CUDA from the typical picks (test AUC against fresh weights).

    python benchmarks/gpu_ssl_check.py --npz ../shared/data/medmnist/pneumoniamnist.npz \
        --out benchmarks/results/gpu/ssl_cuda.json

Without ``--npz`` it uses the bundled BreastMNIST demo. On a machine without CUDA it says so
and stops.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.models import default_precision, training_device
from workbench.models._pooling import AdaptiveAvgPool
from workbench.recipes import (
    ClassificationRecipe,
    ContrastiveEncoder,
    SegmentationRecipe,
    UNetFactory,
    classification_metrics,
    predict_mean,
    train_classifier,
    train_contrastive,
    train_segmenter,
)
from workbench.strategies import select_cold_start

BUNDLED = (
    Path(__file__).resolve().parents[1]
    / "workbench"
    / "demo_data"
    / "breastmnist"
    / "breastmnist.npz"
)


def timed_encoder(
    images: np.ndarray, device: str, seed: int, steps: int
) -> tuple[ContrastiveEncoder, float]:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    encoder = train_contrastive(images, seed=seed, steps=steps, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    return encoder, round(time.perf_counter() - start, 2)


def typical_picks(features: np.ndarray, k: int) -> set[int]:
    picked = select_cold_start(features, k, method="typical", rng=np.random.default_rng(0))
    return {int(i) for i in picked.indices}


def trunk_gain(
    data: Any, encoder: ContrastiveEncoder, picks: list[int], seeds: int
) -> dict[str, Any]:
    """Test AUC of classifiers trained on CUDA (16-mixed) from the typical picks' true labels
    (validated on a seeded split of them, as in the loop), starting from the encoder's trunk
    and from fresh weights, per seed."""
    assert training_device() == "cuda" and default_precision() == "16-mixed"
    x, y = data["train_images"][picks], data["train_labels"].reshape(-1)[picks]
    recipe = ClassificationRecipe()
    rows: dict[str, list[float]] = {"trunk": [], "fresh": []}
    for seed in range(seeds):
        for arm, trunk in (("trunk", encoder.trunk_state), ("fresh", None)):
            trained = train_classifier(recipe, x, y, seed=seed, trunk_state=trunk)
            probs = predict_mean(trained, data["test_images"])
            rows[arm].append(round(classification_metrics(probs, data["test_labels"])["auc"], 4))
    gain = np.subtract(rows["trunk"], rows["fresh"])
    return {
        "labels": len(picks),
        "test_auc": rows,
        "mean_gain_points": round(float(gain.mean()) * 100, 2),
    }


def classifier_repeats(data: Any, encoder: ContrastiveEncoder, picks: list[int]) -> bool:
    """Two CUDA trainings with one seed from the trunk end with bit-identical weights."""
    x, y = data["train_images"][picks], data["train_labels"].reshape(-1)[picks]
    states = [
        train_classifier(
            ClassificationRecipe(), x, y, seed=5, trunk_state=encoder.trunk_state
        ).state_dict
        for _ in range(2)
    ]
    return all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def volumes_repeat() -> dict[str, bool]:
    """The 3D paths twice with one seed on CUDA: a volume encoder (`small_cnn` 3D) and a U-Net
    segmenter (DiceCE loss) on synthetic volumes with a bright box as the foreground."""
    rng = np.random.default_rng(0)
    volumes = rng.normal(0, 0.1, (12, 1, 16, 16, 16)).astype(np.float32)
    masks = np.zeros((12, 16, 16, 16), np.int64)
    for i, (a, b, c) in enumerate(rng.integers(2, 9, (12, 3))):
        masks[i, a : a + 6, b : b + 6, c : c + 6] = 1
    volumes[:, 0] += masks
    encoders = [
        train_contrastive(
            volumes, spatial_dims=3, seed=0, steps=40, batch_size=8, device="cuda"
        ).features
        for _ in range(2)
    ]
    recipe = SegmentationRecipe(
        network=UNetFactory((8, 16, 32)),
        spatial_dims=3,
        max_epochs=4,
        batch_size=4,
        min_steps_per_epoch=4,
    )
    states = [
        train_segmenter(
            recipe, volumes[:8], masks[:8], volumes[8:], masks[8:], num_classes=2, seed=0
        ).state_dict
        for _ in range(2)
    ]
    return {
        "volume_encoder_identical_features": bool(np.array_equal(encoders[0], encoders[1])),
        "segmenter_identical_weights": all(
            torch.equal(states[0][k], states[1][k]) for k in states[0]
        ),
    }


def pooling_on_cuda() -> dict[str, float]:
    """`small_cnn`'s matrix pooling against PyTorch's kernel on CUDA, float32."""
    x = torch.randn(64, 32, 7, 7, device="cuda", requires_grad=True)
    w = torch.randn(64, 32, 4, 4, device="cuda")
    ours = (AdaptiveAvgPool(4, 2)(x) * w).sum()
    (grad_ours,) = torch.autograd.grad(ours, x)
    theirs = (torch.nn.functional.adaptive_avg_pool2d(x, 4) * w).sum()
    (grad_theirs,) = torch.autograd.grad(theirs, x)
    return {
        "max_gradient_difference": float((grad_ours - grad_theirs).abs().max()),
        "sum_difference": float((ours - theirs).detach().abs()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npz", type=Path, default=BUNDLED)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--picks", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=3, help="0: skip the trunk's test AUC")
    parser.add_argument("--threads", type=int, default=16, help="CPU threads for the CPU run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: this check is for a GPU machine")
    torch.set_num_threads(args.threads)
    data = np.load(args.npz)
    images = data["train_images"]
    report: dict[str, Any] = {
        "what": "train_contrastive on CUDA and CPU; the trunk's effect on CUDA classifiers",
        "pool": f"{args.npz.name} train split, {len(images)} images",
        "steps": args.steps,
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": torch.cuda.get_device_name(),
            "cpu_threads": args.threads,
        },
    }
    first, first_s = timed_encoder(images, "cuda", 0, args.steps)
    again, again_s = timed_encoder(images, "cuda", 0, args.steps)
    cpu, cpu_s = timed_encoder(images, "cpu", 0, args.steps)
    picks = {
        name: typical_picks(enc.features, args.picks)
        for name, enc in (("cuda", first), ("cuda_again", again), ("cpu", cpu))
    }
    report["encoder"] = {
        "cuda_seconds": [first_s, again_s],
        "cpu_seconds": cpu_s,
        "cpu_over_cuda": round(cpu_s / again_s, 2),
        "cuda_repeat_max_feature_difference": float(np.abs(first.features - again.features).max()),
        "cuda_repeat_same_picks": picks["cuda"] == picks["cuda_again"],
        "picks_shared_cuda_cpu": len(picks["cuda"] & picks["cpu"]),
        "picks": args.picks,
    }
    print(json.dumps(report, indent=2), flush=True)
    report["pooling_on_cuda"] = pooling_on_cuda()
    report["classifier_repeat_identical_weights"] = classifier_repeats(
        data, first, sorted(picks["cuda"])
    )
    report["volumes_repeat"] = volumes_repeat()
    print(json.dumps(report, indent=2), flush=True)
    if args.seeds:
        report["trunk_on_cuda"] = trunk_gain(data, first, sorted(picks["cuda"]), args.seeds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
