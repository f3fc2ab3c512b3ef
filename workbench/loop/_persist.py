"""Model weights saved in the project folder, and loaded back for scoring."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from workbench.models import ModelError
from workbench.recipes import (
    ClassificationRecipe,
    SegmentationRecipe,
    TrainedModel,
    TrainedSegmenter,
)

Recipe = ClassificationRecipe | SegmentationRecipe
Trained = TrainedModel | TrainedSegmenter


def save_weights(trained: Trained, path: Path, *, in_channels: int) -> Path:
    """Write the network weights and what is needed to rebuild it, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    task = "segmentation" if isinstance(trained, TrainedSegmenter) else "classification"
    torch.save(
        {
            "state_dict": trained.state_dict,
            "num_classes": trained.num_classes,
            "spatial_dims": trained.spatial_dims,
            "seed": trained.seed,
            "in_channels": in_channels,
            "task": task,
        },
        partial,
    )
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return path


def load_weights(path: Path, recipe: Recipe) -> Trained:
    """The trained network (eval mode) from `save_weights`'s file: a `TrainedSegmenter` for a
    `SegmentationRecipe`, else a `TrainedModel`. ModelError when the file is unreadable or its
    weights do not fit the recipe's network."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError) as error:
        raise ModelError(
            f"the model weights cannot be read ({error.__class__.__name__}); "
            "retrain with 'workbench train'",
            path=path,
        ) from error
    segmentation = isinstance(recipe, SegmentationRecipe)
    if saved.get("task", "classification") != (
        "segmentation" if segmentation else "classification"
    ):
        raise ModelError(
            f"the weights are of a {saved.get('task')} model, the recipe is a "
            f"{type(recipe).__name__}",
            path=path,
            field="task",
        )
    net = recipe.network(
        spatial_dims=saved["spatial_dims"],
        in_channels=saved["in_channels"],
        num_classes=saved["num_classes"],
    )
    try:
        net.load_state_dict(saved["state_dict"])
    except RuntimeError as error:
        raise ModelError(
            f"the saved weights do not fit the recipe's network: {error}",
            path=path,
            field="network",
        ) from error
    net.eval()
    if isinstance(recipe, SegmentationRecipe):
        return TrainedSegmenter(
            module=net,
            metrics={},
            checkpoint_path=path,
            state_dict=saved["state_dict"],
            spatial_dims=saved["spatial_dims"],
            num_classes=saved["num_classes"],
            seed=saved["seed"],
            mc_samples=recipe.mc_samples,
            predict_batch_size=recipe.predict_batch_size,
            in_channels=saved["in_channels"],
            window=recipe.window,
            tta=recipe.tta,
        )
    return TrainedModel(
        module=net,
        metrics={},
        checkpoint_path=path,
        state_dict=saved["state_dict"],
        spatial_dims=saved["spatial_dims"],
        num_classes=saved["num_classes"],
        seed=saved["seed"],
        mc_samples=recipe.mc_samples,
        predict_batch_size=recipe.predict_batch_size,
    )
