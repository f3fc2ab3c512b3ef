"""Label submit latency: the SQLite project store against a fsync'd JSON-lines file.

    .venv/bin/python benchmarks/bench_label_submit.py [--quick]

Both sides make every label durable before the call returns (SQLite: WAL + synchronous=FULL;
naive: one ``write`` to ``labels.jsonl`` opened with O_APPEND, then ``fsync``; masks saved to
``masks/*.npz`` and fsync'd first). Workloads: classification labels and 512x512 uint8 masks,
with 1 and 4 writer processes started together. Writes benchmarks/results/label_submit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import numpy as np

from workbench.store import (
    LabelSource,
    LabelSubmission,
    NewItem,
    ProjectConfig,
    Task,
    create_project,
    open_project,
)

RESULTS = Path(__file__).resolve().parent / "results" / "label_submit.json"
MASK_SHAPE = (512, 512)


@dataclass(frozen=True)
class Case:
    workload: str  # "classification" or "mask512"
    writers: int
    labels_per_writer: int


def _mask(rng: np.random.Generator) -> np.ndarray:
    """A lesion-like disc: what a drawn 512x512 mask compresses like."""
    yy, xx = np.ogrid[: MASK_SHAPE[0], : MASK_SHAPE[1]]
    cy, cx, r = rng.integers(80, 432), rng.integers(80, 432), rng.integers(20, 80)
    return ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.uint8)


# writers (run in spawned processes) -------------------------------------------------------------
def _sqlite_writer(root: str, case: Case, item_ids: list[int], seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    latencies = []
    with open_project(root) as store:
        for item_id in item_ids:
            mask = _mask(rng) if case.workload == "mask512" else None
            cls = None if mask is not None else int(rng.integers(0, 3))
            sub = LabelSubmission(
                item_id,
                f"w{seed}",
                LabelSource.HUMAN,
                class_index=cls,
                mask=mask,
                seconds_spent=3.0,
            )
            t0 = time.perf_counter()
            store.submit_label(sub)
            latencies.append((time.perf_counter() - t0) * 1000)
    return latencies


def _jsonl_writer(root: str, case: Case, item_ids: list[int], seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    latencies = []
    masks = Path(root) / "masks"
    fd = os.open(Path(root) / "labels.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        for n, item_id in enumerate(item_ids):
            mask = _mask(rng) if case.workload == "mask512" else None
            t0 = time.perf_counter()
            row: dict[str, object] = {
                "item": item_id,
                "annotator": f"w{seed}",
                "source": "human",
                "submitted_at": time.time(),
                "seconds_spent": 3.0,
            }
            if mask is None:
                row["class_index"] = int(rng.integers(0, 3))
            else:
                path = masks / f"{item_id}-w{seed}-{n}.npz"
                with open(path, "wb") as handle:
                    np.savez_compressed(handle, mask=mask)
                    handle.flush()
                    os.fsync(handle.fileno())
                row["mask"] = path.name
            os.write(fd, (json.dumps(row) + "\n").encode())
            os.fsync(fd)
            latencies.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
    return latencies


def _run_writer(
    backend: str,
    root: str,
    case: Case,
    item_ids: list[int],
    seed: int,
    go: Event,
    out: Queue[tuple[list[float], float, float]],
) -> None:
    writer = _sqlite_writer if backend == "sqlite" else _jsonl_writer
    go.wait()
    start = time.perf_counter()
    latencies = writer(root, case, item_ids, seed)
    out.put((latencies, start, time.perf_counter()))


# one case ------------------------------------------------------------------------------------
def _prepare(backend: str, root: Path, case: Case) -> list[list[int]]:
    """A fresh project (or labels folder) and the item ids each writer labels."""
    n = case.writers * case.labels_per_writer
    if backend == "jsonl":
        (root / "masks").mkdir(parents=True)
        ids = list(range(1, n + 1))
    else:
        task = Task.SEGMENTATION if case.workload == "mask512" else Task.CLASSIFICATION
        shape = MASK_SHAPE if case.workload == "mask512" else (224, 224)
        config = ProjectConfig("bench", task, ("background", "benign", "malignant"))
        with create_project(root, config) as store:
            ids = store.add_items(
                [
                    NewItem(f"img-{i}", f"file:///img-{i}.png", f"h{i}", "US", shape, (1.0, 1.0))
                    for i in range(n)
                ]
            )
    k = case.labels_per_writer
    return [ids[w * k : (w + 1) * k] for w in range(case.writers)]


def _measure(backend: str, case: Case, scratch: Path) -> dict[str, float]:
    root = scratch / f"{backend}-{case.workload}-{case.writers}"
    shares = _prepare(backend, root, case)
    ctx = get_context("spawn")
    go = ctx.Event()
    out: Queue[tuple[list[float], float, float]] = ctx.Queue()
    procs = [
        ctx.Process(target=_run_writer, args=(backend, str(root), case, ids, w, go, out))
        for w, ids in enumerate(shares)
    ]
    for proc in procs:
        proc.start()
    time.sleep(0.5)  # let every writer import and reach the barrier
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"a {backend} writer failed (exit code {proc.exitcode})")
    latencies = [ms for lat, _, _ in results for ms in lat]
    wall = max(end for _, _, end in results) - min(start for _, start, _ in results)
    ordered = sorted(latencies)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "labels_per_s": round(len(ordered) / wall, 1),
        "labels": len(ordered),
    }


def run(quick: bool, scratch_parent: Path | None = None) -> dict[str, object]:
    n_class, n_mask = (40, 15) if quick else (300, 80)
    cases = [
        Case(w, writers, n_class if w == "classification" else n_mask)
        for w in ("classification", "mask512")
        for writers in (1, 4)
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-label-", dir=scratch_parent) as scratch:
        for case in cases:
            sqlite_stats = _measure("sqlite", case, Path(scratch))
            naive_stats = _measure("jsonl", case, Path(scratch))
            rows.append(
                {
                    "workload": case.workload,
                    "writers": case.writers,
                    "labels_per_writer": case.labels_per_writer,
                    "sqlite": sqlite_stats,
                    "jsonl_fsync": naive_stats,
                    "ratio_p50": round(sqlite_stats["p50_ms"] / naive_stats["p50_ms"], 2),
                    "ratio_p95": round(sqlite_stats["p95_ms"] / naive_stats["p95_ms"], 2),
                }
            )
    return {
        "benchmark": "label_submit",
        "quick": quick,
        "ratio": "sqlite / jsonl_fsync (above 1: SQLite slower)",
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
        "scratch_dir": str(scratch_parent or tempfile.gettempdir()),
        "cases": rows,
    }


def _print_table(report: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="label submit latency, ms (ratio = SQLite / fsync'd labels.jsonl)")
    for column in (
        "workload",
        "writers",
        "SQLite p50",
        "p95",
        "jsonl p50",
        "p95",
        "ratio p50",
        "p95",
        "SQLite/s",
        "jsonl/s",
    ):
        table.add_column(column, justify="right", no_wrap=True)
    cases = report["cases"]
    assert isinstance(cases, list)
    for row in cases:
        s, j = row["sqlite"], row["jsonl_fsync"]
        table.add_row(
            row["workload"],
            str(row["writers"]),
            f"{s['p50_ms']:.2f}",
            f"{s['p95_ms']:.2f}",
            f"{j['p50_ms']:.2f}",
            f"{j['p95_ms']:.2f}",
            f"{row['ratio_p50']:.2f}",
            f"{row['ratio_p95']:.2f}",
            f"{s['labels_per_s']:.0f}",
            f"{j['labels_per_s']:.0f}",
        )
    Console(width=max(Console().width, 110)).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="few labels: a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to put the scratch projects (default: the temp folder)",
    )
    args = parser.parse_args(argv)
    report = run(args.quick, args.dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.out)
    _print_table(report)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
