"""Reading a stored `simulate` report, printing one at the end of a benchmark, and reusing an
earlier one's curves."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from workbench.simulation import SeedRun


def load_report(
    parser: argparse.ArgumentParser, path: Path, strategies: Iterable[str]
) -> dict[str, Any]:
    """The stored simulation report at ``path``, or the script's usage error naming the file and
    what is wrong: missing, not JSON, or lacking one of ``strategies``."""
    if not path.is_file():
        parser.error(f"report: no file {path}")
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        parser.error(f"{path}: not a JSON report ({error})")
    held = report.get("strategies", {}) if isinstance(report, dict) else {}
    for strategy in strategies:
        if strategy not in held:
            parser.error(f"{path}: no strategy {strategy!r}; it holds {', '.join(held) or 'none'}")
    return report


def kept_runs(
    reports: Iterable[dict[str, Any]], arms: Iterable[str], seeds: Sequence[int]
) -> list[SeedRun]:
    """The curves of ``arms`` under ``seeds`` that earlier ``reports`` hold, each (arm, seed)
    from the first report that has it, so a rerun trains only what is missing."""
    from workbench.simulation import runs_from_report

    kept: list[SeedRun] = []
    done: set[tuple[str, int]] = set()
    arms = list(arms)
    for report in reports:
        for arm in arms:
            if arm in report["strategies"]:
                new = [
                    r
                    for r in runs_from_report(report, arm)
                    if r.seed in seeds and (arm, r.seed) not in done
                ]
                kept += new
                done |= {(arm, r.seed) for r in new}
    return kept


def _curves(report: dict[str, Any], strategy: str, metric: str) -> dict[int, np.ndarray]:
    """Per seed, the strategy's test metric at each budget (budgets checked to be shared)."""
    from workbench.simulation import runs_from_report

    out, budgets = {}, None
    for run in runs_from_report(report, strategy):
        labels = [p.labels for p in run.curve]
        if budgets is None:
            budgets = labels
        elif labels != budgets:
            raise ValueError(
                f"{strategy!r} seed {run.seed}: budgets {labels} differ from {budgets}"
            )
        out[run.seed] = np.array([p.metrics[metric] for p in run.curve], dtype=float)
    return out


def _budgets(report: dict[str, Any], strategy: str) -> list[int]:
    return [int(p["labels"]) for p in report["strategies"][strategy]["runs"][0]["curve"]]


def paired_curves(
    report: dict[str, Any], arm: str, against: str = "random"
) -> tuple[list[int], list[int], np.ndarray, np.ndarray]:
    """``(budgets, seeds, ours, theirs)``: the budgets both arms were read at, the seeds both
    ran (sorted) and each arm's test metric (the report's primary one) as a [seeds, budgets]
    array, rows paired by seed. Raises ValueError when the arms were read at other budgets."""
    metric = str(report["metric"])
    mine, base = _curves(report, arm, metric), _curves(report, against, metric)
    labels = _budgets(report, arm)
    if labels != _budgets(report, against):
        raise ValueError(f"{arm!r} and {against!r} were read at different budgets")
    seeds = sorted(set(mine) & set(base))
    if not seeds:
        return labels, [], np.empty((0, len(labels))), np.empty((0, len(labels)))
    return (
        labels,
        seeds,
        np.stack([mine[s] for s in seeds]),
        np.stack([base[s] for s in seeds]),
    )


def _points(interval: dict[str, Any]) -> str:
    """An interval of AULC differences in points: ``+0.42 [-0.39, +1.22]`` (no bounds: one
    seed)."""
    mean = f"{100 * interval['mean']:+.2f}"
    if interval.get("lo") is None:
        return mean
    return f"{mean} [{100 * interval['lo']:+.2f}, {100 * interval['hi']:+.2f}]"


def print_strategies(report: dict[str, Any]) -> None:
    """Per strategy: its AULC, its paired difference against random in points, and the labels
    it needs to reach each target share of the full-data metric."""
    for name, s in report["strategies"].items():
        d = s["aulc_vs_random"]
        diff = "" if d is None else f" vs random {_points(d)} pts"
        print(
            f"{name}: AULC {s['aulc']['mean']:.4f}{diff}; reach {s['labels_to_reach']} "
            f"range {s['labels_to_reach_range']}"
        )
