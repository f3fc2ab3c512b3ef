"""TypiClust on self-supervised features: the paper's setting, against random.

TypiClust (Hacohen et al. 2022) clusters *self-supervised* features; the engine's `typiclust`
clusters the current classifier's penultimate features, and on these benchmarks it was no better
than random where the default lags (PneumoniaMNIST, small budgets) nor than the default where it
leads (BreastMNIST). This experiment gives it what the paper gives it: per seed, a SimCLR encoder
(the recipe's `small_cnn` trunk and a 2-layer projection, NT-Xent loss, two augmented views of
every pool image, no label seen) is trained on the whole pool, and TypiClust reads its features
every round. The arms (``--arms``):

* ``typiclust_ssl``: the shared random cold-start set, then TypiClust on the SSL features;
* ``typiclust_ssl_cold``: the cold-start set picked by TypiClust on the SSL features too (so its
  first point differs from random's);
* ``power_bald_ssl_cold``: that typical cold-start set, then the default, power-BALD (the paper's
  advice: typical picks while labels are few, uncertainty after);
* ``power_bald_kcenter_cold`` (not run by default, no SSL): the cold start `workbench query` makes
  when a project has no model yet, k-center greedy on downsampled pixels, then power-BALD;
* ``typiclust_bald_ssl_cold`` (not run by default): the typical cold start, then
  ``typiclust_bald``: TypiClust's clusters of the SSL features spread each batch, and BALD
  picks the most uncertain item within each uncovered cluster (the cold start reads the
  cached features of its seed instead of training the same encoder again);
* ``batchbald_ssl_cold`` (not run by default): the typical cold start, then greedy BatchBALD;
* ``power_bald_beta4_ssl_cold`` (not run by default): the typical cold start, then power-BALD
  sampling with beta 4 instead of 1 (closer to the top BALD scores).

The features are `workbench.recipes.contrastive_features`, and the cold starts are the
simulation's own (`SimulationConfig.cold_start` = ``typical`` / ``kcenter``): the two cold-start
arms of power-BALD are what ``workbench simulate --cold-start typical|kcenter`` runs. (The first
runs used this script's own copy of that encoder, before it moved into the engine; the engine's
gives the same features bit for bit.)

Random is not rerun: its curves and the full-data reference are read from the stored
``label_efficiency_<setup>.json`` of the same setup (the simulation is deterministic for a seed;
`bench_acquisition_ensemble.py` reran that arm and got it back exactly). Reads ../shared/data
(fails when missing). Writes ``benchmarks/results/<stem>.json`` (the `workbench simulate` report
layout) and ``docs/<stem>.png``, the stem ``ssl_typiclust_<setup>`` unless ``--out`` names one::

    .venv/bin/python benchmarks/bench_ssl_typiclust.py --setup breastmnist_xlong_15seeds_typiclust
    .venv/bin/python benchmarks/bench_ssl_typiclust.py --setup pneumoniamnist_fine_15seeds_typiclust

On a segmentation setup (hippocampus) only the ``power_bald_*`` cold-start arms run: the
typical start trains the encoder on volumes area-resized to at most 16 per axis, as the loop does::

    .venv/bin/python benchmarks/bench_ssl_typiclust.py --setup hippocampus_warm_default_long \
        --seeds 5 --arms power_bald_ssl_cold,power_bald_kcenter_cold \
        --out cold_starts_hippocampus_warm_default_long

``--extend REPORT`` keeps the curves that an earlier report of this script holds for the arms
and seeds asked for, and runs only the others (so they sit in one report, paired by seed).
``--feature-cache DIR`` keeps each seed's SSL features (``DIR/<setup>/<seed>.npy``) for later runs;
``--ssl-steps N`` trains the encoder for N steps instead of 600 (cached apart).
``--first-seed N`` runs seeds N.. (a held-out replicate) and reads random's curves and the
reference from ``label_efficiency_<setup>_seeds<A>-<B>.json``, which
``bench_label_efficiency.py --first-seed N`` writes.
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
from typing import Any, Literal

import numpy as np
from _machine import require_shared
from _report import kept_runs, print_strategies

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_label_efficiency import held_out_suffix, setups  # noqa: E402

import workbench.simulation._run as simulation_run  # noqa: E402  (patched per job, on purpose)
from workbench.recipes import (  # noqa: E402
    ClassificationRecipe,
    ContrastiveEncoder,
    SegmentationRecipe,
    contrastive_features,
)
from workbench.simulation import (  # noqa: E402
    SeedRun,
    SimulationConfig,
    SimulationData,
    load_simulation_data,
    plot_curves,
    run_strategy,
    runs_from_report,
    summarise,
)

RESULTS = REPO / "benchmarks" / "results"
ARMS: dict[str, tuple[str, Literal["random", "kcenter", "typical"]]] = {
    # arm -> (strategy after the cold start, the simulation's cold start)
    "typiclust_ssl": ("typiclust", "random"),
    "typiclust_ssl_cold": ("typiclust", "typical"),
    "power_bald_ssl_cold": ("power_bald", "typical"),
    "power_bald_kcenter_cold": ("power_bald", "kcenter"),
    "typiclust_bald_ssl_cold": ("typiclust_bald", "typical"),
    "batchbald_ssl_cold": ("batchbald", "typical"),
    "power_bald_beta4_ssl_cold": ("power_bald:beta=4", "typical"),
}
DEFAULT_ARMS = ("typiclust_ssl", "typiclust_ssl_cold", "power_bald_ssl_cold")


_STATE: dict[str, Any] = {}


def _start(
    data: SimulationData,
    recipe: ClassificationRecipe | SegmentationRecipe,
    config: SimulationConfig,
    workdir: Path,
    cache: Path,
) -> None:
    simulation_run._start_worker(data, recipe, config, workdir)
    _STATE.update(
        data=data,
        recipe=recipe,
        config=config,
        workdir=workdir,
        cache=cache,
        inputs=simulation_run._inputs,
    )


def run_arm(arm: str, seed: int) -> tuple[SeedRun, float | None]:
    """One learning curve of ``arm``: `run_strategy` with the arm's cold start, TypiClust reading
    this seed's SSL features in place of the model's. Returns it and the seconds the encoder
    took to train (None when cached or not needed; a cold start trains its own)."""
    data, recipe, config, workdir, cache = (
        _STATE[k] for k in ("data", "recipe", "config", "workdir", "cache")
    )
    strategy, cold_start = ARMS[arm]
    cached = cache / f"{seed}.npy"  # every arm of a seed reads one encoder's features
    start = time.time()
    ssl_seconds: float | None = None
    feats = np.zeros((len(data.pool_x), 1), np.float32)  # for an arm that reads none
    if cached.exists():
        feats = np.load(cached)
    elif strategy.startswith("typiclust"):
        feats = contrastive_features(
            data.pool_x, seed=seed, steps=config.contrastive_steps, device="cpu"
        )
        ssl_seconds = time.time() - start
        partial = workdir / f"ssl-{seed}.partial.npy"
        np.save(partial, feats)
        shutil.move(partial, cached)
    inputs = _STATE["inputs"]
    encoder = simulation_run.train_contrastive
    arm_seed = seed

    def same_encoder(
        x: np.ndarray,
        *,
        spatial_dims: int = 2,
        seed: int = 0,
        steps: int = config.contrastive_steps,
        **kwargs: Any,
    ) -> ContrastiveEncoder:
        """The cold start's encoder: this seed's features when they are those it would train
        (no trunk weights: these arms start no classifier from them)."""
        wanted = (2, arm_seed, config.contrastive_steps)
        if feats.shape[1] > 1 and (spatial_dims, seed, steps) == wanted and x is data.pool_x:
            return ContrastiveEncoder(feats.copy(), {})
        return encoder(x, spatial_dims=spatial_dims, seed=seed, steps=steps, **kwargs)

    def ssl_inputs(
        strategy: Any,
        trained: Any,
        data: SimulationData,
        positions: np.ndarray,
        labelled: np.ndarray,
        *args: Any,
    ) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = inputs(strategy, trained, data, positions, labelled, *args)
        if "embeddings" in strategy.needs:
            out["embeddings"] = feats[positions]
        return out

    simulation_run._inputs = ssl_inputs  # type: ignore[assignment]
    simulation_run.train_contrastive = same_encoder  # type: ignore[assignment]
    simulation_run._ENCODERS.clear()  # one arm's encoder is not another's stand-in
    try:
        run = run_strategy(
            strategy,
            seed,
            data,
            recipe,
            dataclasses.replace(config, cold_start=cold_start),
            workdir,
        )
    finally:
        simulation_run._inputs = inputs
        simulation_run.train_contrastive = encoder
        simulation_run._ENCODERS.clear()
    return dataclasses.replace(run, strategy=arm), ssl_seconds


def _job(job: tuple[str, int]) -> tuple[SeedRun, float | None]:
    return run_arm(*job)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", default="breastmnist_xlong_15seeds_typiclust")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=15)
    parser.add_argument(
        "--arms", default=",".join(DEFAULT_ARMS), help=f"comma-separated, of {', '.join(ARMS)}"
    )
    parser.add_argument(
        "--first-seed", type=int, default=0, help="run seeds from this one (held-out replicates)"
    )
    parser.add_argument("--feature-cache", type=Path, default=None)
    parser.add_argument(
        "--extend",
        default=None,
        metavar="REPORT",
        help="an earlier report under benchmarks/results: its arms' curves are kept, not run again",
    )
    parser.add_argument(
        "--ssl-steps",
        type=int,
        default=600,
        help="training steps of the SSL encoder (cold start and TypiClust)",
    )
    parser.add_argument(
        "--out",
        default=None,
        help="file stem under benchmarks/results and docs (default ssl_typiclust_<setup>)",
    )
    args = parser.parse_args()
    for name in ("workers", "seeds", "ssl_steps"):
        if getattr(args, name) < 1:
            parser.error(
                f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
            )
    if args.first_seed < 0:
        parser.error(f"--first-seed must be at least 0, got {args.first_seed}")
    seeds = tuple(range(args.first_seed, args.first_seed + args.seeds))
    arms = tuple(a for a in args.arms.split(",") if a)
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        parser.error(f"--arms: unknown {unknown or 'none given'}; choose from {', '.join(ARMS)}")
    catalogue = setups(1)
    if args.setup not in catalogue:
        parser.error(f"--setup: unknown setup {args.setup!r}")
    setup = catalogue[args.setup]
    if any(ARMS[a][0].startswith("typiclust") for a in arms) and not isinstance(
        setup.recipe, ClassificationRecipe
    ):
        parser.error(
            "--arms: the typiclust arms read 2D features; on a segmentation setup run "
            "the power_bald_* cold-start arms only"
        )
    stored_path = (
        RESULTS / f"label_efficiency_{args.setup}{held_out_suffix(seeds, args.first_seed)}.json"
    )
    if not stored_path.exists():
        parser.error(f"--setup: no stored run {stored_path} to read random's curves from")
    stored = json.loads(stored_path.read_text())
    require_shared(setup.path)
    data = load_simulation_data(setup.path, seed=0, **setup.load)
    random_runs = [r for r in runs_from_report(stored, "random") if r.seed in seeds]
    if len(random_runs) != len(seeds):
        parser.error(
            f"{stored_path} holds random's curves for {len(random_runs)} of the "
            f"{len(seeds)} seeds asked for"
        )
    earlier_path = RESULTS / (args.extend or "")
    if args.extend and not earlier_path.is_file():
        parser.error(f"--extend: no stored report {earlier_path}")
    kept = kept_runs([json.loads(earlier_path.read_text())] if args.extend else [], arms, seeds)
    done = {(r.strategy, r.seed) for r in kept}
    config = dataclasses.replace(setup.config, seeds=seeds, contrastive_steps=args.ssl_steps)
    # arm-major: later arms read the cache
    jobs = [(arm, s) for arm in arms for s in seeds if (arm, s) not in done]
    workdir = Path(tempfile.mkdtemp(prefix="wb-ssl-"))
    steps = "" if args.ssl_steps == 600 else f"_steps{args.ssl_steps}"
    cache = args.feature_cache / f"{args.setup}{steps}" if args.feature_cache else workdir
    cache.mkdir(parents=True, exist_ok=True)
    start = time.time()
    runs: list[SeedRun] = []
    ssl_seconds: list[float] = []
    try:
        with ProcessPoolExecutor(
            args.workers,
            mp_context=get_context("spawn"),
            initializer=_start,
            initargs=(data, setup.recipe, config, workdir, cache),
        ) as pool:
            for job, (run, seconds) in zip(jobs, pool.map(_job, jobs), strict=True):
                runs.append(run)
                if seconds is not None:
                    ssl_seconds.append(seconds)
                print(f"{job[0]} seed {job[1]} done ({time.time() - start:.0f} s)", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    reference = stored["reference"]["per_seed"]
    runs = sorted(kept + runs, key=lambda r: (arms.index(r.strategy), r.seed))
    report = summarise(
        data,
        setup.recipe,
        dataclasses.replace(config, strategies=("random", *arms)),
        reference,
        random_runs + runs,
    )
    if args.extend:
        report["kept_from"] = {"report": args.extend, "arms": sorted({arm for arm, _ in done})}
    report["random_from"] = stored_path.name
    report["ssl"] = {
        "encoder": "small_cnn trunk + 2-layer projection, SimCLR NT-Xent",
        "steps": args.ssl_steps,
        "batch": 128,
        "temperature": 0.2,
        "seconds_per_encoder": float(np.mean(ssl_seconds)) if ssl_seconds else None,
    }
    report["seconds"] = time.time() - start
    report["machine"] = {"cpus": os.cpu_count(), "workers": args.workers, "torch_threads": 1}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = args.out or f"ssl_typiclust_{args.setup}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=1))
    plot_curves(report, REPO / "docs" / f"{stem}.png")
    print_strategies(report)


if __name__ == "__main__":
    main()
