"""What a run of the issue's size (5 seeds) would have read, drawn from a larger stored run.

The issue asks for its targets on 5 seeds. Its first target reads one point per arm (where the
mean curve first reaches 99% of the full-data reference) and compares the two; its second asks
for a paired AULC interval above zero. This reads a stored simulation report of many seeds (30 or
60 here), draws ``--draws`` sets of ``--size`` seeds from the seeds both arms share (without
replacement within a set; seeded, so the figures repeat) and, per set, reads the targets as a
run of that many seeds would: labels to ``--target`` of the reference from each arm's mean curve
and their ratio, the paired AULC difference and its 95% t-interval. The full-data reference is
the report's own, held fixed, so reference noise (which moves the line too) is left out: the
spread here is what the seeds alone do. Writes ``benchmarks/results/seed_subsets_<stem>.json``
and a histogram of the ratios, ``docs/seed_subsets_<stem>.png`` (not with ``--no-plot``)::

    .venv/bin/python benchmarks/seed_subsets.py \
        benchmarks/results/ssl_init_breastmnist_xlong_40epochs_60seeds.json --arm power_bald_typical
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _report import load_report, paired_curves

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.simulation import aulc, labels_to_reach, t_interval  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def read_subset(
    labels: list[int],
    ours: np.ndarray,
    theirs: np.ndarray,
    line: float,
) -> dict[str, Any]:
    """The targets as one run of these seeds reads them. ``ours``/``theirs``: (seeds, budgets)
    test metric of the arm and of the baseline, rows paired by seed; ``line``: the metric at
    the target share of the reference. Returns labels to the line per arm (None: not within
    the curve), their ratio (None unless both reach it), the paired AULC difference in points
    and its 95% t-interval, and the largest deficit of the arm's mean curve (points)."""
    reach = labels_to_reach(labels, list(ours.mean(0)), line)
    reach_base = labels_to_reach(labels, list(theirs.mean(0)), line)
    areas = [
        100 * (aulc(labels, list(a)) - aulc(labels, list(b)))
        for a, b in zip(ours, theirs, strict=True)
    ]
    area = t_interval(areas)
    return {
        "labels": [reach, reach_base],
        "ratio": None if reach is None or reach_base is None else reach / reach_base,
        "aulc_points": {"mean": area.mean, "lo": area.lo, "hi": area.hi},
        "largest_deficit_points": float(100 * np.max(theirs.mean(0) - ours.mean(0))),
    }


def seed_subsets(
    report: dict[str, Any],
    arm: str,
    against: str = "random",
    *,
    size: int = 5,
    draws: int = 2000,
    target: float = 0.99,
    seed: int = 0,
    goal: float = 0.6,
) -> dict[str, Any]:
    """Draw ``draws`` sets of ``size`` shared seeds and summarise their readings (see the
    module docstring): the share of sets whose ratio is at most ``goal``, whose ratio cannot be
    read (an arm never reaches the line), whose AULC interval lies above zero, and quantiles of
    the ratio over the sets that read one; the same readings over all shared seeds. Raises
    ValueError for fewer shared seeds than ``size``, a ``size`` below 2, ``draws`` below 1, a
    ``target`` outside (0, 1] or no reference."""
    metric = str(report["metric"])
    reference = report["reference"]["metric"]
    if not isinstance(reference, (int, float)):
        raise ValueError("the report's reference has no single full-data metric")
    if size < 2:
        raise ValueError(f"size must be at least 2 (an interval needs 2 seeds), got {size}")
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    if not 0 < target <= 1:
        raise ValueError(f"target is a share of the reference in (0, 1], got {target}")
    labels, seeds, ours, theirs = paired_curves(report, arm, against)
    if len(seeds) < size:
        raise ValueError(f"{arm!r} and {against!r} share {len(seeds)} seeds; need {size}")
    line = target * float(reference)
    rng = np.random.default_rng(seed)
    readings = []
    for _ in range(draws):
        rows = rng.choice(len(seeds), size=size, replace=False)
        readings.append(read_subset(labels, ours[rows], theirs[rows], line))
    ratios = np.array([r["ratio"] for r in readings if r["ratio"] is not None], dtype=float)
    return {
        "arm": arm,
        "against": against,
        "metric": metric,
        "reference": float(reference),
        "target": target,
        "goal": goal,
        "seeds": len(seeds),
        "size": size,
        "draws": draws,
        "all_seeds": read_subset(labels, ours, theirs, line),
        "share_ratio_at_most_goal": float(np.sum(ratios <= goal + 1e-9) / draws),
        "share_ratio_unread": float(1 - ratios.size / draws),
        "share_aulc_interval_above_zero": float(
            np.mean([r["aulc_points"]["lo"] > 0 for r in readings])
        ),
        "share_aulc_below_by_more_than_half_a_point": float(
            np.mean([r["aulc_points"]["mean"] < -0.5 for r in readings])
        ),
        "share_mean_curve_below_by_more_than_half_a_point_at_some_budget": float(
            np.mean([r["largest_deficit_points"] > 0.5 for r in readings])
        ),
        "ratio_quantiles": (
            {f"{q:.2f}": float(np.quantile(ratios, q)) for q in QUANTILES} if ratios.size else None
        ),
        "ratios": [r["ratio"] for r in readings],
    }


def ratio_counts(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` with ``ratio_counts``: how many sets read each ratio (4 decimals; "unread"
    for sets where an arm never reaches the line), the compact form of ``ratios`` to store."""
    counts: dict[str, int] = {}
    for r in result["ratios"]:
        key = "unread" if r is None else f"{r:.4f}"
        counts[key] = counts.get(key, 0) + 1
    return {**result, "ratio_counts": dict(sorted(counts.items()))}


def plot_ratios(result: dict[str, Any], path: Path, title: str) -> None:
    """A histogram of the sets' ratios, the goal and the all-seeds reading marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratios = [r for r in result["ratios"] if r is not None]
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = [float(b) for b in np.arange(0.0, max(ratios + [1.5]) + 0.1, 0.05)]
    ax.hist(ratios, bins=bins, color="tab:blue")
    ax.axvline(result["goal"], color="tab:red", linestyle="--", label=f"goal {result['goal']:.0%}")
    whole = result["all_seeds"]["ratio"]
    if whole is not None:
        ax.axvline(whole, color="black", label=f"all {result['seeds']} seeds: {whole:.0%}")
    ax.set_xlabel(
        f"labels to {result['target']:.0%}: {result['arm']} / {result['against']}, "
        f"sets of {result['size']} seeds"
    )
    ax.set_ylabel(f"sets (of {result['draws']})")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="a stored simulation report (JSON)")
    parser.add_argument("--arm", required=True)
    parser.add_argument("--against", default="random")
    parser.add_argument("--size", type=int, default=5, help="seeds per set (the issue's 5)")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")
    args = parser.parse_args()
    report = load_report(parser, args.report, (args.arm, args.against))
    try:
        result = seed_subsets(
            report, args.arm, args.against, size=args.size, draws=args.draws, target=args.target
        )
    except (ValueError, KeyError) as error:  # another layout, too few seeds
        parser.error(f"{args.report}: {error}")
    result["report"] = args.report.name
    stem = args.report.stem if args.size == 5 else f"{args.report.stem}_size{args.size}"
    out = RESULTS / f"seed_subsets_{stem}.json"
    stored = {k: v for k, v in ratio_counts(result).items() if k != "ratios"}
    out.write_text(json.dumps(stored, indent=1))
    if not args.no_plot:
        plot_ratios(result, REPO / "docs" / f"seed_subsets_{stem}.png", args.report.stem)
    whole, q = result["all_seeds"], result["ratio_quantiles"]
    print(
        f"all {result['seeds']} seeds: labels {whole['labels'][0]} vs {whole['labels'][1]}, "
        f"ratio {whole['ratio']}; AULC {whole['aulc_points']['mean']:+.2f} points"
    )
    print(
        f"{result['draws']} sets of {result['size']}: ratio <= {result['goal']:.0%} in "
        f"{result['share_ratio_at_most_goal']:.0%}, unread in {result['share_ratio_unread']:.0%}; "
        f"AULC interval above zero in {result['share_aulc_interval_above_zero']:.0%}; "
        f"AULC more than 0.5 points below in "
        f"{result['share_aulc_below_by_more_than_half_a_point']:.0%}; mean curve more than "
        "0.5 points below at some budget in "
        f"{result['share_mean_curve_below_by_more_than_half_a_point_at_some_budget']:.0%}"
    )
    if q:
        print("ratio quantiles " + ", ".join(f"{k}: {v:.2f}" for k, v in q.items()))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
