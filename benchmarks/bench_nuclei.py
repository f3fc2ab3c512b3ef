"""Label efficiency on 2D segmentation: the default against random on nuclei (BBBC038).

The other label-efficiency runs are classification (MedMNIST) and 3D segmentation (hippocampus);
2D segmentation projects had no run behind their default. This one builds a project the way a
user would (a CSV manifest of images and masks, imported with the masks held back as hidden
ground truth), then runs `simulate` on it, as ``workbench simulate PROJECT`` does:

* the images: the first ``--images`` of ../shared/data/nuclei-bbbc038 (fluorescence,
  brightfield and H&E), a centre crop of 128x128 each (RGB), its instance map turned into a
  nucleus / background mask;
* the project's seeded split: 70% pool, 10% val (at most 30 used), 20% test;
* the recipe: a 2D residual UNet 8-16-32-64 (dropout 0.1), warm start, at most 20 epochs;
* random and power-BALD (mean reduction) from a shared random cold start, and power-BALD from
  the typical cold start (`simulate --cold-start typical`): the loop's default on a new project.

Reads ../shared/data (fails when missing). Writes ``benchmarks/results/<out>.json`` and
``docs/<out>.png``::

    .venv/bin/python benchmarks/bench_nuclei.py --seeds 5 --workers 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import SHARED_DATA, machine_info, require_shared
from _report import print_strategies
from bench_label_efficiency import tiny_unet
from PIL import Image

from workbench.ingest import LabelPolicy, import_sources
from workbench.recipes import SegmentationRecipe
from workbench.simulation import (
    SimulationConfig,
    load_simulation_data,
    plot_curves,
    runs_from_report,
    simulate,
    summarise,
)
from workbench.store import ProjectConfig, Task, create_project

REPO = Path(__file__).resolve().parents[1]
NUCLEI = SHARED_DATA / "nuclei-bbbc038"
SIDE = 128
TYPICAL = "power_bald_typical_start"


def build_project(source: Path, folder: Path, count: int) -> Path:
    """A segmentation project of ``count`` centre crops (``SIDE`` square, RGB) with their
    nucleus masks held back as hidden ground truth; returns its folder."""
    crops = folder / "crops"
    (crops / "images").mkdir(parents=True)
    (crops / "masks").mkdir()
    rows = ["path,label"]
    for image in sorted((source / "images").iterdir())[:count]:
        pixels = np.asarray(Image.open(image).convert("RGB"))
        labels = np.asarray(Image.open(source / "labels" / image.name))
        top, left = ((side - SIDE) // 2 for side in pixels.shape[:2])
        window = (slice(top, top + SIDE), slice(left, left + SIDE))
        Image.fromarray(pixels[window]).save(crops / "images" / image.name)
        Image.fromarray((labels[window] > 0).astype(np.uint8)).save(crops / "masks" / image.name)
        rows.append(f"images/{image.name},masks/{image.name}")
    (crops / "manifest.csv").write_text("\n".join(rows) + "\n")
    store = create_project(
        folder / "nuclei", ProjectConfig("nuclei", Task.SEGMENTATION, ("background", "nucleus"))
    )
    import_sources(store, [crops / "manifest.csv"], labels=LabelPolicy.GROUND_TRUTH)
    store.close()
    return folder / "nuclei"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--initial", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--contrastive-steps", type=int, default=600)
    parser.add_argument("--out", default="label_efficiency_nuclei")
    args = parser.parse_args()
    require_shared(NUCLEI)
    start = time.time()
    project = build_project(NUCLEI, Path(tempfile.mkdtemp(prefix="wb-nuclei-")), args.images)
    data = load_simulation_data(project, seed=0, max_val=30, shape=(SIDE, SIDE))
    recipe = SegmentationRecipe(
        network=tiny_unet,
        spatial_dims=2,
        max_epochs=20,
        patience=5,
        min_steps_per_epoch=8,
        batch_size=4,
        mc_samples=4,
        warm_start=True,
    )
    config = SimulationConfig(
        strategies=("random", "power_bald"),
        seeds=tuple(range(args.seeds)),
        initial=args.initial,
        batch=args.batch,
        rounds=args.rounds,
        score_pool=4,
        contrastive_steps=args.contrastive_steps,
        workers=args.workers,
        strategy_params={"power_bald": {"reduction": "mean"}},
    )

    def progress(done: int, total: int, what: str) -> None:
        print(f"{done}/{total} {what} ({time.time() - start:.0f} s)", flush=True)

    shared_start = simulate(data, recipe, config, progress=progress)
    typical = simulate(
        data,
        recipe,
        dataclasses.replace(
            config, strategies=("power_bald",), cold_start="typical", reference=False
        ),
        progress=progress,
    )
    names = ("random", "power_bald", TYPICAL)
    runs = [
        *runs_from_report(shared_start, "random"),
        *runs_from_report(shared_start, "power_bald"),
        *runs_from_report(typical, "power_bald", renamed=TYPICAL),
    ]
    report = summarise(
        data,
        recipe,
        dataclasses.replace(config, strategies=names),
        shared_start["reference"]["per_seed"],
        runs,
    )
    report["seconds"] = time.time() - start
    report["machine"] = {**machine_info(), "workers": args.workers, "torch_threads": 1}
    report["images"] = {
        "source": "nuclei-bbbc038",
        "count": args.images,
        "crop": [SIDE, SIDE],
        "channels": "RGB",
    }
    out = REPO / "benchmarks" / "results" / f"{args.out}.json"
    out.write_text(json.dumps(report, indent=1))
    plot_curves(report, REPO / "docs" / f"{args.out}.png")
    print(f"full-data Dice {report['reference']['metric']:.4f}")
    print_strategies(report)


if __name__ == "__main__":
    main()
