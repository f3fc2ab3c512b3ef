"""Active-learning query strategies: pure scores, separate selection, callable strategies.

Shapes: ``probs`` ``[N, T, C, *spatial]`` (T Monte-Carlo samples) or ``[N, C, *spatial]``;
``embeddings`` ``[N, D]``; ``labelled_mask`` ``[N]`` bool; scores ``[N]``, higher = more
useful to label; maps ``[N, *spatial]``. Selections return pool positions, never item ids.
"""

from workbench.strategies._balanced import select_class_balanced
from workbench.strategies._batchbald import select_batchbald
from workbench.strategies._diversity import (
    COLD_START_METHODS,
    badge_embeddings,
    downsample,
    select_badge,
    select_cold_start,
    select_coreset,
)
from workbench.strategies._epig import epig
from workbench.strategies._errors import (
    InvalidEmbeddingsError,
    InvalidProbabilitiesError,
    StrategyError,
    UnknownStrategyError,
)
from workbench.strategies._registry import Strategy, available_strategies, get_strategy
from workbench.strategies._scoring import (
    bald,
    entropy,
    least_confidence,
    margin,
    moment_scores,
    moment_uncertainty_map,
    random_scores,
    reduce_map,
    uncertainty_map,
)
from workbench.strategies._select import (
    select_random,
    select_stochastic,
    select_top_k,
    stochastic_distribution,
)
from workbench.strategies._spec import parse_strategy_spec, with_spec_options
from workbench.strategies._types import SelectionResult
from workbench.strategies._typical import select_typiclust, typicality

__all__ = [
    "COLD_START_METHODS",
    "InvalidEmbeddingsError",
    "InvalidProbabilitiesError",
    "SelectionResult",
    "Strategy",
    "StrategyError",
    "UnknownStrategyError",
    "available_strategies",
    "badge_embeddings",
    "bald",
    "downsample",
    "entropy",
    "epig",
    "get_strategy",
    "least_confidence",
    "margin",
    "moment_scores",
    "moment_uncertainty_map",
    "parse_strategy_spec",
    "random_scores",
    "reduce_map",
    "select_badge",
    "select_batchbald",
    "select_class_balanced",
    "select_cold_start",
    "select_coreset",
    "select_random",
    "select_stochastic",
    "select_top_k",
    "select_typiclust",
    "stochastic_distribution",
    "typicality",
    "uncertainty_map",
    "with_spec_options",
]
