"""The loop's own typical cold start on hippocampus scans, against the simulation's.

`workbench simulate --cold-start typical` trains the SimCLR encoder on the simulation's arrays:
for an MSD folder, z-scored scans centre padded/cropped to one shape. `workbench query` on a
project with no model reads the scans from their files as the loop does (windowed to uint8,
area-averaged to the pool's median shape capped at 32 per axis) and trains the encoder on
those. The two inputs differ, and
the typical start's gain on hippocampus (made the segmentation default in stop 21) was measured
on the first. This benchmark measures the second: per seed, the 60 pool scans of the
``hippocampus_warm_default_10seeds`` setup are imported into a fresh project, ``query`` makes its
cold start (the product's code path, nothing patched), and the simulation then runs power-BALD
from exactly those picks. Random's curves and the simulation's typical start are read from the
stored ``cold_starts_hippocampus_warm_default_10seeds.json``, seed for seed.

Reads ../shared/data (fails when missing). Writes ``benchmarks/results/<out>.json`` and
``docs/<out>.png``::

    .venv/bin/python benchmarks/bench_loop_cold_start.py --seeds 10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from _machine import machine_info, require_shared
from _report import print_strategies

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_label_efficiency import setups  # noqa: E402

import workbench.simulation._run as simulation_run  # noqa: E402  (cold start replaced per job)
from workbench.ingest import LabelPolicy, import_sources  # noqa: E402
from workbench.io import iter_dataset, read_label  # noqa: E402
from workbench.loop import ActiveLearningLoop  # noqa: E402
from workbench.simulation import (  # noqa: E402
    SeedRun,
    SimulationData,
    load_simulation_data,
    plot_curves,
    run_strategy,
    runs_from_report,
    summarise,
)
from workbench.simulation._data import _pad_crop  # noqa: E402
from workbench.simulation._stats import t_interval  # noqa: E402
from workbench.store import ProjectConfig, Task, create_project  # noqa: E402

SETUP = "hippocampus_warm_default_10seeds"
STORED = REPO / "benchmarks" / "results" / f"cold_starts_{SETUP}.json"
ARM = "power_bald_loop_cold"
_STATE: dict[str, Any] = {}


def pool_files(folder: Path, data: SimulationData) -> list[str]:
    """The image file of each pool position of ``data`` (its ``pool_keys``), checked against
    the pool's masks."""
    labels = {r.key: r.label_uri for r in iter_dataset(folder) if r.label_uri is not None}
    files = []
    for position, key in enumerate(data.pool_keys):
        mask = np.asarray(read_label(str(labels[key]))).astype(np.uint8)
        if not np.array_equal(_pad_crop(mask, data.pool_y.shape[1:]), data.pool_y[position]):
            raise SystemExit(f"pool position {position} does not match {key}")
        files.append(str(folder / key))
    return files


def loop_picks(files: list[str], seed: int, k: int, workdir: Path) -> list[int]:
    """Pool positions of the cold start `workbench query` makes on a project of ``files``."""
    store = create_project(
        workdir / f"project-{seed}",
        ProjectConfig(f"hippocampus-{seed}", Task.SEGMENTATION, ("anterior", "posterior")),
    )
    import_sources(store, files, split="train", labels=LabelPolicy.IGNORE, workers=1)
    position = {Path(path).resolve(): n for n, path in enumerate(files)}
    round_ = ActiveLearningLoop(store).query("power_bald", k, seed=seed)
    if round_.strategy != "cold_start_typical":
        raise SystemExit(f"expected the typical cold start, the loop made {round_.strategy}")
    by_id = {item.id: item for item in store.list_items()}
    picks = [
        position[Path(by_id[i].source_uri.removeprefix("file://")).resolve()]
        for i in round_.selected
    ]
    store.close()
    return sorted(picks)


def _start(data: SimulationData, recipe: Any, config: Any, workdir: Path, files: list[str]) -> None:
    simulation_run._start_worker(data, recipe, config, workdir)
    _STATE.update(data=data, recipe=recipe, config=config, workdir=workdir, files=files)


def run_seed(seed: int) -> tuple[SeedRun, float]:
    """Power-BALD's learning curve from the loop's cold-start picks; and the seconds the
    cold start took (reading the scans and training the encoder)."""
    data, recipe, config, workdir, files = (
        _STATE[k] for k in ("data", "recipe", "config", "workdir", "files")
    )
    start = time.time()
    first = np.array(loop_picks(files, seed, config.initial, workdir), np.int64)
    seconds = time.time() - start
    original = simulation_run.initial_picks
    simulation_run.initial_picks = lambda *args, **kwargs: first.copy()
    try:
        run = run_strategy("power_bald", seed, data, recipe, config, workdir)
    finally:
        simulation_run.initial_picks = original
    return dataclasses.replace(run, strategy=ARM), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--out", default=f"loop_cold_start_{SETUP}")
    args = parser.parse_args()
    setup = setups(1)[SETUP]
    require_shared(setup.path)
    stored = json.loads(STORED.read_text())
    seeds = tuple(range(args.seeds))
    data = load_simulation_data(setup.path, seed=0, **setup.load)
    files = pool_files(setup.path, data)
    config = dataclasses.replace(setup.config, seeds=seeds)
    kept = {
        name: [r for r in runs_from_report(stored, name) if r.seed in seeds]
        for name in ("random", "power_bald_ssl_cold")
    }
    if any(len(runs) != len(seeds) for runs in kept.values()):
        parser.error(f"{STORED.name} holds fewer than {len(seeds)} seeds")
    workdir = Path(tempfile.mkdtemp(prefix="wb-loopcold-"))
    start = time.time()
    runs: list[SeedRun] = []
    seconds: list[float] = []
    try:
        with ProcessPoolExecutor(
            args.workers,
            mp_context=get_context("spawn"),
            initializer=_start,
            initargs=(data, setup.recipe, config, workdir, files),
        ) as pool:
            for seed, (run, took) in zip(seeds, pool.map(run_seed, seeds), strict=True):
                runs.append(run)
                seconds.append(took)
                print(f"seed {seed} done ({time.time() - start:.0f} s)", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    names = ("random", "power_bald_ssl_cold", ARM)
    report = summarise(
        data,
        setup.recipe,
        dataclasses.replace(config, strategies=names),
        stored["reference"]["per_seed"],
        kept["random"] + kept["power_bald_ssl_cold"] + runs,
    )
    simulated = {r.seed: set(r.picks[0]) for r in kept["power_bald_ssl_cold"]}
    report["first_picks_shared_with_simulated_typical"] = {
        str(r.seed): len(simulated[r.seed] & set(r.picks[0])) for r in runs
    }
    loop_aulc, simulated_aulc = (
        report["strategies"][name]["aulc"]["per_seed"] for name in (ARM, "power_bald_ssl_cold")
    )
    paired = t_interval([a - b for a, b in zip(loop_aulc, simulated_aulc, strict=True)])
    report["loop_minus_simulated_typical"] = {
        "mean": paired.mean,
        "lo": paired.lo,
        "hi": paired.hi,
        "n": len(loop_aulc),
    }
    report["stored_from"] = STORED.name
    report["loop_cold_start_seconds"] = seconds
    report["seconds"] = time.time() - start
    report["machine"] = {**machine_info(), "workers": args.workers, "torch_threads": 1}
    out = REPO / "benchmarks" / "results" / f"{args.out}.json"
    out.write_text(json.dumps(report, indent=1))
    plot_curves(report, REPO / "docs" / f"{args.out}.png")
    print_strategies(report)
    print("loop - simulated typical:", report["loop_minus_simulated_typical"])
    print(
        "first picks shared with the simulated typical start:",
        report["first_picks_shared_with_simulated_typical"],
    )


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
