"""The JSON report: reference, curves, AULC with intervals, paired differences, labels to reach."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from workbench.simulation._bootstrap import labels_ratio
from workbench.simulation._data import SimulationData
from workbench.simulation._run import (
    CurvePoint,
    Recipe,
    SeedRun,
    SimulationConfig,
    primary_metric,
    recipe_summary,
)
from workbench.simulation._stats import (
    INTERVAL,
    Interval,
    aulc,
    labels_to_reach,
    labels_to_reach_range,
    t_interval,
)

TARGETS = (0.95, 0.98, 0.99)
SCHEMA_VERSION = 1


def _interval(i: Interval) -> dict[str, Any]:
    return {"mean": i.mean, "lo": i.lo, "hi": i.hi, "n": i.n}


def _mean_curve(runs: list[SeedRun], metric: str) -> list[dict[str, Any]]:
    labels = [p.labels for p in runs[0].curve]
    out = []
    for j, n in enumerate(labels):
        values = [r.curve[j].metrics[metric] for r in runs]
        out.append({"labels": n, **_interval(t_interval(values))})
    return out


def paired_per_budget(
    runs: list[SeedRun], baseline: list[SeedRun], metric: str
) -> list[dict[str, Any]]:
    """At every budget of ``runs``, the per-seed difference of ``metric``, ``runs`` minus
    ``baseline`` on the seeds both hold: {labels, mean, lo, hi, n} (metric units; intervals
    with 2 seeds or more). Raises ValueError when a shared seed lacks one of those budgets."""
    theirs = {r.seed: {p.labels: p.metrics[metric] for p in r.curve} for r in baseline}
    shared = [r for r in runs if r.seed in theirs]
    if not shared:
        return []
    out = []
    for labels in [p.labels for p in shared[0].curve]:
        differences = []
        for run in shared:
            ours = {p.labels: p.metrics[metric] for p in run.curve}
            for side, values in (("", ours), ("the baseline's ", theirs[run.seed])):
                if labels not in values:
                    raise ValueError(
                        f"seed {run.seed}: {side}curve has no point at {labels} labels"
                    )
            differences.append(ours[labels] - theirs[run.seed][labels])
        out.append({"labels": labels, **_interval(t_interval(differences))})
    return out


def reach_vs_random(
    runs: list[SeedRun],
    baseline: list[SeedRun],
    metric: str,
    reference: list[float],
) -> dict[str, dict[str, Any]] | None:
    """Per target, labels to reach it as a share of the baseline's, with a paired bootstrap
    interval over seeds and reference trainings (`labels_ratio`); None with fewer than 2 seeds
    both arms ran or no reference. Raises ValueError when a paired seed's curves were read at
    other budgets. A reference that failed (not finite) gives None too."""
    theirs = {r.seed: r for r in baseline}
    paired = [r for r in runs if r.seed in theirs]
    if len(paired) < 2 or not reference or not np.all(np.isfinite(reference)):
        return None
    labels = [p.labels for p in paired[0].curve]
    for run in paired:
        for side, curve in (("", run.curve), ("the baseline's ", theirs[run.seed].curve)):
            if [p.labels for p in curve] != labels:
                raise ValueError(f"seed {run.seed}: {side}curve was read at other budgets")
    ours = np.array([[p.metrics[metric] for p in r.curve] for r in paired])
    base = np.array([[p.metrics[metric] for p in theirs[r.seed].curve] for r in paired])
    return {f"{t:.2f}": labels_ratio(labels, ours, base, reference, t).summary() for t in TARGETS}


def summarise(
    data: SimulationData,
    recipe: Recipe,
    config: SimulationConfig,
    reference: list[dict[str, float]],
    runs: list[SeedRun],
) -> dict[str, Any]:
    """JSON-ready report.

    ``dataset``: sizes and settings, with ``pool_keys`` naming each pool position (a run's
    ``picks`` are positions). ``reference``: full-data metrics per reference seed and their
    mean (``metric``).
    ``strategies.<name>``: ``runs`` (per seed: ``curve`` of {labels, metrics}, ``picks`` per
    round as pool positions), ``mean_curve`` ({labels, mean, lo, hi}), ``aulc`` (normalised:
    mean primary metric over the label budget; mean/lo/hi/n and ``per_seed``),
    ``aulc_vs_random`` (paired per-seed difference, strategy minus random; null for random or
    when random was not run), ``vs_random_per_budget`` (the same pairing of the test metric at
    each budget, `paired_per_budget`; null likewise), ``labels_to_reach`` ({"0.95": n or null,
    ...} of the reference, read off the mean curve), ``labels_to_reach_range`` ({"0.99":
    [earliest, surely] or null}: where the mean curve's 95% interval reaches the target at its
    upper and at its lower end, i.e. how finely the run tells labels to reach),
    ``labels_to_reach_per_seed`` and ``labels_to_reach_vs_random`` ({"0.99": {ratio, lo, hi,
    ...}}: labels to each target as a share of random's, with a paired bootstrap interval,
    `reach_vs_random`; null like ``aulc_vs_random``).
    """
    metric = primary_metric(data.task)
    ref_values = [r[metric] for r in reference]
    ref = float(np.mean(ref_values)) if ref_values else None
    by_name: dict[str, list[SeedRun]] = {}
    for run in runs:
        by_name.setdefault(run.strategy, []).append(run)
    aulcs = {
        name: {
            r.seed: aulc([p.labels for p in r.curve], [p.metrics[metric] for p in r.curve])
            for r in rs
        }
        for name, rs in by_name.items()
    }
    strategies: dict[str, Any] = {}
    for name, rs in by_name.items():
        mean_curve = _mean_curve(rs, metric)
        diff = per_budget = reach_ratio = None
        if name != "random" and "random" in aulcs:
            reach_ratio = reach_vs_random(rs, by_name["random"], metric, ref_values)
            paired = [
                aulcs[name][s] - aulcs["random"][s] for s in aulcs[name] if s in aulcs["random"]
            ]
            if paired:
                diff = {**_interval(t_interval(paired)), "per_seed": paired}
                per_budget = paired_per_budget(rs, by_name["random"], metric)
        has_interval = all(p["lo"] is not None for p in mean_curve)  # 2 seeds or more
        reach: dict[str, int | None] = {}
        reach_range: dict[str, list[int | None] | None] = {}
        reach_seed: dict[str, list[int | None]] = {}
        for t in TARGETS:
            key = f"{t:.2f}"
            if ref is None:
                reach[key], reach_range[key], reach_seed[key] = None, None, [None for _ in rs]
                continue
            reach[key] = labels_to_reach(
                [p["labels"] for p in mean_curve], [p["mean"] for p in mean_curve], t * ref
            )
            reach_range[key] = None
            if has_interval:
                reach_range[key] = list(
                    labels_to_reach_range(
                        [p["labels"] for p in mean_curve],
                        [p["lo"] for p in mean_curve],
                        [p["hi"] for p in mean_curve],
                        t * ref,
                    )
                )
            reach_seed[key] = [
                labels_to_reach(
                    [p.labels for p in r.curve], [p.metrics[metric] for p in r.curve], t * ref
                )
                for r in rs
            ]
        strategies[name] = {
            "runs": [
                {"seed": r.seed, "curve": [asdict(p) for p in r.curve], "picks": r.picks}
                for r in rs
            ],
            "mean_curve": mean_curve,
            "aulc": {
                **_interval(t_interval(list(aulcs[name].values()))),
                "per_seed": list(aulcs[name].values()),
            },
            "aulc_vs_random": diff,
            "vs_random_per_budget": per_budget,
            "labels_to_reach": reach,
            "labels_to_reach_range": reach_range,
            "labels_to_reach_per_seed": reach_seed,
            "labels_to_reach_vs_random": reach_ratio,
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "dataset": data.describe(),
        "metric": metric,
        "interval": INTERVAL,
        "aulc_definition": "trapezoid area under metric-vs-labels divided by the label range "
        "(the mean metric over the budget, in metric units; x100 = points)",
        "config": {
            "strategies": list(config.strategies),
            "seeds": list(config.seeds),
            "initial": config.initial,
            "batch": config.batch,
            "rounds": config.rounds,
            "cold_start": config.cold_start,
            **(
                {"contrastive_steps": config.contrastive_steps}
                if config.cold_start == "typical"
                or (config.ssl_init and data.task == "classification")
                else {}
            ),
            **({"ssl_init": True} if config.ssl_init else {}),
            **(
                {"restoration_steps": config.restoration_steps}
                if config.ssl_init and data.task == "segmentation"
                else {}
            ),
            "pool_subsample": config.pool_subsample,
            "score_pool": config.score_pool,
            "strategy_params": {k: dict(v) for k, v in config.strategy_params.items()},
        },
        "recipe": recipe_summary(recipe),
        "reference": {"metric": ref, "per_seed": reference},
        "targets": list(TARGETS),
        "strategies": strategies,
    }


def runs_from_report(
    report: dict[str, Any], strategy: str, *, renamed: str | None = None
) -> list[SeedRun]:
    """One strategy's curves read back from a report (``renamed`` when given), so that runs of
    separate simulations, say a new strategy beside a stored random, can be summarised
    together with `summarise` without rerunning the stored ones."""
    try:
        runs = report["strategies"][strategy]["runs"]
    except KeyError:
        raise KeyError(
            f"the report has no runs of strategy {strategy!r}; it has "
            f"{', '.join(report.get('strategies', {})) or 'none'}"
        ) from None
    return [
        SeedRun(
            renamed or strategy,
            int(run["seed"]),
            [
                CurvePoint(int(p["labels"]), dict(p["metrics"]), dict(p.get("training", {})))
                for p in run["curve"]
            ],
            [list(map(int, picks)) for picks in run["picks"]],
        )
        for run in runs
    ]
