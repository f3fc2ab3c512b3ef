"""Printing a `simulate` report at the end of a benchmark."""

from __future__ import annotations

from typing import Any


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
        print(f"{name}: AULC {s['aulc']['mean']:.4f}{diff}; reach {s['labels_to_reach']} "
              f"range {s['labels_to_reach_range']}")
