"""The active-learning loop on a project: train -> score -> select -> serve, all in the store."""

from workbench.loop._images import item_arrays, item_images
from workbench.loop._loop import (
    SCORED_STRATEGIES,
    ActiveLearningLoop,
    LoopError,
    default_recipe,
    project_spatial_dims,
    runs_on,
)
from workbench.loop._ranks import global_rank, records_to_store
from workbench.loop._segment import SCORE_NAMES as SEGMENTATION_SCORES
from workbench.loop._stopping import StoppingCriteria
from workbench.loop._yielding import YieldToAnnotators

__all__ = [
    "SCORED_STRATEGIES",
    "SEGMENTATION_SCORES",
    "ActiveLearningLoop",
    "LoopError",
    "StoppingCriteria",
    "YieldToAnnotators",
    "default_recipe",
    "global_rank",
    "item_arrays",
    "item_images",
    "project_spatial_dims",
    "records_to_store",
    "runs_on",
]
