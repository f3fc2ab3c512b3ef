"""Budget by budget, how far a strategy's learning curve is above random's, paired by seed.

"Labels to 99%" reads one point where the mean curve first touches the 99% line, and a curve
that runs along the line (random's on PneumoniaMNIST) makes that point jump with a few seeds.
This reads a stored simulation report and gives, at every budget, the paired difference of
the test metric (points, 95% t-interval over seeds) and each arm's share of seeds at 99% of the
reference; and the two arms' curves at the budgets where each mean first reaches 99%: if the
strategy at its budget is level with random at random's, the ratio of the two budgets is what
the strategy saves. Writes ``benchmarks/results/paired_budgets_<stem>.json`` and the two arms'
curves with their differences below (`plot_curves`) to ``docs/paired_budgets_<stem>.png``,
unless that is the same picture as the run's own ``docs/<stem>.png``::

    .venv/bin/python benchmarks/paired_budgets.py \
        benchmarks/results/cold_starts_pneumoniamnist_fine_30seeds.json --arm power_bald_ssl_cold
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _report import load_report

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.simulation import (  # noqa: E402
    TARGETS,
    SeedRun,
    paired_per_budget,
    plot_curves,
    runs_from_report,
    t_interval,
)

RESULTS = REPO / "benchmarks" / "results"


def _metric_at(run: SeedRun, labels: int, metric: str) -> float:
    for point in run.curve:
        if point.labels == labels:
            return float(point.metrics[metric])
    raise ValueError(f"seed {run.seed} of {run.strategy!r} has no point at {labels} labels")


def paired_budgets(
    report: dict[str, Any], arm: str, against: str = "random", target: float = 0.99
) -> dict[str, Any]:
    """The comparison described in the module docstring, as a JSON-ready dict (differences in
    points; ``per_budget_metric_units`` keeps `paired_per_budget`'s rows for `plot_curves`).
    Raises ValueError for a target the report has no figures for, or fewer than 2 shared seeds."""
    key = f"{target:.2f}"
    if key not in {f"{t:.2f}" for t in TARGETS}:
        raise ValueError(
            f"target {target} is not one of the report's {', '.join(map(str, TARGETS))}"
        )
    metric = report["reference"]["metric"]
    if not isinstance(metric, (int, float)):
        raise ValueError("the report's reference has no single full-data metric")
    line = target * float(metric)
    name = str(report["metric"])  # "auc" or "dice"
    runs = {
        strategy: {r.seed: r for r in runs_from_report(report, strategy)}
        for strategy in (arm, against)
    }
    seeds = sorted(set(runs[arm]) & set(runs[against]))
    if len(seeds) < 2:
        raise ValueError(f"{arm!r} and {against!r} share {len(seeds)} seeds; need at least 2")
    ours, theirs = [runs[arm][s] for s in seeds], [runs[against][s] for s in seeds]
    per_budget = paired_per_budget(ours, theirs, name)
    rows = []
    for budget in per_budget:
        labels = budget["labels"]
        rows.append(
            {
                "labels": labels,
                "difference_points": {
                    k: None if budget[k] is None else 100 * budget[k] for k in ("mean", "lo", "hi")
                }
                | {"n": budget["n"]},
                f"share_of_seeds_at_{target}": {
                    strategy: sum(_metric_at(r, labels, name) >= line for r in group) / len(seeds)
                    for strategy, group in ((arm, ours), (against, theirs))
                },
            }
        )
    reach = {s: report["strategies"][s]["labels_to_reach"][key] for s in (arm, against)}
    at_reach = None
    if reach[arm] is not None and reach[against] is not None:
        at_reach = {
            "labels": reach,
            "ratio": reach[arm] / reach[against],
            "difference_points": asdict(
                t_interval(
                    [
                        100
                        * (_metric_at(a, reach[arm], name) - _metric_at(b, reach[against], name))
                        for a, b in zip(ours, theirs, strict=True)
                    ]
                )
            ),
        }
    return {
        "arm": arm,
        "against": against,
        "metric": name,
        "reference": metric,
        "target": target,
        "seeds": len(seeds),
        "per_budget": rows,
        "at_reach": at_reach,
        "per_budget_metric_units": per_budget,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a stored simulation report (JSON)")
    parser.add_argument("--arm", required=True)
    parser.add_argument("--against", default="random")
    parser.add_argument("--target", type=float, default=0.99)
    args = parser.parse_args()
    report = load_report(parser, args.report, (args.arm, args.against))
    try:
        result = paired_budgets(report, args.arm, args.against, args.target)
    except (ValueError, KeyError) as error:  # a report of another layout, too few seeds
        parser.error(f"{args.report}: {error}")
    per_budget = result.pop("per_budget_metric_units")
    result["report"] = args.report.name
    out = RESULTS / f"paired_budgets_{args.report.stem}.json"
    out.write_text(json.dumps(result, indent=1))
    both = {
        **report,
        "strategies": {
            args.against: {**report["strategies"][args.against], "vs_random_per_budget": None},
            args.arm: {**report["strategies"][args.arm], "vs_random_per_budget": per_budget},
        },
    }
    plot = REPO / "docs" / f"paired_budgets_{args.report.stem}.png"
    own = REPO / "docs" / f"{args.report.stem}.png"  # the run's plot, when the run drew one
    plot_curves(both, plot)
    if own.is_file() and own.read_bytes() == plot.read_bytes():
        plot.unlink()  # a two-arm run's own plot already has this panel: keep one copy
        print(f"plot: the same as {own.relative_to(REPO)}")
    share = f"share_of_seeds_at_{args.target}"
    for row in result["per_budget"]:
        d = row["difference_points"]
        print(
            f"{row['labels']:5d}  {args.arm} - {args.against}: {d['mean']:+.2f} "
            f"[{d['lo']:+.2f}, {d['hi']:+.2f}] points; seeds at {args.target:.0%}: "
            f"{row[share][args.arm]:.2f} / {row[share][args.against]:.2f}"
        )
    if result["at_reach"]:
        r, d = result["at_reach"], result["at_reach"]["difference_points"]
        print(
            f"at the budgets where the means reach {args.target:.0%} "
            f"({r['labels'][args.arm]} vs {r['labels'][args.against]}, ratio {r['ratio']:.0%}): "
            f"{d['mean']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}] points"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
