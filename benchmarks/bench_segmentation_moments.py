"""Host memory of scoring one CT-sized scan: MC samples reduced as they come (`moments`, what the
loop does now) against every sample held, then reduced (what it did before, and what a user of
`mc_predict` / baal-style scorers gets).

A residual U-Net 8-16-32-64 with dropout 0.1 and 2 classes (random weights: memory and time do
not depend on them) scores one random volume three ways a project scores a scan: a 96x96x64
scan whole (the loop scores scans up to 128^3 whole) with T = 8, and with T = 4 under flips
(`--tta`, 16 samples); and a 192x192x128 scan (4.7M voxels) over 64^3 sliding windows with
T = 4 under flips, as the loop scores scans too large to take whole. Each way runs twice, each
time in a
fresh process: ``samples`` keeps the [T', C, *S] probabilities of the scan and computes the
mean, entropy and BALD maps from them (the loop's code before this change), ``moments`` sums
the mean and the per-sample entropy pass by pass and flip by flip (`iter_segmentation_moments`,
`moment_maps`). Per run: seconds, peak resident memory growth (the kernel's VmHWM over the
resident memory before scoring), and the largest difference of the maps from the ``samples``
run. Writes ``benchmarks/results/segmentation_moments.json``.

    .venv/bin/python benchmarks/bench_segmentation_moments.py
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

from workbench.models import SlidingWindow, build_segmenter, moment_maps  # noqa: E402
from workbench.recipes import (  # noqa: E402
    TrainedSegmenter,
    iter_segmentation_moments,
    iter_segmentation_probs,
)
from workbench.strategies import uncertainty_map  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "segmentation_moments.json"
WAYS = {  # name: (MC samples, test-time flips, sliding window side or None)
    "whole_T8": (8, False, None),
    "whole_T4_flips": (4, True, None),
    "windows64_T4_flips": (4, True, 64),
}
SHAPES = {"whole": (96, 96, 64), "windows": (192, 192, 128)}


def _status_mib(field: str) -> float:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"{field}:\s+(\d+) kB", text)
    assert match is not None, field
    return int(match.group(1)) / 1024


def child(way: str, reduce: str, threads: int) -> dict[str, Any]:
    """Score the volume one way in this process; maps and timings out."""
    torch.set_num_threads(threads)
    samples, tta, side = WAYS[way]
    shape = SHAPES["windows" if side else "whole"]
    torch.manual_seed(0)
    net = build_segmenter("unet", spatial_dims=3, num_classes=2, features=(8, 16, 32, 64),
                          dropout=0.1)
    window = SlidingWindow((side,) * 3, overlap=0.25, batch_size=2) if side else None
    trained = TrainedSegmenter(module=net, metrics={}, checkpoint_path=Path("."), state_dict={},
                               spatial_dims=3, num_classes=2, seed=0, mc_samples=samples,
                               predict_batch_size=1, window=window, tta=tta)
    volume = np.random.default_rng(0).integers(0, 256, (1, 1, *shape), dtype=np.uint8)
    ids = np.array([1], np.int64)
    before = _status_mib("VmRSS")
    start = time.perf_counter()
    if reduce == "samples":  # every sample held, then reduced (the loop before this change)
        _, probs = next(iter_segmentation_probs(trained, volume, ids=ids))  # [1, T', C, *S]
        mean = probs.mean(axis=1)
        entropy = uncertainty_map(probs, "entropy", spatial_dims=3)
        bald = uncertainty_map(probs, "bald", spatial_dims=3)
        held = probs.nbytes
    else:
        _, moments = next(iter_segmentation_moments(trained, volume, ids=ids))  # [1, C+1, *S]
        mean, entropy, bald = moment_maps(moments)
        held = moments.nbytes
    seconds = time.perf_counter() - start
    peak = _status_mib("VmHWM") - before
    return {"seconds": seconds, "peak_memory_growth_mib": peak, "result_mib": held / 2**20,
            "maps": {"mean": mean, "entropy": entropy, "bald": bald}}


def run_child(way: str, reduce: str, threads: int, out: Path) -> dict[str, Any]:
    subprocess.run([sys.executable, __file__, "--child", way, reduce, str(out),
                    "--threads", str(threads)], check=True)
    with np.load(out) as saved:
        row = json.loads(str(saved["row"]))
        row["maps"] = {k: saved[k] for k in ("mean", "entropy", "bald")}
    out.unlink()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", nargs=3, metavar=("WAY", "REDUCE", "OUT"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.child:
        way, reduce, out = args.child
        row = child(way, reduce, args.threads)
        maps = row.pop("maps")
        np.savez(out, row=json.dumps(row), **maps)
        return
    rows: dict[str, Any] = {}
    for way in WAYS:
        runs = {reduce: run_child(way, reduce, args.threads,
                                  Path(f"/tmp/bench_moments_{way}_{reduce}.npz"))
                for reduce in ("samples", "moments")}
        difference = {k: float(np.abs(runs["moments"]["maps"][k].astype(np.float64)
                                      - runs["samples"]["maps"][k]).max())
                      for k in ("mean", "entropy", "bald")}
        for run in runs.values():
            run.pop("maps")
        rows[way] = {
            "samples": runs["samples"], "moments": runs["moments"],
            "max_difference_of_maps": difference,
            "memory_ratio_samples_over_moments": round(
                runs["samples"]["peak_memory_growth_mib"]
                / runs["moments"]["peak_memory_growth_mib"], 2),
            "time_ratio_samples_over_moments": round(
                runs["samples"]["seconds"] / runs["moments"]["seconds"], 2),
        }
        print(way, json.dumps(rows[way]), flush=True)
    result = {
        "what": "host memory and time of scoring one scan: MC samples held vs reduced as they come",
        "volumes": {k: list(v) for k, v in SHAPES.items()},
        "network": "residual U-Net 8-16-32-64, dropout 0.1, 2 classes, random weights",
        "ways": {way: {"mc_samples": t, "flips": tta, "window": side}
                 for way, (t, tta, side) in WAYS.items()},
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
