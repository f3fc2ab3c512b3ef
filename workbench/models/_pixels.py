"""Pixels as the network sees them: uint8 scaled to [0, 1], anything else as float."""

from __future__ import annotations

import torch
from torch import Tensor


def pixels_as_float(x: Tensor) -> Tensor:
    """uint8 pixels scaled to [0, 1] (as `workbench.recipes.as_images` scales them); any other
    dtype as float. Lets a batch cross to a worker process or a GPU as uint8, four times
    smaller, and be scaled where it lands."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
