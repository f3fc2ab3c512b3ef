"""Networks started from self-supervised weights learnt on the pool, against fresh weights.

The typical cold start already trains a SimCLR encoder on the pool (no label read) to pick the
first labels. This benchmark asks whether the classifier should also *start* from that encoder's
trunk (`SimulationConfig.ssl_init`, ``workbench simulate --ssl-init``) instead of random weights:
the first round of every curve and the full-data reference do; later rounds warm-start from the
round before, as always. A segmentation setup (e.g. ``hippocampus_warm_default_long``) starts
its U-Net instead from the same network pretrained to restore painted-over boxes of the pool's
scans (`workbench.recipes.pretrain_restoration`); "trunk" below then means those weights. Two
arms, each with ``ssl_init`` and the same per-seed encoder:

* ``random``: a random cold start, then random picks (the baseline);
* ``power_bald_typical``: the typical cold start, then power-BALD (the loop's default).

They are set beside the same two arms with fresh weights, read from the stored runs of the
setup (``label_efficiency_<setup>.json`` for random, ``cold_starts_<setup>.json`` or
``--default-from`` for the default's ``power_bald_ssl_cold`` arm, first ``--seeds`` seeds;
each against its own recipe's full-data reference). Reads ../shared/data (fails when
missing). Writes ``benchmarks/results/ssl_init_<setup>.json`` (the `workbench simulate` report
layout for the two SSL arms, plus ``fresh_weights`` and ``comparison``),
``docs/ssl_init_<setup>.png`` and, without extra arms, ``docs/ssl_init_<setup>_vs_fresh.png``
(both arms with and without the trunk)::

    .venv/bin/python benchmarks/bench_ssl_init.py --setup pneumoniamnist_fine_30seeds --seeds 15
    .venv/bin/python benchmarks/bench_ssl_init.py --setup breastmnist_xlong_30seeds_ref5 \
        --seeds 15 --default-from cold_starts_breastmnist_xlong_30seeds.json

``--extra-strategies batchbald,badge`` adds arms ``<strategy>_typical`` (the typical cold start,
then that strategy, from the trunk), paired by seed with the two arms; ``power_bald:beta=4``
passes the strategy keyword arguments (arm ``power_bald_beta4_typical``); ``--extend A.json,B.json``
keeps the curves those reports hold and runs only what is missing; ``--encoder-cache DIR``
keeps each seed's encoder between runs; ``--first-seed 30 --seeds 30`` runs seeds 30-59 (and
their own reference), a held-out replicate of the stored runs, without the fresh-weight
comparison (no fresh curves are stored for those seeds). A setup never run with fresh weights
(e.g. ``breastmnist_fine_30seeds``) runs the two arms from the trunk alone, likewise.
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

from bench_label_efficiency import Setup, held_out_suffix, setups  # noqa: E402

import workbench.simulation._run as simulation_run  # noqa: E402
from workbench.simulation import (  # noqa: E402
    SeedRun,
    SimulationConfig,
    SimulationData,
    labels_to_reach,
    load_simulation_data,
    paired_per_budget,
    plot_curves,
    runs_from_report,
    summarise,
    t_interval,
)
from workbench.strategies import StrategyError, get_strategy, parse_strategy_spec  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
ColdStart = Literal["random", "typical"]
ARMS: dict[str, tuple[str, ColdStart]] = {
    # arm -> (strategy after the cold start, as a spec `get_strategy` builds; cold start)
    "random": ("random", "random"),
    "power_bald_typical": ("power_bald", "typical"),
}
STORED_DEFAULT_ARM = "power_bald_ssl_cold"  # the same default with fresh weights


def extra_arm(spec: str) -> str:
    """The arm of a strategy spec (`parse_strategy_spec`), ``"batchbald"`` or
    ``"power_bald:beta=4"``: ``<strategy>[_<key><value>...]_typical``, e.g.
    ``power_bald_beta4_typical``."""
    name, params = parse_strategy_spec(spec)
    suffix = "".join(
        f"_{k}{v:g}" if isinstance(v, float) else f"_{k}{v}" for k, v in params.items()
    )
    return f"{name}{suffix}_typical"


def arms_with(extra: tuple[str, ...]) -> dict[str, tuple[str, ColdStart]]:
    """The two arms plus one per extra strategy spec (see `extra_arm`): the typical cold
    start, then that strategy, from the trunk like the others."""
    return {**ARMS, **{extra_arm(spec): (spec, "typical") for spec in extra}}


def _job(job: tuple[str, str, ColdStart, int]) -> dict[str, float] | SeedRun:
    """A reference training or one arm's curve, in a worker set up by `_start_pool_worker`."""
    name, strategy, cold_start, seed = job
    worker = simulation_run._WORKER
    data, recipe, config, workdir = (worker[k] for k in ("data", "recipe", "config", "workdir"))
    if name == "reference":
        return simulation_run.reference_runs(data, recipe, [seed], workdir, config=config)[0]
    run = simulation_run.run_strategy(
        strategy, seed, data, recipe, dataclasses.replace(config, cold_start=cold_start), workdir
    )
    return dataclasses.replace(run, strategy=name)


def _reach(report: dict[str, Any], name: str) -> int | None:
    value = report["strategies"][name]["labels_to_reach"].get("0.99")
    return None if value is None else int(value)


def _reach_level(report: dict[str, Any], name: str, level: float) -> int | None:
    """Labels at which ``name``'s mean curve first reaches the metric value ``level``."""
    curve = report["strategies"][name]["mean_curve"]
    return labels_to_reach([p["labels"] for p in curve], [p["mean"] for p in curve], level)


def comparison(ssl: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """Labels to 99% and AULC per arm with and without the pretrained trunk, and the paired
    (by seed) AULC gain the trunk gives each arm. Labels to 99% are read against each recipe's
    own full-data reference and, so that a lower reference cannot flatter an arm, against the
    higher of the two (``labels_to_99_of_higher_reference``)."""
    out: dict[str, Any] = {}
    higher = 0.99 * max(ssl["reference"]["metric"], fresh["reference"]["metric"])
    for arm, fresh_arm in (("random", "random"), ("power_bald_typical", STORED_DEFAULT_ARM)):
        with_trunk = runs_from_report(ssl, arm)
        without = {r.seed: r for r in runs_from_report(fresh, fresh_arm)}
        gain = [
            float(
                np.mean([p.metrics[ssl["metric"]] for p in r.curve])
                - np.mean([p.metrics[ssl["metric"]] for p in without[r.seed].curve])
            )
            for r in with_trunk
        ]
        out[arm] = {
            "labels_to_99_ssl_init": _reach(ssl, arm),
            "labels_to_99_fresh": _reach(fresh, fresh_arm),
            "labels_to_99_of_higher_reference": {
                "ssl_init": _reach_level(ssl, arm, higher),
                "fresh": _reach_level(fresh, fresh_arm, higher),
            },
            "aulc_ssl_init": ssl["strategies"][arm]["aulc"]["mean"],
            "aulc_fresh": fresh["strategies"][fresh_arm]["aulc"]["mean"],
            "aulc_gain": dataclasses.asdict(t_interval(gain)),
            "aulc_gain_per_seed": gain,
            "gain_per_budget": paired_per_budget(
                with_trunk, list(without.values()), str(ssl["metric"])
            ),
        }
    for key, report, default in (
        ("ssl_init", ssl, "power_bald_typical"),
        ("fresh", fresh, STORED_DEFAULT_ARM),
    ):
        d, r = _reach(report, default), _reach(report, "random")
        out[f"default_over_random_labels_{key}"] = None if d is None or not r else d / r
    out["reference_ssl_init"] = ssl["reference"]["metric"]
    out["reference_fresh"] = fresh["reference"]["metric"]
    return out


def plot_with_and_without(ssl: dict[str, Any], fresh: dict[str, Any], path: Path) -> None:
    """Both arms' mean curves from the pretrained trunk (solid) and from fresh weights (dashed),
    with each recipe's 99%-of-full-data line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    ax = fig.subplots()
    for arm, fresh_arm, colour in (
        ("random", "random", "tab:blue"),
        ("power_bald_typical", STORED_DEFAULT_ARM, "tab:orange"),
    ):
        for report, name, style, how in (
            (ssl, arm, "-", "pretrained"),
            (fresh, fresh_arm, "--", "fresh weights"),
        ):
            curve = report["strategies"][name]["mean_curve"]
            ax.plot(
                [p["labels"] for p in curve],
                [p["mean"] for p in curve],
                style,
                color=colour,
                marker="o",
                ms=2.5,
                lw=1.2,
                label=f"{arm}, {how}",
            )
    for report, style, how in ((ssl, "-", "pretrained"), (fresh, "--", "fresh")):
        ax.axhline(
            0.99 * report["reference"]["metric"],
            color="grey",
            ls=style,
            lw=0.8,
            label=f"99% of full data ({how})",
        )
    ax.set_xlabel("labelled items")
    ax.set_ylabel(f"test {ssl['metric']}")
    ax.set_title(
        f"{ssl['dataset']['name']}: self-supervised start vs fresh weights, "
        f"{len(ssl['config']['seeds'])} seeds",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


def kept_reference(report: dict[str, Any], ref_seeds: tuple[int, ...]) -> list[dict[str, float]]:
    """The reference trainings of an earlier ``report`` that are those of ``ref_seeds``, in
    order (its i-th training ran on its i-th seed; it holds fewer trainings than seeds): none
    when its seeds differ, e.g. an earlier report of seeds 0-29 for a `--first-seed 30` run."""
    per_seed = report["reference"]["per_seed"]
    kept: list[dict[str, float]] = []
    for seed, training in zip(report["config"]["seeds"], per_seed, strict=False):
        if len(kept) == len(ref_seeds) or seed != ref_seeds[len(kept)]:
            break
        kept.append(training)
    return kept


def _run(
    data: SimulationData,
    setup: Setup,
    config: SimulationConfig,
    workers: int,
    earlier: list[dict[str, Any]] | None = None,
    arms: dict[str, tuple[str, ColdStart]] = ARMS,
) -> dict[str, Any]:
    """The SSL ``arms`` and the SSL reference, ``workers`` processes sharing one workdir (and
    so each seed's encoder, unless ``config.encoder_cache`` keeps them), summarised; the curves
    and reference trainings of ``earlier`` reports of this benchmark are kept, not run again
    (a curve from the first report that holds it; the first report's reference)."""
    seeds = config.seeds
    ref_seeds = seeds[: config.reference_seeds]
    kept = kept_runs(earlier or [], arms, seeds)
    done = {(r.strategy, r.seed) for r in kept}
    reference = kept_reference(earlier[0], ref_seeds) if earlier else []
    # random first: it trains each seed's encoder, which the later jobs read from the workdir
    todo = [(arm, s) for arm in arms for s in seeds if (arm, s) not in done]
    jobs = (
        [(arm, *arms[arm], s) for arm, s in todo if arm == "random"]
        + [("reference", "", "random", s) for s in ref_seeds[len(reference) :]]
        + [(arm, *arms[arm], s) for arm, s in todo if arm != "random"]
    )
    workdir = Path(tempfile.mkdtemp(prefix="wb-ssl-init-"))
    start = time.time()
    results: list[dict[str, float] | SeedRun] = []
    try:
        with ProcessPoolExecutor(
            workers,
            mp_context=get_context("spawn"),
            initializer=simulation_run._start_pool_worker,
            initargs=(os.getpid(), data, setup.recipe, config, workdir),
        ) as pool:  # workers die with this process
            for job, result in zip(jobs, pool.map(_job, jobs), strict=True):
                results.append(result)
                print(f"{job[0]} seed {job[-1]} done ({time.time() - start:.0f} s)", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    reference += [r for r in results if isinstance(r, dict)]
    runs = kept + [r for r in results if isinstance(r, SeedRun)]
    runs.sort(key=lambda r: (list(arms).index(r.strategy), r.seed))
    return summarise(data, setup.recipe, config, reference, runs)


def _aulc_by_seed(report: dict[str, Any], arm: str) -> dict[int, float]:
    entry = report["strategies"][arm]
    return dict(zip((r["seed"] for r in entry["runs"]), entry["aulc"]["per_seed"], strict=True))


def extra_arms_summary(report: dict[str, Any], extra: tuple[str, ...]) -> dict[str, Any]:
    """Per extra arm: labels to 99% against the trunk recipe's reference, as a fraction of
    random's, and the paired AULC differences to random and to the default
    (``power_bald_typical``)."""
    random_reach = _reach(report, "random")
    default = _aulc_by_seed(report, "power_bald_typical")
    out: dict[str, Any] = {}
    for arm in map(extra_arm, extra):
        reach = _reach(report, arm)
        own = _aulc_by_seed(report, arm)
        out[arm] = {
            "labels_to_99": reach,
            "labels_to_99_random": random_reach,
            "over_random": (None if reach is None or not random_reach else reach / random_reach),
            "aulc_vs_random": report["strategies"][arm]["aulc_vs_random"],
            "aulc_vs_default": dataclasses.asdict(
                t_interval([own[s] - default[s] for s in own if s in default])
            ),
        }
    return out


def stored_fresh_runs(
    stored_random: dict[str, Any], stored_default: dict[str, Any], seeds: tuple[int, ...]
) -> list[SeedRun] | None:
    """The stored fresh-weight curves of random and the default for ``seeds``; None when a
    report lacks any of them (held-out seeds, `--first-seed`)."""
    runs = [r for r in runs_from_report(stored_random, "random") if r.seed in seeds] + [
        r for r in runs_from_report(stored_default, STORED_DEFAULT_ARM) if r.seed in seeds
    ]
    wanted = {(arm, s) for arm in ("random", STORED_DEFAULT_ARM) for s in seeds}
    return runs if {(r.strategy, r.seed) for r in runs} == wanted else None


def print_comparison(report: dict[str, Any]) -> None:
    """Each arm's labels to 99% and AULC without and with the trunk."""
    print(
        json.dumps(
            {k: v for k, v in report["comparison"].items() if not isinstance(v, dict)}, indent=1
        )
    )
    for arm in ARMS:
        c = report["comparison"][arm]
        gain = c["aulc_gain"]
        print(
            f"{arm}: labels to 99% {c['labels_to_99_fresh']} -> {c['labels_to_99_ssl_init']} "
            f"(of the higher reference: {c['labels_to_99_of_higher_reference']}); AULC "
            f"{c['aulc_fresh']:.4f} -> {c['aulc_ssl_init']:.4f}, gain {100 * gain['mean']:+.2f} "
            f"[{100 * gain['lo']:+.2f}, {100 * gain['hi']:+.2f}] points"
        )
        first = c["gain_per_budget"][0]
        if first["lo"] is not None:
            print(
                f"  at {first['labels']} labels: {100 * first['mean']:+.2f} "
                f"[{100 * first['lo']:+.2f}, {100 * first['hi']:+.2f}] points"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", default="pneumoniamnist_fine_30seeds")
    parser.add_argument("--seeds", type=int, default=15)
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="run seeds FIRST..FIRST+SEEDS-1 (and the reference on the first "
        "of them): seeds no earlier run chose a setting on, for a held-out "
        "replicate; without stored fresh-weight curves for them, no "
        "comparison with fresh weights",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--random-from",
        default=None,
        help="stored report holding random's fresh-weight curves "
        "(default label_efficiency_<setup>.json)",
    )
    parser.add_argument(
        "--default-from",
        default=None,
        help="stored report holding the default's fresh-weight curves "
        "(default cold_starts_<setup>.json)",
    )
    parser.add_argument("--out", default=None, help="file stem (default ssl_init_<setup>)")
    parser.add_argument(
        "--extend",
        default=None,
        metavar="REPORT",
        help="keep the curves of these earlier ssl_init reports (comma-"
        "separated; fewer seeds or other arms) "
        "and run only the arms and seeds they lack",
    )
    parser.add_argument(
        "--extra-strategies",
        default="",
        help="comma-separated strategies run after the typical cold start as "
        "arms <strategy>_typical, beside the two arms; power_bald:beta=4 "
        "passes keyword arguments (arm power_bald_beta4_typical)",
    )
    parser.add_argument(
        "--encoder-cache",
        default=None,
        type=Path,
        help="folder keeping each seed's encoder between runs",
    )
    parser.add_argument(
        "--reanalyse",
        action="store_true",
        help="train nothing: redo the comparison of the stored ssl_init report",
    )
    args = parser.parse_args()
    if args.seeds < 1 or args.workers < 1:
        parser.error("--seeds and --workers must be at least 1")
    if args.first_seed < 0:
        parser.error("--first-seed must be at least 0")
    catalogue = setups(1)
    if args.setup not in catalogue:
        parser.error(f"--setup: unknown setup {args.setup!r}")
    setup = catalogue[args.setup]
    stored_random = RESULTS / (args.random_from or f"label_efficiency_{args.setup}.json")
    if args.random_from and not stored_random.exists():
        parser.error(f"--random-from: no stored run {stored_random}")
    stored_default = RESULTS / (args.default_from or f"cold_starts_{args.setup}.json")
    if args.default_from and not stored_default.exists():
        parser.error(f"--default-from: no stored run {stored_default}")
    stored_runs = stored_random.exists() and stored_default.exists()
    require_shared(setup.path)
    data = load_simulation_data(setup.path, seed=0, **setup.load)
    seeds = tuple(range(args.first_seed, args.first_seed + args.seeds))
    extra = tuple(x for x in args.extra_strategies.split(",") if x)
    try:
        for spec in extra:
            if get_strategy(spec).name == "random":  # an unknown name or option is refused
                raise StrategyError(f"{spec!r}: random is an arm already")
        arms = arms_with(extra)
    except StrategyError as error:
        parser.error(f"--extra-strategies: {error}")
    config = dataclasses.replace(
        setup.config,
        seeds=seeds,
        ssl_init=True,
        strategies=tuple(arms),
        encoder_cache=args.encoder_cache,
    )
    stem = args.out or f"ssl_init_{args.setup}{held_out_suffix(seeds, args.first_seed)}"
    if args.reanalyse:
        report = json.loads((RESULTS / f"{stem}.json").read_text())
        if tuple(report["config"]["seeds"]) != seeds:
            parser.error(f"--reanalyse: {stem}.json holds seeds {report['config']['seeds']}")
    else:
        start = time.time()
        extend = [RESULTS / name for name in (args.extend or "").split(",") if name]
        missing = [path.name for path in extend if not path.is_file()]
        if missing:
            parser.error(f"--extend: no stored report {', '.join(missing)} in {RESULTS}")
        earlier = [json.loads(path.read_text()) for path in extend]
        report = _run(data, setup, config, args.workers, earlier, arms)
        report["seconds"] = time.time() - start
        report["machine"] = {"cpus": os.cpu_count(), "workers": args.workers, "torch_threads": 1}
    stored_r, stored_d = (
        (json.loads(p.read_text()) for p in (stored_random, stored_default))
        if stored_runs
        else ({}, {})
    )
    fresh_runs = stored_fresh_runs(stored_r, stored_d, seeds) if stored_runs else None
    fresh: dict[str, Any] | None = None
    if fresh_runs is not None:
        fresh = summarise(
            data,
            setup.recipe,
            dataclasses.replace(
                setup.config, seeds=seeds, strategies=("random", STORED_DEFAULT_ARM)
            ),
            stored_r["reference"]["per_seed"],
            fresh_runs,
        )
        report["fresh_weights"] = {
            "from": [stored_random.name, stored_default.name],
            "reference": fresh["reference"],
            "strategies": {
                k: {m: v[m] for m in ("aulc", "aulc_vs_random", "labels_to_reach")}
                for k, v in fresh["strategies"].items()
            },
        }
        report["comparison"] = comparison(report, fresh)
    else:  # held-out seeds, or a setup never run with fresh weights: nothing to compare with
        print(
            f"no fresh-weight curves stored for {args.setup}, seeds {seeds[0]}-{seeds[-1]}: "
            "no comparison with fresh weights"
        )
    if extra:
        report["extra_arms"] = extra_arms_summary(report, extra)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=1))
    plot_curves(report, REPO / "docs" / f"{stem}.png")
    if fresh is not None and not extra:  # with extra arms it would repeat the plain run's plot
        plot_with_and_without(report, fresh, REPO / "docs" / f"{stem}_vs_fresh.png")
    print_strategies(report)
    if fresh is not None:
        print_comparison(report)
    for arm, e in report.get("extra_arms", {}).items():
        d, v = e["aulc_vs_random"], e["aulc_vs_default"]
        print(
            f"{arm}: labels to 99% {e['labels_to_99']} vs random {e['labels_to_99_random']}; "
            f"AULC vs random {100 * d['mean']:+.2f} [{100 * d['lo']:+.2f}, "
            f"{100 * d['hi']:+.2f}] points, vs power_bald_typical {100 * v['mean']:+.2f} "
            f"[{100 * v['lo']:+.2f}, {100 * v['hi']:+.2f}]"
        )


if __name__ == "__main__":
    main()
