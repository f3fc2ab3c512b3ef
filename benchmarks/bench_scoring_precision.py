"""3D segmentation scoring in full and mixed precision, side by side in one run: the default
U-Net (16-32-64-128, dropout) scores one volume with MC dropout over sliding windows, as the loop
scores a large scan. Reports seconds per volume, peak GPU memory and how far the mixed-precision
probabilities are from the full-precision ones (same keyed dropout masks, so the difference is
rounding alone). Meant for a GPU (``--device cuda``); on the CPU only ``32`` and ``bf16-mixed``
run.

    python benchmarks/bench_scoring_precision.py --device cuda --shape 256 256 160
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

from workbench.models import SlidingWindow, iter_mc_predict
from workbench.recipes import small_unet

ROOT = Path(__file__).resolve().parent


def score(
    net: torch.nn.Module, volume: torch.Tensor, args: argparse.Namespace, precision: str
) -> tuple[dict[str, Any], torch.Tensor]:
    """Score ``volume`` [1, 1, *S] ``args.repeats`` times; the fastest time and the probs."""
    window = SlidingWindow(tuple(args.patch), 0.25, args.window_batch)
    cuda = args.device == "cuda"
    times = []
    probs = torch.empty(0)
    for _ in range(args.repeats):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        (part,) = iter_mc_predict(
            net,
            [{"image": volume, "id": torch.tensor([7])}],
            args.samples,
            seed=0,
            device=args.device,
            precision=precision,  # type: ignore[arg-type]
            window=window,
        )
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        probs = part.values.mean(1)  # [1, C, *S]
    return {
        "precision": precision,
        "seconds_per_volume": round(min(times), 3),
        "all_seconds": [round(t, 3) for t in times],
        "peak_gpu_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if cuda
        else None,
    }, probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--shape", type=int, nargs=3, default=[96, 96, 64])
    parser.add_argument("--patch", type=int, nargs=3, default=[48, 48, 48])
    parser.add_argument("--window-batch", type=int, default=8)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "scoring_precision.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    net = small_unet(spatial_dims=3, in_channels=1, num_classes=3)
    volume = torch.rand(1, 1, *args.shape)
    precisions = ["32", "16-mixed", "bf16-mixed"] if args.device == "cuda" else ["32", "bf16-mixed"]
    runs, probs = [], {}
    for precision in precisions:
        run, probs[precision] = score(net, volume, args, precision)
        runs.append(run)
    full = runs[0]["seconds_per_volume"]
    for run in runs:
        p = probs[run["precision"]]
        run["speedup_over_32"] = round(full / run["seconds_per_volume"], 2)
        run["max_abs_diff_of_mean_probs_vs_32"] = float((p - probs["32"]).abs().max())
        run["argmax_agreement_vs_32"] = float((p.argmax(1) == probs["32"].argmax(1)).float().mean())
    report = {
        "what": "MC-dropout scoring of one volume over sliding windows, per precision",
        "network": "small_unet (MONAI UNet 16-32-64-128, dropout 0.1), 3 classes, random init",
        "volume": list(args.shape),
        "patch": list(args.patch),
        "overlap": 0.25,
        "window_batch": args.window_batch,
        "samples": args.samples,
        "runs": runs,
        "environment": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": torch.cuda.get_device_name()
            if args.device == "cuda"
            else platform.processor() or platform.machine(),
            "numpy": np.__version__,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
