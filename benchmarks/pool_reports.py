"""Pool stored simulation reports of one setup run on different seeds into one report.

A held-out replicate (``--first-seed``) writes a report of its own, with its own full-data
reference. This puts the curves of the named arms from several reports of the same setup side
by side, paired by seed, with every distinct reference training (a report's i-th reference
training ran on its i-th seed; one seed's training is counted once), and summarises them as one
run would (`workbench.simulation.summarise`). Nothing is trained; the setup's data are loaded
only for the report's dataset fields. Each (arm, seed) must come from one report only. Writes
``benchmarks/results/<out>.json`` and ``docs/<out>.png`` (not with ``--no-plot``)::

    .venv/bin/python benchmarks/pool_reports.py --setup hippocampus_warm_default_long \
        --reports cold_starts_hippocampus_warm_default_long.json,$HELD_OUT \
        --arms random,power_bald_ssl_cold --out cold_starts_hippocampus_warm_default_long_10seeds

with ``HELD_OUT=cold_starts_hippocampus_warm_default_long_seeds5-9.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from _machine import require_shared
from _report import load_report, print_strategies

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_label_efficiency import setups  # noqa: E402

from workbench.simulation import (  # noqa: E402
    SeedRun,
    load_simulation_data,
    plot_curves,
    runs_from_report,
    summarise,
)

RESULTS = REPO / "benchmarks" / "results"


def pooled_runs(
    reports: dict[str, dict[str, Any]], arms: tuple[str, ...]
) -> tuple[list[SeedRun], dict[int, dict[str, float]]]:
    """The runs of ``arms`` from every report (named by file), sorted by arm then seed, and the
    reference trainings by seed. Raises ValueError when an arm is missing from every report, an
    (arm, seed) comes from two reports, two reports disagree on one seed's reference training,
    a run's budgets differ from the others' (another setup), or an arm lacks a seed that another
    arm has (the pairing would be lost)."""
    runs: dict[tuple[str, int], tuple[str, SeedRun]] = {}
    reference: dict[int, dict[str, float]] = {}
    for name, report in reports.items():
        trainings = report["reference"]["per_seed"]  # fewer than the seeds: the first ones'
        for seed, training in zip(report["config"]["seeds"], trainings, strict=False):
            if seed in reference and reference[seed] != training:
                raise ValueError(f"{name}: seed {seed}'s reference training differs from another's")
            reference[seed] = training
        for arm in arms:
            if arm not in report["strategies"]:
                continue
            for run in runs_from_report(report, arm):
                key = (arm, run.seed)
                if key in runs:
                    raise ValueError(
                        f"{arm} seed {run.seed} is in both {runs[key][0]} and {name}: pool "
                        "reports of different seeds"
                    )
                budgets = [p.labels for p in run.curve]
                first = next(iter(runs.values()), None)
                if first is not None and budgets != [p.labels for p in first[1].curve]:
                    raise ValueError(
                        f"{name}: {arm} seed {run.seed} was read at budgets {budgets}, "
                        f"{first[0]} at {[p.labels for p in first[1].curve]}: another setup"
                    )
                runs[key] = (name, run)
    seeds_of = {arm: {s for a, s in runs if a == arm} for arm in arms}
    for arm, seeds in seeds_of.items():
        if not seeds:
            raise ValueError(f"no report holds arm {arm!r}")
    every = set().union(*seeds_of.values())
    for arm, seeds in seeds_of.items():
        if seeds != every:
            raise ValueError(f"{arm!r} lacks seeds {sorted(every - seeds)} that another arm has")
    ordered = sorted(runs, key=lambda k: (arms.index(k[0]), k[1]))
    return [runs[k][1] for k in ordered], reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", required=True, help="the setup all the reports ran")
    parser.add_argument(
        "--reports", required=True, help="comma-separated, under benchmarks/results"
    )
    parser.add_argument("--arms", required=True, help="comma-separated, random first")
    parser.add_argument("--out", required=True, help="file stem under benchmarks/results and docs")
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")
    args = parser.parse_args()
    catalogue = setups(1)
    if args.setup not in catalogue:
        parser.error(f"--setup: unknown setup {args.setup!r}")
    arms = tuple(a for a in args.arms.split(",") if a)
    if not arms or arms[0] != "random":
        parser.error("--arms: name random first (the report pairs every arm against it)")
    reports = {}
    for name in (r for r in args.reports.split(",") if r):
        reports[name] = load_report(parser, RESULTS / name, ())
    if len(reports) < 2:
        parser.error("--reports: name at least two reports to pool")
    try:
        runs, reference = pooled_runs(reports, arms)
    except (ValueError, KeyError) as error:
        parser.error(str(error))
    setup = catalogue[args.setup]
    require_shared(setup.path)
    data = load_simulation_data(setup.path, seed=0, **setup.load)
    seeds = tuple(sorted({r.seed for r in runs}))
    config = dataclasses.replace(setup.config, seeds=seeds, strategies=arms)
    report = summarise(data, setup.recipe, config, [reference[s] for s in sorted(reference)], runs)
    report["pooled_from"] = sorted(reports)
    report["reference_seeds"] = sorted(reference)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(report, indent=1))
    if not args.no_plot:
        plot_curves(report, REPO / "docs" / f"{args.out}.png")
    print_strategies(report)


if __name__ == "__main__":
    main()
