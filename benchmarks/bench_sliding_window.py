"""Segmentation of CT-sized volumes on patches against whole scans (what the loop did before
patches, and what a plain forward gives): MC-dropout scoring over sliding windows (96^3) vs one
pass over the whole scan, and one training step on random 96^3 patches vs on whole scans.

    .venv/bin/python benchmarks/bench_sliding_window.py [--samples 2] [--memory-gib 12]

Each (volume shape, mode) runs in its own child process whose address space is limited to
``--memory-gib`` (RLIMIT_AS), so a pass that does not fit fails with the product's out-of-memory
error instead of swapping the machine. Per run: wall time, peak resident memory (ru_maxrss),
voxels per second, and whether it fitted. Training: one DiceCE forward/backward/AdamW step on a
batch of 2 scans (the recipe cuts a patch from each; whole: the scans themselves). Network: the
default segmentation recipe's residual U-Net 16-32-64-128 with dropout 0.1 (random weights:
time and memory do not depend on them); windows of 96^3, overlap 0.25, 4 per forward pass,
Gaussian blending, as the loop's default. Writes ``benchmarks/results/sliding_window.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _machine import machine_info

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "sliding_window.json"
SHAPES = [(192, 192, 128), (512, 512, 200)]
PATCH = (96, 96, 96)


MODES = ("score_whole", "score_windows", "train_whole", "train_patches")


def child(shape: tuple[int, ...], mode: str, samples: int, memory_gib: float) -> dict[str, Any]:
    """Score one random volume, or take one training step, in this process under the limit."""
    limit = int(memory_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.path.insert(0, str(REPO))
    import torch

    from workbench.models import ModelError, SlidingWindow, iter_mc_predict
    from workbench.recipes import SegmentationRecipe

    torch.set_num_threads(os.cpu_count() or 1)
    recipe = SegmentationRecipe()
    torch.manual_seed(0)
    net = recipe.network(spatial_dims=3, in_channels=1, num_classes=2)
    if mode.startswith("train"):
        return _train_step(net, shape, mode == "train_patches")
    x = torch.rand(1, 1, *shape)
    window = SlidingWindow(PATCH, recipe.sw_overlap, 4) if mode == "score_windows" else None
    start = time.perf_counter()
    error = None
    try:
        batch = [{"image": x, "id": torch.tensor([0])}]
        for part in iter_mc_predict(net.eval(), batch, samples, seed=0, window=window):
            assert part.values.shape == (1, samples, 2, *shape)
    except ModelError as exc:
        error = str(exc)
    seconds = time.perf_counter() - start
    voxels = int(x.numel())
    return {
        "shape": list(shape),
        "mode": mode,
        "samples": samples,
        "fits": error is None,
        "error": error,
        "seconds": round(seconds, 2),
        "voxels_per_s": None if error else round(voxels * samples / seconds),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _train_step(net: Any, shape: tuple[int, ...], patches: bool) -> dict[str, Any]:
    import torch
    from monai.losses import DiceCELoss

    from workbench.models import random_patches

    x = torch.rand(2, 1, *shape)
    y = (x > 0.7).long()
    start = time.perf_counter()
    error = None
    try:
        if patches:
            x, y = random_patches(x, y, PATCH)
        optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3)
        loss = DiceCELoss(to_onehot_y=True, softmax=True)(net.train()(x), y)
        loss.backward()
        optimiser.step()
    except RuntimeError as exc:  # the allocator's out-of-memory under the limit
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    return {
        "shape": list(shape),
        "mode": "train_patches" if patches else "train_whole",
        "batch": 2,
        "fits": error is None,
        "error": error,
        "seconds": round(time.perf_counter() - start, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run(shape: tuple[int, ...], mode: str, samples: int, memory_gib: float) -> dict[str, Any]:
    args = [
        sys.executable,
        __file__,
        "--child",
        "x".join(map(str, shape)),
        mode,
        "--samples",
        str(samples),
        "--memory-gib",
        str(memory_gib),
    ]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {
            "shape": list(shape),
            "mode": mode,
            "samples": samples,
            "fits": False,
            "error": f"exit {done.returncode}: {done.stderr.strip()[-300:]}",
        }
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2, help="MC-dropout samples T")
    parser.add_argument(
        "--memory-gib", type=float, default=12.0, help="address-space limit of each scoring process"
    )
    parser.add_argument("--child", nargs=2, metavar=("SHAPE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        shape = tuple(int(s) for s in args.child[0].split("x"))
        print(json.dumps(child(shape, args.child[1], args.samples, args.memory_gib)))
        return
    runs = []
    for shape in SHAPES:
        done = {mode: run(shape, mode, args.samples, args.memory_gib) for mode in MODES}
        for result in done.values():
            runs.append(result)
            print(json.dumps(result), flush=True)
        for task, whole, patched in (
            ("score", "score_whole", "score_windows"),
            ("train", "train_whole", "train_patches"),
        ):
            a, b = done[whole], done[patched]
            if a["fits"] and b["fits"]:
                runs.append(
                    {
                        "shape": list(shape),
                        "task": task,
                        "memory_ratio_whole_over_patches": round(
                            a["peak_rss_mib"] / b["peak_rss_mib"], 2
                        ),
                        "time_ratio_patches_over_whole": round(b["seconds"] / a["seconds"], 2),
                    }
                )
                print(json.dumps(runs[-1]), flush=True)
    report = {
        "what": "MC-dropout scoring of one volume (sliding windows vs the whole scan) and one "
        "training step on 2 volumes (random patches vs whole scans)",
        "network": "residual U-Net 16-32-64-128, dropout 0.1 (default segmentation recipe)",
        "patch": list(PATCH),
        "overlap": 0.25,
        "windows_per_pass": 4,
        "memory_limit_gib": args.memory_gib,
        "runs": runs,
        "machine": machine_info(),
    }
    RESULTS.write_text(json.dumps(report, indent=1))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
