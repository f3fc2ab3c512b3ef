"""Acquisition ensembles: do several models' MC-dropout samples pick better labels than one's?

Beluch et al. (2018) and DEBAL (Pop & Fulop 2018) report that uncertainty from a deep ensemble
(each member with MC dropout) picks better than MC dropout of one model. This experiment puts
that to the BreastMNIST setup of ``bench_label_efficiency.py`` (``breastmnist_xlong_15seeds_ref5``:
20 + 20 x 20 labels, 15 seeds, the default warm-start recipe, a 5-training full-data
reference): per round, member 0 is trained exactly as in the simulation (so it is the model
evaluated, and the random arm's model is the same recipe), ``members - 1`` more models are trained
on the same labels, each warm-started from its own previous round with a seed of its own, and
power-BALD scores the pool over every member's T = 20 MC-dropout samples (``[N, members x T, C]``).
Only the picks change; the extra members cost ``members - 1`` more trainings per round.

Reads ../shared/data (fails when missing). Writes
``benchmarks/results/acquisition_ensemble.json`` (the `workbench simulate` report layout, with
random and the ensemble arm) and ``docs/acquisition_ensemble.png``::

    .venv/bin/python benchmarks/bench_acquisition_ensemble.py --members 3 --workers 2
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
from _machine import require_shared
from _report import print_strategies

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_label_efficiency import setups  # noqa: E402

from workbench.recipes import ClassificationRecipe, predict_probs  # noqa: E402
from workbench.simulation import (  # noqa: E402
    CurvePoint,
    Oracle,
    SeedRun,
    SimulationConfig,
    SimulationData,
    evaluate,
    load_simulation_data,
    plot_curves,
    run_strategy,
    summarise,
)
from workbench.simulation._run import (  # noqa: E402  (the simulation's own steps, on purpose)
    _start_worker,
    _train,
    build_strategy,
    initial_picks,
    reference_runs,
)

SETUP = "breastmnist_xlong_15seeds_ref5"
STRATEGY = "power_bald"
RESULTS = REPO / "benchmarks" / "results"
_MEMBER_SALT = 7919  # member m of round r under seed s trains with seed s*1000 + r + 7919*m


def run_ensemble(
    seed: int,
    members: int,
    data: SimulationData,
    recipe: ClassificationRecipe,
    config: SimulationConfig,
    workdir: Path,
) -> SeedRun:
    """`run_strategy` for power-BALD, scored over ``members`` models' MC-dropout samples."""
    strategy = build_strategy(STRATEGY, data, {})
    oracle = Oracle(data.pool_y)
    first = initial_picks(data, config.initial, config.cold_start, seed)
    oracle.reveal(first)
    picks = [[int(i) for i in first]]
    curve: list[CurvePoint] = []
    states: list[Any] = [None] * members  # each member's previous weights (warm start)
    for r in range(config.rounds + 1):
        idx, y = oracle.labels_of_revealed()
        trained = []
        for m in range(members if r < config.rounds else 1):
            root = workdir / f"ensemble-{seed}-{r}-{m}"
            model = _train(
                recipe,
                data,
                data.pool_x[idx],
                y,
                seed * 1000 + r + _MEMBER_SALT * m,
                root,
                states[m],
            )
            states[m] = model.state_dict
            trained.append(model)
            shutil.rmtree(root, ignore_errors=True)
        kept = {k: float(v) for k, v in trained[0].metrics.items() if np.isfinite(v)}
        curve.append(CurvePoint(len(idx), evaluate(trained[0], data), kept))
        if r == config.rounds:
            break
        rng = np.random.default_rng([seed, r, 0x5E1EC7])  # as run_strategy's
        candidates = np.flatnonzero(~oracle.labelled_mask)
        x = data.pool_x[candidates]
        probs = np.concatenate([predict_probs(model, x) for model in trained], axis=1)
        result = strategy(
            k=config.batch, rng=rng, probs=probs, labelled_mask=np.zeros(len(candidates), bool)
        )
        chosen = candidates[np.asarray(result.indices, np.int64)]
        oracle.reveal(chosen)
        picks.append([int(i) for i in chosen])
    return SeedRun(f"{STRATEGY}_ensemble{members}", seed, curve, picks)


_Job = tuple[str, int, int]  # (what, seed, members)
_STATE: dict[str, Any] = {}


def _start(
    data: SimulationData, recipe: ClassificationRecipe, config: SimulationConfig, workdir: Path
) -> None:
    _start_worker(data, recipe, config, workdir)
    _STATE.update(data=data, recipe=recipe, config=config, workdir=workdir)


def _run(job: _Job) -> dict[str, float] | SeedRun:
    what, seed, members = job
    data, recipe, config, workdir = (_STATE[k] for k in ("data", "recipe", "config", "workdir"))
    if what == "reference":
        return reference_runs(data, recipe, [seed], workdir)[0]
    if what == "random":
        return run_strategy("random", seed, data, recipe, config, workdir)
    return run_ensemble(seed, members, data, recipe, config, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=15)
    args = parser.parse_args()
    for name in ("members", "workers", "seeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    setup = setups(1)[SETUP]
    assert isinstance(setup.recipe, ClassificationRecipe)
    require_shared(setup.path)
    data = load_simulation_data(setup.path, seed=0, **setup.load)
    seeds = tuple(range(args.seeds))
    config = dataclasses.replace(setup.config, seeds=seeds)
    jobs: list[_Job] = [("reference", s, 1) for s in seeds[: config.reference_seeds]]
    jobs += [(what, s, args.members) for what in ("random", "ensemble") for s in seeds]
    workdir = Path(tempfile.mkdtemp(prefix="wb-ensemble-"))
    start = time.time()
    try:
        with ProcessPoolExecutor(
            args.workers,
            mp_context=get_context("spawn"),
            initializer=_start,
            initargs=(data, setup.recipe, config, workdir),
        ) as pool:
            results = []
            for job, result in zip(jobs, pool.map(_run, jobs), strict=True):
                results.append(result)
                print(f"{job[0]} seed {job[1]} done ({time.time() - start:.0f} s)", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    reference = [r for r in results if isinstance(r, dict)]
    runs = [r for r in results if isinstance(r, SeedRun)]
    names = ("random", f"{STRATEGY}_ensemble{args.members}")
    report = summarise(
        data, setup.recipe, dataclasses.replace(config, strategies=names), reference, runs
    )
    report["members"] = args.members
    report["seconds"] = time.time() - start
    report["machine"] = {"cpus": os.cpu_count(), "workers": args.workers, "torch_threads": 1}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "acquisition_ensemble.json").write_text(json.dumps(report, indent=1))
    plot_curves(report, REPO / "docs" / "acquisition_ensemble.png")
    print_strategies(report)


if __name__ == "__main__":
    main()
