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
  when a project has no model yet, k-center greedy on downsampled pixels, then power-BALD.

Random is not rerun: its curves and the full-data reference are read from the stored
``label_efficiency_<setup>.json`` of the same setup (the simulation is deterministic for a seed;
`bench_acquisition_ensemble.py` reran that arm and got it back exactly). Reads ../shared/data
(fails when missing). Writes ``benchmarks/results/ssl_typiclust_<setup>.json`` (the `workbench
simulate` report layout) and ``docs/ssl_typiclust_<setup>.png``::

    .venv/bin/python benchmarks/bench_ssl_typiclust.py --setup breastmnist_xlong_15seeds_typiclust
    .venv/bin/python benchmarks/bench_ssl_typiclust.py --setup pneumoniamnist_fine_15seeds_typiclust

``--feature-cache DIR`` keeps each seed's SSL features (``DIR/<setup>/<seed>.npy``) for later runs.
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
import torch
import torch.nn.functional as F
from _machine import require_shared
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_label_efficiency import setups  # noqa: E402

import workbench.simulation._run as simulation_run  # noqa: E402  (patched per job, on purpose)
from workbench.models import small_cnn  # noqa: E402
from workbench.recipes import ClassificationRecipe  # noqa: E402
from workbench.recipes._augment import augment_images  # noqa: E402
from workbench.simulation import (  # noqa: E402
    CurvePoint,
    SeedRun,
    SimulationConfig,
    SimulationData,
    load_simulation_data,
    plot_curves,
    run_strategy,
    summarise,
)

RESULTS = REPO / "benchmarks" / "results"
ARMS = {  # arm -> (strategy after the cold start, how the cold-start set is picked)
    "typiclust_ssl": ("typiclust", "random"),
    "typiclust_ssl_cold": ("typiclust", "ssl_typical"),
    "power_bald_ssl_cold": ("power_bald", "ssl_typical"),
    "power_bald_kcenter_cold": ("power_bald", "kcenter"),
}
DEFAULT_ARMS = ("typiclust_ssl", "typiclust_ssl_cold", "power_bald_ssl_cold")
_SSL_SALT = 0x551


def _pixels(x: np.ndarray) -> torch.Tensor:
    """Pool images as float [N, 1, H, W], standardised over the pool."""
    t = torch.from_numpy(np.asarray(x)).float()
    if t.ndim == 3:
        t = t.unsqueeze(1)
    return (t - t.mean()) / t.std().clamp_min(1e-6)


def _views(x: torch.Tensor) -> torch.Tensor:
    """One strongly augmented view per image (SimCLR-style, within what 28x28 images allow)."""
    v = augment_images(x, flip_axes=(1,), rotate=0.5, shift=0.15, scale=0.25, intensity=0.4)
    return v + 0.1 * torch.randn_like(v)


def _nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss: each view must find its partner among the 2B - 1 others."""
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    n = len(a)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, target)


def ssl_features(pool_x: np.ndarray, seed: int, steps: int = 600, batch: int = 128,
                 temperature: float = 0.2) -> np.ndarray:
    """Train a SimCLR encoder on the unlabelled pool; its trunk features ``[N, D]`` (L2-normed)."""
    torch.manual_seed(seed * 1000 + _SSL_SALT)
    x = _pixels(pool_x)
    trunk = small_cnn(num_classes=2).trunk
    projection = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 64))
    params = list(trunk.parameters()) + list(projection.parameters())
    optimiser = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    trunk.train()
    for _ in range(steps):
        rows = torch.randint(len(x), (min(batch, len(x)),))
        loss = _nt_xent(projection(trunk(_views(x[rows]))), projection(trunk(_views(x[rows]))),
                        temperature)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    trunk.eval()
    with torch.no_grad():
        feats = torch.cat([trunk(x[i:i + 512]) for i in range(0, len(x), 512)])
    return F.normalize(feats, dim=1).numpy()


_STATE: dict[str, Any] = {}


def _start(data: SimulationData, recipe: ClassificationRecipe, config: SimulationConfig,
           workdir: Path, cache: Path) -> None:
    simulation_run._start_worker(data, recipe, config, workdir)
    _STATE.update(data=data, recipe=recipe, config=config, workdir=workdir, cache=cache,
                  inputs=simulation_run._inputs, initial=simulation_run.initial_picks)


def run_arm(arm: str, seed: int) -> tuple[SeedRun, float | None]:
    """One learning curve of ``arm``: `run_strategy` with the embeddings (and for the cold arms
    the cold-start set) taken from this seed's SSL encoder. Returns it and the seconds the
    encoder took to train (None when its features were cached)."""
    data, recipe, config, workdir, cache = (
        _STATE[k] for k in ("data", "recipe", "config", "workdir", "cache"))
    strategy, cold_start = ARMS[arm]
    cached = cache / f"{seed}.npy"  # every arm of a seed reads one encoder's features
    start = time.time()
    ssl_seconds: float | None = None
    feats = np.zeros((len(data.pool_x), 1), np.float32)  # for an arm that reads none
    if cached.exists():
        feats = np.load(cached)
    elif cold_start == "ssl_typical" or strategy == "typiclust":
        feats = ssl_features(data.pool_x, seed)
        ssl_seconds = time.time() - start
        partial = workdir / f"ssl-{seed}.partial.npy"
        np.save(partial, feats)
        shutil.move(partial, cached)
    inputs, initial = _STATE["inputs"], _STATE["initial"]

    def ssl_inputs(strategy: Any, trained: Any, data: SimulationData, positions: np.ndarray,
                   labelled: np.ndarray, *args: Any) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = inputs(strategy, trained, data, positions, labelled, *args)
        if "embeddings" in strategy.needs:
            out["embeddings"] = feats[positions]
        return out

    def ssl_initial(data: SimulationData, n: int, how: str, seed: int) -> np.ndarray:
        if cold_start != "ssl_typical":
            return np.asarray(initial(data, n, cold_start, seed))
        rng = np.random.default_rng([seed, 0xC01D])
        picked = simulation_run.build_strategy("typiclust", data, {})(
            k=n, rng=rng, embeddings=feats, labelled_mask=np.zeros(len(feats), bool))
        return np.sort(np.asarray(picked.indices, np.int64))

    simulation_run._inputs = ssl_inputs  # type: ignore[assignment]
    simulation_run.initial_picks = ssl_initial
    try:
        run = run_strategy(strategy, seed, data, recipe, config, workdir)
    finally:
        simulation_run._inputs, simulation_run.initial_picks = inputs, initial
    return dataclasses.replace(run, strategy=arm), ssl_seconds


def _job(job: tuple[str, int]) -> tuple[SeedRun, float | None]:
    return run_arm(*job)


def stored_random(report: dict[str, Any]) -> list[SeedRun]:
    """Random's curves from a stored `simulate` report."""
    return [
        SeedRun("random", run["seed"],
                [CurvePoint(p["labels"], p["metrics"], p.get("training", {}))
                 for p in run["curve"]],
                run["picks"])
        for run in report["strategies"]["random"]["runs"]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", default="breastmnist_xlong_15seeds_typiclust")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=15)
    parser.add_argument("--arms", default=",".join(DEFAULT_ARMS),
                        help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--feature-cache", type=Path, default=None)
    parser.add_argument("--out", default=None,
                        help="file stem under benchmarks/results and docs "
                             "(default ssl_typiclust_<setup>)")
    args = parser.parse_args()
    for name in ("workers", "seeds"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    arms = tuple(a for a in args.arms.split(",") if a)
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        parser.error(f"--arms: unknown {unknown or 'none given'}; choose from {', '.join(ARMS)}")
    catalogue = setups(1)
    if args.setup not in catalogue:
        parser.error(f"--setup: unknown setup {args.setup!r}")
    setup = catalogue[args.setup]
    assert isinstance(setup.recipe, ClassificationRecipe)
    stored_path = RESULTS / f"label_efficiency_{args.setup}.json"
    if not stored_path.exists():
        parser.error(f"--setup: no stored run {stored_path} to read random's curves from")
    stored = json.loads(stored_path.read_text())
    require_shared(setup.path)
    data = load_simulation_data(setup.path, seed=0, **setup.load)
    seeds = tuple(range(args.seeds))
    random_runs = [r for r in stored_random(stored) if r.seed in seeds]
    if len(random_runs) != len(seeds):
        parser.error(f"{stored_path} holds random's curves for {len(random_runs)} of the "
                     f"{len(seeds)} seeds asked for")
    config = dataclasses.replace(setup.config, seeds=seeds)
    jobs = [(arm, s) for arm in arms for s in seeds]  # arm-major: later arms read the cache
    workdir = Path(tempfile.mkdtemp(prefix="wb-ssl-"))
    cache = args.feature_cache / args.setup if args.feature_cache else workdir
    cache.mkdir(parents=True, exist_ok=True)
    start = time.time()
    runs: list[SeedRun] = []
    ssl_seconds: list[float] = []
    try:
        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"),
                                 initializer=_start,
                                 initargs=(data, setup.recipe, config, workdir, cache)) as pool:
            for job, (run, seconds) in zip(jobs, pool.map(_job, jobs), strict=True):
                runs.append(run)
                if seconds is not None:
                    ssl_seconds.append(seconds)
                print(f"{job[0]} seed {job[1]} done ({time.time() - start:.0f} s)", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    reference = stored["reference"]["per_seed"]
    report = summarise(data, setup.recipe,
                       dataclasses.replace(config, strategies=("random", *arms)),
                       reference, random_runs + runs)
    report["random_from"] = stored_path.name
    report["ssl"] = {"encoder": "small_cnn trunk + 2-layer projection, SimCLR NT-Xent",
                     "steps": 600, "batch": 128, "temperature": 0.2,
                     "seconds_per_encoder": float(np.mean(ssl_seconds)) if ssl_seconds else None}
    report["seconds"] = time.time() - start
    report["machine"] = {"cpus": os.cpu_count(), "workers": args.workers, "torch_threads": 1}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = args.out or f"ssl_typiclust_{args.setup}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=1))
    plot_curves(report, REPO / "docs" / f"{stem}.png")
    for name, s in report["strategies"].items():
        d = s["aulc_vs_random"]
        diff = "" if d is None else (
            f" vs random {100 * d['mean']:+.2f} [{100 * d['lo']:+.2f}, {100 * d['hi']:+.2f}] pts")
        print(f"{name}: AULC {s['aulc']['mean']:.4f}{diff}; reach {s['labels_to_reach']} "
              f"range {s['labels_to_reach_range']}")


if __name__ == "__main__":
    main()
