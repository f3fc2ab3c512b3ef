"""Host memory of scoring one CT-sized scan: MC samples reduced as they come (`moments`, what the
loop does now) against every sample held, then reduced (what it did before, and what a user of
`mc_predict` / baal-style scorers gets).

A residual U-Net 8-16-32-64 with dropout 0.1 and 2 classes (random weights: memory and time do
not depend on them) scores one random volume three ways a project scores a scan: a 96x96x64
scan whole (the loop scores scans up to 128^3 whole) with T = 8, and with T = 4 under flips
(`--tta`, 16 samples); and a 192x192x128 scan (4.7M voxels) over 64^3 sliding windows with
T = 4 under flips, as the loop scores scans too large to take whole. Each way runs twice, each
time in a fresh process: ``samples`` keeps the [T', C, *S] probabilities of the scan and
computes the mean, entropy and BALD maps from them (the loop's code before this change, T-fold
replicated forward passes), ``moments`` sums the mean and the per-sample entropy pass by pass
and flip by flip (`iter_segmentation_moments`, `moment_uncertainty_map`; on the CPU one sample
per forward pass). Per run: seconds, peak resident memory growth (the kernel's VmHWM over the
resident memory before scoring), and the largest difference of the maps from the ``samples``
run. Writes ``benchmarks/results/segmentation_moments.json``.

    .venv/bin/python benchmarks/bench_segmentation_moments.py

On a machine with CUDA the scoring runs there (16-mixed) and the peak GPU memory is recorded
too, e.g. ``--window-shape 256 256 160 --window-side 96 --samples-factor 2 --threads 16``.
The largest scans the loop scores whole, with the default recipe's U-Net: ``--ways whole
--whole-shape 128 128 128 --features 16 32 64 128 --out .../segmentation_moments_whole128.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _machine import machine_info

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.models import SlidingWindow, build_segmenter, iter_mc_predict  # noqa: E402
from workbench.recipes import TrainedSegmenter, iter_segmentation_moments  # noqa: E402
from workbench.strategies import moment_uncertainty_map, uncertainty_map  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "segmentation_moments.json"
WAYS = {  # name: (MC samples, test-time flips, sliding window or None)
    "whole": (8, False, False),
    "whole_flips": (4, True, False),
    "windows_flips": (4, True, True),
}


def _status_mib(field: str) -> float:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"{field}:\s+(\d+) kB", text)
    assert match is not None, field
    return int(match.group(1)) / 1024


def child(way: str, reduce: str, args: argparse.Namespace) -> dict[str, Any]:
    """Score the volume one way in this process; maps and timings out."""
    torch.set_num_threads(args.threads)
    samples, tta, windowed = WAYS[way]
    samples *= args.samples_factor
    shape = tuple(args.window_shape if windowed else args.whole_shape)
    torch.manual_seed(0)
    net = build_segmenter(
        "unet", spatial_dims=3, num_classes=2, features=tuple(args.features), dropout=0.1
    )
    window = (
        SlidingWindow((args.window_side,) * 3, overlap=0.25, batch_size=2) if windowed else None
    )
    cuda = torch.cuda.is_available()
    trained = TrainedSegmenter(
        module=net,
        metrics={},
        checkpoint_path=Path("."),
        state_dict={},
        spatial_dims=3,
        num_classes=2,
        seed=0,
        mc_samples=samples,
        predict_batch_size=1,
        window=window,
        tta=tta,
    )
    volume = np.random.default_rng(0).integers(0, 256, (1, 1, *shape), dtype=np.uint8)
    ids = np.array([1], np.int64)
    before = _status_mib("VmRSS")
    start = time.perf_counter()
    if reduce == "samples":  # every sample held, then reduced (the loop before this change:
        # T-fold replicated forward passes, as `iter_segmentation_probs` ran them then)
        batch = [{"image": torch.from_numpy(volume), "id": torch.from_numpy(ids)}]
        part = next(
            iter_mc_predict(net, batch, samples, seed=0, window=window, flips=trained.flips)
        )
        probs = part.values.numpy()  # [1, T', C, *S]
        mean = probs.mean(axis=1)
        entropy = uncertainty_map(probs, "entropy", spatial_dims=3)
        bald = uncertainty_map(probs, "bald", spatial_dims=3)
        held = probs.nbytes
    else:
        _, moments = next(iter_segmentation_moments(trained, volume, ids=ids))  # [1, C+1, *S]
        mean = moments[:, :-1]
        entropy = moment_uncertainty_map(moments, "entropy", spatial_dims=3)
        bald = moment_uncertainty_map(moments, "bald", spatial_dims=3)
        held = moments.nbytes
    seconds = time.perf_counter() - start
    peak = _status_mib("VmHWM") - before
    return {
        "seconds": seconds,
        "peak_memory_growth_mib": peak,
        "result_mib": held / 2**20,
        "peak_gpu_memory_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "shape": list(shape),
        "mc_samples": samples,
        "maps": {"mean": mean, "entropy": entropy, "bald": bald},
    }


def run_child(way: str, reduce: str, argv: list[str], out: Path) -> dict[str, Any]:
    subprocess.run([sys.executable, __file__, "--child", way, reduce, str(out), *argv], check=True)
    with np.load(out) as saved:
        row = json.loads(str(saved["row"]))
        row["maps"] = {k: saved[k] for k in ("mean", "entropy", "bald")}
    out.unlink()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--whole-shape", type=int, nargs=3, default=(96, 96, 64))
    parser.add_argument("--window-shape", type=int, nargs=3, default=(192, 192, 128))
    parser.add_argument("--window-side", type=int, default=64)
    parser.add_argument(
        "--samples-factor",
        type=int,
        default=1,
        help="multiply every way's MC samples (2: T = 16 / 8 / 8)",
    )
    parser.add_argument(
        "--features",
        type=int,
        nargs="+",
        default=(8, 16, 32, 64),
        help="U-Net widths (the default recipe's: 16 32 64 128)",
    )
    parser.add_argument("--ways", nargs="+", choices=tuple(WAYS), default=tuple(WAYS))
    parser.add_argument("--child", nargs=3, metavar=("WAY", "REDUCE", "OUT"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    argv = [
        "--threads",
        str(args.threads),
        "--whole-shape",
        *map(str, args.whole_shape),
        "--window-shape",
        *map(str, args.window_shape),
        "--window-side",
        str(args.window_side),
        "--samples-factor",
        str(args.samples_factor),
        "--features",
        *map(str, args.features),
    ]
    if args.child:
        way, reduce, out = args.child
        row = child(way, reduce, args)
        maps = row.pop("maps")
        np.savez(out, row=json.dumps(row), **maps)
        return
    rows: dict[str, Any] = {}
    for way in args.ways:
        runs = {
            reduce: run_child(way, reduce, argv, Path(f"/tmp/bench_moments_{way}_{reduce}.npz"))
            for reduce in ("samples", "moments")
        }
        difference = {
            k: float(
                np.abs(
                    runs["moments"]["maps"][k].astype(np.float64) - runs["samples"]["maps"][k]
                ).max()
            )
            for k in ("mean", "entropy", "bald")
        }
        for run in runs.values():
            run.pop("maps")
        rows[way] = {
            "samples": runs["samples"],
            "moments": runs["moments"],
            "max_difference_of_maps": difference,
            "memory_ratio_samples_over_moments": round(
                runs["samples"]["peak_memory_growth_mib"]
                / runs["moments"]["peak_memory_growth_mib"],
                2,
            ),
            "time_ratio_samples_over_moments": round(
                runs["samples"]["seconds"] / runs["moments"]["seconds"], 2
            ),
        }
        print(way, json.dumps(rows[way]), flush=True)
    result = {
        "what": "host memory and time of scoring one scan: MC samples held vs reduced as they come",
        "volumes": {"whole": list(args.whole_shape), "windows": list(args.window_shape)},
        "network": f"residual U-Net {'-'.join(map(str, args.features))}, dropout 0.1, "
        "2 classes, random weights",
        "ways": {
            way: {
                "mc_samples": t * args.samples_factor,
                "flips": tta,
                "window": args.window_side if windowed else None,
            }
            for way, (t, tta, windowed) in WAYS.items()
            if way in args.ways
        },
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "results": rows,
        "torch": torch.__version__,
        "torch_threads": args.threads,
        "machine": machine_info(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
