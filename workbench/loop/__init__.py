"""The active-learning loop on a project: train -> score -> select -> serve, all in the store."""

from workbench.loop._images import item_images
from workbench.loop._loop import SCORED_STRATEGIES, ActiveLearningLoop, LoopError
from workbench.loop._stopping import StoppingCriteria

__all__ = ["SCORED_STRATEGIES", "ActiveLearningLoop", "LoopError", "StoppingCriteria",
           "item_images"]
