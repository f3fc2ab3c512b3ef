"""Typed errors of the strategies package (all are ``ValueError`` subclasses)."""

from __future__ import annotations

from workbench.errors import WorkbenchError


class StrategyError(WorkbenchError, ValueError):
    """A query strategy was given inputs or parameters it cannot use."""

    code = "strategy_error"


class InvalidProbabilitiesError(StrategyError):
    """Probabilities are NaN, out of [0, 1], do not sum to one, or have the wrong shape."""

    code = "invalid_probabilities"


class InvalidEmbeddingsError(StrategyError):
    """Embeddings are not finite or do not have the shape ``[N, D]``."""

    code = "invalid_embeddings"


class UnknownStrategyError(StrategyError):
    """No strategy is registered under the requested name."""

    code = "unknown_strategy"
