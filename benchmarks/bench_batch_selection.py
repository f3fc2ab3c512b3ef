"""Batch selection speed: 100 items from a 50,000-item pool, ours against baal.

Stochastic power-BALD (Kirsch et al. 2023), power-EPIG (Smith et al. 2023; no baal
counterpart, timed against our power-BALD) and greedy BatchBALD with a sampled joint
(Kirsch et al. 2019), T = 20 MC samples, C in {2, 10}. Each timing is the median of several
runs on the same float32 probabilities. baal's BatchBALD materialises a
``[N, T * num_draw, C]`` float64 array per step, so it is run with a memory cap on
``num_draw``, for a few steps in a child process under a time cap, and extrapolated to the
full batch. Writes ``benchmarks/results/batch_selection.json``.

Run: ``python benchmarks/bench_batch_selection.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from workbench.strategies import get_strategy, select_batchbald

N_POOL, N_MC, K = 50_000, 20, 100
RESULTS = Path(__file__).resolve().parent / "results" / "batch_selection.json"
BAAL_MEMORY_BYTES = 1_000_000_000  # cap on baal's per-step [N, T * num_draw, C] float64 array
BAAL_TIME_CAP_S = 240


def make_probs(n: int, t: int, c: int, seed: int = 0) -> np.ndarray:
    """``[N, T, C]`` float32 MC probabilities with item- and sample-level variation."""
    rng = np.random.default_rng(seed)
    item = rng.normal(size=(n, 1, c)).astype(np.float32) * 2
    spread = rng.uniform(0.1, 2.0, size=(n, 1, 1)).astype(np.float32)
    logits = item + rng.normal(size=(n, t, c)).astype(np.float32) * spread
    z = np.exp(logits - logits.max(axis=2, keepdims=True))
    return z / z.sum(axis=2, keepdims=True)


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _baal_batchbald_child(c: int, num_draw: int, steps: int) -> None:
    """Child process: time baal's BatchBALD for ``steps`` greedy steps; print JSON."""
    import torch
    from baal.active.heuristics import BatchBALD

    torch.manual_seed(0)
    probs = np.moveaxis(make_probs(N_POOL, N_MC, c), 1, -1).astype(np.float64)  # [N, C, T]
    heuristic = BatchBALD(num_samples=steps, num_draw=num_draw)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = heuristic.get_uncertainties(probs)
    print(json.dumps({"seconds": time.perf_counter() - start, "picked": int((scores != 0).sum())}))


def baal_batchbald(c: int, steps: tuple[int, int]) -> dict[str, object]:
    """Extrapolate baal's BatchBALD time for K picks from two short runs."""
    num_draw = max(1, BAAL_MEMORY_BYTES // (8 * N_POOL * N_MC * c))
    runs = {}
    for s in steps:
        cmd = [sys.executable, __file__, "--baal-child", str(c), str(num_draw), str(s)]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=BAAL_TIME_CAP_S)
        except subprocess.TimeoutExpired:
            return {"num_draw": num_draw, "status": f"over the {BAAL_TIME_CAP_S} s cap"}
        if out.returncode != 0:
            return {"num_draw": num_draw, "status": "failed", "stderr": out.stderr[-500:]}
        runs[s] = json.loads(out.stdout.strip().splitlines()[-1])
    lo, hi = steps
    per_step = (runs[hi]["seconds"] - runs[lo]["seconds"]) / (hi - lo)
    fixed = runs[lo]["seconds"] - lo * per_step
    return {
        "num_draw": num_draw,
        "joint_samples": num_draw * N_MC,
        "runs": {str(s): r for s, r in runs.items()},
        "seconds_per_step": per_step,
        "extrapolated_s": fixed + (K - 1) * per_step,
        "status": "extrapolated from short runs",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="C = 2 only, fewer repeats")
    parser.add_argument("--no-baal", action="store_true")
    args = parser.parse_args()
    classes = (2,) if args.quick else (2, 10)
    repeats = 3 if args.quick else 5
    try:
        from baal.active.heuristics import BALD
        from baal.active.heuristics.stochastics import PowerSampling

        have_baal = not args.no_baal
    except ImportError:
        have_baal = False

    rows: list[dict[str, object]] = []
    for c in classes:
        probs = make_probs(N_POOL, N_MC, c)
        power = get_strategy("power_bald")
        ours, ours_runs = median_time(partial(power, k=K, probs=probs, rng=0), repeats)
        row: dict[str, object] = {
            "method": "power_bald (stochastic)",
            "classes": c,
            "ours_s": ours,
            "ours_runs_s": ours_runs,
            "under_1s": ours < 1.0,
        }
        if have_baal:
            baal_probs = np.ascontiguousarray(np.moveaxis(probs, 1, -1))  # [N, C, T]
            heuristic = PowerSampling(BALD(), query_size=K, temperature=1.0)
            np.random.seed(0)
            theirs, theirs_runs = median_time(partial(heuristic.get_ranks, baal_probs), repeats)
            row.update(baal_s=theirs, baal_runs_s=theirs_runs, baal_over_ours=theirs / ours)
        rows.append(row)
        print(json.dumps(row), flush=True)

        # EPIG costs O(N x targets x C^2) where BALD costs O(N x T x C): timed beside power-BALD
        epig = get_strategy("power_epig")
        epig_s, epig_runs = median_time(partial(epig, k=K, probs=probs, rng=0), repeats)
        row = {
            "method": "power_epig (stochastic, 100 targets)",
            "classes": c,
            "ours_s": epig_s,
            "ours_runs_s": epig_runs,
            "under_1s": epig_s < 1.0,
            "over_power_bald": epig_s / ours,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)

        bb_repeats = 1 if args.quick else 3
        ours, ours_runs = median_time(
            partial(select_batchbald, probs, K, num_samples=1000, rng=0), bb_repeats
        )
        row = {
            "method": "batchbald (greedy, sampled joint, 1000 configurations)",
            "classes": c,
            "ours_s": ours,
            "ours_runs_s": ours_runs,
        }
        if have_baal:
            baal_row = baal_batchbald(c, (2, 4))
            row["baal"] = baal_row
            if "extrapolated_s" in baal_row:
                row["baal_over_ours"] = float(baal_row["extrapolated_s"]) / ours  # type: ignore[arg-type]
        rows.append(row)
        print(json.dumps(row), flush=True)

    report = {
        "task": f"select {K} of {N_POOL} items, T={N_MC} MC samples",
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "timing": "median wall-clock seconds; ratios are baal / ours (> 1: ours faster)",
        "results": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--baal-child":
        _baal_batchbald_child(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
