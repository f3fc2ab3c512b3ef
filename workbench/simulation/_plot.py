"""Learning curves as a PNG: mean over seeds with the 95% t-interval band and, below, each
strategy's paired difference from random at every budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_curves(report: dict[str, Any], path: str | Path, *, title: str | None = None) -> Path:
    """Write the mean learning curve of each strategy (± 95% interval band), the full-data
    reference and 99% of it, to ``path`` (PNG); when the report pairs strategies with random
    (``vs_random_per_budget``), a lower panel shows those differences in points with their
    bands."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    metric = report["metric"]
    paired = {
        name: s["vs_random_per_budget"]
        for name, s in report["strategies"].items()
        if s.get("vs_random_per_budget")
    }
    if paired:
        fig = Figure(figsize=(6.4, 6.0), dpi=120)
        ax, below = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    else:
        fig = Figure(figsize=(6.4, 4.2), dpi=120)
        ax, below = fig.subplots(), None
    colours: dict[str, Any] = {}
    for name, s in report["strategies"].items():
        curve = s["mean_curve"]
        x = [p["labels"] for p in curve]
        y = [p["mean"] for p in curve]
        (line,) = ax.plot(x, y, marker="o", ms=3, label=f"{name} (AULC {s['aulc']['mean']:.3f})")
        colours[name] = line.get_color()
        if all(p["lo"] is not None for p in curve):
            ax.fill_between(
                x,
                [p["lo"] for p in curve],
                [p["hi"] for p in curve],
                color=line.get_color(),
                alpha=0.15,
                lw=0,
            )
    ref = report["reference"]["metric"]
    if ref is not None:
        ax.axhline(ref, color="k", ls="--", lw=1, label=f"full data ({ref:.3f})")
        ax.axhline(0.99 * ref, color="grey", ls=":", lw=1, label="99% of full data")
    ax.set_ylabel(f"test {metric}")
    if below is not None:
        below.axhline(0, color=colours.get("random", "k"), lw=1)
        for name, budgets in paired.items():
            x = [b["labels"] for b in budgets]
            below.plot(x, [100 * b["mean"] for b in budgets], marker="o", ms=3, color=colours[name])
            if all(b["lo"] is not None for b in budgets):
                below.fill_between(
                    x,
                    [100 * b["lo"] for b in budgets],
                    [100 * b["hi"] for b in budgets],
                    color=colours[name],
                    alpha=0.15,
                    lw=0,
                )
        below.set_ylabel("minus random (points)", fontsize=8)
        below.grid(alpha=0.3)
    (below or ax).set_xlabel("labelled items")
    n = len(report["config"]["seeds"])
    ax.set_title(title or f"{report['dataset']['name']}: mean of {n} seeds, 95% t-interval")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
