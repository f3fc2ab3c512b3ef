"""Checks both recipes run on their settings when they are made."""

from __future__ import annotations

import numbers

from workbench.models import ModelError

# the integer settings of a recipe and the least each may be
COUNT_MINIMUMS = {
    "max_epochs": 1,
    "patience": 1,
    "min_steps_per_epoch": 0,
    "batch_size": 1,
    "mc_samples": 1,
    "predict_batch_size": 1,
    "num_nodes": 1,
}


def require_counts(recipe: object, minimums: dict[str, int]) -> None:
    """Refuse, by field, a setting that is not a whole number of at least its minimum: a
    ``max_epochs`` of -1 would have Lightning train with no epoch limit, a ``batch_size`` of 0
    fails deep inside the data loader."""
    for field, minimum in minimums.items():
        value = getattr(recipe, field)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ModelError(f"{field} must be an integer >= {minimum}, got {value!r}", field=field)
