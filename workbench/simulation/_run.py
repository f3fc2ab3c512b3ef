"""The simulated loop: train -> score the pool -> select -> reveal, per strategy and seed."""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.models import keep_torch_threads, resolve_device
from workbench.recipes import (
    DEFAULT_RESTORATION_STEPS,
    ClassificationRecipe,
    ContrastiveEncoder,
    SegmentationRecipe,
    classification_metrics,
    dice_scores,
    embed,
    predict_labels,
    predict_mean,
    predict_probs,
    predict_segmentation_probs,
    pretrain_restoration,
    train_classifier,
    train_contrastive,
    train_segmenter,
)
from workbench.simulation._data import SimulationData
from workbench.simulation._oracle import Oracle
from workbench.strategies import Strategy, StrategyError, get_strategy, select_cold_start

Progress = Callable[[int, int, str], None]  # (done, total, what)
Recipe = ClassificationRecipe | SegmentationRecipe


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. ``cold_start``: how the first ``initial`` labels are drawn (the same set
    for every strategy under one seed). ``pool_subsample``: score at most this many random
    unlabelled items per round. ``score_pool``: segmentation probabilities are average-pooled by
    this factor per axis before the strategies see them. ``contrastive_steps``: training steps
    of the self-supervised encoder of a ``typical`` cold start. ``ssl_init``: a classifier's
    first round and the full-data reference start from that encoder's trunk (trained per seed
    on the pool, no label read; ``small_cnn``-like networks only); a segmenter's start from its
    own network pretrained for ``restoration_steps`` on the pool's scans
    (`pretrain_restoration`). ``encoder_cache``: a folder that keeps those encoders (and
    pretrained segmenters) between simulations (keyed by the pool's content, the seed, the
    steps and the device), so a rerun on the same data trains none; None keeps them for one
    run. ``workers``: run the (strategy, seed) curves and the reference trainings in this many
    processes, each with ``threads`` torch threads; the report is the same for any number of
    workers."""

    strategies: tuple[str, ...] = ("random", "entropy", "bald")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    initial: int = 20
    batch: int = 20
    rounds: int = 5
    cold_start: Literal["random", "kcenter", "typical"] = "random"
    contrastive_steps: int = 600
    ssl_init: bool = False
    restoration_steps: int = DEFAULT_RESTORATION_STEPS
    encoder_cache: Path | None = None
    pool_subsample: int | None = None
    score_pool: int = 4
    reference_seeds: int = 1
    reference: bool = True
    strategy_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    threads: int | None = 1
    workers: int = 1


@dataclass(frozen=True)
class CurvePoint:
    """Test metrics after training on ``labels`` revealed labels, and the training's own
    (validation metrics; for classifiers ``attempts`` and ``degenerate``, see
    `ClassificationRecipe`)."""

    labels: int
    metrics: dict[str, float]
    training: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SeedRun:
    """One strategy under one seed: the learning curve and the positions picked each round."""

    strategy: str
    seed: int
    curve: list[CurvePoint]
    picks: list[list[int]]


def primary_metric(task: str) -> str:
    """The metric of curves, AULC and targets: ``auc`` or ``dice``."""
    return "auc" if task == "classification" else "dice"


_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


def quiet() -> None:
    """Silence Lightning's per-fit banners and warnings (many fits per simulation)."""
    for name in _LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _train(
    recipe: Recipe,
    data: SimulationData,
    x: np.ndarray,
    y: np.ndarray,
    seed: int,
    root: Path | None,
    init: Mapping[str, torch.Tensor] | None,
    start: Mapping[str, torch.Tensor] | None = None,
) -> Any:
    """One training; ``start``: the self-supervised weights a first round starts from (a
    classifier's trunk, a segmenter's restoration-pretrained network)."""
    if isinstance(recipe, SegmentationRecipe):
        return train_segmenter(
            recipe,
            x,
            y,
            data.val_x,
            data.val_y,
            num_classes=data.num_classes,
            seed=seed,
            root_dir=root,
            init_state=init,
            pretrained_state=start,
        )
    return train_classifier(
        recipe,
        x,
        y,
        data.val_x,
        data.val_y,
        seed=seed,
        num_classes=data.num_classes,
        root_dir=root,
        init_state=init,
        trunk_state=start,
    )


def evaluate(trained: Any, data: SimulationData) -> dict[str, float]:
    """Test metrics: AUC and accuracy (classification) or mean foreground Dice (segmentation)."""
    if data.task == "segmentation":
        dice = dice_scores(predict_labels(trained, data.test_x), data.test_y, data.num_classes)
        return {"dice": float(np.nanmean(dice))}
    return classification_metrics(predict_mean(trained, data.test_x), data.test_y)


def build_strategy(name: str, data: SimulationData, params: Mapping[str, Any]) -> Strategy:
    """The registry strategy; segmentation scores get ``spatial_dims`` when they accept it."""
    if data.task == "segmentation":
        try:
            return get_strategy(name, spatial_dims=data.spatial_dims, **params)
        except StrategyError:
            pass  # strategies without a spatial reduction (random, coreset) take no spatial_dims
    return get_strategy(name, **params)


def _inputs(
    strategy: Strategy,
    trained: Any,
    data: SimulationData,
    positions: np.ndarray,
    labelled: np.ndarray,
    recipe: Recipe,
    score_pool: int,
) -> dict[str, np.ndarray]:
    """What ``strategy`` reads of the pool items at ``positions``, ``labelled`` ``[N]`` flagging
    those it may not pick."""
    x = data.pool_x[positions]
    out: dict[str, np.ndarray] = {"labelled_mask": labelled}
    if strategy.needs & {"probs", "mc_probs"}:
        out["probs"] = (
            predict_segmentation_probs(trained, x, recipe.mc_samples, pool=score_pool)
            if data.task == "segmentation"
            else predict_probs(trained, x)
        )
    if "embeddings" in strategy.needs:
        out["embeddings"] = embed(trained, x)
    return out


_ENCODERS: dict[tuple[object, ...], ContrastiveEncoder] = {}  # (pool digest, ...) -> encoder
_KEPT_ENCODERS = 4  # the newest few: a process runs a seed's strategies one after another
_ENCODER_FORMAT = 2  # part of the cache key: raise it when the encoder's training changes


def pool_encoder(
    data: SimulationData, seed: int, contrastive_steps: int = 600, cache_dir: Path | None = None
) -> ContrastiveEncoder:
    """The self-supervised encoder of ``seed`` trained on the pool (volumes at most 16 per
    axis): kept for the process's next strategy and, under ``cache_dir``, for the other worker
    processes of the simulation (or later ones: `SimulationConfig.encoder_cache`). A cached
    file that cannot be read is trained again and replaced, with a warning."""
    key = (_ENCODER_FORMAT, *_pool_key(data), data.spatial_dims, seed, contrastive_steps)

    def train() -> ContrastiveEncoder:
        return train_contrastive(
            data.pool_x, spatial_dims=data.spatial_dims, seed=seed, steps=contrastive_steps
        )

    def saved(encoder: ContrastiveEncoder) -> dict[str, object]:
        return {"features": torch.from_numpy(encoder.features), "trunk_state": encoder.trunk_state}

    def read(stored: dict[str, Any]) -> ContrastiveEncoder:
        return ContrastiveEncoder(stored["features"].numpy(), dict(stored["trunk_state"]))

    return _kept(_ENCODERS, key, "encoder", cache_dir, train, saved, read)


def _pool_key(data: SimulationData) -> tuple[object, ...]:
    """What a pool's self-supervised weights depend on besides their settings: the pool's
    content (not its id()), shape and type, and the device they train on (CPU and CUDA
    differ)."""
    pool = np.ascontiguousarray(data.pool_x)
    digest = hashlib.blake2b(pool.data, digest_size=16).hexdigest()
    return digest, pool.shape, str(pool.dtype), resolve_device(None).type


T = TypeVar("T")


def _kept(
    memo: dict[tuple[object, ...], T],
    key: tuple[object, ...],
    prefix: str,
    cache_dir: Path | None,
    train: Callable[[], T],
    saved: Callable[[T], object],
    read: Callable[[dict[str, Any]], T],
) -> T:
    """``memo[key]``, else the file of ``key`` under ``cache_dir`` (`read` from what `saved`
    wrote), else `train` it and write that file whole (a reader never sees half). The process
    keeps the newest `_KEPT_ENCODERS` (a seed's strategies run one after another). A file that
    cannot be read is trained again and replaced, with a warning (`quiet` keeps these)."""
    if key in memo:
        return memo[key]
    stored = None
    if cache_dir is not None:
        name = hashlib.blake2b(repr(key).encode(), digest_size=12).hexdigest()
        stored = cache_dir / f"{prefix}-{name}.pt"
    value = None
    if stored is not None and stored.is_file():
        try:
            value = read(torch.load(stored, weights_only=True))
        except (
            pickle.UnpicklingError,
            RuntimeError,
            OSError,
            EOFError,
            KeyError,
            AttributeError,
            TypeError,
        ) as error:
            warnings.warn(
                f"cached {prefix} {stored} cannot be read ({type(error).__name__}): "
                "training it again",
                RuntimeWarning,
                stacklevel=3,
            )
    if value is None:
        value = train()
        if stored is not None:
            stored.parent.mkdir(parents=True, exist_ok=True)
            partial = stored.with_suffix(f".{os.getpid()}.partial")
            torch.save(saved(value), partial)
            os.replace(partial, stored)
    while len(memo) >= _KEPT_ENCODERS:
        memo.pop(next(iter(memo)))
    memo[key] = value
    return value


def encoder_dir(config: SimulationConfig, workdir: Path) -> Path:
    """Where a simulation's encoders are shared: ``config.encoder_cache``, else its workdir."""
    return config.encoder_cache if config.encoder_cache is not None else workdir


def initial_picks(
    data: SimulationData,
    n: int,
    how: str,
    seed: int,
    contrastive_steps: int = 600,
    cache_dir: Path | None = None,
) -> np.ndarray:
    """The cold-start set: uniform random, k-center on pooled raw pixels, or typical items
    (TypiClust) of self-supervised features trained on the pool (`pool_encoder`)."""
    rng = np.random.default_rng([seed, 0xC01D])
    if how == "typical":
        feats = pool_encoder(data, seed, contrastive_steps, cache_dir).features
        picked = select_cold_start(feats, n, method="typical", rng=rng).indices
        return np.sort(np.asarray(picked, np.int64))
    if how == "kcenter":
        factor = 2 if data.spatial_dims == 2 else 4
        feats = data.pool_x.astype(np.float32)
        return select_cold_start(feats, n, method="kcenter", factor=factor, rng=rng).indices
    return np.sort(rng.choice(len(data.pool_x), min(n, len(data.pool_x)), replace=False))


_RESTORED: dict[tuple[object, ...], dict[str, torch.Tensor]] = {}  # (pool digest, ...) -> state
_RESTORATION_FORMAT = 1  # part of the cache key: raise it when the pretraining changes


def pool_restoration(
    data: SimulationData,
    seed: int,
    network: Callable[..., Any],
    steps: int = DEFAULT_RESTORATION_STEPS,
    cache_dir: Path | None = None,
) -> dict[str, torch.Tensor]:
    """The segmenter ``network`` pretrained on the pool's scans for ``seed`` by restoring
    painted-over boxes (`pretrain_restoration`, no label read), kept like `pool_encoder`'s
    encoders: for the process's next strategy and under ``cache_dir``."""
    name = getattr(network, "name", None) or (
        f"{getattr(network, '__module__', '')}.{getattr(network, '__qualname__', repr(network))}"
    )
    key = (_RESTORATION_FORMAT, *_pool_key(data), seed, steps, name)

    def train() -> dict[str, torch.Tensor]:
        return pretrain_restoration(
            data.pool_x, network, spatial_dims=data.spatial_dims, seed=seed, steps=steps
        )

    return _kept(_RESTORED, key, "restoration", cache_dir, train, lambda s: s, dict)


def _self_supervised_start(
    data: SimulationData,
    recipe: Recipe,
    seed: int,
    config: SimulationConfig,
    cache_dir: Path | None,
) -> Mapping[str, torch.Tensor] | None:
    """With ``config.ssl_init``, the weights a first training starts from: a classifier's
    contrastive trunk (`pool_encoder`), a segmenter's restoration-pretrained network
    (`pool_restoration`); else None."""
    if not config.ssl_init:
        return None
    if isinstance(recipe, SegmentationRecipe):
        return pool_restoration(data, seed, recipe.network, config.restoration_steps, cache_dir)
    return pool_encoder(data, seed, config.contrastive_steps, cache_dir).trunk_state


def run_strategy(
    name: str,
    seed: int,
    data: SimulationData,
    recipe: Recipe,
    config: SimulationConfig,
    workdir: Path,
    tick: Callable[[str], None] = lambda _: None,
) -> SeedRun:
    """One learning curve. Training seeds depend on (seed, round) only and the initial set on the
    seed only, so strategies are paired under a seed."""
    strategy = build_strategy(name, data, config.strategy_params.get(name, {}))
    oracle = Oracle(data.pool_y)
    first = initial_picks(
        data,
        config.initial,
        config.cold_start,
        seed,
        config.contrastive_steps,
        encoder_dir(config, workdir),
    )
    start = _self_supervised_start(data, recipe, seed, config, encoder_dir(config, workdir))
    oracle.reveal(first)
    picks = [[int(i) for i in first]]
    curve: list[CurvePoint] = []
    state = None
    for r in range(config.rounds + 1):
        idx, y = oracle.labels_of_revealed()
        root = workdir / f"{name}-{seed}-{r}"
        trained = _train(
            recipe,
            data,
            data.pool_x[idx],
            y,
            seed * 1000 + r,
            root,
            state if recipe.warm_start else None,
            start,
        )
        kept = {k: float(v) for k, v in trained.metrics.items() if np.isfinite(v)}
        curve.append(CurvePoint(len(idx), evaluate(trained, data), kept))
        state = trained.state_dict
        shutil.rmtree(root, ignore_errors=True)
        tick(f"{name} seed {seed} round {r}")
        if r == config.rounds:
            break
        rng = np.random.default_rng([seed, r, 0x5E1EC7])
        cand = np.flatnonzero(~oracle.labelled_mask)
        if config.pool_subsample is not None and len(cand) > config.pool_subsample:
            cand = np.sort(rng.choice(cand, config.pool_subsample, replace=False))
        positions: np.ndarray = cand
        labelled: np.ndarray = np.zeros(len(cand), bool)
        if "labelled_items" in strategy.needs:  # picks placed relative to the labels so far
            positions = np.concatenate([cand, idx])
            labelled = np.arange(len(positions)) >= len(cand)
        result = strategy(
            k=config.batch,
            rng=rng,
            **_inputs(strategy, trained, data, positions, labelled, recipe, config.score_pool),
        )
        chosen = positions[np.asarray(result.indices, np.int64)]
        oracle.reveal(chosen)
        picks.append([int(i) for i in chosen])
    return SeedRun(name, seed, curve, picks)


def reference_runs(
    data: SimulationData,
    recipe: Recipe,
    seeds: Sequence[int],
    workdir: Path,
    tick: Callable[[str], None] = lambda _: None,
    config: SimulationConfig | None = None,
) -> list[dict[str, float]]:
    """Test metrics of the same recipe trained on every pool label, one per seed (from the
    seed's self-supervised start when ``config.ssl_init``)."""
    out = []
    for seed in seeds:
        root = workdir / f"reference-{seed}"
        start = (
            None
            if config is None
            else _self_supervised_start(data, recipe, seed, config, encoder_dir(config, workdir))
        )
        trained = _train(
            recipe, data, data.pool_x, data.pool_y, seed * 1000 + 999, root, None, start
        )
        out.append(evaluate(trained, data))
        shutil.rmtree(root, ignore_errors=True)
        tick(f"full-data reference seed {seed}")
    return out


def simulate(
    data: SimulationData, recipe: Recipe, config: SimulationConfig, progress: Progress | None = None
) -> dict[str, Any]:
    """Run every strategy under every seed (and the full-data reference) and summarise: see
    `summarise` for the JSON layout. Deterministic for given seeds on one machine, whatever
    ``config.workers``."""
    from workbench.simulation._summary import summarise

    if (data.task == "segmentation") != isinstance(recipe, SegmentationRecipe):
        raise ValueError(f"a {type(recipe).__name__} cannot train a {data.task} task")
    if config.workers < 1:
        raise ValueError(f"workers must be >= 1, got {config.workers}")
    if config.ssl_init and data.task == "segmentation" and config.restoration_steps < 1:
        raise ValueError(f"restoration_steps must be >= 1, got {config.restoration_steps}")
    if config.encoder_cache is not None:  # refused now, not when the first encoder is saved
        try:
            config.encoder_cache.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ValueError(
                f"encoder_cache {config.encoder_cache} cannot be a folder: "
                f"{error.strerror or error}"
            ) from error
    if data.task == "segmentation":  # refused now, not after the first trainings
        for name in config.strategies:
            params = config.strategy_params.get(name, {})
            if "embeddings" in build_strategy(name, data, params).needs:
                raise StrategyError(
                    f"strategy {name!r} reads a classifier's embeddings, which a "
                    "segmentation model does not give: use random or a score "
                    "strategy",
                    field="strategies",
                )
    ref_seeds = list(config.seeds[: config.reference_seeds]) if config.reference else []
    jobs: list[_Job] = [("reference", seed) for seed in ref_seeds] + [
        (name, seed) for name in config.strategies for seed in config.seeds
    ]
    total = len(config.strategies) * len(config.seeds) * (config.rounds + 1) + len(ref_seeds)
    done = 0

    def tick(what: str, steps: int = 1) -> None:
        nonlocal done
        done += steps
        if progress is not None:
            progress(done, total, what)

    workdir = Path(tempfile.mkdtemp(prefix="wb-simulate-"))
    try:
        if config.workers == 1:
            with _as_a_worker(data, recipe, config, workdir):
                results = [_run_job(job, tick) for job in jobs]
        else:
            results = _run_in_processes(jobs, data, recipe, config, workdir, tick)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    reference = [r for r in results if isinstance(r, dict)]
    runs = [r for r in results if isinstance(r, SeedRun)]
    return summarise(data, recipe, config, reference, runs)


_Job = tuple[str, int]  # ("reference", seed) or (strategy, seed)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_WORKER: dict[str, Any] = {}  # what every job of this process shares, set by _start_worker


def _start_worker(
    data: SimulationData, recipe: Recipe, config: SimulationConfig, workdir: Path
) -> None:
    """Set up a process (this one, or a pool worker) to run simulation jobs."""
    quiet()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    _WORKER.update(data=data, recipe=recipe, config=config, workdir=workdir)


@contextmanager
def _as_a_worker(
    data: SimulationData, recipe: Recipe, config: SimulationConfig, workdir: Path
) -> Iterator[None]:
    """`_start_worker` in this process for the block only: its torch threads, warning filters
    and Lightning's log levels are put back after, so a notebook kernel that ran a simulation
    does not go on at one thread with every UserWarning silenced."""
    levels = {name: logging.getLogger(name).level for name in _LIGHTNING_LOGGERS}
    try:
        with warnings.catch_warnings(), keep_torch_threads():
            _start_worker(data, recipe, config, workdir)
            yield
    finally:
        _WORKER.clear()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _start_pool_worker(
    parent: int, data: SimulationData, recipe: Recipe, config: SimulationConfig, workdir: Path
) -> None:
    """`_start_worker` in a pool process that ends when the process that started it dies (a
    restarted kernel, a killed command), instead of training on for minutes."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # Lightning traps SIGTERM
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
    _start_worker(data, recipe, config, workdir)


def _run_job(job: _Job, tick: Callable[[str], None] = lambda _: None) -> dict[str, float] | SeedRun:
    name, seed = job
    data, recipe, config, workdir = (_WORKER[k] for k in ("data", "recipe", "config", "workdir"))
    try:
        if name == "reference":
            return reference_runs(data, recipe, [seed], workdir, tick, config)[0]
        return run_strategy(name, seed, data, recipe, config, workdir, tick)
    except WorkbenchError as error:  # which of many curves failed, so it can be rerun alone
        error.add_context(f"{'full-data reference' if name == 'reference' else name}, seed {seed}")
        raise


def _run_in_processes(
    jobs: list[_Job],
    data: SimulationData,
    recipe: Recipe,
    config: SimulationConfig,
    workdir: Path,
    tick: Callable[[str, int], None],
) -> list[dict[str, float] | SeedRun]:
    """Jobs in ``config.workers`` fresh (spawned) processes; results in job order. Progress
    advances by a whole curve as each finishes."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        config.workers,
        mp_context=context,
        initializer=_start_pool_worker,
        initargs=(os.getpid(), data, recipe, config, workdir),
    ) as pool:
        futures: dict[Future[dict[str, float] | SeedRun], _Job] = {
            pool.submit(_run_job, job): job for job in jobs
        }
        results: dict[_Job, dict[str, float] | SeedRun] = {}
        try:
            for future in as_completed(futures):
                name, seed = job = futures[future]
                results[job] = future.result()
                tick(f"{name} seed {seed}", 1 if name == "reference" else config.rounds + 1)
        except BaseException:  # a failed curve or an interrupt: stop every other curve now
            _kill_workers(pool)
            raise
    return [results[job] for job in jobs]


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """End a pool's workers now, wait for them and cancel the jobs not started. Shutting the
    pool down alone lets running curves train on for minutes after the simulation has raised,
    writing into the work folder it removes. (Python 3.14 has `kill_workers`; 3.11 does not.)"""
    processes = list((pool._processes or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.kill()  # SIGKILL: Lightning traps SIGTERM
    for process in processes:
        process.join()


def recipe_summary(recipe: Recipe) -> dict[str, Any]:
    """The recipe's fields as JSON values (the network factory by name)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(recipe):
        value = getattr(recipe, f.name)
        out[f.name] = getattr(value, "__name__", repr(value)) if callable(value) else value
    out["type"] = type(recipe).__name__
    return out
