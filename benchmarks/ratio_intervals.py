"""How sure the "labels to 99%" readings are: a paired bootstrap over seeds and references.

The issue's first target compares two single readings, the budget at which each arm's mean curve
first reaches 99% of the full-data reference, and asks for a ratio of at most 60%. This reads the
stored runs of the default against random (nothing is trained), resamples the seeds 2,000 times
(paired: a seed's two curves stay together) and the reference trainings with them, and gives for
each setup the ratio, its 95% percentile interval, and the share of resamples whose ratio is at
most the goal (`workbench.simulation.labels_ratio`). The same interval with the reference held
fixed shows how much of the spread the reference brings. Writes
``benchmarks/results/ratio_intervals.json`` and ``docs/ratio_intervals.png``::

    .venv/bin/python benchmarks/ratio_intervals.py
    .venv/bin/python benchmarks/ratio_intervals.py \
        --setup "my run=benchmarks/results/r.json:power_bald" --out /tmp/r.json --no-plot
    .venv/bin/python benchmarks/ratio_intervals.py --seeds 0-29 \
        --out benchmarks/results/ratio_intervals_seeds0-29.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

from _report import load_report, paired_curves

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.simulation import labels_ratio  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"


class Setup(NamedTuple):
    """One stored comparison: a label for the table, the report, the arm read against random."""

    label: str
    report: Path
    arm: str


SETUPS = (
    Setup(
        "BreastMNIST, 20 + 20 x 20, short rounds",
        RESULTS / "ssl_init_breastmnist_60seeds.json",
        "power_bald_typical",
    ),
    Setup(
        "BreastMNIST, 20 + 20 x 20, short rounds, beta 4 (offered)",
        RESULTS / "ssl_init_breastmnist_60seeds.json",
        "power_bald_beta4_typical",
    ),
    Setup(
        "BreastMNIST, 20 + 20 x 20, rounds of 40:8",
        RESULTS / "ssl_init_breastmnist_xlong_40epochs_60seeds_ref10.json",
        "power_bald_typical",
    ),
    Setup(
        "PneumoniaMNIST, 20 + 18 x 10, short rounds",
        RESULTS / "ssl_init_pneumoniamnist_fine_60seeds.json",
        "power_bald_typical",
    ),
    Setup(
        "PneumoniaMNIST, 20 + 18 x 10, rounds of 40:8",
        RESULTS / "ssl_init_pneumoniamnist_fine_40epochs_60seeds_ref10.json",
        "power_bald_typical",
    ),
    Setup(
        "PneumoniaMNIST, 50 + 8 x 50, short rounds",
        RESULTS / "ssl_init_pneumoniamnist_long_60seeds.json",
        "power_bald_typical",
    ),
    Setup(
        "Hippocampus, 4 + 7 x 4 scans",
        RESULTS / "cold_starts_hippocampus_warm_default_long_10seeds.json",
        "power_bald_ssl_cold",
    ),
)


def read_setup(
    report: dict[str, Any],
    arm: str,
    *,
    target: float = 0.99,
    goal: float = 0.6,
    resamples: int = 2000,
    seeds: range | None = None,
) -> dict[str, Any]:
    """The ratio of labels to ``target`` of the reference, ``arm`` over random, with its bootstrap
    interval (reference resampled, and held fixed), and the shares of resamples whose ratio is
    surely / possibly at most ``goal``; over ``seeds`` only when given. Raises ValueError for
    fewer than 2 shared seeds or a report without per-training reference metrics."""
    labels, shared, ours, theirs = paired_curves(report, arm)
    if seeds is not None:
        kept = [i for i, s in enumerate(shared) if s in seeds]
        shared, ours, theirs = [shared[i] for i in kept], ours[kept], theirs[kept]
    metric = str(report["metric"])
    references = [float(r[metric]) for r in report["reference"]["per_seed"]]
    moving = labels_ratio(labels, ours, theirs, references, target, resamples=resamples)
    fixed = labels_ratio(
        labels, ours, theirs, references, target, resamples=resamples, resample_reference=False
    )
    surely, possibly = moving.share_at_most(goal)
    return {
        "arm": arm,
        "metric": metric,
        "seeds": len(shared),
        "seed_range": None if seeds is None else [seeds.start, seeds.stop - 1],
        "reference_trainings": len(references),
        "budgets": labels,
        "target": target,
        "goal": goal,
        **moving.summary(),
        "share_surely_at_most_goal": surely,
        "share_possibly_at_most_goal": possibly,
        "reference_fixed": fixed.summary(),
    }


def _share(value: float | None) -> str:
    return "?" if value is None else f"{value:.0%}"


def plot_intervals(rows: list[dict[str, Any]], path: Path) -> None:
    """One line per setup: the ratio and its interval, the goal and parity marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.6))
    right = 2.5
    for y, row in enumerate(reversed(rows)):
        lo = 0.0 if row["lo"] is None else row["lo"]
        hi = right if row["hi"] is None else row["hi"]
        ax.plot([lo, hi], [y, y], color="tab:blue", linewidth=2)
        for end, bound in ((lo, row["lo"]), (hi, row["hi"])):
            if bound is None:  # the curves do not bound this end: an open arrow head
                ax.plot([end], [y], "<" if end == 0.0 else ">", color="tab:blue")
        if row["ratio"] is not None:
            ax.plot([row["ratio"]], [y], "o", color="black")
    ax.axvline(
        rows[0]["goal"], color="tab:red", linestyle="--", label=f"goal {rows[0]['goal']:.0%}"
    )
    ax.axvline(1.0, color="grey", linestyle=":", label="as many labels as random")
    ax.set_yticks(
        range(len(rows)),
        [f"{r['label']} ({r['seeds']} seeds)" for r in reversed(rows)],
        fontsize=8,
    )
    ax.set_xlim(0, right)
    ax.set_xlabel(
        f"labels to {rows[0]['target']:.0%} of the full-data metric, default / random\n"
        "(dot: all seeds; bar: 95% paired bootstrap; arrow: end not bounded by the curves)"
    )
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _setup(text: str) -> Setup:
    label, _, rest = text.rpartition("=")
    report, _, arm = rest.rpartition(":")
    if not label or not report or not arm:
        raise argparse.ArgumentTypeError(f"expected LABEL=REPORT.json:ARM, got {text!r}")
    return Setup(label, Path(report), arm)


def _seed_range(text: str) -> range:
    first, _, last = text.partition("-")
    try:
        return range(int(first), int(last or first) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A-B (seeds A to B), got {text!r}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--setup",
        type=_setup,
        action="append",
        help="LABEL=REPORT.json:ARM, repeatable (default: the stored runs of the default)",
    )
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--goal", type=float, default=0.6)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument(
        "--seeds", type=_seed_range, help="A-B: read only seeds A to B (say, one half of a run)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "ratio_intervals.json")
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")
    args = parser.parse_args()
    rows = []
    for setup in args.setup or SETUPS:
        report = load_report(parser, setup.report, (setup.arm, "random"))
        if args.seeds is not None and not args.setup:
            ran = {r["seed"] for r in report["strategies"][setup.arm]["runs"]}
            if len(ran & set(args.seeds)) < 2:
                span = f"{args.seeds.start}-{args.seeds.stop - 1}"
                print(f"{setup.label}: skipped, fewer than 2 of its seeds in {span}")
                continue
        try:
            row = read_setup(
                report,
                setup.arm,
                target=args.target,
                goal=args.goal,
                resamples=args.resamples,
                seeds=args.seeds,
            )
        except (ValueError, KeyError) as error:
            parser.error(f"{setup.report}: {error}")
        rows.append({"label": setup.label, "report": setup.report.name, **row})
        fixed = row["reference_fixed"]
        print(
            f"{setup.label} ({row['seeds']} seeds, {row['reference_trainings']} references): "
            f"{_share(row['ratio'])} [{_share(row['lo'])}, {_share(row['hi'])}]; "
            f"reference fixed [{_share(fixed['lo'])}, {_share(fixed['hi'])}]; "
            f"<= {args.goal:.0%} in {row['share_surely_at_most_goal']:.0%} of resamples "
            f"(possibly {row['share_possibly_at_most_goal']:.0%})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"setups": rows}, indent=1))
    if not args.no_plot:
        plot_intervals(rows, REPO / "docs" / f"{args.out.stem}.png")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
