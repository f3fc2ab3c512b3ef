"""Simulation mode: the active-learning loop with an oracle on already-labelled data.

    data = load_simulation_data("pneumoniamnist.npz", max_pool=2000)
    report = simulate(data, ClassificationRecipe(), SimulationConfig(strategies=("random", "bald")))
    plot_curves(report, "curves.png")

Per strategy and seed: ``initial`` labels (cold start), then ``rounds`` rounds of ``batch``:
train with the recipe, score the pool, select with the strategy, reveal the oracle's labels.
The report (a JSON-ready dict, see `summarise`) holds the curves, normalised AULC with 95%
t-intervals over seeds, the paired AULC difference against random (and of the test metric at
each budget) and the labels needed to reach 95/98/99% of the full-data reference, with the
budgets over which the mean curve's interval reaches each (`labels_to_reach_range`), and those
labels as a share of random's with a paired bootstrap interval (`labels_ratio`).
"""

from workbench.simulation._bootstrap import LabelsRatio, labels_ratio
from workbench.simulation._data import SimulationData, SimulationDataError, load_simulation_data
from workbench.simulation._oracle import Oracle, OracleError
from workbench.simulation._plot import plot_curves
from workbench.simulation._run import (
    CurvePoint,
    SeedRun,
    SimulationConfig,
    evaluate,
    primary_metric,
    run_strategy,
    simulate,
)
from workbench.simulation._stats import (
    Interval,
    aulc,
    labels_to_reach,
    labels_to_reach_range,
    t_interval,
)
from workbench.simulation._summary import (
    TARGETS,
    paired_per_budget,
    reach_vs_random,
    runs_from_report,
    summarise,
)

__all__ = [
    "TARGETS",
    "CurvePoint",
    "Interval",
    "LabelsRatio",
    "Oracle",
    "OracleError",
    "SeedRun",
    "SimulationConfig",
    "SimulationData",
    "SimulationDataError",
    "aulc",
    "evaluate",
    "labels_ratio",
    "labels_to_reach",
    "labels_to_reach_range",
    "load_simulation_data",
    "paired_per_budget",
    "plot_curves",
    "primary_metric",
    "reach_vs_random",
    "run_strategy",
    "runs_from_report",
    "simulate",
    "summarise",
    "t_interval",
]
