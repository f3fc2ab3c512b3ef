"""Diversity selection speed: 100 items from a 50,000-item pool with 1,000 labelled.

Core-set (k-center greedy) and TypiClust on 128-d penultimate-like embeddings, timed beside
stochastic power-BALD on T = 20, C = 2 MC probabilities (the default strategy) and, for
TypiClust's clustering, beside scikit-learn's ``KMeans`` (what a user would reach for; not a
dependency of the package) on the same embeddings and number of clusters, k-means++ seeding and
10 Lloyd iterations each (scipy's ``kmeans2`` default). Each timing is the median of several
runs. Writes ``benchmarks/results/diversity_selection.json``.

Run: ``python benchmarks/bench_diversity_selection.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from _machine import machine_info

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.strategies import get_strategy  # noqa: E402
from workbench.strategies._typical import cluster_embeddings  # noqa: E402

N_POOL, N_LABELLED, DIM, K = 50_000, 1_000, 128, 100
RESULTS = REPO / "benchmarks" / "results" / "diversity_selection.json"


def median_time(fn: Callable[[], object], repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def make_embeddings(seed: int = 0) -> np.ndarray:
    """``[N, D]`` float32 ReLU features around 50 centres (a pool with some structure)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, DIM)) * 2.0
    x = centres[rng.integers(0, 50, N_POOL)] + rng.normal(size=(N_POOL, DIM))
    return np.maximum(x, 0.0).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one run each")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    emb = make_embeddings()
    mask = np.zeros(N_POOL, bool)
    mask[np.random.default_rng(1).choice(N_POOL, N_LABELLED, replace=False)] = True
    probs = np.random.default_rng(2).dirichlet((1.0, 1.0), size=(N_POOL, 20)).astype(np.float32)
    rows: dict[str, float] = {}
    rows["power_bald_s"] = median_time(
        partial(get_strategy("power_bald"), k=K, probs=probs, labelled_mask=mask, rng=0), repeats
    )
    for name in ("coreset", "typiclust"):
        rows[f"{name}_s"] = median_time(
            partial(get_strategy(name), k=K, embeddings=emb, labelled_mask=mask, rng=0), repeats
        )
        print(name, rows[f"{name}_s"], flush=True)
    clusters = min(N_LABELLED + K, 500)  # TypiClust's cap
    rows["typiclust_kmeans_scipy_s"] = median_time(
        partial(cluster_embeddings, emb, clusters, np.random.default_rng(0)), repeats
    )
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        sklearn = None
    else:
        sklearn = median_time(
            lambda: KMeans(clusters, n_init=1, max_iter=10, random_state=0).fit(emb), repeats
        )
        rows["kmeans_sklearn_s"] = sklearn
        rows["sklearn_over_scipy"] = sklearn / rows["typiclust_kmeans_scipy_s"]
    report = {
        "task": f"select {K} of {N_POOL} items ({N_LABELLED} labelled), embeddings [N, {DIM}]; "
        f"power-BALD on [N, 20, 2]; k-means with {clusters} clusters",
        "timing": "median wall-clock seconds",
        "machine": machine_info(),
        "results": rows,
        "over_power_bald": {
            name: rows[f"{name}_s"] / rows["power_bald_s"] for name in ("coreset", "typiclust")
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
