"""Memory of a cold start on a pool of large 2D images: the loop's (each chunk of the pool read,
area-resized to 64x64 thumbnails and let go) against the whole pool read at full size and given
to `contrastive_features` at once (what the loop did before, and what a user calling the
function on their pool would do).

    .venv/bin/python benchmarks/bench_cold_start_memory.py [--sizes 2000 4000 8000] [--side 224]

The pool: PneumoniaMNIST's chest X-rays (../shared/data; fails when missing), each read at
``--side`` x ``--side`` (28x28 repeated 8x8 for 224: MedMNIST+'s 224 release is not on this
machine), left-right mirrored copies added past the 4,708 training images. Each (variant, pool
size) runs in its own child process: it imports the pool into a new project, then makes the
typical cold start (20 picks; the encoder trains ``--steps`` steps, as memory does not depend
on them). Per run: peak resident memory (ru_maxrss) above what the process held after the
import, wall time, and the picks (the two variants' agreement is reported). Writes
``benchmarks/results/cold_start_memory.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import SHARED_DATA, machine_info, require_shared

REPO = Path(__file__).resolve().parents[1]
NPZ = SHARED_DATA / "medmnist" / "pneumoniamnist.npz"
RESULTS = REPO / "benchmarks" / "results" / "cold_start_memory.json"
VARIANTS = ("whole_pool", "workbench_thumbnails")
PICKS = 20
CHUNK = 1000  # pool images read at once by the loop (ActiveLearningLoop(score_chunk=...))


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pool_npz(source: Path, size: int, folder: Path) -> Path:
    """A MedMNIST-layout .npz of ``size`` training images (mirrored copies past the end)."""
    import numpy as np

    with np.load(source) as data:
        images, labels = data["train_images"], data["train_labels"]
    images = np.concatenate([images, images[:, :, ::-1]])[:size]
    labels = np.concatenate([labels, labels])[:size]
    path = folder / f"pool_{size}.npz"
    np.savez(path, train_images=images, train_labels=labels)
    return path


def child(variant: str, npz: Path, side: int, steps: int, folder: Path) -> dict[str, Any]:
    """Import the pool, make the typical cold start the ``variant`` way, measure."""
    sys.path.insert(0, str(REPO))
    import numpy as np
    import torch

    from workbench.ingest import LabelPolicy, import_sources
    from workbench.io import ScanImage, read_uri
    from workbench.loop import ActiveLearningLoop
    from workbench.recipes import contrastive_features
    from workbench.store import Item, ProjectConfig, Task, create_project
    from workbench.strategies import select_cold_start

    torch.set_num_threads(1)
    factor = side // 28

    def large(item: Item) -> ScanImage:
        image = read_uri(item.source_uri, modality=item.modality)
        return dataclasses.replace(
            image, array=np.kron(image.array, np.ones((factor, factor), np.uint8))
        )

    store = create_project(
        folder / "project", ProjectConfig("pool", Task.CLASSIFICATION, ("normal", "pneumonia"))
    )
    import_sources(store, [npz], labels=LabelPolicy.IGNORE)
    loop = ActiveLearningLoop(store, contrastive_steps=steps, score_chunk=CHUNK, image_loader=large)
    pool = loop.pool()
    after_import = _rss_mib()
    start = time.perf_counter()
    if variant == "workbench_thumbnails":
        selected = list(loop.query("power_bald", PICKS, seed=0, cold_start="typical").selected)
    else:
        images = loop._images(pool)  # every image at full size, uint8
        features = contrastive_features(images, seed=0, steps=steps, max_side=64)
        picks = select_cold_start(
            features, PICKS, method="typical", rng=np.random.default_rng(0)
        ).indices
        selected = [pool[int(i)].id for i in picks]
    seconds = time.perf_counter() - start
    peak = _rss_mib()
    return {
        "variant": variant,
        "pool": len(pool),
        "side": side,
        "seconds": round(seconds, 1),
        "after_import_mib": round(after_import),
        "peak_mib": round(peak),
        "cold_start_mib": round(peak - after_import),
        "full_size_pool_mib": round(len(pool) * side * side / 2**20),
        "selected": sorted(int(i) for i in selected),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 4000, 8000])
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, npz, folder, steps = args.child
        print(json.dumps(child(variant, Path(npz), args.side, int(steps), Path(folder))))
        return
    if args.side % 28 or args.side < 28:
        parser.error(f"--side must be a multiple of 28, got {args.side}")
    if any(size < PICKS or size > 9416 for size in args.sizes):
        parser.error(f"--sizes must be between {PICKS} and 9416 (twice the training images)")
    source = require_shared(NPZ)
    runs = []
    with tempfile.TemporaryDirectory(prefix="wb-coldmem-") as tmp:
        for size in args.sizes:
            npz = _pool_npz(source, size, Path(tmp))
            for variant in VARIANTS:
                folder = Path(tmp) / f"{variant}-{size}"
                folder.mkdir()
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--side",
                        str(args.side),
                        "--child",
                        variant,
                        str(npz),
                        str(folder),
                        str(args.steps),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                run = json.loads(out.stdout.strip().splitlines()[-1])
                runs.append(run)
                print(
                    f"{variant:>22} pool {run['pool']:>5}: +{run['cold_start_mib']} MiB, "
                    f"{run['seconds']} s",
                    flush=True,
                )
    by = {(r["variant"], r["pool"]): r for r in runs}
    comparison = []
    for size in args.sizes:
        whole, ours = by[("whole_pool", size)], by[("workbench_thumbnails", size)]
        comparison.append(
            {
                "pool": size,
                "memory_ratio_whole_over_workbench": round(
                    whole["cold_start_mib"] / max(ours["cold_start_mib"], 1), 1
                ),
                "time_ratio_whole_over_workbench": round(whole["seconds"] / ours["seconds"], 2),
                "same_picks": len(set(whole["selected"]) & set(ours["selected"])),
            }
        )
    report = {
        "side": args.side,
        "steps": args.steps,
        "picks": PICKS,
        "chunk": CHUNK,
        "runs": runs,
        "comparison": comparison,
        "machine": machine_info(),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1))
    for row in comparison:
        print(row)


if __name__ == "__main__":
    main()
